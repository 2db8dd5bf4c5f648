"""Collect a sweep's records (MLflow runs, optionally Tune's result files) into Parquet tables.

Owns the reading side of the sweep's record contract (names in ``analysis.schema``): find the
sweep's trial runs (by parent run id, or by the ``infogan.sweep`` tag in the sweep's experiment),
fetch every ``eval/*``, ``train/*`` and ``time/*`` metric history, fill in trials that only Tune
knows about (a trial that failed before its MLflow run existed), and write ``trials.parquet`` and
``curves.parquet`` under ``<out>/<sweep>/``, atomically.

Idempotence: rows are sorted by (sweep, trial_id) and (sweep, trial_id, metric, step, timestamp,
value), and nothing about the collection itself (time, host) enters the data, so the same records
give byte-identical files. A retried trial resumes from its last checkpoint and logs the steps
after it again into the same run: of several points with one (trial, metric, step), the last
logged is kept.

Speed: per-run ``get_metric_history`` calls cost a round trip each (1,000 trials × 15 metrics =
15,000 calls). For SQL tracking stores we read the points with one column-only query per chunk
of runs through MLflow's own session and table model; for other stores (an HTTP
tracking server) we issue the per-run calls from a thread pool, since they are I/O bound.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from analysis import schema as S
from sweeps import record

_PAGE = 1000  # runs per search_runs page: within every store's limit
_BULK_CHUNK = 200  # run ids per metric query: well under SQLite's bound-variable limit
_THREADS = 8  # concurrent per-run history calls against an HTTP tracking server


@dataclass
class TuneTrial:
    """What a Tune experiment directory says about one trial."""

    trial_id: str
    config: dict[str, Any]
    rows: list[dict[str, Any]]
    errored: bool
    wall_seconds: float | None


@dataclass
class CollectResult:
    """The two tables of one sweep (Arrow) and where they were written, if they were."""

    sweep: str
    trials: pa.Table
    curves: pa.Table
    paths: dict[str, Path] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Small helpers.


def _quote(value: str) -> str:
    """Quote a string for an MLflow filter expression."""
    return "'" + value.replace("'", "\\'") + "'"


def _is_metric(key: str) -> bool:
    return key.startswith(S.METRIC_PREFIXES)


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys; dotted keys pass through (Tune configs may be either)."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _ms_to_ts(ms: Any) -> Any:
    return None if ms is None else pd.Timestamp(int(ms), unit="ms", tz="UTC")


# --------------------------------------------------------------------------------------------
# Reading MLflow.


def _search_all(client: Any, experiment_ids: list[str], filter_string: str) -> list[Any]:
    """Every run matching a filter, across pages."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            experiment_ids, filter_string=filter_string, max_results=_PAGE, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def find_trial_runs(
    client: Any,
    *,
    sweep: str | None = None,
    parent_run_id: str | None = None,
    experiment: str | None = None,
) -> tuple[str, list[Any], list[Any]]:
    """Locate a sweep's parent run(s) and its trial runs.

    Args:
        client: an ``mlflow.MlflowClient``.
        sweep: sweep name (its experiment has the same name unless ``experiment`` says otherwise).
        parent_run_id: the sweep's parent run id; takes precedence over ``sweep`` for finding runs.
        experiment: experiment name when it differs from the sweep name.

    Returns:
        (sweep name, parent runs, trial runs).

    Raises:
        ValueError: when neither the sweep nor the parent run can be found.
    """
    if parent_run_id:
        parent = client.get_run(parent_run_id)
        name = sweep or parent.data.tags.get(S.TAG_SWEEP)
        if not name:
            raise ValueError(
                f"parent run {parent_run_id} has no {S.TAG_SWEEP!r} tag; pass --sweep to name the sweep"
            )
        children = _search_all(
            client, [parent.info.experiment_id], f"tags.{S.TAG_PARENT_RUN_ID} = {_quote(parent_run_id)}"
        )
        return name, [parent], children
    if not sweep:
        raise ValueError("give a sweep name or a parent run id")
    exp_name = experiment or sweep
    exp = client.get_experiment_by_name(exp_name)
    if exp is None:
        known = sorted(e.name for e in client.search_experiments())
        raise ValueError(f"no MLflow experiment named {exp_name!r}; experiments here: {', '.join(known) or 'none'}")
    sweep_filter = f"tags.`{S.TAG_SWEEP}` = {_quote(sweep)}"
    parents = _search_all(client, [exp.experiment_id], f"{sweep_filter} and tags.`{S.TAG_ROLE}` = '{S.ROLE_PARENT}'")
    if len(parents) > 1:
        # Two sweeps launched under one name (without --resume) are different experiments of the
        # researcher's: merging their trials would mix configs, budgets and code versions.
        listing = "; ".join(
            f"{p.info.run_id} (started {_fmt_ms(p.info.start_time)})"
            for p in sorted(parents, key=lambda r: (r.info.start_time or 0, r.info.run_id))
        )
        raise ValueError(
            f"sweep {sweep!r} has {len(parents)} parent runs in experiment {exp_name!r}: {listing}. "
            "They are separate sweeps that share a name; collect one at a time with --parent-run-id ID"
        )
    children = _search_all(client, [exp.experiment_id], f"{sweep_filter} and tags.`{S.TAG_ROLE}` = '{S.ROLE_TRIAL}'")
    return sweep, parents, children


