"""Mutual Information Gap (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs").

Owns the pure score ``mig_score(codes, factors)`` and its sampling wrapper ``compute_mig``.
Definition as in disentanglement_lib's ``mig.py``: discretise every code into 20 histogram bins,
take the MI matrix codes × factors, and average over factors the gap between the largest and the
second-largest MI, divided by the factor's entropy. Result key: ``"mig"`` in [0, 1].

Edge cases disentanglement_lib leaves undefined: with a single code the second-largest MI is 0;
a factor that takes a single value in the sample (zero entropy, e.g. dSprites' colour) carries no
information and is left out of the mean instead of producing a NaN.
"""

from __future__ import annotations

import numpy as np

from infogan.data.base import GroundTruthDataset
from infogan.metrics._discrete import (
    NUM_BINS,
    RepresentationFn,
    check_codes_factors,
    check_sizes,
    discrete_entropy,
    discrete_mutual_info,
    histogram_discretize,
    sample_representations,
)


def mig_score(codes: np.ndarray, factors: np.ndarray, num_bins: int = NUM_BINS) -> dict[str, float]:
    """MIG of codes with respect to factors.

    Args:
        codes: (N, D) real codes.
        factors: (N, F) integer factor indices.
        num_bins: histogram bins per code.

    Returns:
        ``{"mig": mean over factors of (top-1 MI − top-2 MI) / H(factor)}``.

    Raises:
        ValueError: on malformed input or when every factor is constant in the sample.
    """
    codes, factors = check_codes_factors(codes, factors)
    mi = discrete_mutual_info(histogram_discretize(codes, num_bins), factors)  # (D, F)
    entropy = discrete_entropy(factors)  # (F,)
    informative = entropy > 0
    if not informative.any():
        raise ValueError("every factor is constant in the sample: MIG is undefined")
    # Pad a zero row so a single code has a second-largest MI of 0.
    top = np.sort(np.vstack([mi, np.zeros((1, mi.shape[1]))]), axis=0)[::-1]  # (D + 1, F), descending
    gap = (top[0] - top[1])[informative] / entropy[informative]
    return {"mig": float(np.mean(gap))}


def compute_mig(
    representation_fn: RepresentationFn,
    data: GroundTruthDataset,
    rng: np.random.Generator,
    *,
    num_train: int = 10_000,
    num_bins: int = NUM_BINS,
    chunk_size: int = 512,
) -> dict[str, float]:
    """Sample points from ``data``, encode them and score MIG.

    Args:
        representation_fn: images (n, C, H, W) -> codes (n, D).
        data: ground-truth dataset.
        rng: numpy generator; the result is a function of its state.
        num_train: points used (disentanglement_lib: 10,000).
        num_bins: histogram bins per code.
        chunk_size: images per ``representation_fn`` call.

    Returns:
        ``{"mig": ...}``.
    """
    check_sizes(num_train=num_train, num_bins=num_bins, chunk_size=chunk_size)
    codes, factors = sample_representations(representation_fn, data, num_train, rng, chunk_size)
    return mig_score(codes, factors, num_bins)
