"""Known-answer tests of the BetaVAE score (chance, perfect and two-indistinguishable-factor cases)."""

from __future__ import annotations

import numpy as np
import pytest

from infogan.metrics.beta_vae import beta_vae_score, compute_beta_vae

SMALL = {"num_train": 300, "num_eval": 300}


def test_core_separable_features_score_one_and_noise_scores_chance():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)
    features = np.eye(3)[labels] + 0.05 * rng.normal(size=(600, 3))
    perfect = beta_vae_score(features[:400], labels[:400], features[400:], labels[400:])
    assert perfect == {"beta_vae": 1.0, "beta_vae_train": 1.0}
    noise = rng.normal(size=(600, 3))
    chance = beta_vae_score(noise[:400], labels[:400], noise[400:], labels[400:])
    assert chance["beta_vae"] <= 0.5  # chance is 1/3


def test_core_single_label_predicts_it():
    result = beta_vae_score(np.zeros((5, 2)), np.full(5, 1), np.zeros((4, 2)), np.array([1, 1, 0, 1]))
    assert result == {"beta_vae": 0.75, "beta_vae_train": 1.0}


def test_identity_codes_score_about_one(fake_data, make_rep):
    result = compute_beta_vae(make_rep(noise=0.01), fake_data, np.random.default_rng(0), **SMALL)
    again = compute_beta_vae(make_rep(noise=0.01), fake_data, np.random.default_rng(0), **SMALL)
    assert result == again  # deterministic given the rng
    assert result["beta_vae"] >= 0.97


def test_permuted_and_scaled_identity_scores_like_identity(fake_data, make_rep, scramble):
    def score(noise: float, transform=None) -> float:
        rep = make_rep(noise=noise, transform=transform)
        return compute_beta_vae(rep, fake_data, np.random.default_rng(0), **SMALL)["beta_vae"]

    assert score(0.01, scramble) == score(0.01) == 1.0
    # Below the ceiling (noise 2: about 0.93) a permutation changes nothing but the order of the
    # features (one of 300 predictions may flip on floating-point ties); a rescaling changes
    # the effect of the logistic regression's L2 penalty (C=1), so it may move a few predictions.
    noisy = score(2.0)
    assert 0.8 < noisy < 0.99
    assert score(2.0, lambda c: c[:, [2, 0, 1]]) == pytest.approx(noisy, abs=1.01 / SMALL["num_eval"])
    assert score(2.0, scramble) == pytest.approx(noisy, abs=0.02)


def test_constant_codes_score_about_chance(fake_data, make_rep):
    result = compute_beta_vae(make_rep(transform=np.zeros_like), fake_data, np.random.default_rng(0), **SMALL)
    assert result["beta_vae"] <= 0.45  # all features are 0: the majority label, about 1/3


def test_code_for_one_factor_only_gives_two_thirds(fake_data, make_rep):
    # Only factor 2 is encoded. Points with factor 2 fixed are recognised; points with factor 0
    # or 1 fixed look alike, so at best half of them are right: (1 + 1/2 + 1/2) / 3 = 2/3.
    result = compute_beta_vae(
        make_rep(noise=0.01, transform=lambda c: c[:, 2:3]), fake_data, np.random.default_rng(0), **SMALL
    )
    assert result["beta_vae"] == pytest.approx(2.0 / 3.0, abs=0.08)
