"""Modularity and explicitness (Ridgeway & Mozer 2018, "Learning Deep Disentangled Embeddings
with the F-Statistic Loss").

Owns the pure scores ``modularity_from_mi`` (from an MI matrix), ``modularity_score`` (from codes
and factors) and the wrapper ``compute_modularity``. Definitions as in disentanglement_lib's
``modularity_explicitness.py``:

- modularity: MI matrix codes × factors on the training split with the 20-bin discretisation;
  per code, 1 − (Σ_j MI² − max_j MI²) / (max_j MI² · (F − 1)), i.e. 1 minus how far the code's
  squared MI is from being on one factor only; averaged over codes.
  A code with zero MI to every factor (e.g. a constant code) gets modularity 0, not 1: that is
  what dlib does (it sets the per-code *score*, not the deviation, to 0), so dead codes pull the
  average down rather than counting as perfectly modular. With one factor (F = 1) every
  informative code is trivially modular (1); dlib would divide by zero.
- explicitness: per factor a one-vs-rest ROC-AUC of a logistic regression (C=1) on all codes,
  standardised with the training mean and std, trained on the training split; averaged over
  factors. The AUC is the macro average over classes, counting only the classes with both
  positives and negatives in the split (dlib's ``MultiLabelBinarizer`` assumed every class was
  present in both splits and fails otherwise).

Result keys: ``"modularity"``, ``"explicitness"`` (test AUC), ``"explicitness_train"``.
Deviation: ``LogisticRegression(max_iter=1000)`` so the fit converges (sklearn's default 100
iterations may stop early on 40-class factors).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from infogan.data.base import GroundTruthDataset
from infogan.metrics._discrete import (
    CHUNK_SIZE,
    NUM_BINS,
    RepresentationFn,
    check_codes_factors,
    check_sizes,
    discrete_mutual_info,
    histogram_discretize,
    sample_representations,
    single_threaded_blas,
    standardize,
)


def modularity_from_mi(mutual_info: np.ndarray) -> float:
    """Mean per-code modularity of a (D, F) mutual-information matrix.

    Args:
        mutual_info: (D, F) non-negative MI between codes and factors.

    Returns:
        modularity in [0, 1].
    """
    mutual_info = np.asarray(mutual_info, dtype=np.float64)
    if mutual_info.ndim != 2 or 0 in mutual_info.shape:
        raise ValueError(f"mutual_info must be a non-empty (D, F) matrix, got shape {mutual_info.shape}")
    squared = np.square(mutual_info)
    top = squared.max(axis=1)  # (D,)
    informative = top > 0
    per_code = np.zeros(len(top))  # codes with no information score 0, as in dlib
    if mutual_info.shape[1] == 1:
        per_code[informative] = 1.0
    else:
        deviation = (squared.sum(axis=1) - top)[informative] / (top[informative] * (squared.shape[1] - 1))
        per_code[informative] = 1.0 - deviation
    return float(per_code.mean())


def _macro_auc(model: LogisticRegression, codes: np.ndarray, labels: np.ndarray) -> float:
    """One-vs-rest ROC-AUC averaged over the classes that have positives and negatives here."""
    proba = model.predict_proba(codes)  # (N, K), columns in model.classes_ order
    aucs = []
    for k, label in enumerate(model.classes_):
        positive = labels == label
        if positive.any() and not positive.all():
            aucs.append(roc_auc_score(positive, proba[:, k]))
    return float(np.mean(aucs)) if aucs else float("nan")


def modularity_score(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    num_bins: int = NUM_BINS,
) -> dict[str, float]:
    """Modularity (training split) and explicitness (train and test AUC).

    Args:
        codes_train: (N, D) training codes.
        factors_train: (N, F) training factor indices.
        codes_test: (M, D) test codes.
        factors_test: (M, F) test factor indices.
        num_bins: histogram bins per code for the MI.

    Returns:
        ``{"modularity", "explicitness", "explicitness_train"}``.
    """
    codes_train, factors_train = check_codes_factors(codes_train, factors_train)
    codes_test, factors_test = check_codes_factors(codes_test, factors_test)
    mi = discrete_mutual_info(histogram_discretize(codes_train, num_bins), factors_train)
    x_train, x_test = standardize(codes_train, codes_test)
    auc_train, auc_test = [], []
    for j in range(factors_train.shape[1]):
        if len(np.unique(factors_train[:, j])) < 2:
            continue  # a constant factor has no ROC curve; it is left out of the average
        with single_threaded_blas():
            model = LogisticRegression(max_iter=1000).fit(x_train, factors_train[:, j])
            auc_train.append(_macro_auc(model, x_train, factors_train[:, j]))
            auc_test.append(_macro_auc(model, x_test, factors_test[:, j]))
    return {
        "modularity": modularity_from_mi(mi),
        "explicitness": float(np.nanmean(auc_test)) if auc_test else float("nan"),
        "explicitness_train": float(np.nanmean(auc_train)) if auc_train else float("nan"),
    }


def compute_modularity(
    representation_fn: RepresentationFn,
    data: GroundTruthDataset,
    rng: np.random.Generator,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    num_bins: int = NUM_BINS,
    chunk_size: int = CHUNK_SIZE,
) -> dict[str, float]:
    """Sample training and test points from ``data`` and score modularity and explicitness.

    Args:
        representation_fn: images (n, C, H, W) -> codes (n, D).
        data: ground-truth dataset.
        rng: numpy generator; the result is a function of its state.
        num_train: training points (disentanglement_lib: 10,000).
        num_test: test points (5,000).
        num_bins: histogram bins per code for the MI.
        chunk_size: images per ``representation_fn`` call.

    Returns:
        ``{"modularity", "explicitness", "explicitness_train"}``.
    """
    check_sizes(num_train=num_train, num_test=num_test, num_bins=num_bins, chunk_size=chunk_size)
    train = sample_representations(representation_fn, data, num_train, rng, chunk_size)
    test = sample_representations(representation_fn, data, num_test, rng, chunk_size)
    return modularity_score(*train, *test, num_bins=num_bins)
