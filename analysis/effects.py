"""What a knob does: a knob's values cut into levels (a grid's values as they are, a search's
floats into log bins), the metric per level with seed spread and a Spearman rank correlation, the
study table of several metrics by one or two knobs, and the correlations of every knob with
every metric."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis import schema as S
from analysis.ranking import check_fid_comparable, resolve
from analysis.searched import searched_knobs
from infogan import metric_catalogue as catalogue


def levels(x: pd.Series, *, bins: int | Sequence[float] | None = None, max_levels: int = 12,
           log: bool | None = None) -> pd.Series:
    """The levels a numeric knob's values fall into, for grouping trials.

    A grid (few distinct values, each tried more than once, or at most 4 values) keeps every value
    as its own level. Values a sampler drew from a range (nearly all distinct) are cut into bins:
    ``bins`` equal-width bins (default: 6, or fewer so that each holds about two trials), on a log
    scale for positive knobs spanning more than a decade (lambda, learning rates). One row per raw
    float would say nothing about the knob.

    Args:
        x: the knob's values.
        bins: number of bins or explicit edges (forces binning).
        max_levels: most distinct values a grid may have.
        log: bin on a log scale; default as above.
    Returns:
        A Series of levels (values or ``pd.Interval``) aligned with ``x``.
    """
    distinct = x.nunique()
    grid = distinct <= 4 or (distinct <= max_levels and len(x) >= 2 * distinct)
    if bins is None and grid:
        return x
    edges = bins if bins is not None else max(2, min(6, len(x) // 2))
    use_log = log if log is not None else bool(len(x) and x.min() > 0 and x.max() / x.min() > 10)
    if use_log and isinstance(edges, int):
        edges = np.logspace(np.log10(x.min()), np.log10(x.max()), edges + 1)
    return pd.cut(x, edges, include_lowest=True)


def study_table(trials: pd.DataFrame, by: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Metrics per level of one or more knobs, with their spread over seeds: the table of a study
    such as "MIG, FactorVAE and FID per lambda, for InfoGAN and InfoGAN-CR".

    Args:
        trials: trials frame.
        by: knobs to group by (each cut into ``levels``), e.g. ``["loss.lambda_cr", "loss.lambda_cont"]``.
        metrics: columns or bare metrics.
    Returns:
        One row per combination of levels: the levels, ``n`` (trials), ``n_seeds``, and per metric
        ``<metric> mean`` and ``<metric> std`` (over the trials of that cell).
    """
    cols = [resolve(trials, m) for m in metrics]
    missing = [b for b in by if b not in trials.columns]
    if missing:
        raise KeyError(f"no column {', '.join(missing)} in the trials table")
    fid_cols = [c for c in cols if S.is_fid(c)]
    if fid_cols:
        check_fid_comparable(trials, fid_cols)
    keyed = trials.assign(**{b: levels(pd.to_numeric(trials[b], errors="raise").astype(float)) for b in by})
    rows = []
    for key, g in keyed.groupby(list(by), observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, object] = dict(zip(by, key, strict=True))
        row["n"] = len(g)
        row["n_seeds"] = int(g["seed"].nunique()) if "seed" in g.columns else len(g)
        for c in cols:
            v = g[c].astype(float).dropna()
            row[f"{S.strip_prefix(c)} mean"] = v.mean() if len(v) else np.nan
            row[f"{S.strip_prefix(c)} std"] = v.std(ddof=1) if len(v) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Effect:
    """Binned summary of a metric against a knob, and their rank correlation."""

    param: str
    metric: str
    table: pd.DataFrame
    spearman_rho: float
    spearman_p: float
    n: int


