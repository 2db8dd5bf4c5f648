"""Shared helpers of the disentanglement metrics: discretisation, discrete mutual information,
factor entropies, input checks and the sampling of (codes, factors) from a ground-truth dataset.

The discretisation and the information measures follow google-research/disentanglement_lib
(``utils.make_discretizer`` / ``_histogram_discretize``, ``discrete_mutual_info``,
``discrete_entropy``) so MIG and modularity are comparable with its published numbers. All arrays
here are sample-major, (N, D) codes and (N, F) factors (disentanglement_lib uses the transpose).
MI and entropies are in nats, as sklearn's ``mutual_info_score`` returns them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.metrics import mutual_info_score
from threadpoolctl import threadpool_limits

from infogan.data.base import GroundTruthDataset

RepresentationFn = Callable[[torch.Tensor], np.ndarray]

NUM_BINS = 20  # disentanglement_lib's default for MIG and modularity
CHUNK_SIZE = 512  # images per representation_fn call: big enough to amortise, small for memory


def check_codes_factors(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert a (codes, factors) pair.

    Args:
        codes: (N, D) real codes.
        factors: (N, F) integer factor indices.

    Returns:
        codes as float64 (N, D) and factors as int64 (N, F).

    Raises:
        ValueError: on wrong ranks, mismatched N, an empty axis or non-finite codes.
    """
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2:
        raise ValueError(f"codes and factors must be 2-D, got shapes {codes.shape} and {factors.shape}")
    if codes.shape[0] != factors.shape[0]:
        raise ValueError(f"codes has {codes.shape[0]} rows but factors has {factors.shape[0]}")
    if 0 in codes.shape or 0 in factors.shape:
        raise ValueError(f"empty codes {codes.shape} or factors {factors.shape}")
    if not np.all(np.isfinite(codes)):
        raise ValueError("codes contain NaN or inf")
    if not np.issubdtype(factors.dtype, np.integer):
        raise ValueError(f"factors must be integer indices, got dtype {factors.dtype}")
    return codes, factors.astype(np.int64, copy=False)


def histogram_discretize(codes: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """Discretise each code into ``num_bins`` equal-width bins spanning its own range.

    Same as disentanglement_lib's ``_histogram_discretize``: the bin edges are those of
    ``np.histogram`` of the code, and ``np.digitize`` against all edges but the last, so the
    maximum lands in the top bin. Labels run 1..num_bins.

    Args:
        codes: (N, D) real codes.
        num_bins: bins per code.

    Returns:
        (N, D) int64 bin labels.
    """
    codes = np.asarray(codes, dtype=np.float64)
    out = np.empty(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram(codes[:, d], bins=num_bins)[1]
        out[:, d] = np.digitize(codes[:, d], edges[:-1])
    return out


def discrete_mutual_info(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Mutual information (nats) between every discrete code and every factor.

    Args:
        discrete_codes: (N, D) integer labels, e.g. from ``histogram_discretize``.
        factors: (N, F) integer factor indices.

    Returns:
        (D, F) matrix, entry [i, j] = I(code_i; factor_j).
    """
    num_codes, num_factors = discrete_codes.shape[1], factors.shape[1]
    mi = np.zeros((num_codes, num_factors))
    for i in range(num_codes):
        for j in range(num_factors):
            mi[i, j] = mutual_info_score(factors[:, j], discrete_codes[:, i])
    return mi


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Empirical entropy (nats) of each factor, computed as I(y; y) like disentanglement_lib.

    Args:
        factors: (N, F) integer factor indices.

    Returns:
        (F,) entropies.
    """
    return np.array([mutual_info_score(factors[:, j], factors[:, j]) for j in range(factors.shape[1])])


def standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardise both splits with the training split's per-code mean and std.

    A constant code (std 0) is only centred, not divided, so it stays finite (all zeros) instead
    of the NaNs disentanglement_lib's ``normalize_data`` would produce.

    Args:
        train: (N, D) training codes.
        test: (M, D) test codes.

    Returns:
        the standardised (train, test).
    """
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std


def represent(
    representation_fn: RepresentationFn,
    data: GroundTruthDataset,
    factors: np.ndarray,
    chunk_size: int = CHUNK_SIZE,
) -> np.ndarray:
    """Render factors to images and map them to codes, ``chunk_size`` images at a time.

    Args:
        representation_fn: images (n, C, H, W) -> codes (n, D).
        data: renders the factors.
        factors: (N, F) factor indices.
        chunk_size: images per ``representation_fn`` call.

    Returns:
        (N, D) float64 codes.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r} must be >= 1")
    parts = []
    # No autograd graph: codes are evaluated, never differentiated, and graphs cost memory.
    with torch.no_grad():
        for start in range(0, len(factors), chunk_size):
            chunk = factors[start : start + chunk_size]
            codes = np.asarray(representation_fn(data.images_from_factors(chunk)), dtype=np.float64)
            if codes.ndim != 2 or codes.shape[0] != len(chunk):
                raise ValueError(
                    f"representation_fn returned shape {codes.shape} for {len(chunk)} images; expected (n, D)"
                )
            parts.append(codes)
    return np.concatenate(parts, axis=0)


def sample_representations(
    representation_fn: RepresentationFn,
    data: GroundTruthDataset,
    n: int,
    rng: np.random.Generator,
    batch_size: int = CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw n factor vectors uniformly, render them and encode them.

    Args:
        representation_fn: images (n, C, H, W) -> codes (n, D).
        data: the ground-truth dataset.
        n: number of points.
        rng: numpy generator driving the factor draw.
        batch_size: images per ``representation_fn`` call.

    Returns:
        codes (n, D) float64 and factors (n, F) int64.
    """
    if n < 1:
        raise ValueError(f"n={n!r} must be >= 1")
    factors = np.asarray(data.sample_factors(n, rng), dtype=np.int64)
    return represent(representation_fn, data, factors, batch_size), factors


def sample_fixed_factor(
    data: GroundTruthDataset, factor_index: int, n: int, rng: np.random.Generator
) -> np.ndarray:
    """n factor vectors sharing one value of factor ``factor_index``, the other factors uniform.

    Uses ``data.sample_fixed_factor`` when the dataset has one; otherwise draws uniform factors and
    copies the first row's value down the column, as disentanglement_lib does.

    Args:
        data: the ground-truth dataset.
        factor_index: the column to hold fixed.
        n: batch size.
        rng: numpy generator.

    Returns:
        (n, F) int64 factor indices.
    """
    sampler = getattr(data, "sample_fixed_factor", None)
    if sampler is not None:
        return np.asarray(sampler(factor_index, n, rng), dtype=np.int64)
    factors = np.array(data.sample_factors(n, rng), dtype=np.int64)
    factors[:, factor_index] = factors[0, factor_index]
    return factors


def single_threaded_blas() -> threadpool_limits:
    """Context manager limiting BLAS to one thread for the duration of a small sklearn fit.

    The metric fits are small (10,000 × D with D ~ 10); multi-threaded BLAS gains nothing there
    and, when the cores are shared (sweep trials, other processes), its spinning threads made a
    40-class logistic regression 10-20× slower in our measurements. Restored on exit.
    """
    return threadpool_limits(limits=1, user_api="blas")


def check_sizes(**sizes: int) -> None:
    """Raise ValueError naming the first size argument that is not a positive integer."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer")
