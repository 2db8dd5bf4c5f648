"""A short Markdown report for one sweep, from its Parquet tables.

Owns ``write_report``: status counts, then the confirmed answer (each confirmed config's metrics
over fresh seeds with 95% intervals and its difference from the recipe: ``sweeps.answer``, as
the sweep's closing output says it), how early the ranking metric ranks the final one (the
rung-to-final rank correlation over every sweep in the tables with this budget:
``sweeps.rungs``), the search's leaderboard and Pareto front (one seed per trial, said so), the
effect of a knob with seed spread, hyperparameter importance, seed robustness of every confirmed
config, and — when ``analysis codes`` wrote the sweep's ``codes.npz`` — the ModelCentrality pick
next to the best-by-supervised-metric trials, with the figures it draws next to the report.

It refuses to over-read: an analysis with fewer trials than it needs
(``sweeps.uncertainty.MIN_TRIALS``: a rank correlation, fANOVA importance, a knob's per-level
table) says it is not meaningful at this n instead of printing a number. A section whose inputs
are missing (no FID logged, a single seed) says so instead of failing; a refusal such as mixed
FID feature networks is reported in the section's place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import compare, plots, searched
from analysis import schema as S
from infogan import metric_catalogue as catalogue
from infogan.atomic import atomic_path
from sweeps import record, rungs
from sweeps.answer import compute_answer, describe_config, interval_text
from sweeps.ranking import markdown_table
from sweeps.uncertainty import MIN_TRIALS, t_interval


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
    """The rank correlation's line, or why there is none: not meaningful below
    ``MIN_TRIALS['spearman']`` trials, not defined when the levels or the values do not vary."""
    if n < MIN_TRIALS["spearman"]:
        return (f"Spearman ρ: not meaningful at n = {n} (it needs {MIN_TRIALS['spearman']} trials: below that only "
                "|ρ| > 0.65 is told from no correlation at all).")
    if not np.isfinite(rho):
        return f"Spearman ρ: not defined for these {n} trials (the levels or the values do not vary)."
    return f"Spearman ρ = {rho:.3f} (p = {p:.3g}, n = {n})."


def write_report(
    tables: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    sweep: str | None = None,
    metric: str = catalogue.DEFAULT_METRIC,
    fid: str = catalogue.FID,
    param: str | None = None,
    top: int = 10,
    fmt: str = "png",
    statuses: tuple[str, ...] | None = ("finished",),
    by: tuple[str, ...] = (),
    study_metrics: tuple[str, ...] = catalogue.HEADLINE,
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
    trials, curves, sweep = _load_sweep(tables, sweep)
    space = searched.read_space(tables, sweep)
    r = _Report(tables=tables, sweep=sweep, out=Path(out_dir), trials=trials, curves=curves,
                param=param or searched.default_knob(trials, space), knobs=tuple(searched.searched_knobs(trials, space)),
                metric=metric, fid=fid, top=top, fmt=fmt, by=by, study_metrics=study_metrics, all_trials=trials)
    lines = _header(r, statuses)  # narrows r to the compared trials
    for title, build in [
        ("The answer: the confirmed configs over fresh seeds", _answer),
        (f"How early {metric} ranks the final {metric} (where ASHA may cut)", _rungs),
        (f"Search leaderboard by {metric} (one seed per trial)", _board),
        (f"Pareto front of the search: {fid} (lower) vs {metric} (higher)", _front),
        (f"Effect of {r.param} on {metric} (search trials)", _knob),
        (f"Study: metrics by {' x '.join([r.param, *by])}, with seed spread", _study),
        ("Hyperparameter importance", _importance),
        ("Seed robustness", _seeds),
        ("Unsupervised model selection (ModelCentrality)", _centrality),
        ("Figures", _figures),
    ]:
        lines += ["", f"## {title}", ""]
        try:
            lines += build(r)
        except (KeyError, ValueError) as exc:  # a section whose inputs are missing says so
            lines.append(f"_Skipped: {exc}_")
    path = r.out / "report.md"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


def _load_sweep(tables: str | os.PathLike[str], sweep: str | None) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """One sweep's trials and curves from the tables (the only sweep when ``sweep`` is None)."""
    trials = S.read_trials(tables)
    curves = S.read_curves(tables)
    sweeps = sorted(trials["sweep"].unique())
    if sweep is None:
        if len(sweeps) != 1:
            raise ValueError(f"the tables hold several sweeps ({', '.join(sweeps)}); pass --sweep")
        sweep = sweeps[0]
    if sweep not in sweeps:
        raise ValueError(f"no sweep {sweep!r} in the tables; found: {', '.join(sweeps)}")
    return trials[trials["sweep"] == sweep].reset_index(drop=True), curves[curves["sweep"] == sweep], sweep


