"""Collect a sweep's records into Parquet tables: ``trials.parquet`` (one row per trial) and
``curves.parquet`` (one row per trial x metric x step) under ``<out>/<sweep>/``, atomically and
together.

The records come from ``analysis.sources`` (MLflow runs, Tune's files); this module builds the
tables: one run per trial (a restarted trial keeps the run that got furthest), config values
typed back through ``sweeps.record``, each trial's status decided by ``record.recorded_status``,
the final and best value of every metric, Tune-only trials filled in.

Idempotence: rows are sorted by (sweep, trial_id) and (sweep, trial_id, metric, step, timestamp,
value), and nothing about the collection itself (time, host) enters the data, so the same records
give byte-identical files. A retried trial resumes from its last checkpoint and logs the steps
after it again into the same run: of several points with one (trial, metric, step), the last
logged is kept.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis import schema as S
from analysis import searched
from analysis.sources import (
    TuneTrial,
    check_readable_store,
    find_trial_runs,
    histories,
    read_tune_dir,
    tune_curves,
)
from infogan.config import upgrade_saved
from sweeps import record

__all__ = ["CollectResult", "build_tables", "collect", "iter_sweep_dirs", "logged_space", "summarise_curves"]


@dataclass
class CollectResult:
    """The two tables of one sweep (Arrow) and where they were written, if they were."""

    sweep: str
    trials: pa.Table
    curves: pa.Table
    search_space: dict[str, Any] | None = None  # the sweep's logged space (analysis.searched)
    paths: dict[str, Path] = field(default_factory=dict)


def _ms_to_ts(ms: Any) -> Any:
    return None if ms is None else pd.Timestamp(int(ms), unit="ms", tz="UTC")



# --------------------------------------------------------------------------------------------
# Tables


def _sort_curves(curves: pd.DataFrame) -> pd.DataFrame:
    ts = curves["timestamp"].astype("float64")  # NaN for missing timestamps sorts last
    return (
        curves.assign(_ts=ts)
        .sort_values(["sweep", "trial_id", "metric", "step", "_ts", "value"], kind="mergesort", na_position="last")
        .drop(columns="_ts")
        .reset_index(drop=True)
    )


def summarise_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Final and best value of each metric per trial from a sorted long curves frame.

    Args:
        curves: columns trial_id, metric, step, value, sorted by step within (trial, metric).

    Returns:
        Wide frame indexed by trial_id with ``final/<m>`` and ``best/<m>`` columns, plus
        ``_max_step``.
    """
    if curves.empty:
        return pd.DataFrame(index=pd.Index([], name="trial_id"))
    g = curves.groupby(["trial_id", "metric"], sort=True)["value"]
    # The value at the last step even when it is NaN: a run that ended in NaN should say so.
    final = g.last(skipna=False).unstack("metric")
    final.columns = [S.FINAL_PREFIX + c for c in final.columns]
    parts = [final]
    evals = curves[curves["metric"].map(S.has_best)]
    if not evals.empty:
        ge = evals.groupby(["trial_id", "metric"], sort=True)["value"]
        lo, hi = ge.min().unstack("metric"), ge.max().unstack("metric")
        best = pd.DataFrame({S.BEST_PREFIX + m: (lo[m] if S.metric_direction(m) == "min" else hi[m]) for m in lo.columns})
        parts.append(best)
    parts.append(curves.groupby("trial_id")["step"].max().rename("_max_step").to_frame())
    return pd.concat(parts, axis=1)


