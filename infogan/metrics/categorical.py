"""Unsupervised categorical accuracy and NMI of a categorical code against true labels.

The categorical code is learned without labels, so its values are an arbitrary permutation of
the classes: accuracy uses the best one-to-one matching of code values to labels (Hungarian
algorithm on the contingency table), as in the InfoGAN paper's "5% error" on MNIST.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import normalized_mutual_info_score


def categorical_scores(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Hungarian-matched accuracy and NMI of predicted code values against labels.

    Args:
        predicted: (N,) int, the code value Q assigns to each real image (argmax of its logits).
        labels: (N,) int, the true classes.
    Returns:
        ``{"cat_accuracy": a in [0, 1], "cat_nmi": m in [0, 1]}``.
    """
    predicted = np.asarray(predicted).astype(np.int64).ravel()
    labels = np.asarray(labels).astype(np.int64).ravel()
    if predicted.shape != labels.shape or predicted.size == 0:
        raise ValueError(f"predicted {predicted.shape} and labels {labels.shape} must be equal, non-empty")
    _, pred_idx = np.unique(predicted, return_inverse=True)
    _, label_idx = np.unique(labels, return_inverse=True)
    table = np.zeros((pred_idx.max() + 1, label_idx.max() + 1), dtype=np.int64)
    np.add.at(table, (pred_idx, label_idx), 1)  # contingency: code value x label
    rows, cols = linear_sum_assignment(table, maximize=True)
    accuracy = table[rows, cols].sum() / predicted.size
    return {
        "cat_accuracy": float(accuracy),
        "cat_nmi": float(normalized_mutual_info_score(labels, predicted)),
    }
