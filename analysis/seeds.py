"""How much seeds matter: a metric's spread over the seeds of each config (configs identified
by ``config_id``), and the share of its variance that lies within configs (Locatello et al. 2019)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analysis import schema as S
from analysis.ranking import check_fid_comparable, resolve


def seed_robustness(trials: pd.DataFrame, metrics: Sequence[str] | None = None, min_seeds: int = 2,
                    knobs: Sequence[str] = ()) -> pd.DataFrame:
    """Spread of each metric across seeds, for configs run with several seeds.

    Configs are identified by ``config_id`` (the config minus seed and machine-only keys).

    Args:
        trials: trials frame.
        metrics: columns or bare metrics; default every quality-metric ``final/`` column.
        min_seeds: least number of distinct seeds for a config to be reported.
        knobs: config columns shown with each row, for orientation.

    Returns:
        Long frame, one row per (config_id, metric): n_seeds, mean, std, median, iqr, min, max,
        range; plus the ``knobs`` present (e.g. the searched ones) to say which config it is.
    """
    metrics = list(metrics) if metrics is not None else S.quality_columns(trials)
    cols = [resolve(trials, m) for m in metrics]
    rows = []
    for cid, grp in trials.groupby("config_id", sort=True):
        for col in cols:
            sub = grp[grp[col].notna()]
            if sub["seed"].nunique() < min_seeds:
                continue
            check_fid_comparable(sub, [col])
            v = sub[col].astype(float)
            row = {"config_id": cid, "metric": col, "n_seeds": int(sub["seed"].nunique()), "mean": v.mean(), "std": v.std(ddof=1),
                   "median": v.median(), "iqr": v.quantile(0.75) - v.quantile(0.25), "min": v.min(), "max": v.max(), "range": v.max() - v.min()}
            row.update({k: grp[k].iloc[0] for k in knobs if k in grp.columns})
            rows.append(row)
    return pd.DataFrame(rows)


def seed_variance_share(trials: pd.DataFrame, metric: str) -> float:
    """Share of a metric's spread that lies within configs (seed luck) rather than between them.

    Args:
        trials: trials frame.
        metric: column or bare metric.

    Returns:
        Within-config sum of squares / total sum of squares (1 − η² of a one-way ANOVA by
        ``config_id``), over configs with ≥ 2 trials; in [0, 1], NaN if undefined. Near 1: seeds
        move the metric as much as the knobs do (Locatello et al. 2019).
    """
    col = resolve(trials, metric)
    df = trials[trials[col].notna()]
    sizes = df.groupby("config_id")[col].transform("size")
    df = df[sizes >= 2]
    check_fid_comparable(df, [col])
    if len(df) < 3:
        return float("nan")
    v = df[col].astype(float)
    total = float(((v - v.mean()) ** 2).sum())
    within = float(((v - v.groupby(df["config_id"]).transform("mean")) ** 2).sum())
    return within / total if total > 0 else float("nan")


