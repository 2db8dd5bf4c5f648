"""BetaVAE score (Higgins et al. 2017, "beta-VAE: Learning Basic Visual Concepts...").

Owns the pure score ``beta_vae_score`` (from pre-sampled features), the feature sampling and the
wrapper ``compute_beta_vae``. Definition as in disentanglement_lib's ``beta_vae.py``: one point =
draw a factor k uniformly, two batches of 64 uniformly drawn factor vectors where each pair
(row i of both batches) shares its value of k; the feature is the per-code mean over the batch
of |z1 − z2| and the label is k. A logistic regression is trained on 10,000 points and scored
on 5,000 fresh ones.

Result keys: ``"beta_vae"`` (evaluation accuracy, the score) and ``"beta_vae_train"``.
Chance is about 1/F (the labels are uniform over the F factors).

Deviation: sklearn's ``LogisticRegression`` with default regularisation (C=1, lbfgs) as in dlib,
but ``max_iter=1000`` instead of 100 so that the fit converges instead of stopping early with a
warning; dlib ran an older sklearn whose default solver was different anyway.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from infogan.data.base import GroundTruthDataset
from infogan.metrics._discrete import (
    CHUNK_SIZE,
    RepresentationFn,
    check_sizes,
    represent,
    single_threaded_blas,
)


def beta_vae_score(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    eval_features: np.ndarray,
    eval_labels: np.ndarray,
) -> dict[str, float]:
    """BetaVAE score: accuracy of a logistic regression predicting the fixed factor.

    Args:
        train_features: (V, D) mean |z1 − z2| per training point.
        train_labels: (V,) the factor held fixed for each training point.
        eval_features: (V', D) as ``train_features``, for evaluation.
        eval_labels: (V',) as ``train_labels``.

    Returns:
        ``{"beta_vae": eval accuracy, "beta_vae_train": train accuracy}``.
    """
    train_features = np.asarray(train_features, dtype=np.float64)
    eval_features = np.asarray(eval_features, dtype=np.float64)
    train_labels = np.asarray(train_labels)
    eval_labels = np.asarray(eval_labels)
    if (
        train_features.ndim != 2
        or eval_features.ndim != 2
        or train_features.shape[1] != eval_features.shape[1]
    ):
        raise ValueError(
            f"features must be (V, D) with one D, got {train_features.shape} and {eval_features.shape}"
        )
    if len(train_labels) != len(train_features) or len(eval_labels) != len(eval_features):
        raise ValueError("each features array needs one label per row")
    if len(np.unique(train_labels)) < 2:
        # A single label: the only sensible classifier predicts it (sklearn would refuse to fit).
        label = train_labels[0]
        return {"beta_vae": float(np.mean(eval_labels == label)), "beta_vae_train": 1.0}
    model = LogisticRegression(max_iter=1000)  # lbfgs is deterministic: no random_state needed
    with single_threaded_blas():
        model.fit(train_features, train_labels)
    return {
        "beta_vae": float(model.score(eval_features, eval_labels)),
        "beta_vae_train": float(model.score(train_features, train_labels)),
    }


def sample_beta_vae_features(
    representation_fn: RepresentationFn,
    data: GroundTruthDataset,
    num_points: int,
    batch_size: int,
    rng: np.random.Generator,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample BetaVAE points: a random factor k, two batches pairwise sharing k, mean |z1 − z2|.

    Several points are encoded per ``representation_fn`` call; the random draws happen point by
    point, so the result does not depend on ``chunk_size``.

    Args:
        representation_fn: images (n, C, H, W) -> codes (n, D).
        data: ground-truth dataset.
        num_points: number of points V.
        batch_size: pairs per point (disentanglement_lib: 64).
        rng: numpy generator.
        chunk_size: images per ``representation_fn`` call.

    Returns:
        features (V, D) and labels (V,) int64.
    """
    num_factors = len(data.factor_sizes)
    points_per_call = max(1, chunk_size // (2 * batch_size))
    features, labels = [], []
    for start in range(0, num_points, points_per_call):
        n = min(points_per_call, num_points - start)
        batches = []
        for _ in range(n):
            k = int(rng.integers(num_factors))
            first = np.asarray(data.sample_factors(batch_size, rng), dtype=np.int64)
            second = np.array(data.sample_factors(batch_size, rng), dtype=np.int64)
            second[:, k] = first[:, k]
            labels.append(k)
            batches += [first, second]
        codes = represent(representation_fn, data, np.concatenate(batches), 2 * n * batch_size)
        codes = codes.reshape(n, 2, batch_size, -1)  # (point, which batch, pair, D)
        features.append(np.abs(codes[:, 0] - codes[:, 1]).mean(axis=1))
    return np.concatenate(features), np.asarray(labels, dtype=np.int64)


def compute_beta_vae(
    representation_fn: RepresentationFn,
    data: GroundTruthDataset,
    rng: np.random.Generator,
    *,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    batch_size: int = 64,
    chunk_size: int = CHUNK_SIZE,
) -> dict[str, float]:
    """Sample BetaVAE points from ``data`` and score them.

    Args:
        representation_fn: images (n, C, H, W) -> codes (n, D).
        data: ground-truth dataset.
        rng: numpy generator; the result is a function of its state.
        num_train: training points (disentanglement_lib: 10,000).
        num_eval: evaluation points (5,000).
        batch_size: pairs per point (64).
        chunk_size: images per ``representation_fn`` call.

    Returns:
        ``{"beta_vae", "beta_vae_train"}``.
    """
    check_sizes(num_train=num_train, num_eval=num_eval, batch_size=batch_size, chunk_size=chunk_size)
    train = sample_beta_vae_features(representation_fn, data, num_train, batch_size, rng, chunk_size)
    evaluation = sample_beta_vae_features(representation_fn, data, num_eval, batch_size, rng, chunk_size)
    return beta_vae_score(*train, *evaluation)