def _fmt_ms(ms: int | None) -> str:
    return "unknown" if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _histories(client: Any, runs: list[Any], progress: bool) -> pd.DataFrame:
    """All metric histories of ``runs`` as a long frame (run_id, metric, step, value, timestamp)."""
    by_key: dict[str, list[str]] = {}
    for run in runs:
        for key in run.data.metrics:
            if _is_metric(key):
                by_key.setdefault(key, []).append(run.info.run_id)
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    if hasattr(store, "ManagedSessionMaker"):
        run_ids = sorted({rid for ids in by_key.values() for rid in ids})
        with tqdm(total=len(run_ids), desc="metric histories", unit="run", disable=not progress) as bar:
            try:
                return _histories_sql(store, run_ids, set(by_key), bar)
            except ImportError:
                pass  # MLflow moved its table models: the per-run API below still works
    pairs = [(rid, key) for key, ids in sorted(by_key.items()) for rid in ids]
    with tqdm(total=len(pairs), desc="metric histories", unit="run·metric", disable=not progress) as bar:
        return _histories_api(client, pairs, bar)


def _histories_sql(store: Any, run_ids: list[str], keys: set[str], bar: Any) -> pd.DataFrame:
    """Histories from an MLflow SQL store: one column-only query per chunk of runs.

    The public client has no bulk history call, and the store's ``get_metric_history_bulk``
    builds one ORM object per point (~100 µs each here: a minute for a 1,000-trial sweep).
    Selecting the columns of MLflow's own ``SqlMetric`` model returns plain tuples instead, and
    filtering on run ids (not keys) lets the database use its ``run_uuid`` index (3× faster than
    per-key queries here). NaN is restored from ``is_nan`` as ``SqlMetric.to_mlflow_entity`` does.
    """
    import pyarrow.compute as pc
    from mlflow.store.tracking.dbmodels.models import SqlMetric
    from sqlalchemy import select

    types = {"run_id": pa.string(), "metric": pa.string(), "step": pa.int64(), "value": pa.float64(),
             "timestamp": pa.int64(), "is_nan": pa.bool_()}
    wanted = pa.array(sorted(keys), pa.string())
    parts = []
    with store.ManagedSessionMaker() as session:
        conn = session.connection()
        for i in range(0, len(run_ids), _BULK_CHUNK):
            chunk = run_ids[i : i + _BULK_CHUNK]
            stmt = select(
                SqlMetric.run_uuid, SqlMetric.key, SqlMetric.step, SqlMetric.value, SqlMetric.timestamp, SqlMetric.is_nan
            ).where(SqlMetric.run_uuid.in_(chunk))
            rows = conn.execute(stmt).fetchall()
            # Column-wise into Arrow: building a DataFrame from row tuples is 10× slower.
            columns = list(zip(*rows, strict=True)) if rows else [()] * len(types)
            table = pa.table({name: pa.array(col, typ) for (name, typ), col in zip(types.items(), columns, strict=True)})
            parts.append(table.filter(pc.is_in(table["metric"], value_set=wanted)))
            bar.update(len(chunk))
    if not parts:
        return pd.DataFrame({c: [] for c in list(types)[:-1]})
    out = pa.concat_tables(parts).to_pandas()
    out["value"] = out["value"].where(~out["is_nan"], np.nan)
    return out.drop(columns="is_nan")


