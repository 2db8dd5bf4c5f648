"""FactorVAE score (Kim & Mnih 2018, "Disentangling by Factorising").

Owns the pure score ``factor_vae_score`` (from pre-sampled per-vote variances), its vote
sampling and the wrapper ``compute_factor_vae``. Definition as in disentanglement_lib's
``factor_vae.py``:

1. global per-code variances (ddof=1) over 10,000 uniformly drawn points;
2. prune codes whose global std is below ``prune_threshold``;
3. one vote = draw a factor k uniformly, a batch of 64 points sharing one value of k, and the
   active code with the smallest local variance (ddof=1) divided by its global variance;
   the vote is the pair (k, that code);
4. the majority-vote classifier maps each code to the factor that voted for it most often in
   10,000 training votes; the score is its accuracy on 5,000 fresh evaluation votes.

Result keys: ``"factor_vae"`` (evaluation accuracy, the score), ``"factor_vae_train"`` (training
accuracy), ``"factor_vae_num_active"`` (codes kept by the pruning). Chance level is about 1/F.

Deviations: disentanglement_lib's ``_prune_dims`` defaults to threshold 0 (nothing pruned); we
prune std < 0.05 as the FactorVAE paper does for collapsed dimensions (``prune_threshold=0.0``
restores the dlib behaviour). If every code is pruned the score is 0 with
``factor_vae_num_active`` = 0, as in dlib. We report the number of active codes, where dlib
reports ``len(mask)`` (always D).
"""

from __future__ import annotations

import numpy as np

from infogan.data.base import GroundTruthDataset
from infogan.metrics._discrete import (
    CHUNK_SIZE,
    RepresentationFn,
    check_sizes,
    represent,
    sample_fixed_factor,
    sample_representations,
)

PRUNE_THRESHOLD = 0.05


def active_codes(global_variances: np.ndarray, prune_threshold: float = PRUNE_THRESHOLD) -> np.ndarray:
    """Mask of the codes whose global std reaches ``prune_threshold``.

    Args:
        global_variances: (D,) per-code variances over the data.
        prune_threshold: minimum std of a kept code.

    Returns:
        (D,) bool mask.
    """
    return np.sqrt(np.asarray(global_variances, dtype=np.float64)) >= prune_threshold


def _votes(
    local_variances: np.ndarray,
    factor_index: np.ndarray,
    global_variances: np.ndarray,
    active: np.ndarray,
    num_factors: int,
) -> np.ndarray:
    """(F, D) vote counts: row = fixed factor, column = code of least normalised variance."""
    active_idx = np.flatnonzero(active)
    ratio = local_variances[:, active_idx] / global_variances[active_idx]  # (V, A)
    winner = active_idx[np.argmin(ratio, axis=1)]  # (V,) index into all D codes
    votes = np.zeros((num_factors, local_variances.shape[1]), dtype=np.int64)
    np.add.at(votes, (factor_index, winner), 1)
    return votes


def factor_vae_score(
    train_variances: np.ndarray,
    train_factor_index: np.ndarray,
    eval_variances: np.ndarray,
    eval_factor_index: np.ndarray,
    global_variances: np.ndarray,
    num_factors: int,
    prune_threshold: float = PRUNE_THRESHOLD,
) -> dict[str, float]:
    """FactorVAE score from pre-sampled votes.

    Args:
        train_variances: (V, D) per-code variance of each training vote's fixed-factor batch.
        train_factor_index: (V,) the factor held fixed in each training vote.
        eval_variances: (V', D) as ``train_variances``, for the evaluation votes.
        eval_factor_index: (V',) as ``train_factor_index``.
        global_variances: (D,) per-code variances over uniformly drawn data.
        num_factors: F, the number of factors (vote labels are 0..F-1).
        prune_threshold: codes with global std below it never win a vote.

    Returns:
        ``{"factor_vae", "factor_vae_train", "factor_vae_num_active"}`` as floats.
    """
    global_variances = np.asarray(global_variances, dtype=np.float64)
    train_variances = np.asarray(train_variances, dtype=np.float64)
    eval_variances = np.asarray(eval_variances, dtype=np.float64)
    num_codes = global_variances.shape[0]
    for name, arr in (("train_variances", train_variances), ("eval_variances", eval_variances)):
        if arr.ndim != 2 or arr.shape[1] != num_codes or arr.shape[0] == 0:
            raise ValueError(f"{name} must be (V, {num_codes}) with V >= 1, got shape {arr.shape}")
    active = active_codes(global_variances, prune_threshold)
    if not active.any():
        return {"factor_vae": 0.0, "factor_vae_train": 0.0, "factor_vae_num_active": 0.0}
    train_votes = _votes(
        train_variances, np.asarray(train_factor_index), global_variances, active, num_factors
    )
    eval_votes = _votes(eval_variances, np.asarray(eval_factor_index), global_variances, active, num_factors)
    # Majority vote: each code predicts the factor that most often left it the least variable.
    classifier = np.argmax(train_votes, axis=0)  # (D,)
    codes = np.arange(num_codes)
    return {
        "factor_vae": float(eval_votes[classifier, codes].sum() / eval_votes.sum()),
        "factor_vae_train": float(train_votes[classifier, codes].sum() / train_votes.sum()),
        "factor_vae_num_active": float(active.sum()),
    }


