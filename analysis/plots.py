"""Figures from the Parquet tables only (never from MLflow or checkpoints).

Owns: a knob-vs-metric scatter with per-level median and IQR (seed spread), the Pareto front of
FID against a disentanglement metric, a metric correlation heatmap and learning curves from
curves.parquet, plus an atomic ``save`` that writes PNG or SVG by suffix. Each function returns a
matplotlib Figure drawn on the Agg backend through the object API, so it works headless and never
touches pyplot's global state.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis import compare
from analysis import schema as S
from infogan import metric_catalogue as catalogue
from infogan.atomic import atomic_path


def _figure(width: float = 6.0, height: float = 4.0) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _label(column: str) -> str:
    return S.strip_prefix(column).removeprefix("eval/").replace("_", " ") + (" (best)" if column.startswith(S.BEST_PREFIX) else "")


def save(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Write a figure atomically; the format follows the suffix (.png, .svg, .pdf).

    Args:
        fig: the figure.
        path: destination.
        dpi: raster resolution.

    Returns:
        The destination path.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        # SVG embeds a date and random element ids unless told otherwise; without them the same
        # tables give the same file.
        metadata = {"Date": None} if path.suffix.lower() == ".svg" else None
        with rc_context({"svg.hashsalt": "infogan-sweeps"}):
            fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".").lower() or "png", metadata=metadata)
    return path


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a figure, e.g. for ``IPython.display.Image`` in notebooks.

    Args:
        fig: the figure.
        dpi: resolution.

    Returns:
        The encoded PNG.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def param_scatter(
    trials: pd.DataFrame,
    param: str,
    metric: str = catalogue.DEFAULT_METRIC,
    *,
    logx: bool | None = None,
) -> Figure:
    """A knob against a metric: one dot per trial (colour = seed), median and IQR per level.

    Args:
        trials: trials frame.
        param: numeric config column.
        metric: column or bare metric.
        logx: log x axis; default when the knob is positive and spans more than a decade.

    Returns:
        The figure.
    """
    eff = compare.effect(trials, param, metric)
    col = eff.metric
    df = trials[trials[param].notna() & trials[col].notna()]
    x = df[param].astype(float)
    fig = _figure()
    ax = fig.add_subplot()
    if logx is None:
        logx = bool(len(x) and x.min() > 0 and x.max() / x.min() > 10)
    # Small multiplicative jitter keeps seeds at one level apart without misplacing the level.
    rng = np.random.default_rng(0)
    jitter = (1 + rng.uniform(-0.04, 0.04, len(x))) if logx else (x.abs().max() or 1) * rng.uniform(-0.01, 0.01, len(x))
    xj = x * jitter if logx else x + jitter
    seeds = df["seed"] if "seed" in df.columns else pd.Series(0, index=df.index)
    sc = ax.scatter(xj, df[col], c=seeds.astype(float), cmap="viridis", s=18, alpha=0.75, label="trial")
    tab = eff.table
    if isinstance(tab["level"].dtype, pd.CategoricalDtype) or tab["level"].map(lambda v: isinstance(v, pd.Interval)).any():
        centres = tab["level"].map(lambda iv: float(np.sqrt(iv.left * iv.right)) if logx and iv.left > 0 else float(iv.mid))
    else:
        centres = tab["level"].astype(float)
    ax.errorbar(centres, tab["median"], yerr=[tab["median"] - tab["q25"], tab["q75"] - tab["median"]],
                fmt="o-", color="black", capsize=4, lw=1.5, ms=5, label="median, IQR")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(param)
    ax.set_ylabel(_label(col))
    rho = "n/a" if np.isnan(eff.spearman_rho) else f"{eff.spearman_rho:+.2f}"
    ax.set_title(f"{_label(col)} vs {param}  (Spearman ρ = {rho}, n = {eff.n})", fontsize=10)
    if seeds.nunique() > 1:
        fig.colorbar(sc, ax=ax, label="seed")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def pareto(trials: pd.DataFrame, disentanglement: str = catalogue.DEFAULT_METRIC, fid: str = catalogue.FID,
           annotate: bool = True) -> Figure:
    """All trials in (FID, disentanglement), the Pareto front drawn as a staircase.

    Args:
        trials: trials frame.
        disentanglement: column or bare metric (higher is better).
        fid: column or bare metric (lower is better).
        annotate: label the front's trials with their ids.

    Returns:
        The figure.

    Raises:
        ValueError: if the FIDs come from different feature networks.
    """
    front = compare.pareto_front(trials, disentanglement, fid)
    d_col, f_col = compare.resolve(trials, disentanglement), compare.resolve(trials, fid)
    df = trials[trials[d_col].notna() & trials[f_col].notna()]
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(df[f_col], df[d_col], s=16, color="0.6", label="trial")
    ax.step(front[f_col], front[d_col], where="post", color="tab:red", lw=1.5)
    ax.scatter(front[f_col], front[d_col], s=36, color="tab:red", zorder=3, label="Pareto front")
    if annotate:
        for _, r in front.iterrows():
            ax.annotate(str(r["trial_id"]), (r[f_col], r[d_col]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    net = df["fid_feature_net"].dropna().unique() if "fid_feature_net" in df.columns else []
    ax.set_xlabel(f"{_label(f_col)} ↓" + (f"  [{net[0]}]" if len(net) == 1 else ""))
    ax.set_ylabel(f"{_label(d_col)} ↑")
    ax.set_title(f"Disentanglement vs FID: {len(front)} of {len(df)} trials on the front", fontsize=10)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def correlation_heatmap(trials: pd.DataFrame, metrics: Sequence[str] | None = None, method: str = "spearman") -> Figure:
    """Rank correlation between metrics across trials, annotated.

    Args:
        trials: trials frame.
        metrics: columns or bare metrics; default every quality-metric ``final/`` column.
        method: ``"spearman"`` or ``"pearson"`` (pandas ``DataFrame.corr``).

    Returns:
        The figure.
    """
    cols = [compare.resolve(trials, m) for m in metrics] if metrics is not None else S.quality_columns(trials)
    compare.check_fid_comparable(trials, cols)
    corr = trials[cols].astype(float).corr(method=method)
    k = len(cols)
    fig = _figure(1.0 + 0.7 * k + 1.5, 1.0 + 0.6 * k)
    ax = fig.add_subplot()
    im = ax.imshow(corr.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
    labels = [_label(c) for c in cols]
    ax.set_xticks(range(k), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), labels, fontsize=8)
    for i in range(k):
        for j in range(k):
            v = corr.iat[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if abs(v) > 0.6 else "black")
    fig.colorbar(im, ax=ax, label=f"{method} correlation")
    ax.set_title(f"Metric correlation across {len(trials)} trials", fontsize=10)
    return fig


def learning_curves(
    curves: pd.DataFrame,
    metrics: Sequence[str] = (catalogue.DEFAULT_METRIC, catalogue.FID, "train/loss_d", "train/loss_g"),
    *,
    trials: pd.DataFrame | None = None,
    color_by: str | None = None,
    max_trials: int = 50,
) -> Figure:
    """One panel per metric, one line per trial (coloured by a knob when ``trials`` is given).

    Args:
        curves: curves frame (long).
        metrics: metric names as logged; missing ones are skipped.
        trials: trials frame, for colouring and FID checks.
        color_by: trials column to colour lines by (e.g. the searched knob); None: one colour.
        max_trials: draw at most this many trials (the first by id) so big sweeps stay readable.

    Returns:
        The figure.
    """
    present = [m for m in metrics if m in set(curves["metric"].unique())]
    if not present:
        raise ValueError(f"none of {list(metrics)} is in the curves table; it has {sorted(curves['metric'].unique())}")
    for m in (m for m in present if S.is_fid(m)):  # the curves carry each FID point's network
        nets = curves.loc[(curves["metric"] == m) & curves["value"].notna(), "fid_feature_net"].dropna().unique() \
            if "fid_feature_net" in curves.columns else []
        if len(nets) > 1:
            raise ValueError(f"{m} was measured with {len(nets)} feature networks ({', '.join(sorted(nets))}): their "
                             "FIDs are not comparable; plot one sweep (or one feature net) at a time")
    if trials is not None and any(S.is_fid(m) for m in present):
        compare.check_fid_comparable(trials, [S.FINAL_PREFIX + m for m in present if S.FINAL_PREFIX + m in trials.columns])
    keys = curves[["sweep", "trial_id"]].drop_duplicates().sort_values(["sweep", "trial_id"]).head(max_trials)
    sub = curves.merge(keys, on=["sweep", "trial_id"])
    colour: dict[tuple[str, str], float] = {}
    if trials is not None and color_by is not None and color_by in trials.columns:
        colour = {(s, t): v for s, t, v in trials[["sweep", "trial_id", color_by]].itertuples(index=False)}
    vals = np.array([v for v in colour.values() if v is not None and np.isfinite(v)], dtype=float)
    use_log = bool(len(vals) and vals.min() > 0 and vals.max() / vals.min() > 10)
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm, Normalize

    norm = (LogNorm if use_log else Normalize)(vals.min(), vals.max()) if len(vals) and vals.max() > vals.min() else None
    cmap = colormaps["viridis"]
    ncol = min(2, len(present))
    nrow = int(np.ceil(len(present) / ncol))
    fig = _figure(5.0 * ncol + (1.2 if norm else 0), 3.2 * nrow)
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for ax, m in zip(axes.ravel(), present, strict=False):
        for (s, t), g in sub[sub["metric"] == m].groupby(["sweep", "trial_id"], sort=True):
            v = colour.get((s, t))
            c = cmap(norm(v)) if norm is not None and v is not None and np.isfinite(v) else "tab:blue"
            ax.plot(g["step"], g["value"], color=c, lw=1, alpha=0.7)
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(present):]:
        ax.set_visible(False)
    if norm is not None:
        from matplotlib.cm import ScalarMappable

        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, label=color_by)
    return fig


def study(trials: pd.DataFrame, param: str, metrics: Sequence[str], hue: str | None = None) -> Figure:
    """One panel per metric: its mean over seeds (± std as error bars) against a knob's levels,
    one line per level of ``hue`` (e.g. lambda_cont for InfoGAN and InfoGAN-CR), seeds as dots.

    Args:
        trials: trials frame.
        param: the knob on the x axis (log scale when it spans more than a decade).
        metrics: columns or bare metrics.
        hue: a second knob whose levels get their own line, or None.
    Returns:
        The figure.
    """
    cols = [compare.resolve(trials, m) for m in metrics]
    by = [param] + ([hue] if hue else [])
    table = compare.study_table(trials, by, metrics)
    x_all = pd.to_numeric(trials[param], errors="coerce").dropna()
    use_log = bool(len(x_all) and x_all.min() > 0 and x_all.max() / x_all.min() > 10)
    ncol = min(3, len(cols))
    nrow = int(np.ceil(len(cols) / ncol))
    fig = _figure(4.2 * ncol, 3.2 * nrow)
    axes = fig.subplots(nrow, ncol, squeeze=False)
    hues = list(dict.fromkeys(table[hue])) if hue else [None]
    for ax, col in zip(axes.ravel(), cols, strict=False):
        name = S.strip_prefix(col)
        for i, h in enumerate(hues):
            sub = table if h is None else table[table[hue] == h]
            xs = [v.mid if isinstance(v, pd.Interval) else float(v) for v in sub[param]]
            ax.errorbar(xs, sub[f"{name} mean"], yerr=sub[f"{name} std"].fillna(0.0), color=f"C{i}", marker="o",
                        capsize=3, lw=1.4, label=f"{hue} = {h}" if hue else "mean ± std over seeds")
            raw = trials if h is None else trials[compare.levels(pd.to_numeric(trials[hue], errors="coerce")) == h]
            ax.scatter(pd.to_numeric(raw[param], errors="coerce"), raw[col], color=f"C{i}", s=8, alpha=0.4)
        if use_log:
            ax.set_xscale("log")
        ax.set_xlabel(param)
        ax.set_title(_label(col), fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(cols):]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=7)
    return fig


def answer(rows: pd.DataFrame, metrics: Sequence[str], order: Sequence[str]) -> Figure:
    """The confirmation's answer as a picture: one panel per metric, each confirmed config's
    seeds as dots and its mean with the 95% t interval as a bar (``sweeps.uncertainty``).

    Args:
        rows: one row per finished confirmation trial: ``candidate`` and the metrics' columns.
        metrics: the metric columns to draw (``eval/mig``, ...).
        order: the candidates left to right (the recipe first).
    """
    from sweeps.uncertainty import t_interval

    fig = _figure(3.2 * len(metrics), 3.2)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        for x, name in enumerate(order):
            values = pd.to_numeric(rows.loc[rows["candidate"] == name, metric], errors="coerce").dropna().to_numpy()
            ax.scatter(np.full(len(values), x, dtype=float) + np.linspace(-0.08, 0.08, len(values)), values, s=14,
                       color="0.45", zorder=3)
            iv = t_interval(values)
            if iv.defined:
                ax.errorbar([x + 0.22], [iv.mean], yerr=[[iv.mean - iv.low], [iv.high - iv.mean]], fmt="o",
                            color="C0" if name != "recipe" else "C3", capsize=4, zorder=4)
        ax.set_xticks(range(len(order)), list(order))
        ax.set_title(f"{catalogue.label(metric)} ({'higher' if catalogue.direction(metric) == 'max' else 'lower'} is better)",
                     fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("confirmed configs: seeds (dots), mean and 95% t interval (bars)", fontsize=9)
    return fig


def rung_correlations(correlations: pd.DataFrame, metric: str) -> Figure:
    """Spearman's rho between each report step's ``metric`` and the final one, with its 95%
    interval (``sweeps.rungs``): where an early cut ranks trials better than chance."""
    fig = _figure(5.5, 3.4)
    ax = fig.subplots()
    c = correlations.dropna(subset=["rho"])
    ax.axhline(0, color="0.6", lw=1)
    if not c.empty:
        low = (c["rho"] - c["low"]).fillna(0).clip(lower=0)
        high = (c["high"] - c["rho"]).fillna(0).clip(lower=0)
        ax.errorbar(c["step"], c["rho"], yerr=[low, high], fmt="o-", capsize=4)
        for step, rho, n in zip(c["step"], c["rho"], c["n"], strict=True):
            ax.annotate(f"n={int(n)}", (step, rho), textcoords="offset points", xytext=(4, -12), fontsize=7)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("report step")
    ax.set_ylabel(f"Spearman rho with final {catalogue.label(metric)}")
    ax.grid(alpha=0.3)
    return fig