def _histories_api(client: Any, pairs: list[tuple[str, str]], bar: Any) -> pd.DataFrame:
    """Histories through the public client: one call per (run, key), from a thread pool because
    against an HTTP tracking server each call is a network round trip."""
    cols: dict[str, list[Any]] = {"run_id": [], "metric": [], "step": [], "value": [], "timestamp": []}
    with ThreadPoolExecutor(_THREADS) as pool:
        for (rid, _key), hist in zip(pairs, pool.map(lambda p: client.get_metric_history(*p), pairs), strict=True):
            for m in hist:
                cols["run_id"].append(rid)
                cols["metric"].append(m.key)
                cols["step"].append(m.step)
                cols["value"].append(m.value)
                cols["timestamp"].append(m.timestamp)
            bar.update(1)
    return pd.DataFrame(cols)


# --------------------------------------------------------------------------------------------
# Reading Tune's experiment directory.


def read_tune_dir(tune_dir: str | os.PathLike[str]) -> dict[str, TuneTrial]:
    """Parse every trial folder's ``result.json`` under a Tune experiment directory.

    Args:
        tune_dir: ``<storage_path>/<sweep name>/``.

    Returns:
        trial id → what Tune recorded (reported rows, config, error flag, total time).
    """
    root = Path(tune_dir)
    if not root.is_dir():
        raise ValueError(f"Tune experiment directory {root} does not exist")
    trials: dict[str, TuneTrial] = {}
    for result in sorted(root.rglob("result.json")):
        rows = []
        for line in result.read_text().splitlines():
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut short by a crash mid-write
        folder = result.parent
        errored = (folder / "error.txt").exists() or (folder / "error.pkl").exists()
        trial_id = next((str(r["trial_id"]) for r in rows if "trial_id" in r), None)
        if trial_id is None:
            continue
        config = _flatten(next((r["config"] for r in rows if isinstance(r.get("config"), Mapping)), {}))
        wall = next((float(r["time_total_s"]) for r in reversed(rows) if "time_total_s" in r), None)
        trials[trial_id] = TuneTrial(trial_id, config, rows, errored, wall)
    return trials


def _tune_curves(trial: TuneTrial) -> pd.DataFrame:
    """A Tune trial's reported metrics as a long frame; step = reported ``step`` or the iteration."""
    cols: dict[str, list[Any]] = {"metric": [], "step": [], "value": [], "timestamp": []}
    for row in trial.rows:
        step = row.get("step", row.get("training_iteration"))
        if step is None:
            continue
        ts = row.get("timestamp")
        for key, value in _flatten({k: v for k, v in row.items() if k != "config"}).items():
            if _is_metric(key) and isinstance(value, (int, float)) and not isinstance(value, bool):
                cols["metric"].append(key)
                cols["step"].append(int(step))
                cols["value"].append(float(value))
                cols["timestamp"].append(None if ts is None else int(float(ts) * 1000))
    return pd.DataFrame(cols)


