"""Known-answer tests of DCI: hand-written importance matrices (exact, as in disentanglement_lib's
dci_test.py) and forests on synthetic codes."""

from __future__ import annotations

import numpy as np
import pytest

from infogan.metrics.dci import compute_dci, dci_from_importance, dci_score

FEW = 10  # trees per forest in the core tests: the known answers do not need 50, and it is 5x faster


def test_diagonal_importance_is_perfect():
    result = dci_from_importance(np.diag(5.0 * np.ones(5)))
    assert result["dci_disentanglement"] == pytest.approx(1.0, abs=1e-8)
    assert result["dci_completeness"] == pytest.approx(1.0, abs=1e-8)


def test_zero_importance_scores_zero():
    result = dci_from_importance(np.zeros((4, 3)))
    assert result["dci_disentanglement"] == pytest.approx(0.0, abs=1e-8)
    assert result["dci_completeness"] == pytest.approx(0.0, abs=1e-8)


def test_one_code_for_two_factors():
    # 5 codes, 10 factors, each code equally important for two factors: D = 1 − log 2 / log 10;
    # each factor still comes from a single code, so C = 1.
    importance = np.hstack([np.diag(5.0 * np.ones(5))] * 2)
    result = dci_from_importance(importance)
    assert result["dci_disentanglement"] == pytest.approx(1.0 - np.log(2) / np.log(10), abs=1e-8)
    assert result["dci_completeness"] == pytest.approx(1.0, abs=1e-8)


def test_one_factor_from_two_codes():
    importance = np.vstack([np.diag(5.0 * np.ones(5))] * 2)  # 10 codes, 5 factors
    result = dci_from_importance(importance)
    assert result["dci_completeness"] == pytest.approx(1.0 - np.log(2) / np.log(10), abs=1e-8)
    assert result["dci_disentanglement"] == pytest.approx(1.0, abs=1e-8)


def test_unused_code_does_not_count():
    result = dci_from_importance(np.array([[3.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    assert result["dci_disentanglement"] == pytest.approx(1.0, abs=1e-8)
    # Completeness is measured in base D = 3, so two clean factors still score 1.
    assert result["dci_completeness"] == pytest.approx(1.0, abs=1e-8)


def test_scale_and_order_of_codes_and_factors_do_not_matter():
    importance = np.array([[3.0, 1.0], [0.5, 1.0], [0.2, 0.0]])
    shuffled = 7.0 * importance[[2, 0, 1]][:, [1, 0]]
    result = dci_from_importance(importance)
    assert 0.1 < result["dci_disentanglement"] < 0.9 and 0.1 < result["dci_completeness"] < 0.9
    assert dci_from_importance(shuffled) == pytest.approx(result, abs=1e-9)


def test_importance_must_be_non_negative():
    with pytest.raises(ValueError, match="non-negative"):
        dci_from_importance(np.array([[1.0, -1.0]]))


def _identity(n: int, seed: int, noise: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, s, n) for s in (3, 5, 8)], axis=1)
    return factors + noise * rng.normal(size=factors.shape), factors


def test_identity_codes_score_about_one():
    result = dci_score(*_identity(2_000, 0), *_identity(1_000, 1), np.random.default_rng(0), n_estimators=FEW)
    assert result["dci_disentanglement"] >= 0.95
    assert result["dci_completeness"] >= 0.95
    assert result["dci_informativeness"] >= 0.99


def test_permuted_and_scaled_identity_scores_like_identity(scramble):
    train, test = _identity(2_000, 2), _identity(1_000, 3)
    plain = dci_score(*train, *test, np.random.default_rng(0), n_estimators=FEW)
    scrambled = dci_score(
        scramble(train[0]), train[1], scramble(test[0]), test[1], np.random.default_rng(0), n_estimators=FEW
    )
    assert scrambled == pytest.approx(plain, abs=1e-3)


def test_constant_codes_score_zero_and_majority_accuracy():
    (_, factors), (_, factors_t) = _identity(1_000, 4), _identity(500, 5)
    result = dci_score(
        np.zeros((1_000, 2)),
        factors,
        np.zeros((500, 2)),
        factors_t,
        np.random.default_rng(0),
        n_estimators=FEW,
    )
    assert result["dci_disentanglement"] == pytest.approx(0.0, abs=1e-8)
    assert result["dci_completeness"] == pytest.approx(0.0, abs=1e-8)
    # A forest that cannot split predicts each factor's most frequent training value.
    majority = np.mean([np.mean(factors_t[:, j] == np.bincount(factors[:, j]).argmax()) for j in range(3)])
    assert result["dci_informativeness"] == pytest.approx(majority, abs=1e-12)


def test_random_codes_are_uninformative_and_entangled():
    rng = np.random.default_rng(6)
    (_, factors), (_, factors_t) = _identity(1_000, 7), _identity(500, 8)
    result = dci_score(
        rng.normal(size=(1_000, 3)), factors, rng.normal(size=(500, 3)), factors_t, rng, n_estimators=FEW
    )
    assert result["dci_informativeness"] <= 0.3  # chance is (1/3 + 1/5 + 1/8) / 3 = 0.22
    assert result["dci_disentanglement"] <= 0.2


def test_compute_dci_on_the_fake_dataset(fake_data, make_rep):
    kwargs = {"num_train": 500, "num_test": 300}
    result = compute_dci(make_rep(noise=0.01), fake_data, np.random.default_rng(0), **kwargs)
    again = compute_dci(make_rep(noise=0.01), fake_data, np.random.default_rng(0), **kwargs)
    assert result == again
    assert set(result) == {
        "dci_disentanglement",
        "dci_completeness",
        "dci_informativeness",
        "dci_informativeness_train",
    }
    assert result["dci_disentanglement"] >= 0.95 and result["dci_informativeness"] >= 0.99


@pytest.mark.parametrize("model", ["forest", "gradient_boosting"])
def test_both_importance_models_score_clean_codes_disentangled_and_mixed_codes_not(model: str):
    # Two factors of 4 values each; clean codes carry one factor each, mixed codes their sum
    # and difference. dlib's gradient boosting and the forest agree on both known answers.
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 4, size=(600, 2))
    clean = factors + rng.normal(0, 0.01, size=factors.shape)
    mixed = np.stack([factors[:, 0] + factors[:, 1], factors[:, 0] - factors[:, 1]], axis=1).astype(float)
    score = {name: dci_score(codes[:400], factors[:400], codes[400:], factors[400:], np.random.default_rng(1),
                             n_estimators=FEW, model=model)
             for name, codes in (("clean", clean), ("mixed", mixed))}
    assert score["clean"]["dci_disentanglement"] > 0.95 and score["clean"]["dci_informativeness"] > 0.95
    assert score["mixed"]["dci_disentanglement"] < 0.5


def test_unknown_importance_model_is_refused():
    codes = np.zeros((10, 2))
    with pytest.raises(ValueError, match="importance model 'lasso'"):
        dci_score(codes, codes.astype(int), codes, codes.astype(int), np.random.default_rng(0), model="lasso")