@dataclass
class _Report:
    """What every section reads: the sweep's trials and curves and the report's choices."""

    tables: str | os.PathLike[str]
    sweep: str
    out: Path
    trials: pd.DataFrame
    curves: pd.DataFrame
    param: str
    knobs: tuple[str, ...]
    metric: str
    fid: str
    top: int
    fmt: str
    by: tuple[str, ...]
    study_metrics: tuple[str, ...]
    all_trials: pd.DataFrame  # every trial of the sweep, whatever its status

    @property
    def search(self) -> pd.DataFrame:
        """The compared trials of the search stage (one seed per sampled config, or --seeds)."""
        return self.trials[self.trials["stage"] == record.STAGE_SEARCH].reset_index(drop=True)

    @property
    def fid_comparable(self) -> bool:
        """FID is logged and every trial's comes from the same feature network."""
        col = S.FINAL_PREFIX + self.fid
        if col not in self.trials.columns:
            return False
        try:
            compare.check_fid_comparable(self.trials, [col])
            return True
        except ValueError:
            return False

    def figure(self, fig: object, name: str, alt: str) -> str:
        """Save a figure under ``figures/`` and return its Markdown image line."""
        path = plots.save(fig, self.out / "figures" / f"{name}.{self.fmt}")
        return f"![{alt}]({path.relative_to(self.out).as_posix()})"


def _header(r: _Report, statuses: tuple[str, ...] | None) -> list[str]:
    """The title, provenance and status counts of all trials; then narrows ``r`` to the trials
    with ``statuses`` (None: all), which every section compares."""
    commit = r.trials["git_commit"].dropna().unique()
    nets = r.trials["fid_feature_net"].dropna().unique()
    stages = ", ".join(f"{n} {s}" for s, n in r.trials["stage"].value_counts().sort_index(ascending=False).items())
    lines = [f"# Sweep `{r.sweep}`", "",
             f"{len(r.trials)} trials ({stages}); git commit {', '.join(f'`{c}`' for c in commit) or 'unknown'}; "
             f"FID feature network {', '.join(f'`{n}`' for n in nets) or 'none recorded'}.",
             "", markdown_table(compare.status_counts(r.trials.assign(sweep=r.trials["sweep"] + " / " + r.trials["stage"])),
                                index=True)]
    if statuses is not None:
        r.trials = r.trials[r.trials["status"].isin(statuses)].reset_index(drop=True)
        r.curves = r.curves[r.curves["trial_id"].isin(set(r.trials["trial_id"]))]
        lines += ["", f"Comparisons below use the {len(r.trials)} trials with status {', '.join(statuses)}."]
    return lines


def _answer(r: _Report) -> list[str]:
    """The confirmation's answer, as the sweep's closing output and parent run state it."""
    confirmed = r.all_trials[r.all_trials["stage"] == record.STAGE_CONFIRM]
    if confirmed.empty:
        return ["_No confirmation in this sweep: the leaderboard below ranks single seeds, and its best trial is the "
                "luckiest as much as the best. `python sweeps/lambda_search.py --confirm K` re-trains the top K configs "
                "and the recipe over fresh seeds._"]
    metrics = [m for m in dict.fromkeys([r.metric, *catalogue.ANSWER]) if S.FINAL_PREFIX + m in confirmed.columns]
    rows = confirmed.rename(columns={S.FINAL_PREFIX + m: m for m in metrics})
    order = sorted(rows["candidate"].dropna().unique(), key=lambda c: (c != record.CANDIDATE_RECIPE, c))
    descriptions = {c: describe_config(rows[rows["candidate"] == c].iloc[0].to_dict(), r.knobs) for c in order}
    steps = int(confirmed["train.steps"].max()) if "train.steps" in confirmed.columns else None
    answer = compute_answer(rows, metrics, descriptions, planned=rows["candidate"].value_counts().to_dict(), steps=steps)
    done = rows[rows["status"] == record.STATUS_FINISHED]
    image = r.figure(plots.answer(done, list(answer.metrics), order), "answer", "the answer") if answer.metrics else ""
    return [answer.markdown(), "", image]


