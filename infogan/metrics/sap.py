"""Separated Attribute Predictability (Kumar et al. 2018, "Variational Inference of Disentangled
Latent Concepts from Unlabeled Observations").

Owns the pure score ``sap_score`` and the wrapper ``compute_sap``. Definition as in
disentanglement_lib's ``sap_score.py`` with discrete factors (its default): for every pair
(code i, factor j) a ``LinearSVC(C=0.01, class_weight="balanced")`` predicts factor j from code i
alone; the score matrix holds the test accuracies, and SAP is the mean over factors of the gap
between the best and the second-best code. Result key: ``"sap"``.

Codes are fed raw by default, as disentanglement_lib does, so our numbers are comparable with
its tables. With the strong regularisation C=0.01 the fit then depends on a code's scale (a code
shrunk 100× loses accuracy though it carries the same information); ``standardize=True``
standardises each code with the training split's mean and std first, which makes SAP invariant
to rescaling codes, at the price of no longer being dlib's number. Deviation: with a single code
the second-best accuracy is taken as 0.

Cost: one-vs-rest linear SVMs on one feature; ~25 pairs at 10,000 / 5,000 points take a few
seconds on a laptop core (see benchmarks/metrics_cost.py), so the "continuous" alternative of
dlib (squared correlation) is not needed.
"""

from __future__ import annotations

import numpy as np
from sklearn.svm import LinearSVC

from infogan.data.base import GroundTruthDataset
from infogan.metrics._discrete import (
    CHUNK_SIZE,
    RepresentationFn,
    check_codes_factors,
    check_sizes,
    sample_representations,
    standardize,
)


def sap_score_matrix(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    standardize_codes: bool = False,
) -> np.ndarray:
    """Test accuracy of predicting each factor from each single code.

    Args:
        codes_train: (N, D) training codes.
        factors_train: (N, F) training factor indices.
        codes_test: (M, D) test codes.
        factors_test: (M, F) test factor indices.
        standardize_codes: standardise each code first (scale-invariant, not dlib's number).

    Returns:
        (D, F) accuracies.
    """
    codes_train, factors_train = check_codes_factors(codes_train, factors_train)
    codes_test, factors_test = check_codes_factors(codes_test, factors_test)
    if standardize_codes:
        codes_train, codes_test = standardize(codes_train, codes_test)
    num_codes, num_factors = codes_train.shape[1], factors_train.shape[1]
    scores = np.zeros((num_codes, num_factors))
    for j in range(num_factors):
        y_train, y_test = factors_train[:, j], factors_test[:, j]
        if len(np.unique(y_train)) < 2:
            # One value seen: every code predicts it equally well, so the gap is 0.
            scores[:, j] = np.mean(y_test == y_train[0])
            continue
        for i in range(num_codes):
            svm = LinearSVC(C=0.01, class_weight="balanced")
            svm.fit(codes_train[:, i : i + 1], y_train)
            scores[i, j] = np.mean(svm.predict(codes_test[:, i : i + 1]) == y_test)
    return scores


def sap_score(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    standardize_codes: bool = False,
) -> dict[str, float]:
    """SAP: mean over factors of the accuracy gap between the two most predictive codes.

    Args:
        codes_train: (N, D) training codes.
        factors_train: (N, F) training factor indices.
        codes_test: (M, D) test codes.
        factors_test: (M, F) test factor indices.
        standardize_codes: standardise each code first (scale-invariant, not dlib's number).

    Returns:
        ``{"sap": ...}``.
    """
    scores = sap_score_matrix(codes_train, factors_train, codes_test, factors_test, standardize_codes)
    top = np.sort(np.vstack([scores, np.zeros((1, scores.shape[1]))]), axis=0)[::-1]  # descending
    return {"sap": float(np.mean(top[0] - top[1]))}


def compute_sap(
    representation_fn: RepresentationFn,
    data: GroundTruthDataset,
    rng: np.random.Generator,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    chunk_size: int = CHUNK_SIZE,
    standardize_codes: bool = False,
) -> dict[str, float]:
    """Sample training and test points from ``data`` and score SAP.

    Args:
        representation_fn: images (n, C, H, W) -> codes (n, D).
        data: ground-truth dataset.
        rng: numpy generator; the result is a function of its state.
        num_train: training points (disentanglement_lib: 10,000).
        num_test: test points (5,000).
        chunk_size: images per ``representation_fn`` call.
        standardize_codes: standardise each code first (scale-invariant, not dlib's number).

    Returns:
        ``{"sap": ...}``.
    """
    check_sizes(num_train=num_train, num_test=num_test, chunk_size=chunk_size)
    train = sample_representations(representation_fn, data, num_train, rng, chunk_size)
    test = sample_representations(representation_fn, data, num_test, rng, chunk_size)
    return sap_score(*train, *test, standardize_codes=standardize_codes)
