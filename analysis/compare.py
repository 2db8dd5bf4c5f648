"""Comparisons on the trials table: pure functions from DataFrames to DataFrames.

Owns: leaderboards, the Pareto front of FID (lower is better) against a disentanglement metric
(higher is better), the effect of one knob (λ, code dimensions, learning rates) on a metric with
seed spread and a Spearman rank correlation, seed robustness, unsupervised model selection by
ModelCentrality (Lin et al., ICML 2020) and how the selected model ranks on supervised metrics.

FIDs are only comparable when computed with the same feature network; every function that
touches an FID column first checks ``fid_feature_net`` and refuses mixed extractors.
Columns are named as in trials.parquet: ``final/eval/mig``, ``best/eval/fid``, ``loss.lambda_cont``.
A bare metric name (``eval/mig``) means its ``final/`` column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis import schema as S

NUM_BINS = 20  # disentanglement_lib's histogram discretisation for MIG
DEFAULT_SUPERVISED = (
    "eval/mig",
    "eval/factor_vae",
    "eval/beta_vae",
    "eval/dci_disentanglement",
    "eval/sap",
    "eval/modularity",
    "eval/cat_accuracy",
)


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


def _ascending(column: str) -> bool:
    return S.metric_direction(column) == "min"


# --------------------------------------------------------------------------------------------
# Leaderboard and Pareto front.


def leaderboard(
    trials: pd.DataFrame,
    metric: str,
    *,
    ascending: bool | None = None,
    top: int | None = None,
    statuses: Sequence[str] | None = None,
    columns: Sequence[str] = ("sweep", "trial_id", "status", "seed", "loss.lambda_cont"),
) -> pd.DataFrame:
    """Trials ranked by one metric.

    Args:
        trials: trials frame.
        metric: column or bare metric name.
        ascending: sort order; default from the metric's direction (FID and losses ascending).
        top: keep only the first ``top`` rows.
        statuses: keep only these statuses (default: all).
        columns: identifying columns to show next to the metric (missing ones are skipped).

    Returns:
        Frame with ``rank`` (1 = best; ties share the best rank), the columns and the metric.
    """
    col = resolve(trials, metric)
    df = trials if statuses is None else trials[trials["status"].isin(statuses)]
    df = df[df[col].notna()]
    check_fid_comparable(df, [col])
    asc = _ascending(col) if ascending is None else ascending
    keep = [c for c in columns if c in df.columns and c != col]
    out = df.sort_values([col, "sweep", "trial_id"], ascending=[asc, True, True], kind="mergesort")[keep + [col]]
    out.insert(0, "rank", out[col].rank(ascending=asc, method="min").astype(int))
    out = out.reset_index(drop=True)
    return out.head(top) if top is not None else out


def pareto_front(
    trials: pd.DataFrame,
    disentanglement: str = "eval/mig",
    fid: str = "eval/fid",
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
    f = df[f_col].to_numpy(dtype=float)
    d = df[d_col].to_numpy(dtype=float)
    # (n, n) comparisons are fine for sweeps of thousands of trials.
    no_worse = (f[None, :] <= f[:, None]) & (d[None, :] >= d[:, None])  # [i, j]: j no worse than i
    better = (f[None, :] < f[:, None]) | (d[None, :] > d[:, None])
    dominated = (no_worse & better).any(axis=1)
    front = df[~dominated]
    return front.sort_values([f_col, d_col, "sweep", "trial_id"], ascending=[True, False, True, True], kind="mergesort").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Effect of a knob.


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
    param: str = "loss.lambda_cont",
    metric: str = "eval/mig",
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
    params: Sequence[str] = ("loss.lambda_cont", "loss.lambda_cat", "codes.n_continuous", "optim.lr_g", "optim.lr_d"),
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Spearman rank correlation of every (knob, metric) pair that varies in the sweep.

    Args:
        trials: trials frame.
        params: knobs to try; constant or missing ones are skipped.
        metrics: columns or bare metrics; default every quality-metric ``final/`` column
            (``schema.is_quality``: no eval time, no probe training accuracy).

    Returns:
        Long frame: param, metric, n, spearman_rho, spearman_p; sorted by |rho| descending.
    """
    metrics = list(metrics) if metrics is not None else S.quality_columns(trials)
    rows = []
    for p in params:
        if p not in trials.columns or trials[p].nunique(dropna=True) < 2:
            continue
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


# --------------------------------------------------------------------------------------------
# Seed robustness.


def seed_robustness(trials: pd.DataFrame, metrics: Sequence[str] | None = None, min_seeds: int = 2) -> pd.DataFrame:
    """Spread of each metric across seeds, for configs run with several seeds.

    Configs are identified by ``config_id`` (the config minus seed and machine-only keys).

    Args:
        trials: trials frame.
        metrics: columns or bare metrics; default every quality-metric ``final/`` column.
        min_seeds: least number of distinct seeds for a config to be reported.

    Returns:
        Long frame, one row per (config_id, metric): n_seeds, mean, std, median, iqr, min, max,
        range; plus ``loss.lambda_cont`` for orientation when present.
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
            if "loss.lambda_cont" in grp.columns:
                row["loss.lambda_cont"] = grp["loss.lambda_cont"].iloc[0]
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


# --------------------------------------------------------------------------------------------
# ModelCentrality.

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
        asc = _ascending(col)
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


def status_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials per sweep and status (every status of the contract gets a column).

    Args:
        trials: trials frame.

    Returns:
        Frame indexed by sweep with one column per status and ``total``.
    """
    t = pd.crosstab(trials["sweep"], trials["status"])
    for s in S.STATUSES:
        if s not in t.columns:
            t[s] = 0
    extra = sorted(c for c in t.columns if c not in S.STATUSES)
    t = t[list(S.STATUSES) + extra]
    t["total"] = t.sum(axis=1)
    return t
