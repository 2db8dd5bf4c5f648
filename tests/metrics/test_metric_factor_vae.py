"""Known-answer tests of the FactorVAE score (core from hand-made votes, wrapper on the fake)."""

from __future__ import annotations

import numpy as np
import pytest

from infogan.metrics.factor_vae import compute_factor_vae, factor_vae_score


def _votes_for(winners: list[int], num_codes: int) -> np.ndarray:
    """Local variances whose least-variable code is ``winners[v]`` for vote v."""
    variances = np.ones((len(winners), num_codes))
    variances[np.arange(len(winners)), winners] = 0.1
    return variances


def test_core_perfect_votes_score_one():
    labels = np.repeat([0, 1, 2], 10)
    variances = _votes_for(list(labels), 3)
    result = factor_vae_score(variances, labels, variances, labels, np.ones(3), 3)
    assert result == {"factor_vae": 1.0, "factor_vae_train": 1.0, "factor_vae_num_active": 3.0}


def test_core_one_code_for_two_factors_gives_two_thirds():
    # Factors 0 and 1 both leave code 0 the least variable, factor 2 code 1. The majority vote
    # maps code 0 to one of factors 0/1, so exactly one third of the balanced votes are wrong.
    labels = np.repeat([0, 1, 2], 10)
    variances = _votes_for([0] * 20 + [1] * 10, 2)
    result = factor_vae_score(variances, labels, variances, labels, np.ones(2), 3)
    assert result["factor_vae"] == pytest.approx(2.0 / 3.0, abs=1e-12)


def test_core_normalises_by_global_variance_and_skips_pruned_codes():
    labels = np.array([0, 1])
    # Raw local variances point at code 2 every time, but code 2 is pruned (std 0.01 < 0.05).
    # Among codes 0 and 1 the raw variances favour code 0 both times; normalised by the global
    # variances (1, 100), vote 0 picks code 1 (0.5 vs 0.2) and vote 1 code 0 (0.1 vs 0.5), so the
    # classifier separates the factors. Unnormalised it would score 1/2.
    local = np.array([[0.5, 20.0, 1e-6], [0.1, 50.0, 1e-6]])
    result = factor_vae_score(local, labels, local, labels, np.array([1.0, 100.0, 1e-4]), 2)
    assert result == {"factor_vae": 1.0, "factor_vae_train": 1.0, "factor_vae_num_active": 2.0}


def test_core_all_codes_pruned_scores_zero():
    labels = np.array([0, 1])
    result = factor_vae_score(np.ones((2, 2)), labels, np.ones((2, 2)), labels, np.full(2, 1e-4), 2)
    assert result == {"factor_vae": 0.0, "factor_vae_train": 0.0, "factor_vae_num_active": 0.0}


SMALL = {"num_train": 300, "num_eval": 300, "num_variance_estimate": 500}


@pytest.mark.parametrize("fixture", ["fake_data", "fake_data_fixed"])
def test_identity_codes_score_one(fixture, request, make_rep):
    data = request.getfixturevalue(fixture)
    result = compute_factor_vae(make_rep(noise=0.01), data, np.random.default_rng(0), **SMALL)
    assert result == {"factor_vae": 1.0, "factor_vae_train": 1.0, "factor_vae_num_active": 3.0}


def test_permuted_and_scaled_identity_scores_like_identity(fake_data, make_rep, scramble):
    # Large noise so the score is below 1 and the comparison means something.
    plain = compute_factor_vae(make_rep(noise=3.0), fake_data, np.random.default_rng(1), **SMALL)
    scrambled = compute_factor_vae(
        make_rep(noise=3.0, transform=scramble), fake_data, np.random.default_rng(1), **SMALL
    )
    assert plain["factor_vae"] < 0.95
    assert scrambled == pytest.approx(plain, abs=1e-12)


def test_constant_codes_are_all_pruned(fake_data, make_rep):
    result = compute_factor_vae(
        make_rep(transform=np.zeros_like), fake_data, np.random.default_rng(0), **SMALL
    )
    assert result == {"factor_vae": 0.0, "factor_vae_train": 0.0, "factor_vae_num_active": 0.0}


def test_random_codes_score_about_chance(fake_data):
    noise = np.random.default_rng(5)
    result = compute_factor_vae(
        lambda images: noise.normal(size=(len(images), 4)), fake_data, np.random.default_rng(0), **SMALL
    )
    assert 0.2 <= result["factor_vae"] <= 0.45  # chance is 1/3


def test_code_for_one_factor_and_a_noise_code_gives_one_half(fake_data, make_rep):
    # Code 0 = factor 2, code 1 = noise. Votes for factor 2 always pick code 0; votes for factors
    # 0 and 1 pick either code at random. Code 0 -> factor 2 (1/3 of the votes, all right), code 1
    # -> factor 0 or 1 (right for one of them: 1/6). Expected accuracy 1/2.
    noise = np.random.default_rng(6)

    def representation_fn(images):
        codes = make_rep()(images)
        return np.stack([codes[:, 2], noise.normal(size=len(codes))], axis=1)

    result = compute_factor_vae(representation_fn, fake_data, np.random.default_rng(0), **SMALL)
    assert result["factor_vae"] == pytest.approx(0.5, abs=0.07)
