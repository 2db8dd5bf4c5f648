"""Where a sweep's records come from: its MLflow runs (found by parent run id or sweep tag, their
metric histories read in bulk) and, optionally, Tune's result files (trials MLflow never heard
of). Read-only: a local store that does not exist is refused before MLflow would create it.

Speed: per-run ``get_metric_history`` calls cost a round trip each (1,000 trials x 15 metrics =
15,000 calls). For SQL tracking stores we read the points with one column-only query per chunk
of runs through MLflow's own session and table model (a private API kept for speed; the public
per-run calls are its fallback, exercised by a test); for other stores (an HTTP tracking server)
we issue the per-run calls from a thread pool, since they are I/O bound.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from sweeps import record
from sweeps.tracking import search_all

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
    stage: str = record.STAGE_SEARCH  # the confirmation's trials live in <sweep>/confirm/


def _quote(value: str) -> str:
    """Quote a string for an MLflow filter expression."""
    return "'" + value.replace("'", "\\'") + "'"


def _is_metric(key: str) -> bool:
    return key.startswith(record.METRIC_PREFIXES)


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



# --------------------------------------------------------------------------------------------
# MLflow


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
        name = sweep or parent.data.tags.get(record.TAG_SWEEP)
        if not name:
            raise ValueError(
                f"parent run {parent_run_id} has no {record.TAG_SWEEP!r} tag; pass --sweep to name the sweep"
            )
        children = search_all(
            client, [parent.info.experiment_id], f"tags.{record.TAG_PARENT_RUN_ID} = {_quote(parent_run_id)}"
        )
        return name, [parent], children
    if not sweep:
        raise ValueError("give a sweep name or a parent run id")
    exp_name = experiment or sweep
    exp = client.get_experiment_by_name(exp_name)
    if exp is None:
        known = sorted(e.name for e in client.search_experiments())
        raise ValueError(f"no MLflow experiment named {exp_name!r}; experiments here: {', '.join(known) or 'none'}")
    sweep_filter = f"tags.`{record.TAG_SWEEP}` = {_quote(sweep)}"
    parents = search_all(client, [exp.experiment_id], f"{sweep_filter} and tags.`{record.TAG_ROLE}` = '{record.ROLE_PARENT}'")
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
    children = search_all(client, [exp.experiment_id], f"{sweep_filter} and tags.`{record.TAG_ROLE}` = '{record.ROLE_TRIAL}'")
    return sweep, parents, children


def _fmt_ms(ms: int | None) -> str:
    return "unknown" if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def histories(client: Any, runs: list[Any], progress: bool) -> pd.DataFrame:
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


# --------------------------------------------------------------------------------------------
# Tune


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
        stage = record.STAGE_CONFIRM if folder.parent.name == record.CONFIRM_EXPERIMENT else record.STAGE_SEARCH
        trials[trial_id] = TuneTrial(trial_id, config, rows, errored, wall, stage)
    return trials


def tune_curves(trial: TuneTrial) -> pd.DataFrame:
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