def build_tables(
    sweep: str,
    parents: list[Any],
    runs: list[Any],
    history: pd.DataFrame,
    tune: Mapping[str, TuneTrial] | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Assemble the trials and curves tables from already-fetched records.

    Args:
        sweep: sweep name.
        parents: the sweep's parent runs (for the git commit).
        runs: trial runs (``mlflow.entities.Run``).
        history: long metric histories of ``runs`` (run_id, metric, step, value, timestamp).
        tune: Tune's trials by id, or None.

    Returns:
        (trials, curves) Arrow tables with the schemas of ``analysis.schema``.
    """
    tune = dict(tune or {})
    kinds = S.config_kinds()
    git_commit = next((p.data.tags.get(record.TAG_GIT_COMMIT) for p in sorted(parents, key=lambda r: r.info.run_id) if p.data.tags.get(record.TAG_GIT_COMMIT)), None)

    # A trial restarted from scratch can leave two runs with one trial id: keep the one that got
    # furthest (then the latest started, then the larger id), so the choice is deterministic.
    max_step = history.groupby("run_id")["step"].max().to_dict() if not history.empty else {}
    chosen: dict[str, Any] = {}
    for run in runs:
        tid = run.data.tags.get(record.TAG_TRIAL_ID) or run.info.run_id
        key = (max_step.get(run.info.run_id, -1), run.info.start_time or 0, run.info.run_id)
        if tid not in chosen or key > chosen[tid][0]:
            chosen[tid] = (key, run)
    run_of = {tid: kr[1] for tid, kr in chosen.items()}

    run_to_tid = {run.info.run_id: tid for tid, run in run_of.items()}
    hist = history[history["run_id"].isin(list(run_to_tid))].copy()
    hist["trial_id"] = hist["run_id"].map(run_to_tid)
    tune_only = sorted(set(tune) - set(run_of))
    frames = [hist]
    for tid in tune_only:
        tc = tune_curves(tune[tid])
        tc["trial_id"], tc["run_id"] = tid, None
        frames.append(tc)
    curves = pd.concat(frames, ignore_index=True) if frames else hist
    curves["sweep"] = sweep
    curves = _sort_curves(curves[["sweep", "trial_id", "run_id", "metric", "step", "value", "timestamp"]])
    # A retry resumes from the last checkpoint and logs the steps after it a second time; the
    # sort puts the later timestamp last, and that point (the run that went on) is the one kept.
    curves = curves.drop_duplicates(["sweep", "trial_id", "metric", "step"], keep="last", ignore_index=True)
    summary = summarise_curves(curves)

    rows: list[dict[str, Any]] = []
    extra_params: set[str] = set()
    for tid in sorted(set(run_of) | set(tune_only)):
        run = run_of.get(tid)
        tt = tune.get(tid)
        raw_cfg: dict[str, Any] = dict(tt.config) if tt else {}
        if run is not None:
            raw_cfg.update(run.data.params)  # MLflow wins: it is what the trial itself logged
        raw_cfg = upgrade_saved(raw_cfg)  # a run logged by an older version, in today's keys
        cfg = {k: record.value_from_param(k, raw_cfg.get(k)) for k in kinds}
        extras = {k: str(v) for k, v in raw_cfg.items() if k not in kinds and "." in k and not k.startswith(record.SWEEP_PARAM_PREFIX)}
        extra_params |= set(extras)
        metrics = summary.loc[tid].to_dict() if tid in summary.index else {}
        steps_done = metrics.pop("_max_step", None)
        steps_done = None if steps_done is None or (isinstance(steps_done, float) and math.isnan(steps_done)) else int(steps_done)
        div = metrics.get(S.FINAL_PREFIX + record.METRIC_DIVERGED_STEP)
        diverged_step = None if div is None or not np.isfinite(div) else int(div)
        wall = metrics.get(S.FINAL_PREFIX + record.METRIC_WALL_SECONDS)
        if wall is None or not np.isfinite(wall):
            wall = tt.wall_seconds if tt else None
        if wall is None and run is not None and run.info.end_time and run.info.start_time:
            wall = (run.info.end_time - run.info.start_time) / 1000.0
        tags = run.data.tags if run is not None else {}
        status = record.recorded_status(
            tags.get(record.TAG_STATUS),
            run.info.status if run is not None else None,
            None if tt is None else tt.errored,
            # The sweep also reports train/diverged = 1.0 on the last result of a diverged trial.
            diverged_step is not None or metrics.get(S.FINAL_PREFIX + record.METRIC_DIVERGED) == 1.0,
            steps_done,
            cfg.get("train.steps"),
        )
        base_uri = run.info.artifact_uri.rstrip("/") if run is not None and run.info.artifact_uri else None
        row: dict[str, Any] = {
            "sweep": sweep,
            "trial_id": tid,
            "run_id": run.info.run_id if run is not None else None,
            "parent_run_id": tags.get(record.TAG_PARENT_RUN_ID),
            "experiment_id": run.info.experiment_id if run is not None else None,
            "status": status,
            "seed": cfg.get("train.seed"),
            "config_id": record.config_id({**cfg, **extras}),
            "stage": tags.get(record.TAG_STAGE) or (tt.stage if tt is not None else record.STAGE_SEARCH),
            "candidate": tags.get(record.TAG_CANDIDATE),
            "steps_done": steps_done,
            "wall_seconds": wall,
            "diverged_step": diverged_step,
            "fid_feature_net": tags.get(record.TAG_FID_FEATURE_NET),
            "git_commit": git_commit,
            "start_time": _ms_to_ts(run.info.start_time) if run is not None else None,
            "end_time": _ms_to_ts(run.info.end_time) if run is not None else None,
            "artifact_uri": base_uri,
            **{col: f"{base_uri}/{rel}" if base_uri else None for col, rel in record.ARTIFACTS.items()},
            **cfg,
            **extras,
            **{k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)) for k, v in metrics.items()},
        }
        rows.append(row)

    net_of = {r["trial_id"]: r["fid_feature_net"] for r in rows}
    metric_names = sorted(curves["metric"].unique()) if not curves.empty else []
    trials_schema = S.trials_schema(metric_names, extra_params)
    trials = pa.Table.from_pylist(
        [{name: r.get(name) for name in trials_schema.names} for r in rows], schema=trials_schema
    )
    curves_table = pa.table(
        {
            "sweep": pa.array(curves["sweep"].to_numpy(dtype=object), pa.string()),
            "trial_id": pa.array(curves["trial_id"].to_numpy(dtype=object), pa.string()),
            "run_id": pa.array(curves["run_id"].to_numpy(dtype=object), pa.string()),
            "metric": pa.array(curves["metric"].to_numpy(dtype=object), pa.string()),
            "step": pa.array(curves["step"].to_numpy(dtype="int64"), pa.int64()),
            "value": pa.array(curves["value"].to_numpy(dtype="float64"), pa.float64()),
            "timestamp": pa.array(pd.array(curves["timestamp"], dtype="Int64"), pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "fid_feature_net": pa.array([net_of.get(t) if S.is_fid(m) else None
                                         for t, m in zip(curves["trial_id"], curves["metric"], strict=True)], pa.string()),
        },
        schema=S.curves_schema(),
    )
    return trials, curves_table


def collect(
    tracking_uri: str | None = None,
    *,
    sweep: str | None = None,
    parent_run_id: str | None = None,
    experiment: str | None = None,
    tune_dir: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> CollectResult:
    """Read one sweep from MLflow (and Tune) and, if ``out_dir`` is given, write its tables.

    Args:
        tracking_uri: MLflow tracking URI; None resolves it as the sweep does
            (``sweeps.tracking.resolve_tracking_uri``: ``$MLFLOW_TRACKING_URI``, else
            ``sqlite:///mlflow.db`` in the current folder).
        sweep: sweep name; its experiment has the same name unless ``experiment`` is given.
        parent_run_id: the sweep's parent run id (alternative to ``sweep``).
        experiment: experiment name if it differs from the sweep name.
        tune_dir: Tune experiment directory ``<storage_path>/<sweep>/``, optional.
        out_dir: where to write ``<sweep>/trials.parquet`` and ``<sweep>/curves.parquet``.
        progress: show a tqdm bar while fetching metric histories.

    Returns:
        The tables (and written paths).
    """
    from mlflow import MlflowClient  # imported here so reading tables never needs MLflow

    from sweeps.tracking import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    check_readable_store(uri)
    client = MlflowClient(uri)
    name, parents, runs = find_trial_runs(client, sweep=sweep, parent_run_id=parent_run_id, experiment=experiment)
    tune = read_tune_dir(tune_dir) if tune_dir is not None else None
    if not runs and not tune:
        raise ValueError(f"sweep {name!r} has no trial runs in MLflow (and no Tune directory was given)")
    history = histories(client, runs, progress)
    trials, curves = build_tables(name, parents, runs, history, tune)
    result = CollectResult(name, trials, curves, logged_space(client, parents, tune_dir))
    if out_dir is not None:
        folder = S.sweep_dir(out_dir, name)
        paths = {folder / S.TRIALS_FILE: trials, folder / S.CURVES_FILE: curves}
        S.write_tables(paths)
        result.paths[S.TRIALS], result.paths[S.CURVES] = folder / S.TRIALS_FILE, folder / S.CURVES_FILE
        if result.search_space is not None:
            result.paths[searched.SPACE_FILE] = searched.write_space(folder, result.search_space)
    return result


def logged_space(client: Any, parents: list[Any], tune_dir: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """The search space the sweep logged: the latest parent run's ``search_space.json``, else the
    ``space`` of the sweep config in Tune's folder; None if neither holds one."""
    from mlflow.exceptions import MlflowException

    from sweeps.tracking import no_download_bars

    for parent in sorted(parents, key=lambda r: (r.info.start_time or 0, r.info.run_id), reverse=True):
        with tempfile.TemporaryDirectory() as tmp, no_download_bars():  # one small file: no bar
            try:
                return json.loads(Path(client.download_artifacts(parent.info.run_id, record.ARTIFACT_SEARCH_SPACE, tmp)).read_text())
            except (MlflowException, OSError, ValueError):
                continue  # a parent logged without it (or a store that lost it): try the next
    config = Path(tune_dir) / record.ARTIFACT_SWEEP_CONFIG if tune_dir is not None else None
    if config is not None and config.is_file():
        return json.loads(config.read_text()).get("space")
    return None


def iter_sweep_dirs(tables_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Folders under ``tables_dir`` that hold a collected sweep."""
    for p in sorted(Path(tables_dir).rglob(S.TRIALS_FILE)):
        yield p.parent
