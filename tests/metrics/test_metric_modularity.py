"""Known-answer tests of modularity (hand-computed MI matrices) and explicitness."""

from __future__ import annotations

import numpy as np
import pytest

from infogan.metrics.modularity import compute_modularity, modularity_from_mi, modularity_score


def test_modularity_of_hand_written_mi_matrices():
    assert modularity_from_mi(np.diag([1.0, 2.0, 3.0])) == pytest.approx(1.0)
    # A code with equal MI m on two of three factors: 1 − m² / (m² · 2) = 1/2.
    assert modularity_from_mi(np.array([[0.7, 0.7, 0.0]])) == pytest.approx(0.5)
    # Mean over codes (1, 1, 1/2); scale of the MI does not matter.
    assert modularity_from_mi(np.array([[2.0, 0, 0], [0, 5.0, 0], [0.3, 0.3, 0]])) == pytest.approx(5.0 / 6.0)
    # MI spread equally over all F factors: 1 − (F − 1)/(F − 1) = 0.
    assert modularity_from_mi(np.ones((2, 4))) == pytest.approx(0.0)


def test_uninformative_code_scores_zero_as_in_disentanglement_lib():
    assert modularity_from_mi(np.array([[1.0, 0.0], [0.0, 0.0]])) == pytest.approx(0.5)
    assert modularity_from_mi(np.array([[0.5], [0.0]])) == pytest.approx(
        0.5
    )  # one factor: 1 per informative code


def _identity(n: int, seed: int, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, s, n) for s in (3, 5, 8)], axis=1)
    return factors + noise * rng.normal(size=factors.shape), factors


def test_identity_codes_are_modular_and_explicit():
    result = modularity_score(*_identity(3_000, 0), *_identity(1_000, 1))
    assert set(result) == {"modularity", "explicitness", "explicitness_train"}
    assert result["modularity"] >= 0.98
    assert result["explicitness"] >= 0.95


def test_code_with_two_factors_gives_the_hand_computed_modularity(balanced_factors):
    # Code 0 is a bijection of (factor 0, factor 1): its MI is H(f0) = log 3 and H(f1) = log 5
    # (and 0 with factor 2), so its modularity is 1 − (log 3)² / ((log 5)² · 2); code 1 = factor 2
    # is perfectly modular. Balanced factors make the MI exact (15 values fit in 20 bins).
    f = balanced_factors
    codes = np.stack([5.0 * f[:, 0] + f[:, 1], f[:, 2]], axis=1).astype(float)
    expected = (1.0 - np.log(3) ** 2 / (2 * np.log(5) ** 2) + 1.0) / 2
    assert modularity_score(codes, f, codes, f)["modularity"] == pytest.approx(expected, abs=1e-9)


def test_constant_codes_score_zero_modularity_and_chance_explicitness():
    (_, factors), (_, factors_t) = _identity(1_000, 2), _identity(500, 3)
    result = modularity_score(np.zeros((1_000, 2)), factors, np.zeros((500, 2)), factors_t)
    assert result == {"modularity": 0.0, "explicitness": 0.5, "explicitness_train": 0.5}


def test_random_codes_have_chance_explicitness():
    rng = np.random.default_rng(4)
    (_, factors), (_, factors_t) = _identity(1_000, 5), _identity(500, 6)
    result = modularity_score(rng.normal(size=(1_000, 3)), factors, rng.normal(size=(500, 3)), factors_t)
    assert result["explicitness"] == pytest.approx(0.5, abs=0.06)


def test_permuted_and_scaled_identity_scores_like_identity(scramble):
    # Noisy enough that neither score is at its ceiling of 1.
    (codes, factors), (codes_t, factors_t) = _identity(2_000, 7, noise=1.0), _identity(1_000, 8, noise=1.0)
    plain = modularity_score(codes, factors, codes_t, factors_t)
    assert plain["modularity"] < 0.999 and plain["explicitness"] < 0.9
    scrambled = modularity_score(scramble(codes), factors, scramble(codes_t), factors_t)
    assert scrambled["modularity"] == pytest.approx(plain["modularity"], abs=1e-12)
    assert scrambled["explicitness"] == pytest.approx(plain["explicitness"], abs=1e-4)


def test_compute_modularity_on_the_fake_dataset(fake_data, make_rep):
    result = compute_modularity(
        make_rep(noise=0.05), fake_data, np.random.default_rng(0), num_train=500, num_test=300
    )
    assert result["modularity"] >= 0.9
    assert result["explicitness"] >= 0.95
