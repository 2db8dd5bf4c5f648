"""Learning curves of standalone runs (``python -m infogan.train`` run directories).

Owns reading a run directory into one long frame (run, step, metric, value, stage) and turning
several runs into the learning-curve figure and table that ``docs/results/`` shows:

- ``stage="final"``: the full evaluation suite of ``eval_final.jsonl`` (``python -m
  infogan.evaluate`` on every checkpoint), at the sizes named in its ``settings``;
- ``stage="intermediate"``: what the run itself evaluated along the way (``eval.jsonl``), used
  for a metric only where no final evaluation exists.

Runs are grouped by what distinguishes them apart from the seed (e.g. ``model.image_size=32``),
so the table gives, per group and step, the mean over seeds and the per-seed values.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from infogan import metric_catalogue as catalogue
from infogan.config import key_role

CURVE_METRICS = catalogue.HEADLINE  # those a run evaluated


@dataclass
class Run:
    """One run directory: its config, training speed and evaluations (long frame)."""

    path: Path
    config: dict[str, object]
    steps_per_second: float  # training only (evaluations and checkpoints excluded)
    train_seconds: float
    timed_steps: int  # the steps those seconds cover: a resumed run's last leg only
    frame: pd.DataFrame  # columns: run, step, metric, value, stage


def _rows(path: Path, stage: str, run: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a torn last line of an interrupted run
            continue
        for key, value in record.items():
            if key.startswith(("eval/", "train/")) and isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append({"run": run, "step": int(record["step"]), "metric": key, "value": float(value), "stage": stage})
    return rows


def read_run(run_dir: str | os.PathLike[str]) -> Run:
    """Read a run directory's config, metrics.json and evaluations.

    Args:
        run_dir: a directory ``python -m infogan.train --out`` wrote.
    Returns:
        The run; a metric that has final evaluations keeps only those (the intermediate ones
        were computed on smaller samples).
    Raises:
        FileNotFoundError: no ``config.json`` in the directory.
    """
    path = Path(run_dir)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{path} is not a run directory (no config.json)")
    config = json.loads(config_file.read_text())
    name = path.name
    final = pd.DataFrame(_rows(path / "eval_final.jsonl", "final", name))
    inter = pd.DataFrame(_rows(path / "eval.jsonl", "intermediate", name))
    if not final.empty and not inter.empty:
        inter = inter[~inter["metric"].isin(set(final["metric"]))]
    frame = pd.concat([f for f in (final, inter) if not f.empty], ignore_index=True) if len(final) + len(inter) else \
        pd.DataFrame(columns=["run", "step", "metric", "value", "stage"])
    if not frame.empty:  # a step evaluated twice with the same settings (a --force re-run) counts once
        frame = frame.drop_duplicates(["run", "step", "metric", "stage"], keep="last").sort_values(["metric", "step"])
    steps_per_second, train_seconds, timed_steps = _speed(path, config)
    return Run(path, config, steps_per_second, train_seconds, timed_steps, frame.reset_index(drop=True))


def _speed(path: Path, config: dict[str, object]) -> tuple[float, float, int]:
    """(steps/s, seconds, the steps timed) of training from metrics.json: its train_seconds, or
    (older runs) its wall-clock images/s with the evaluations' own seconds (eval.jsonl) taken out.
    metrics.json times one process, so a resumed run is timed over its last leg."""
    metrics_file = path / "metrics.json"
    if not metrics_file.is_file():
        return float("nan"), float("nan"), 0
    saved = json.loads(metrics_file.read_text())
    steps = int(saved.get("step", 0)) - int(saved.get("start_step", 0))  # a resumed run: its last leg
    if saved.get("train_seconds"):
        seconds = float(saved["train_seconds"])
    else:
        ips = float(saved.get("images_per_second") or 0.0)
        if ips <= 0:
            return float("nan"), float("nan"), 0
        wall = steps * int(config.get("train.batch_size", 64)) / ips
        evals = sum(float(json.loads(line).get("eval/seconds", 0.0))
                    for line in (path / "eval.jsonl").read_text().splitlines() if line.strip()) \
            if (path / "eval.jsonl").is_file() else 0.0
        seconds = wall - evals
    return (steps / seconds if seconds > 0 else float("nan")), seconds, steps


def group_labels(runs: Sequence[Run]) -> list[str]:
    """A label per run from the config keys that differ between runs (the seed and bookkeeping
    aside): ``model.image_size=32``; one shared label when nothing differs."""
    keys = sorted({k for r in runs for k in r.config})
    # Only what changes the experiment names a group (infogan.config's key roles: not the seed, the
    # machine, the numerics or speed path, the bookkeeping, the budget or the evaluation).
    varying = [k for k in keys if key_role(k) == "model" and len({json.dumps(r.config.get(k)) for r in runs}) > 1]
    if not varying:
        return ["all runs"] * len(runs)
    return [", ".join(f"{k}={r.config.get(k)}" for k in varying) for r in runs]


def curves_table(runs: Sequence[Run], metrics: Sequence[str] = CURVE_METRICS) -> pd.DataFrame:
    """Per group, step and metric: the mean over the group's seeds, their count and values.

    Returns:
        Columns: group, step, metric, n_seeds, mean, min, max, values (per-seed, seed order).
    """
    labels = group_labels(runs)
    parts = []
    for run, label in zip(runs, labels, strict=True):
        f = run.frame[run.frame["metric"].isin(metrics)].assign(group=label, seed=run.config.get("train.seed"))
        parts.append(f)
    if not parts or all(p.empty for p in parts):
        return pd.DataFrame(columns=["group", "step", "metric", "n_seeds", "mean", "min", "max", "values"])
    df = pd.concat(parts, ignore_index=True)
    rows = []
    for (group, step, metric), g in df.groupby(["group", "step", "metric"], sort=True):
        g = g.sort_values("seed")
        rows.append({"group": group, "step": int(step), "metric": metric, "n_seeds": len(g), "mean": g["value"].mean(),
                     "min": g["value"].min(), "max": g["value"].max(),
                     "values": " / ".join(f"{v:.3g}" for v in g["value"])})
    return pd.DataFrame(rows)


def curves_figure(runs: Sequence[Run], metrics: Sequence[str] = CURVE_METRICS):
    """One panel per metric against training steps; colour = group, line style = seed."""
    from analysis.plots import _figure

    labels = group_labels(runs)
    groups = list(dict.fromkeys(labels))
    present = [m for m in metrics if any(m in set(r.frame["metric"]) for r in runs)]
    if not present:
        raise ValueError(f"none of {list(metrics)} was evaluated in these runs")
    ncol = min(2, len(present))
    nrow = int(np.ceil(len(present) / ncol))
    fig = _figure(5.2 * ncol, 3.3 * nrow)
    axes = fig.subplots(nrow, ncol, squeeze=False)
    colours = {g: f"C{i}" for i, g in enumerate(groups)}
    seeds = sorted({r.config.get("train.seed") for r in runs}, key=str)
    styles = {s: ls for s, ls in zip(seeds, ("-", "--", ":", "-.") * 4, strict=False)}
    for ax, metric in zip(axes.ravel(), present, strict=False):
        for run, label in zip(runs, labels, strict=True):
            g = run.frame[run.frame["metric"] == metric]
            if g.empty:
                continue
            ax.plot(g["step"], g["value"], color=colours[label], ls=styles[run.config.get("train.seed")], lw=1.4,
                    marker="o", ms=2.5, label=f"{label}, seed {run.config.get('train.seed')}")
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(present):]:
        ax.set_visible(False)
    handles, names = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=min(4, len(names)), fontsize=7, frameon=False)
    return fig


def speed_table(runs: Sequence[Run]) -> pd.DataFrame:
    """Per run: group, seed, steps done, the steps timed (a resumed run's last leg), their
    training minutes and steps/s (evaluations excluded)."""
    labels = group_labels(runs)
    return pd.DataFrame([{"run": r.path.name, "group": label, "seed": r.config.get("train.seed"),
                          "steps": int(r.frame["step"].max()) if not r.frame.empty else 0,
                          "timed_steps": r.timed_steps, "train_minutes": r.train_seconds / 60,
                          "steps_per_second": r.steps_per_second}
                         for r, label in zip(runs, labels, strict=True)])


def write_curves(run_dirs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], name: str = "learning_curves",
                 metrics: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Write ``<out>/<name>.png`` and ``<out>/<name>.md`` for the given run directories.

    Returns:
        The figure's and the table's paths.
    """
    from analysis.plots import save
    from infogan.atomic import atomic_path
    from sweeps.ranking import markdown_table

    runs = [read_run(d) for d in run_dirs]
    metrics = list(metrics or CURVE_METRICS)
    out = Path(out_dir)
    figure = save(curves_figure(runs, metrics), out / f"{name}.png")
    table = curves_table(runs, metrics)
    lines = [f"# Learning curves: {', '.join(dict.fromkeys(group_labels(runs)))}", "",
             f"![learning curves]({figure.name})", "", "## Training speed (evaluations excluded)", "",
             markdown_table(speed_table(runs)), ""]
    for metric in metrics:
        sub = table[table["metric"] == metric]
        if sub.empty:
            continue
        wide = sub.pivot_table(index="step", columns="group", values="mean", aggfunc="first")
        seeds = sub.pivot_table(index="step", columns="group", values="values", aggfunc="first")
        both = wide.copy().astype(object)
        for col in wide.columns:
            both[col] = [f"{m:.3f} ({v})" if pd.notna(m) else "" for m, v in zip(wide[col], seeds[col], strict=True)]
        lines += [f"## {metric}: mean over seeds (each seed)", "", markdown_table(both.reset_index()), ""]
    stages = sorted({s for r in runs for s in r.frame["stage"].unique()})
    lines.append(f"Evaluation stages used: {', '.join(stages)} (final = python -m infogan.evaluate's full suite).")
    path = out / f"{name}.md"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return figure, path
