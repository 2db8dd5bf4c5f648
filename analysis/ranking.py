"""Which trials are best, on the trials table: the trials column of a metric, FID comparability,
leaderboards, the Pareto front of FID (lower is better) against a disentanglement metric (higher
is better), and status counts. Pure functions from DataFrames to DataFrames; the ranking and the
Pareto front themselves are ``sweeps.ranking``'s, which the sweep's own summary uses too.

FIDs are only comparable when computed with the same feature network; every function that
touches an FID column first checks ``fid_feature_net`` and refuses mixed extractors. Columns are
named as in trials.parquet (``final/eval/mig``, ``best/eval/fid``, ``loss.lambda_cont``); a bare
metric name (``eval/mig``) means its ``final/`` column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis import schema as S
from infogan import metric_catalogue as catalogue
from sweeps import ranking, record

DEFAULT_SUPERVISED = catalogue.SUPERVISED  # what an unsupervised pick is checked against


def resolve(df: pd.DataFrame, metric: str) -> str:
    """The trials column for ``metric``: a column name as is, a bare metric as ``final/<metric>``.

    Args:
        df: trials frame.
        metric: ``final/eval/mig``, ``best/eval/mig``, ``eval/mig`` or any other column.

    Returns:
        The column name.

    Raises:
        KeyError: naming the metric columns that do exist.
    """
    if metric in df.columns:
        return metric
    if S.FINAL_PREFIX + metric in df.columns:
        return S.FINAL_PREFIX + metric
    have = ", ".join(S.metric_columns(df)) or "none"
    raise KeyError(f"no column {metric!r} (nor {S.FINAL_PREFIX + metric!r}) in the trials table; metric columns: {have}")


def with_code_dims(trials: pd.DataFrame) -> pd.DataFrame:
    """Add numeric views of the latent layout, so code dimensions can be swept like any knob.

    ``codes.categorical`` is text (``"10,3"``); this adds ``codes.n_categorical`` (number of
    categorical codes), ``codes.categorical_dims`` (their total number of categories) and
    ``codes.n_codes`` (categorical + continuous codes).

    Args:
        trials: trials frame.

    Returns:
        A copy with the three columns (null where the layout is unknown).
    """
    out = trials.copy()
    parts = out["codes.categorical"].map(
        lambda s: None if not isinstance(s, str) else [int(p) for p in s.split(",") if p.strip()]
    )
    out["codes.n_categorical"] = parts.map(lambda p: np.nan if p is None else len(p)).astype("float64")
    out["codes.categorical_dims"] = parts.map(lambda p: np.nan if p is None else sum(p)).astype("float64")
    out["codes.n_codes"] = out["codes.n_categorical"] + pd.to_numeric(out["codes.n_continuous"], errors="coerce")
    return out


def check_fid_comparable(df: pd.DataFrame, columns: Sequence[str]) -> None:
    """Refuse to compare FIDs computed with different feature networks.

    Args:
        df: trials frame (rows about to be compared).
        columns: the columns the comparison uses; only FID columns are checked.

    Raises:
        ValueError: when rows with an FID value carry more than one ``fid_feature_net`` (a
            missing id counts as its own, unknown extractor).
    """
    fid_cols = [c for c in columns if S.is_fid(c)]
    if not fid_cols or df.empty:
        return
    has_fid = df[fid_cols].notna().any(axis=1)
    nets = df.loc[has_fid, "fid_feature_net"] if "fid_feature_net" in df.columns else pd.Series([None] * int(has_fid.sum()))
    found = sorted({"<missing>" if pd.isna(n) else str(n) for n in nets})
    if len(found) > 1:
        raise ValueError(
            "refusing to compare FIDs computed with different feature networks "
            f"({', '.join(found)}): FIDs from different extractors are on different scales. "
            "Filter the trials to one fid_feature_net first, e.g. "
            "trials[trials.fid_feature_net == '...']"
        )


def lower_is_better(column: str) -> bool:
    return S.metric_direction(column) == "min"


def leaderboard(
    trials: pd.DataFrame,
    metric: str,
    *,
    ascending: bool | None = None,
    top: int | None = None,
    statuses: Sequence[str] | None = None,
    columns: Sequence[str] = ("sweep", "trial_id", "status", "seed"),
) -> pd.DataFrame:
    """Trials ranked by one metric.

    Args:
        trials: trials frame.
        metric: column or bare metric name.
        ascending: sort order; default from the metric's direction (FID and losses ascending).
        top: keep only the first ``top`` rows.
        statuses: keep only these statuses (default: all).
        columns: identifying columns to show next to the metric (missing ones are skipped); add
            the sweep's knobs (``analysis.searched.searched_knobs``) to see what each trial ran.

    Returns:
        Frame with ``rank`` (1 = best; ties share the best rank), the columns and the metric.
    """
    col = resolve(trials, metric)
    df = trials if statuses is None else trials[trials["status"].isin(statuses)]
    df = df[df[col].notna()]
    check_fid_comparable(df, [col])
    asc = lower_is_better(col) if ascending is None else ascending
    keep = [c for c in columns if c in df.columns and c != col]
    out = ranking.ranked(df, col, asc, tiebreak=("sweep", "trial_id"))[keep + [col]]
    out.insert(0, "rank", out[col].rank(ascending=asc, method="min").astype(int))
    return out.head(top) if top is not None else out


def pareto_front(
    trials: pd.DataFrame,
    disentanglement: str = catalogue.DEFAULT_METRIC,
    fid: str = catalogue.FID,
) -> pd.DataFrame:
    """The trials no other trial beats on both FID (lower) and a disentanglement metric (higher).

    A trial is dominated if another has FID <= and disentanglement >=, strictly better in one.
    Identical points are all kept. Rows missing either value are ignored.

    Args:
        trials: trials frame.
        disentanglement: column or bare metric (higher is better).
        fid: column or bare metric (lower is better).

    Returns:
        The front's rows, sorted by FID ascending.

    Raises:
        ValueError: if the FIDs come from different feature networks.
    """
    d_col, f_col = resolve(trials, disentanglement), resolve(trials, fid)
    df = trials[trials[d_col].notna() & trials[f_col].notna()]
    check_fid_comparable(df, [f_col])
    front = ranking.non_dominated(df, [f_col, d_col], ["min", "max"])
    return front.sort_values([f_col, d_col, "sweep", "trial_id"], ascending=[True, False, True, True], kind="mergesort").reset_index(drop=True)


def status_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials per sweep and status (every status of the contract gets a column).

    Args:
        trials: trials frame.

    Returns:
        Frame indexed by sweep with one column per status and ``total``.
    """
    t = pd.crosstab(trials["sweep"], trials["status"])
    for s in record.STATUSES:
        if s not in t.columns:
            t[s] = 0
    extra = sorted(c for c in t.columns if c not in record.STATUSES)
    t = t[list(record.STATUSES) + extra]
    t["total"] = t.sum(axis=1)
    return t
