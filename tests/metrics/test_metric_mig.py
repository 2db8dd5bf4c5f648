"""Known-answer tests of MIG (tolerances as in disentanglement_lib's mig_test.py or tighter)."""

from __future__ import annotations

import numpy as np
import pytest

from infogan.metrics.mig import compute_mig, mig_score


def _noisy_identity(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, s, n) for s in (3, 5, 8)], axis=1)
    return factors + 0.01 * rng.normal(size=factors.shape), factors


def test_identity_codes_score_about_one():
    # Only the finite-sample bias of MI between independent variables (~0.003 nats here) is lost.
    codes, factors = _noisy_identity(10_000, 0)
    assert 0.97 <= mig_score(codes, factors)["mig"] <= 1.0


def test_constant_codes_score_exactly_zero():
    _, factors = _noisy_identity(2_000, 1)
    assert mig_score(np.zeros((2_000, 4)), factors)["mig"] == 0.0


def test_duplicated_codes_score_zero(balanced_factors):
    codes = np.repeat(balanced_factors.astype(float), 2, axis=1)  # every factor in two codes
    assert mig_score(codes, balanced_factors)["mig"] == pytest.approx(0.0, abs=1e-12)


def test_merged_and_copied_code_gives_the_hand_computed_value(balanced_factors):
    # Code 0 carries factors 0 and 1 together (a bijection of the pair), code 1 copies factor 0,
    # factor 2 is in no code. Factor 0: top two MI are both H(f0), gap 0. Factor 1: code 0 has
    # H(f1), code 1 has I(f0; f1) = 0, gap 1. Factor 2: 0. So MIG = (0 + 1 + 0) / 3.
    f = balanced_factors
    codes = np.stack([5.0 * f[:, 0] + f[:, 1], f[:, 0]], axis=1)
    assert mig_score(codes, f)["mig"] == pytest.approx(1.0 / 3.0, abs=1e-12)


def test_permuted_and_scaled_identity_scores_like_identity(scramble):
    codes, factors = _noisy_identity(5_000, 2)
    assert mig_score(scramble(codes), factors)["mig"] == pytest.approx(
        mig_score(codes, factors)["mig"], abs=1e-12
    )


def test_single_code_and_constant_factor_are_defined(balanced_factors):
    f = np.concatenate([balanced_factors, np.zeros((len(balanced_factors), 1), dtype=int)], axis=1)
    # One code = factor 2: gaps are (0, 0, 1) over the three informative factors; the constant
    # fourth factor is left out instead of producing 0/0.
    assert mig_score(f[:, 2:3].astype(float), f)["mig"] == pytest.approx(1.0 / 3.0, abs=1e-12)
    with pytest.raises(ValueError, match="constant"):
        mig_score(np.ones((10, 1)), np.zeros((10, 2), dtype=int))


def test_compute_mig_on_the_fake_dataset(fake_data, make_rep):
    good = compute_mig(make_rep(noise=0.05), fake_data, np.random.default_rng(0), num_train=500)
    again = compute_mig(make_rep(noise=0.05), fake_data, np.random.default_rng(0), num_train=500)
    random = compute_mig(
        make_rep(transform=lambda c: np.random.default_rng(len(c)).normal(size=c.shape)),
        fake_data,
        np.random.default_rng(0),
        num_train=500,
    )
    assert set(good) == {"mig"}
    assert good == again  # deterministic given the rng
    assert good["mig"] >= 0.9
    assert random["mig"] <= 0.1
