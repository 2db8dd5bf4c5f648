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


def test_permuted_and_scaled_identity_scores_like_identity(scramble):
    (codes, factors), (codes_t, factors_t) = _identity(2_000, 9), _identity(1_000, 10)
    plain = sap_score(codes, factors, codes_t, factors_t)["sap"]
    assert sap_score(scramble(codes), factors, scramble(codes_t), factors_t)["sap"] == pytest.approx(
        plain, abs=1e-3
    )


def test_compute_sap_on_the_fake_dataset(fake_data, make_rep):
    good = compute_sap(make_rep(noise=0.05), fake_data, np.random.default_rng(0), num_train=500, num_test=300)
    again = compute_sap(
        make_rep(noise=0.05), fake_data, np.random.default_rng(0), num_train=500, num_test=300
    )
    assert good == again
    assert good["sap"] >= 0.25
