"""Tests of the shared metric helpers: discretisation, MI, entropies and sampling."""

from __future__ import annotations

import numpy as np
import pytest

from infogan.metrics._discrete import (
    check_codes_factors,
    discrete_entropy,
    discrete_mutual_info,
    histogram_discretize,
    sample_fixed_factor,
    sample_representations,
    standardize,
)


def test_histogram_discretize_puts_twenty_levels_in_twenty_bins():
    codes = np.stack([np.arange(20.0), -5.0 * np.arange(20.0)], axis=1)  # (20, 2)
    bins = histogram_discretize(codes, num_bins=20)
    np.testing.assert_array_equal(bins[:, 0], np.arange(1, 21))  # the maximum lands in the top bin
    np.testing.assert_array_equal(bins[:, 1], np.arange(20, 0, -1))


def test_histogram_discretize_constant_code_is_one_bin():
    assert len(np.unique(histogram_discretize(np.full((50, 1), 3.0)))) == 1


def test_entropy_and_mi_of_a_uniform_factor(balanced_factors):
    # Exactly uniform marginals: H = log(size) in nats; a code equal to a factor has I = H and
    # is independent of the other factors (I = 0).
    entropy = discrete_entropy(balanced_factors)
    np.testing.assert_allclose(entropy, np.log([3, 5, 8]), atol=1e-12)
    mi = discrete_mutual_info(histogram_discretize(balanced_factors.astype(float)), balanced_factors)
    np.testing.assert_allclose(mi, np.diag(np.log([3, 5, 8])), atol=1e-12)


def test_check_codes_factors_rejects_bad_input():
    with pytest.raises(ValueError, match="rows"):
        check_codes_factors(np.zeros((4, 2)), np.zeros((5, 1), dtype=int))
    with pytest.raises(ValueError, match="integer"):
        check_codes_factors(np.zeros((4, 2)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match="NaN"):
        check_codes_factors(np.full((4, 2), np.nan), np.zeros((4, 1), dtype=int))


def test_standardize_uses_train_statistics_and_survives_constant_codes():
    train = np.array([[0.0, 5.0], [2.0, 5.0]])
    test = np.array([[4.0, 6.0]])
    train_std, test_std = standardize(train, test)
    np.testing.assert_allclose(train_std, [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(test_std, [[3.0, 1.0]])


def test_sample_representations_is_deterministic_and_aligned(fake_data, make_rep):
    codes, factors = sample_representations(make_rep(), fake_data, 1001, np.random.default_rng(3), 128)
    again, factors_again = sample_representations(make_rep(), fake_data, 1001, np.random.default_rng(3), 500)
    assert codes.shape == (1001, 3) and factors.shape == (1001, 3)
    np.testing.assert_array_equal(codes, factors)  # the identity code reads the factors back
    np.testing.assert_array_equal(factors, factors_again)  # chunking does not change the draw
    np.testing.assert_array_equal(codes, again)


def test_sample_representations_rejects_a_wrong_representation(fake_data):
    with pytest.raises(ValueError, match="expected"):
        sample_representations(lambda images: np.zeros(len(images)), fake_data, 10, np.random.default_rng(0))


@pytest.mark.parametrize("fixture", ["fake_data", "fake_data_fixed"])
def test_sample_fixed_factor_fixes_one_column(fixture, request):
    data = request.getfixturevalue(fixture)
    factors = sample_fixed_factor(data, 2, 64, np.random.default_rng(0))
    assert factors.shape == (64, 3)
    assert len(np.unique(factors[:, 2])) == 1
    assert len(np.unique(factors[:, 1])) > 1
    assert getattr(data, "fixed_calls", 1) == 1  # the dataset's own sampler is used when present
