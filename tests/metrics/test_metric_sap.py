"""Known-answer tests of SAP (duplicates and constants are exact; identity beats random)."""

from __future__ import annotations

import numpy as np
import pytest

from infogan.metrics.sap import compute_sap, sap_score, sap_score_matrix


def _identity(n: int, seed: int, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, s, n) for s in (3, 5, 8)], axis=1)
    return factors + noise * rng.normal(size=factors.shape), factors


def test_identity_codes_separate_their_factors():
    train, test = _identity(2_000, 0), _identity(1_000, 1)
    scores = sap_score_matrix(*train, *test)
    # Each factor is best predicted by its own code (diagonal) by a wide margin.
    assert np.all(np.argmax(scores, axis=0) == np.arange(3))
    assert sap_score(*train, *test)["sap"] >= 0.25


def test_duplicated_codes_score_exactly_zero():
    (codes, factors), (codes_t, factors_t) = _identity(1_000, 2), _identity(500, 3)
    doubled = sap_score(np.repeat(codes, 2, axis=1), factors, np.repeat(codes_t, 2, axis=1), factors_t)
    assert doubled["sap"] == 0.0


def test_constant_codes_score_exactly_zero():
    (_, factors), (_, factors_t) = _identity(1_000, 4), _identity(500, 5)
    assert sap_score(np.zeros((1_000, 3)), factors, np.zeros((500, 3)), factors_t)["sap"] == 0.0


def test_random_codes_score_about_zero():
    rng = np.random.default_rng(6)
    (_, factors), (_, factors_t) = _identity(1_000, 7), _identity(500, 8)
    result = sap_score(rng.normal(size=(1_000, 3)), factors, rng.normal(size=(500, 3)), factors_t)
    assert result["sap"] <= 0.05


def test_one_code_carrying_two_factors_gives_the_exact_value():
    # Two balanced binary factors A, B. Code 0 = 2A + B - 1.5 carries both (a bijection of the
    # pair); code 1 is constant. Both problems on code 0 are mirror-symmetric about 0 (x -> -x
    # swaps the classes), so the SVM's unique optimum has its threshold at 0: A is separated
    # (accuracy 1) and B's classes fall half on each side (accuracy 1/2). The constant code
    # predicts one class: accuracy 1/2. SAP = ((1 - 1/2) + (1/2 - 1/2)) / 2 = 1/4, where the
    # identity code scores ((1 - 1/2) + (1 - 1/2)) / 2 = 1/2.
    grid = np.array([(a, b) for a in (0, 1) for b in (0, 1)])
    factors, factors_t = np.repeat(grid, 250, axis=0), np.repeat(grid, 100, axis=0)

    def merged(f: np.ndarray) -> np.ndarray:
        return np.stack([2.0 * f[:, 0] + f[:, 1] - 1.5, np.zeros(len(f))], axis=1)

    for standardize_codes in (False, True):
        matrix = sap_score_matrix(merged(factors), factors, merged(factors_t), factors_t, standardize_codes)
        np.testing.assert_array_equal(matrix, [[1.0, 0.5], [0.5, 0.5]])
        assert sap_score(merged(factors), factors, merged(factors_t), factors_t, standardize_codes)["sap"] == 0.25
    identity = sap_score(factors - 0.5, factors, factors_t - 0.5, factors_t)
    assert identity["sap"] == 0.5


def test_permuted_and_scaled_identity_scores_like_identity(scramble):
    (codes, factors), (codes_t, factors_t) = _identity(2_000, 9), _identity(1_000, 10)
    # Standardised codes make SAP exactly invariant to permuting and rescaling the codes.
    plain = sap_score(codes, factors, codes_t, factors_t, standardize_codes=True)["sap"]
    assert sap_score(scramble(codes), factors, scramble(codes_t), factors_t, standardize_codes=True)["sap"] == \
        pytest.approx(plain, abs=1e-12)
    # Raw codes (dlib's default) depend on scale only through C=0.01: moderate rescaling (x0.5..x3)
    # barely moves SAP here.
    raw = sap_score(codes, factors, codes_t, factors_t)["sap"]
    assert sap_score(scramble(codes), factors, scramble(codes_t), factors_t)["sap"] == pytest.approx(raw, abs=1e-3)


def test_raw_codes_are_scale_sensitive_like_disentanglement_lib():
    # dlib feeds raw codes to LinearSVC(C=0.01): a code shrunk 1000x is over-regularised and
    # loses accuracy though it carries the same information; standardising undoes the shrink.
    (codes, factors), (codes_t, factors_t) = _identity(2_000, 11), _identity(1_000, 12)
    raw = sap_score(codes, factors, codes_t, factors_t)["sap"]
    shrunk = sap_score(codes / 1000, factors, codes_t / 1000, factors_t)["sap"]
    assert shrunk < raw - 0.1
    assert sap_score(codes / 1000, factors, codes_t / 1000, factors_t, standardize_codes=True)["sap"] == \
        pytest.approx(sap_score(codes, factors, codes_t, factors_t, standardize_codes=True)["sap"], abs=1e-12)


def test_compute_sap_on_the_fake_dataset(fake_data, make_rep):
    good = compute_sap(make_rep(noise=0.05), fake_data, np.random.default_rng(0), num_train=500, num_test=300)
    again = compute_sap(
        make_rep(noise=0.05), fake_data, np.random.default_rng(0), num_train=500, num_test=300
    )
    assert good == again
    assert good["sap"] >= 0.25