def effect(
    trials: pd.DataFrame,
    param: str,
    metric: str = catalogue.DEFAULT_METRIC,
    *,
    bins: int | Sequence[float] | None = None,
    max_levels: int = 12,
    log: bool | None = None,
) -> Effect:
    """How a metric varies with one knob: per value (or bin) median, IQR and seed count.

    Values are grouped into ``levels``: a grid's values as they are, a search's values cut into
    bins (on a log scale for positive knobs spanning more than a decade: λ, learning rates).

    Args:
        trials: trials frame.
        param: numeric column, e.g. ``loss.lambda_cont``, ``codes.n_continuous``, ``optim.lr_g``.
        metric: column or bare metric.
        bins: number of bins or explicit edges; default: see ``levels``.
        max_levels: most distinct values kept as levels without binning.
        log: bin on a log scale; default when all values > 0 and max/min > 10.

    Returns:
        ``Effect`` whose table has one row per level: ``level`` (value or interval), ``n``
        (trials), ``n_seeds``, ``median``, ``q25``, ``q75``, ``iqr``, ``min``, ``max``.
    """
    col = resolve(trials, metric)
    if param not in trials.columns:
        raise KeyError(f"no column {param!r} in the trials table")
    df = trials[trials[param].notna() & trials[col].notna()]
    check_fid_comparable(df, [col])
    x = pd.to_numeric(df[param], errors="raise").astype(float)
    y = df[col].astype(float)
    level = levels(x, bins=bins, max_levels=max_levels, log=log)
    seeds = df["seed"] if "seed" in df.columns else pd.Series(np.nan, index=df.index)
    g = pd.DataFrame({"level": level, "y": y, "seed": seeds}).groupby("level", observed=True, sort=True)
    table = pd.DataFrame(
        {
            "n": g["y"].size(),
            "n_seeds": g["seed"].nunique(),
            "median": g["y"].median(),
            "q25": g["y"].quantile(0.25),
            "q75": g["y"].quantile(0.75),
            "min": g["y"].min(),
            "max": g["y"].max(),
        }
    )
    table.insert(5, "iqr", table["q75"] - table["q25"])
    table = table.reset_index()
    if len(x) >= 3 and x.nunique() > 1 and y.nunique() > 1:
        res = stats.spearmanr(x, y)
        rho, p = float(res.statistic), float(res.pvalue)
    else:
        rho = p = float("nan")
    return Effect(param, col, table, rho, p, len(x))


def effects(
    trials: pd.DataFrame,
    params: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Spearman rank correlation of every (knob, metric) pair that varies in the sweep.

    Args:
        trials: trials frame.
        params: knobs to try; constant, missing or non-numeric ones are skipped. Default: the model and budget
            keys that vary between the trials (``analysis.searched.searched_knobs``).
        metrics: columns or bare metrics; default every quality-metric ``final/`` column
            (``schema.is_quality``: no eval time, no probe training accuracy).

    Returns:
        Long frame: param, metric, n, spearman_rho, spearman_p; sorted by |rho| descending.
    """
    metrics = list(metrics) if metrics is not None else S.quality_columns(trials)
    params = list(params) if params is not None else searched_knobs(trials, None)
    rows = []
    for p in params:
        if p not in trials.columns or trials[p].nunique(dropna=True) < 2 or not pd.api.types.is_numeric_dtype(trials[p]):
            continue  # constant, missing, or not a quantity (a choice of text has no rank order)
        for m in metrics:
            col = resolve(trials, m)
            sub = trials[trials[p].notna() & trials[col].notna()]
            if S.is_fid(col):
                check_fid_comparable(sub, [col])
            if len(sub) < 3 or sub[col].nunique() < 2 or sub[p].nunique() < 2:
                continue
            res = stats.spearmanr(sub[p].astype(float), sub[col].astype(float))
            rows.append({"param": p, "metric": col, "n": len(sub), "spearman_rho": float(res.statistic), "spearman_p": float(res.pvalue)})
    out = pd.DataFrame(rows, columns=["param", "metric", "n", "spearman_rho", "spearman_p"])
    return out.reindex(out["spearman_rho"].abs().sort_values(ascending=False, kind="mergesort").index).reset_index(drop=True)