def _rungs(r: _Report) -> list[str]:
    """How each report step ranks the final metric, over the finished trials of every sweep in the
    tables with this sweep's budget (``sweeps.rungs``)."""
    every = S.read_trials(r.tables)
    first = r.all_trials.iloc[0]
    same = every[(every["status"] == record.STATUS_FINISHED)
                 & np.logical_and.reduce([every[k] == first[k] for k in rungs.BUDGET_KEYS])]
    curves = S.read_curves(r.tables)
    keys = set(zip(same["sweep"], same["trial_id"], strict=True))
    mine = curves[(curves["metric"] == r.metric)
                  & pd.Series([k in keys for k in zip(curves["sweep"], curves["trial_id"], strict=True)], index=curves.index)]
    mine = mine.assign(trial_id=mine["sweep"] + "/" + mine["trial_id"])
    correlations = rungs.rung_correlations(mine[["trial_id", "step", "value"]], int(first["train.steps"]))
    # describe()'s indented lines (one per step) as a Markdown list
    lines = [f"- {line.strip()}" if line.startswith("  ") else line
             for line in rungs.describe(correlations, r.metric, [], int(same["sweep"].nunique()), "in these tables")]
    budget = ", ".join(f"{k}={first[k]}" for k in rungs.BUDGET_KEYS)
    lines = [f"Budget: {budget}; sweeps in these tables with it: {', '.join(sorted(same['sweep'].unique())) or 'none'}.",
             "", *lines]
    if not correlations.empty and correlations["rho"].notna().any():
        lines += ["", r.figure(plots.rung_correlations(correlations, r.metric), "rung_correlations", "rung correlations")]
    return lines


def _board(r: _Report) -> list[str]:
    lb = compare.leaderboard(r.search, r.metric, top=r.top, columns=("sweep", "trial_id", "status", "seed", *r.knobs))
    note = []
    if r.fid_comparable:
        extra = [compare.resolve(r.trials, r.fid)]
        lb = lb.merge(r.trials[["sweep", "trial_id", *extra]], on=["sweep", "trial_id"], how="left")
    elif S.FINAL_PREFIX + r.fid in r.trials.columns:
        note = ["", f"_{r.fid} is left out: its trials used different FID feature networks._"]
    caveat = (f"Each row is one seed's score: the best of {len(r.search)} is biased upwards by its selection (the "
              "answer above re-ran the top configs on fresh seeds).")
    return [caveat, "", markdown_table(lb.drop(columns="sweep")), *note]


def _front(r: _Report) -> list[str]:
    pf = compare.pareto_front(r.search, r.metric, r.fid)
    cols = ["trial_id", "status", "seed", r.param, compare.resolve(r.trials, r.fid), compare.resolve(r.trials, r.metric)]
    image = r.figure(plots.pareto(r.search, r.metric, r.fid), "pareto", "Pareto front")
    return [markdown_table(pf[[c for c in cols if c in pf.columns]]), "", image]


def _knob(r: _Report) -> list[str]:
    eff = compare.effect(r.search, r.param, r.metric)
    tab = eff.table.assign(level=eff.table["level"].map(level_text).astype(str))
    image = r.figure(plots.param_scatter(r.search, r.param, r.metric), f"effect_{r.param}", f"{r.param} effect")
    need = MIN_TRIALS["trials_per_level"]
    if int((tab["n"] >= need).sum()) < 2:
        return [spearman_text(eff.spearman_rho, eff.spearman_p, eff.n), "",
                f"Per-level table: not meaningful at this n ({', '.join(str(int(n)) for n in tab['n'])} trials per "
                f"level; it needs two levels of {need} or more to set a difference against seed spread).", "", image]
    return [spearman_text(eff.spearman_rho, eff.spearman_p, eff.n), "", markdown_table(tab), "", image]


def _study(r: _Report) -> list[str]:
    present = [m for m in r.study_metrics if (S.FINAL_PREFIX + m in r.trials.columns or m in r.trials.columns)
               and (not S.is_fid(m) or r.fid_comparable)]
    if not present:
        raise KeyError(f"none of {', '.join(r.study_metrics)} was logged")
    table = compare.study_table(r.trials, [r.param, *r.by], present)
    for col in [r.param, *r.by]:
        table[col] = table[col].map(level_text).astype(str)
    image = r.figure(plots.study(r.trials, r.param, present, hue=r.by[0] if r.by else None), "study", "study")
    return [f"Mean and standard deviation over the seeds of each cell ({r.param} cut into levels"
            + (f", by {', '.join(r.by)}" if r.by else "") + ").", "", markdown_table(table), "", image]