def sample_vote_variances(
    representation_fn: RepresentationFn,
    data: GroundTruthDataset,
    num_votes: int,
    batch_size: int,
    rng: np.random.Generator,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample votes: per vote a random factor, a batch sharing one of its values, code variances.

    Several votes are encoded per ``representation_fn`` call (``chunk_size // batch_size``);
    the random draws happen vote by vote, so the result does not depend on ``chunk_size``.

    Args:
        representation_fn: images (n, C, H, W) -> codes (n, D).
        data: ground-truth dataset.
        num_votes: number of votes V.
        batch_size: points per vote (disentanglement_lib: 64).
        rng: numpy generator.
        chunk_size: images per ``representation_fn`` call (at least one vote's batch).

    Returns:
        local variances (V, D) (ddof=1) and the fixed factor of each vote (V,).
    """
    num_factors = len(data.factor_sizes)
    votes_per_call = max(1, chunk_size // batch_size)
    variances, fixed = [], []
    for start in range(0, num_votes, votes_per_call):
        n = min(votes_per_call, num_votes - start)
        index: list[int] = []
        batches = []
        for _ in range(n):
            k = int(rng.integers(num_factors))
            index.append(k)
            batches.append(sample_fixed_factor(data, k, batch_size, rng))
        codes = represent(representation_fn, data, np.concatenate(batches), n * batch_size)
        variances.append(codes.reshape(n, batch_size, -1).var(axis=1, ddof=1))
        fixed.extend(index)
    return np.concatenate(variances), np.asarray(fixed, dtype=np.int64)


def compute_factor_vae(
    representation_fn: RepresentationFn,
    data: GroundTruthDataset,
    rng: np.random.Generator,
    *,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    batch_size: int = 64,
    num_variance_estimate: int = 10_000,
    prune_threshold: float = PRUNE_THRESHOLD,
    chunk_size: int = CHUNK_SIZE,
) -> dict[str, float]:
    """Sample global variances and votes from ``data`` and score FactorVAE.

    Args:
        representation_fn: images (n, C, H, W) -> codes (n, D).
        data: ground-truth dataset.
        rng: numpy generator; the result is a function of its state.
        num_train: training votes (disentanglement_lib: 10,000).
        num_eval: evaluation votes (5,000).
        batch_size: points per vote (64).
        num_variance_estimate: points for the global variances (10,000).
        prune_threshold: minimum global std of a code allowed to win a vote.
        chunk_size: images per ``representation_fn`` call.

    Returns:
        ``{"factor_vae", "factor_vae_train", "factor_vae_num_active"}``.
    """
    check_sizes(
        num_train=num_train,
        num_eval=num_eval,
        num_variance_estimate=num_variance_estimate,
        chunk_size=chunk_size,
    )
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 2:
        raise ValueError(f"batch_size={batch_size!r} must be an integer >= 2 (a variance needs two points)")
    codes, _ = sample_representations(representation_fn, data, num_variance_estimate, rng, chunk_size)
    global_variances = codes.var(axis=0, ddof=1)
    if not active_codes(global_variances, prune_threshold).any():
        # Every code collapsed: skip the (expensive) votes, the score is 0 by definition.
        return {"factor_vae": 0.0, "factor_vae_train": 0.0, "factor_vae_num_active": 0.0}
    train_var, train_idx = sample_vote_variances(
        representation_fn, data, num_train, batch_size, rng, chunk_size
    )
    eval_var, eval_idx = sample_vote_variances(representation_fn, data, num_eval, batch_size, rng, chunk_size)
    return factor_vae_score(
        train_var, train_idx, eval_var, eval_idx, global_variances, len(data.factor_sizes), prune_threshold
    )
