"""Choosing a model without labels: ModelCentrality (Lin et al., ICML 2020) on every model's codes
of the same real images, scored with the project's own MIG, and how the chosen model ranks on the
supervised metrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis import schema as S
from analysis.ranking import DEFAULT_SUPERVISED, check_fid_comparable, lower_is_better, resolve

NUM_BINS = 20  # disentanglement_lib's histogram discretisation for MIG
CodeMetric = Callable[[np.ndarray, np.ndarray], float]


def discretize(x: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """Each column into ``num_bins`` histogram bins over its own range: the disentanglement
    metrics' own discretisation (``infogan.metrics``, as disentanglement_lib's), not a copy."""
    from infogan.metrics._discrete import histogram_discretize  # torch comes with it: only when scoring

    return histogram_discretize(np.asarray(x, dtype=np.float64), num_bins)


def mig_like(codes: np.ndarray, factors: np.ndarray, num_bins: int = NUM_BINS) -> float:
    """``infogan.metrics``' MIG of ``codes`` against another model's real-valued codes used as
    factors (discretised into ``num_bins`` histogram bins first).

    Args:
        codes: (N, D) representation being scored.
        factors: (N, F) reference codes (another model's), treated as ground truth.
        num_bins: histogram bins.

    Returns:
        Score in [0, 1]; 0 when every reference code is constant.
    """
    from infogan.metrics.mig import mig_score

    codes, factors = np.asarray(codes), np.asarray(factors)
    if codes.shape[0] != factors.shape[0]:
        raise ValueError(f"codes have {codes.shape[0]} rows but factors have {factors.shape[0]}: use the same images")
    try:
        return mig_score(codes, discretize(factors, num_bins), num_bins)["mig"]
    except ValueError:  # every reference code is constant: nothing to agree with
        return 0.0


@dataclass(frozen=True)
class Centrality:
    """ModelCentrality scores, the pairwise score matrix and the selected model."""

    scores: pd.DataFrame  # model_id, centrality, rank — sorted best first
    pairwise: pd.DataFrame  # [i, j] = metric(codes of i, factors = codes of j); NaN diagonal
    selected: str


def model_centrality(codes: Mapping[str, np.ndarray], metric: CodeMetric | None = None) -> Centrality:
    """Score each model by how well its codes disentangle every other model's codes.

    ModelCentrality (Lin et al., ICML 2020): model i's score is the mean over j ≠ i of a
    supervised disentanglement metric of i's codes with j's codes taken as the ground-truth
    factors; the most central model is selected. Needs no labels. All codes must be of the same
    real images, in the same order.

    Args:
        codes: model id → (N, D) codes (continuous posterior means; categorical codes as class
            indices), same N for every model.
        metric: ``(codes, factors) -> float``, higher is better; default ``mig_like``. To use the
            project's MIG: ``lambda c, f: mig_score(c, discretize(f))["mig"]``.

    Returns:
        ``Centrality``; ties are broken by model id so the selection is deterministic.
    """
    if len(codes) < 2:
        raise ValueError(f"ModelCentrality needs at least two models, got {len(codes)}")
    ids = sorted(codes)
    n = {np.asarray(codes[i]).shape[0] for i in ids}
    if len(n) != 1:
        raise ValueError(f"codes of different models cover different numbers of images {sorted(n)}; use the same images")
    metric = metric or mig_like
    mat = np.full((len(ids), len(ids)), np.nan)
    for a, i in enumerate(ids):
        for b, j in enumerate(ids):
            if a != b:
                mat[a, b] = float(metric(np.asarray(codes[i]), np.asarray(codes[j])))
    cent = np.nanmean(mat, axis=1)
    scores = pd.DataFrame({"model_id": ids, "centrality": cent})
    scores = scores.sort_values(["centrality", "model_id"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
    scores["rank"] = scores["centrality"].rank(ascending=False, method="min").astype(int)
    pairwise = pd.DataFrame(mat, index=pd.Index(ids, name="model"), columns=pd.Index(ids, name="reference"))
    return Centrality(scores, pairwise, str(scores["model_id"].iloc[0]))


def selection_report(
    trials: pd.DataFrame,
    selected: str,
    metrics: Sequence[str] | None = None,
    id_column: str = "trial_id",
) -> pd.DataFrame:
    """How an unsupervised pick ranks on the supervised metrics, next to the best-by-each-metric.

    Args:
        trials: trials frame (the candidates the pick was made among).
        selected: the selected model's id (a value of ``id_column``).
        metrics: columns or bare metrics; default the supervised ``final/eval/*`` metrics present.
        id_column: column holding model ids.

    Returns:
        One row per metric: selected value, its rank (1 = best) out of n, percentile (1.0 = best),
        the best trial's id and value, and the gap best − selected (in the better direction).
    """
    if selected not in set(trials[id_column]):
        raise ValueError(f"selected model {selected!r} is not in trials[{id_column!r}]")
    if metrics is None:
        metrics = [m for m in DEFAULT_SUPERVISED if S.FINAL_PREFIX + m in trials.columns]
    rows = []
    for m in metrics:
        col = resolve(trials, m)
        sub = trials[trials[col].notna()]
        check_fid_comparable(sub, [col])
        asc = lower_is_better(col)
        ranks = sub[col].rank(ascending=asc, method="min")
        sel = sub[sub[id_column] == selected]
        best_row = sub.sort_values([col, id_column], ascending=[asc, True], kind="mergesort").iloc[0]
        sel_val = float(sel[col].iloc[0]) if len(sel) else float("nan")
        sel_rank = int(ranks[sel.index[0]]) if len(sel) else None
        n = len(sub)
        rows.append({
            "metric": col,
            "selected_value": sel_val,
            "selected_rank": sel_rank,
            "n": n,
            "selected_percentile": (1 - (sel_rank - 1) / max(1, n - 1)) if sel_rank is not None else float("nan"),
            "best_id": best_row[id_column],
            "best_value": float(best_row[col]),
            "gap": (sel_val - float(best_row[col])) if asc else (float(best_row[col]) - sel_val),
        })
    return pd.DataFrame(rows)


