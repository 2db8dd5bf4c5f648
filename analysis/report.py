"""A short Markdown report for one sweep, from its Parquet tables.

Owns ``write_report``: status counts, a leaderboard, the Pareto front of FID against a
disentanglement metric, the effect of a knob with seed spread, seed robustness, and links to the
figures it draws next to the report, and — when ``analysis codes`` wrote the sweep's
``codes.npz`` — the ModelCentrality pick next to the best-by-supervised-metric trials. A section whose inputs are missing (no FID logged, a single
seed) says so instead of failing; a refusal such as mixed FID feature networks is reported in
the section's place.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import compare, plots, searched
from analysis import schema as S
from infogan.atomic import atomic_path
from sweeps.ranking import markdown_table


def level_text(v: object) -> str:
    """A knob's level as a table shows it: numbers to 4 significant digits (``0.03911``, not
    ``0.03910605384005753``), a bin as ``(0.01, 0.1]``, anything else as is."""
    if isinstance(v, pd.Interval):
        closed = ("[" if v.closed_left else "(", "]" if v.closed_right else ")")
        return f"{closed[0]}{v.left:.4g}, {v.right:.4g}{closed[1]}"
    if isinstance(v, (float, np.floating)):
        return format(float(v), ".4g")
    return str(v)


def spearman_text(rho: float, p: float, n: int) -> str:
    """The rank correlation's line, or why there is none (``nan`` for fewer than three trials, or
    when the levels or the values do not vary)."""
    if not np.isfinite(rho):
        return f"Spearman ρ: not defined for these {n} trials (it needs three or more, with differing levels and values)."
    return f"Spearman ρ = {rho:.3f} (p = {p:.3g}, n = {n})."


def _section(lines: list[str], title: str, build: Callable[[], list[str]]) -> None:
    lines += ["", f"## {title}", ""]
    try:
        lines += build()
    except (KeyError, ValueError) as exc:
        lines.append(f"_Skipped: {exc}_")


def write_report(
    tables: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    sweep: str | None = None,
    metric: str = "eval/mig",
    fid: str = "eval/fid",
    param: str | None = None,
    top: int = 10,
    fmt: str = "png",
    statuses: tuple[str, ...] | None = ("finished",),
    by: tuple[str, ...] = (),
    study_metrics: tuple[str, ...] = ("eval/mig", "eval/factor_vae", "eval/beta_vae", "eval/fid"),
) -> Path:
    """Write ``report.md`` and its figures for one sweep.

    Args:
        tables: folder of collected tables (or a sweep's folder).
        out_dir: where ``report.md`` and ``figures/`` go.
        sweep: sweep to report; required when the tables hold several.
        metric: disentanglement metric for the leaderboard, Pareto front and knob effect.
        fid: FID metric.
        param: knob whose effect is shown; None: the first numeric knob the sweep searched
            (``analysis.searched.default_knob``).
        top: leaderboard length.
        fmt: figure format, ``png`` or ``svg``.
        statuses: trial statuses that enter the comparisons (default: finished only, since a
            diverged or failed trial's last metrics say nothing about its config); None for all.
        by: second knobs for the study table (``param`` x each of them, e.g. ``loss.lambda_cr``
            to set InfoGAN against InfoGAN-CR); the table then holds every level combination.
        study_metrics: metrics of the study table and figure (those logged).

    Returns:
        Path of report.md.
    """
    trials = S.read_trials(tables)
    curves = S.read_curves(tables)
    sweeps = sorted(trials["sweep"].unique())
    if sweep is None:
        if len(sweeps) != 1:
            raise ValueError(f"the tables hold several sweeps ({', '.join(sweeps)}); pass --sweep")
        sweep = sweeps[0]
    if sweep not in sweeps:
        raise ValueError(f"no sweep {sweep!r} in the tables; found: {', '.join(sweeps)}")
    trials = trials[trials["sweep"] == sweep].reset_index(drop=True)
    curves = curves[curves["sweep"] == sweep]
    param = param or searched.default_knob(trials, searched.read_space(tables, sweep))
    out = Path(out_dir)
    figs = out / "figures"
    lines = [f"# Sweep `{sweep}`", ""]
    commit = trials["git_commit"].dropna().unique()
    nets = trials["fid_feature_net"].dropna().unique()
    lines.append(f"{len(trials)} trials; git commit {', '.join(f'`{c}`' for c in commit) or 'unknown'}; "
                 f"FID feature network {', '.join(f'`{n}`' for n in nets) or 'none recorded'}.")
    lines += ["", markdown_table(compare.status_counts(trials), index=True)]
    if statuses is not None:
        trials = trials[trials["status"].isin(statuses)].reset_index(drop=True)
        curves = curves[curves["trial_id"].isin(set(trials["trial_id"]))]
        lines += ["", f"Comparisons below use the {len(trials)} trials with status {', '.join(statuses)}."]

    def fid_comparable() -> bool:
        col = S.FINAL_PREFIX + fid
        if col not in trials.columns:
            return False
        try:
            compare.check_fid_comparable(trials, [col])
            return True
        except ValueError:
            return False

    def board() -> list[str]:
        lb = compare.leaderboard(trials, metric, top=top)
        note = []
        if fid_comparable():
            extra = [compare.resolve(trials, fid)]
            lb = lb.merge(trials[["sweep", "trial_id", *extra]], on=["sweep", "trial_id"], how="left")
        elif S.FINAL_PREFIX + fid in trials.columns:
            note = ["", f"_{fid} is left out: its trials used different FID feature networks._"]
        return [markdown_table(lb.drop(columns="sweep")), *note]

    def front() -> list[str]:
        pf = compare.pareto_front(trials, metric, fid)
        cols = ["trial_id", "status", "seed", param, compare.resolve(trials, fid), compare.resolve(trials, metric)]
        path = plots.save(plots.pareto(trials, metric, fid), figs / f"pareto.{fmt}")
        return [markdown_table(pf[[c for c in cols if c in pf.columns]]), "", f"![Pareto front]({path.relative_to(out).as_posix()})"]

    def knob() -> list[str]:
        eff = compare.effect(trials, param, metric)
        tab = eff.table.assign(level=eff.table["level"].map(level_text).astype(str))
        path = plots.save(plots.param_scatter(trials, param, metric), figs / f"effect_{param}.{fmt}")
        return [spearman_text(eff.spearman_rho, eff.spearman_p, eff.n), "",
                markdown_table(tab), "", f"![{param} effect]({path.relative_to(out).as_posix()})"]

    def study() -> list[str]:
        present = [m for m in study_metrics if (S.FINAL_PREFIX + m in trials.columns or m in trials.columns)
                   and (not S.is_fid(m) or fid_comparable())]
        if not present:
            raise KeyError(f"none of {', '.join(study_metrics)} was logged")
        table = compare.study_table(trials, [param, *by], present)
        for col in [param, *by]:
            table[col] = table[col].map(level_text).astype(str)
        path = plots.save(plots.study(trials, param, present, hue=by[0] if by else None), figs / f"study.{fmt}")
        return [f"Mean and standard deviation over the seeds of each cell ({param} cut into levels"
                + (f", by {', '.join(by)}" if by else "") + ").", "", markdown_table(table), "",
                f"![study]({path.relative_to(out).as_posix()})"]

    def importance() -> list[str]:
        from analysis.importance import param_importances
        from infogan.config import KEYS, key_role

        knobs = [k for k in KEYS if k in trials.columns and key_role(k) in ("model", "budget")]
        table = param_importances(trials, knobs, metric)
        return [f"Optuna's fANOVA importance of each knob that varied, for {compare.resolve(trials, metric)} "
                f"(from the {len(trials)} trials in this report).", "", markdown_table(table)]

    def seeds() -> list[str]:
        col = compare.resolve(trials, metric)
        sr = compare.seed_robustness(trials, [col], knobs=(param, *by))
        if sr.empty:
            return ["_No config was run with more than one seed._"]
        share = compare.seed_variance_share(trials, col)
        return [f"Share of {col}'s variance within configs (seed luck): {share:.2f}.", "", markdown_table(sr)]

    def centrality() -> list[str]:
        codes_file = S.sweep_dir(tables, sweep) / S.CODES_FILE
        if not codes_file.is_file():
            return [f"_No {S.CODES_FILE} for this sweep: `python -m analysis codes --tables {tables} --sweep {sweep}` "
                    "computes every finished trial's codes on the same real images._"]
        with np.load(codes_file) as npz:
            codes = {k: npz[k] for k in npz.files if k in set(trials["trial_id"])}
        cent = compare.model_centrality(codes)
        chosen = compare.selection_report(trials[trials["trial_id"].isin(codes)], cent.selected)
        return [f"Most central of the {len(codes)} models with codes (chosen without labels): `{cent.selected}`.", "",
                markdown_table(cent.scores), "", "How the pick ranks on the supervised metrics:", "",
                markdown_table(chosen)]

    def figures() -> list[str]:
        out_lines = []
        cols = S.quality_columns(trials)
        try:
            if len(cols) >= 2:
                p = plots.save(plots.correlation_heatmap(trials, cols), figs / f"metric_correlation.{fmt}")
                out_lines.append(f"![metric correlation]({p.relative_to(out).as_posix()})")
        except ValueError:
            # Mixed FID networks: correlate the other metrics only.
            non_fid = S.quality_columns(trials, fid=False)
            if len(non_fid) >= 2:
                p = plots.save(plots.correlation_heatmap(trials, non_fid), figs / f"metric_correlation.{fmt}")
                out_lines.append(f"![metric correlation]({p.relative_to(out).as_posix()})")
        wanted = (metric, fid, "train/loss_d", "train/loss_g") if fid_comparable() else (metric, "train/loss_d", "train/loss_g")
        present = [m for m in wanted if m in set(curves["metric"])]
        if present:
            p = plots.save(plots.learning_curves(curves, present, trials=trials, color_by=param), figs / f"learning_curves.{fmt}")
            out_lines.append(f"![learning curves]({p.relative_to(out).as_posix()})")
        return out_lines or ["_No figures: too few metrics logged._"]

    _section(lines, f"Leaderboard by {metric}", board)
    _section(lines, f"Pareto front: {fid} (lower) vs {metric} (higher)", front)
    _section(lines, f"Effect of {param} on {metric}", knob)
    _section(lines, f"Study: metrics by {' x '.join([param, *by])}, with seed spread", study)
    _section(lines, "Hyperparameter importance", importance)
    _section(lines, "Seed robustness", seeds)
    _section(lines, "Unsupervised model selection (ModelCentrality)", centrality)
    _section(lines, "Figures", figures)
    path = out / "report.md"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path