# --------------------------------------------------------------------------------------------
# Building the tables.


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
    git_commit = next((p.data.tags.get(S.TAG_GIT_COMMIT) for p in sorted(parents, key=lambda r: r.info.run_id) if p.data.tags.get(S.TAG_GIT_COMMIT)), None)

    # A trial restarted from scratch can leave two runs with one trial id: keep the one that got
    # furthest (then the latest started, then the larger id), so the choice is deterministic.
    max_step = history.groupby("run_id")["step"].max().to_dict() if not history.empty else {}
    chosen: dict[str, Any] = {}
    for run in runs:
        tid = run.data.tags.get(S.TAG_TRIAL_ID) or run.info.run_id
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
        tc = _tune_curves(tune[tid])
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
        cfg = {k: record.value_from_param(k, raw_cfg.get(k)) for k in kinds}
        extras = {k: str(v) for k, v in raw_cfg.items() if k not in kinds and "." in k and not k.startswith(S.SWEEP_PARAM_PREFIX)}
        extra_params |= set(extras)
        metrics = summary.loc[tid].to_dict() if tid in summary.index else {}
        steps_done = metrics.pop("_max_step", None)
        steps_done = None if steps_done is None or (isinstance(steps_done, float) and math.isnan(steps_done)) else int(steps_done)
        div = metrics.get(S.FINAL_PREFIX + S.METRIC_DIVERGED_STEP)
        diverged_step = None if div is None or not np.isfinite(div) else int(div)
        wall = metrics.get(S.FINAL_PREFIX + S.METRIC_WALL_SECONDS)
        if wall is None or not np.isfinite(wall):
            wall = tt.wall_seconds if tt else None
        if wall is None and run is not None and run.info.end_time and run.info.start_time:
            wall = (run.info.end_time - run.info.start_time) / 1000.0
        tags = run.data.tags if run is not None else {}
        status = record.recorded_status(
            tags.get(S.TAG_STATUS),
            run.info.status if run is not None else None,
            None if tt is None else tt.errored,
            # The sweep also reports train/diverged = 1.0 on the last result of a diverged trial.
            diverged_step is not None or metrics.get(S.FINAL_PREFIX + S.METRIC_DIVERGED) == 1.0,
            steps_done,
            cfg.get("train.steps"),
        )
        base_uri = run.info.artifact_uri.rstrip("/") if run is not None and run.info.artifact_uri else None
        row: dict[str, Any] = {
            "sweep": sweep,
            "trial_id": tid,
            "run_id": run.info.run_id if run is not None else None,
            "parent_run_id": tags.get(S.TAG_PARENT_RUN_ID),
            "experiment_id": run.info.experiment_id if run is not None else None,
            "status": status,
            "seed": cfg.get("train.seed"),
            "config_id": record.config_id({**cfg, **extras}),
            "steps_done": steps_done,
            "wall_seconds": wall,
            "diverged_step": diverged_step,
            "fid_feature_net": tags.get(S.TAG_FID_FEATURE_NET),
            "git_commit": git_commit,
            "start_time": _ms_to_ts(run.info.start_time) if run is not None else None,
            "end_time": _ms_to_ts(run.info.end_time) if run is not None else None,
            "artifact_uri": base_uri,
            **{col: f"{base_uri}/{rel}" if base_uri else None for col, rel in S.ARTIFACTS.items()},
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
    history = _histories(client, runs, progress)
    trials, curves = build_tables(name, parents, runs, history, tune)
    result = CollectResult(name, trials, curves)
    if out_dir is not None:
        folder = S.sweep_dir(out_dir, name)
        paths = {folder / S.TRIALS_FILE: trials, folder / S.CURVES_FILE: curves}
        S.write_tables(paths)
        result.paths[S.TRIALS], result.paths[S.CURVES] = folder / S.TRIALS_FILE, folder / S.CURVES_FILE
    return result


def check_readable_store(tracking_uri: str) -> None:
    """Refuse a local store that does not exist or holds no MLflow tables, before MLflow opens it:
    opening a sqlite store creates the file and writes MLflow's schema into it, and collecting
    is a read-only command.

    Raises:
        FileNotFoundError: no such file, or not an MLflow store (the message says which).
    """
    if not tracking_uri.startswith("sqlite:///"):
        return
    import sqlite3

    path = Path(tracking_uri[len("sqlite:///"):])
    if not path.is_file():
        raise FileNotFoundError(f"no MLflow store at {path} ({tracking_uri}); run the sweep there first, or pass "
                                "--tracking-uri (or set MLFLOW_TRACKING_URI)")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
    except sqlite3.DatabaseError as err:
        raise FileNotFoundError(f"{path} is not an MLflow store ({err})") from None
    if not {"experiments", "runs", "metrics"} <= tables:
        raise FileNotFoundError(f"{path} holds no MLflow tables (an empty or foreign sqlite file); point "
                                "--tracking-uri at the sweep's store")


def iter_sweep_dirs(tables_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Folders under ``tables_dir`` that hold a collected sweep."""
    for p in sorted(Path(tables_dir).rglob(S.TRIALS_FILE)):
        yield p.parent
