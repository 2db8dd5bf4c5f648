"""Hungarian-matched categorical accuracy and NMI."""

from __future__ import annotations

import numpy as np
import pytest

from infogan.metrics.categorical import categorical_scores


def test_permuted_perfect_clustering_scores_one() -> None:
    labels = np.repeat(np.arange(10), 20)
    predicted = (labels * 3 + 7) % 10  # a permutation of the classes
    scores = categorical_scores(predicted, labels)
    assert scores["cat_accuracy"] == 1.0
    assert scores["cat_nmi"] == pytest.approx(1.0)


def test_known_partial_answer() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    predicted = np.array([5, 5, 5, 2, 2, 2, 2, 5])  # best map 5->0, 2->1: 6 of 8 right
    assert categorical_scores(predicted, labels)["cat_accuracy"] == pytest.approx(0.75)


def test_one_cluster_scores_the_majority_class_and_zero_nmi() -> None:
    labels = np.array([0] * 6 + [1] * 3 + [2])
    scores = categorical_scores(np.zeros(10), labels)
    assert scores["cat_accuracy"] == pytest.approx(0.6)
    assert scores["cat_nmi"] == pytest.approx(0.0, abs=1e-12)


def test_more_code_values_than_classes() -> None:
    labels = np.array([0, 0, 1, 1])
    assert categorical_scores(np.array([0, 1, 2, 3]), labels)["cat_accuracy"] == pytest.approx(0.5)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError):
        categorical_scores(np.zeros(3), np.zeros(4))
