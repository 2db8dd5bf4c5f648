"""The analysis tables' contract: column names, Arrow schemas, schema version, read and write.

Owns the two Parquet tables that ``analysis collect`` writes and everything else reads:

- ``trials.parquet``: one row per trial. Fixed identity/status columns, one column per config key
  (the dotted name, typed from ``infogan.config`` field kinds), and for every metric seen
  ``final/<metric>`` (value at the last logged step) and, for quality metrics (``is_quality``),
  ``best/<metric>`` (best value over steps; lower is better only for FID-like metrics).
- ``curves.parquet``: long format, one row per trial × metric × logged step.

The names of the MLflow/Tune record come from ``sweeps.record``, the one module that defines
them (it imports neither MLflow nor Ray, so reading tables stays light). The schema version lives
in the Parquet file's key/value metadata; reading a file with a newer or unknown version is
refused rather than silently misread. Reading needs only pandas + pyarrow.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from infogan import metric_catalogue as catalogue
from infogan.atomic import atomic_path
from sweeps import record

METRIC_FID = catalogue.FID

# --------------------------------------------------------------------------------------------
# Table schemas.

SCHEMA_VERSION = 3  # 2: curves carry fid_feature_net; 3: trials carry stage and candidate
SCHEMA_VERSION_KEY = b"infogan.analysis.schema_version"
TABLE_KIND_KEY = b"infogan.analysis.table"
TRIALS = "trials"
CURVES = "curves"
TRIALS_FILE = "trials.parquet"
CURVES_FILE = "curves.parquet"
CODES_FILE = "codes.npz"  # ModelCentrality's input, written by `analysis codes` beside the tables

FINAL_PREFIX = "final/"
BEST_PREFIX = "best/"

_TS = pa.timestamp("ms", tz="UTC")

# Identity, status and bookkeeping columns of trials.parquet, in order.
TRIALS_BASE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("sweep", pa.string(), nullable=False),
    pa.field("trial_id", pa.string(), nullable=False),
    pa.field("run_id", pa.string()),  # null for a trial known only from Tune's results
    pa.field("parent_run_id", pa.string()),
    pa.field("experiment_id", pa.string()),
    pa.field("status", pa.string(), nullable=False),
    pa.field("seed", pa.int64()),
    # Hash of the config without seed and machine-only keys: rows sharing it differ only by seed.
    pa.field("config_id", pa.string(), nullable=False),
    # The sweep's stage (sweeps.record.STAGES: search, or the confirmation's re-runs on fresh
    # seeds) and, in the confirmation, which config it re-ran ("recipe", "top1", ...).
    pa.field("stage", pa.string(), nullable=False),
    pa.field("candidate", pa.string()),
    pa.field("steps_done", pa.int64()),
    pa.field("wall_seconds", pa.float64()),
    pa.field("diverged_step", pa.int64()),
    pa.field("fid_feature_net", pa.string()),
    pa.field("git_commit", pa.string()),
    pa.field("start_time", _TS),
    pa.field("end_time", _TS),
    pa.field("artifact_uri", pa.string()),
    *(pa.field(col, pa.string()) for col in record.ARTIFACTS),
)

CURVES_SCHEMA = pa.schema(
    [
        pa.field("sweep", pa.string(), nullable=False),
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string()),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("timestamp", _TS),
        # The network an FID-like point was measured with (null for other metrics): points from
        # different feature networks are never drawn or compared together.
        pa.field("fid_feature_net", pa.string()),
    ]
)

def config_kinds() -> dict[str, str]:
    """Kind of every dotted config key: ``"int"``, ``"float"``, ``"bool"`` or ``"string"``.

    Code tuples (``codes.categorical``) are kept as the comma-joined string MLflow logs (``"10,3"``,
    ``""`` for none), which stays groupable in pandas.

    Returns:
        Mapping of dotted key to kind, in ``infogan.config.KEYS`` order.
    """
    from infogan.config import KEYS, value_kind

    return {key: value_kind(key) for key in KEYS}


_ARROW_OF_KIND = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "string": pa.string()}


def metric_direction(metric: str) -> str:
    """``"min"`` if lower is better for ``metric`` (FID, losses, NLLs), else ``"max"``: the
    metric catalogue's direction (``infogan.metric_catalogue.direction``) of the column's metric.

    Args:
        metric: metric key with or without a ``final/`` or ``best/`` prefix.

    Returns:
        ``"min"`` or ``"max"``.
    """
    return catalogue.direction(strip_prefix(metric))


def strip_prefix(column: str) -> str:
    """``final/eval/mig`` → ``eval/mig``; other names unchanged."""
    for prefix in (FINAL_PREFIX, BEST_PREFIX):
        if column.startswith(prefix):
            return column[len(prefix) :]
    return column


def is_quality(metric: str) -> bool:
    """Whether ``metric`` scores the model (MIG, FID, accuracies…) rather than describing the run.

    The one notion every default metric list uses (effects, seed robustness, correlation
    heatmaps, notebook summaries, ``best/`` columns), declared in ``infogan.metric_catalogue``:
    ``eval/*`` minus evaluation wall time, FactorVAE's active-code count and the probes' training
    accuracies (``*_train``). ``train/*`` losses and ``time/*`` are not quality metrics either.

    Args:
        metric: metric key with or without a ``final/`` or ``best/`` prefix.

    Returns:
        True for quality metrics.
    """
    return catalogue.is_quality(strip_prefix(metric))


def is_fid(metric: str) -> bool:
    """Whether a metric (or column) is an FID, whose scale depends on the feature network."""
    return strip_prefix(metric).rsplit("/", 1)[-1].startswith("fid")


def has_best(metric: str) -> bool:
    """Whether a ``best/`` column is kept for ``metric``: quality metrics only (the "best" eval
    time or training loss is nothing anyone should select a model on)."""
    return is_quality(metric)


def trials_schema(metrics: Iterable[str] = (), extra_params: Iterable[str] = ()) -> pa.Schema:
    """The Arrow schema of trials.parquet for a given set of metrics.

    Args:
        metrics: metric keys seen in the sweep (e.g. ``eval/mig``); each gives ``final/<m>`` and,
            for quality metrics (``is_quality``), ``best/<m>`` float64 columns, in sorted order.
        extra_params: params logged on trial runs that are not config keys of this version of
            ``infogan.config`` (a newer sweep); kept as string columns under their own names.

    Returns:
        The schema, with the schema version in its metadata.
    """
    kinds = config_kinds()
    cols = list(TRIALS_BASE_FIELDS)
    cols += [pa.field(k, _ARROW_OF_KIND[kind]) for k, kind in kinds.items()]
    cols += [pa.field(p, pa.string()) for p in sorted(set(extra_params) - set(kinds))]
    for m in sorted(set(metrics)):
        cols.append(pa.field(FINAL_PREFIX + m, pa.float64()))
        if has_best(m):
            cols.append(pa.field(BEST_PREFIX + m, pa.float64()))
    return pa.schema(cols, metadata=_metadata(TRIALS))


def curves_schema() -> pa.Schema:
    """The Arrow schema of curves.parquet, with the schema version in its metadata."""
    return CURVES_SCHEMA.with_metadata(_metadata(CURVES))


def _metadata(kind: str) -> dict[bytes, bytes]:
    return {SCHEMA_VERSION_KEY: str(SCHEMA_VERSION).encode(), TABLE_KIND_KEY: kind.encode()}


# --------------------------------------------------------------------------------------------
# Reading and writing.


class SchemaVersionError(ValueError):
    """A table was written with a schema version this code does not know."""


def write_tables(tables: dict[Path, pa.Table]) -> dict[Path, Path]:
    """Write several tables as one: every file to a temporary name first, then all renamed.

    A failure while writing any of them (an unwritable folder, a full disk) leaves every older
    file as it was, so a trials/curves pair is never left mismatched.
    """
    from contextlib import ExitStack

    with ExitStack() as stack:
        for path, table in tables.items():
            tmp = stack.enter_context(atomic_path(path))
            pq.write_table(table, tmp, compression="zstd")
    return {p: p for p in tables}


def write_table(table: pa.Table, path: str | os.PathLike[str]) -> Path:
    """Write a Parquet table atomically: a temp file in the same folder, then ``os.replace``.

    Args:
        table: table whose schema carries the version metadata.
        path: destination file.

    Returns:
        The destination path.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        # No statistics-dependent or time-dependent options: the same table gives the same bytes.
        pq.write_table(table, tmp, compression="zstd")
    return path


def check_version(schema: pa.Schema, path: str | os.PathLike[str], expected_kind: str | None = None) -> None:
    """Refuse a table whose schema version is missing, newer or unknown, or of the wrong kind.

    Args:
        schema: the file's Arrow schema.
        path: the file, for the message.
        expected_kind: ``"trials"`` or ``"curves"``; None accepts either.

    Raises:
        SchemaVersionError: with what was found and what this code reads.
    """
    meta = schema.metadata or {}
    raw = meta.get(SCHEMA_VERSION_KEY)
    if raw is None:
        raise SchemaVersionError(
            f"{path}: no {SCHEMA_VERSION_KEY.decode()} in the Parquet metadata; this is not a table "
            "written by `python -m analysis collect` (or it was rewritten by another tool). "
            "Re-collect it from MLflow."
        )
    try:
        version = int(raw.decode())
    except ValueError:
        version = None
    if version is None or version < 1:
        raise SchemaVersionError(f"{path}: unknown schema version {raw.decode()!r}; this code reads version {SCHEMA_VERSION}")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path}: schema version {version} is newer than the version {SCHEMA_VERSION} this code "
            "reads; update infogan-sweeps (or re-collect the sweep with this version)"
        )
    if version != SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path}: schema version {version} is not supported (this code reads version "
            f"{SCHEMA_VERSION}); re-collect the sweep"
        )
    kind = meta.get(TABLE_KIND_KEY, b"").decode()
    if expected_kind is not None and kind != expected_kind:
        raise SchemaVersionError(f"{path}: expected a {expected_kind!r} table, found {kind or 'no kind'!r}")


def check_columns(schema: pa.Schema, path: str | os.PathLike[str], kind: str) -> None:
    """Refuse a table whose fixed columns are missing or of another type (a right version number
    on a wrong file would otherwise fail later as a bare KeyError).

    Raises:
        SchemaVersionError: naming every missing or mistyped column.
    """
    expected = TRIALS_BASE_FIELDS if kind == TRIALS else tuple(CURVES_SCHEMA)
    problems = []
    for f in expected:
        if f.name not in schema.names:
            problems.append(f"{f.name} missing")
        elif not schema.field(f.name).type.equals(f.type):
            problems.append(f"{f.name} is {schema.field(f.name).type}, expected {f.type}")
    if problems:
        raise SchemaVersionError(f"{path}: not a valid {kind} table ({'; '.join(problems)}); re-collect the sweep "
                                 "with `python -m analysis collect`")


def read_arrow(path: str | os.PathLike[str], kind: str | None = None) -> pa.Table:
    """Read one table file after checking its version and its fixed columns.

    Args:
        path: a trials.parquet or curves.parquet file.
        kind: expected table kind, or None.

    Returns:
        The Arrow table.
    """
    schema = pq.read_schema(path)
    check_version(schema, path, kind)
    check_columns(schema, path, kind or (schema.metadata or {}).get(TABLE_KIND_KEY, b"").decode())
    return pq.read_table(path)


def _files(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], name: str) -> list[Path]:
    """Files named ``name`` under a directory (recursively), or the given files."""
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if p.is_dir():
            found = sorted(p.rglob(name))
            if not found:
                raise FileNotFoundError(f"no {name} under {p}; run `python -m analysis collect` first")
            return found
        if not p.exists():
            raise FileNotFoundError(f"no tables at {p}; run `python -m analysis collect --out {p}` first")
        return [p]
    return [Path(s) for s in source]


def _read_many(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], name: str, kind: str) -> pd.DataFrame:
    tables = [read_arrow(f, kind) for f in _files(source, name)]
    # Sweeps can log different metrics: "default" promotion unions the columns, filling nulls.
    table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    return table.to_pandas()


def read_trials(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Load trials tables and concatenate them.

    Args:
        source: a trials.parquet file, a list of them, or a directory searched recursively
            (``collect`` writes ``<out>/<sweep>/trials.parquet``).

    Returns:
        One DataFrame, rows of every sweep; metric columns missing in a sweep are NaN.
    """
    return _read_many(source, TRIALS_FILE, TRIALS)


def read_curves(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Load curves tables and concatenate them.

    Args:
        source: a curves.parquet file, a list of them, or a directory searched recursively.

    Returns:
        One long DataFrame with columns sweep, trial_id, run_id, metric, step, value, timestamp.
    """
    return _read_many(source, CURVES_FILE, CURVES)


def metric_columns(df: pd.DataFrame, prefix: str = FINAL_PREFIX) -> list[str]:
    """The ``final/…`` (or ``best/…``) columns present in a trials frame, sorted."""
    return sorted(c for c in df.columns if c.startswith(prefix))


def quality_columns(df: pd.DataFrame, prefix: str = FINAL_PREFIX, *, fid: bool = True) -> list[str]:
    """The quality-metric columns (``is_quality``) present in a trials frame, sorted.

    Args:
        df: trials frame.
        prefix: ``final/`` or ``best/``.
        fid: include FID columns (leave them out where several feature networks may mix).

    Returns:
        Column names, e.g. ``["final/eval/cat_accuracy", "final/eval/fid", "final/eval/mig"]``.
    """
    return [c for c in metric_columns(df, prefix) if is_quality(c) and (fid or not is_fid(c))]


def sweep_dir(root: str | os.PathLike[str], sweep: str) -> Path:
    """``<root>/<sweep>``: where one sweep's tables (and codes) live, the name made folder-safe."""
    cleaned = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in sweep).strip(".")
    return Path(root) / (cleaned or "sweep")