def _importance(r: _Report) -> list[str]:
    from analysis.importance import param_importances
    from infogan.config import KEYS, key_role

    knobs = [k for k in KEYS if k in r.search.columns and key_role(k) in ("model", "budget")]
    n = int(r.search[compare.resolve(r.search, r.metric)].notna().sum())
    if n < MIN_TRIALS["importance"]:
        return [f"Not meaningful at n = {n}: fANOVA fits a random forest to the trials and needs "
                f"{MIN_TRIALS['importance']} or more before its importances say more than the seeds' noise."]
    table = param_importances(r.search, knobs, r.metric)
    return [f"Optuna's fANOVA importance of each knob that varied, for {compare.resolve(r.trials, r.metric)} "
            f"(from the {n} search trials in this report).", "", markdown_table(table)]


def _seeds(r: _Report) -> list[str]:
    """Every confirmed config's spread over its confirmation seeds, then the search's configs
    run with several seeds (``--seeds``)."""
    col = compare.resolve(r.trials, r.metric)
    lines: list[str] = []
    confirmed = r.trials[r.trials["stage"] == record.STAGE_CONFIRM]
    if not confirmed.empty:
        cols = [c for c in [col, *(S.FINAL_PREFIX + m for m in catalogue.ANSWER)] if c in confirmed.columns]
        rows = []
        for name, g in sorted(confirmed.groupby("candidate"), key=lambda kv: (kv[0] != record.CANDIDATE_RECIPE, kv[0])):
            for c in dict.fromkeys(cols):
                v = g[c].astype(float).dropna()
                if v.empty:
                    continue
                iv = t_interval(v.to_numpy())
                rows.append({"config": name, "metric": c, "seeds": iv.n, "mean [95% t interval]": interval_text(iv),
                             "sd": iv.sd, "min": v.min(), "max": v.max(), "range": v.max() - v.min(),
                             "seed values": ", ".join(f"{x:.4g}" for x in v)})
        lines += [f"Every confirmed config over its {'/'.join(str(n) for n in sorted(confirmed.groupby('candidate').size().unique()))} "
                  "finished confirmation seeds:", "", markdown_table(pd.DataFrame(rows))]
    search = r.search
    sr = compare.seed_robustness(search, [col], knobs=(r.param, *r.by)) if not search.empty else pd.DataFrame()
    if not sr.empty:
        share = compare.seed_variance_share(search, col)
        lines += ["", f"Search configs run with several seeds; share of {col}'s variance within configs (seed luck): "
                  f"{share:.2f}.", "", markdown_table(sr)]
    return lines or ["_No config was run with more than one seed._"]


def _centrality(r: _Report) -> list[str]:
    codes_file = S.sweep_dir(r.tables, r.sweep) / S.CODES_FILE
    if not codes_file.is_file():
        return [f"_No {S.CODES_FILE} for this sweep: `python -m analysis codes --tables {r.tables} --sweep {r.sweep}` "
                "computes every finished trial's codes on the same real images._"]
    with np.load(codes_file) as npz:
        codes = {k: npz[k] for k in npz.files if k in set(r.trials["trial_id"])}
    cent = compare.model_centrality(codes)
    chosen = compare.selection_report(r.trials[r.trials["trial_id"].isin(codes)], cent.selected)
    return [f"Most central of the {len(codes)} models with codes (chosen without labels): `{cent.selected}`.", "",
            markdown_table(cent.scores), "", "How the pick ranks on the supervised metrics:", "",
            markdown_table(chosen)]


def _figures(r: _Report) -> list[str]:
    out_lines = []
    cols = S.quality_columns(r.trials)
    try:
        if len(cols) >= 2:
            out_lines.append(r.figure(plots.correlation_heatmap(r.trials, cols), "metric_correlation", "metric correlation"))
    except ValueError:
        # Mixed FID networks: correlate the other metrics only.
        non_fid = S.quality_columns(r.trials, fid=False)
        if len(non_fid) >= 2:
            out_lines.append(r.figure(plots.correlation_heatmap(r.trials, non_fid), "metric_correlation",
                                      "metric correlation"))
    wanted = (r.metric, r.fid, "train/loss_d", "train/loss_g") if r.fid_comparable else \
        (r.metric, "train/loss_d", "train/loss_g")
    present = [m for m in wanted if m in set(r.curves["metric"])]
    if present:
        out_lines.append(r.figure(plots.learning_curves(r.curves, present, trials=r.trials, color_by=r.param),
                                  "learning_curves", "learning curves"))
    return out_lines or ["_No figures: too few metrics logged._"]
