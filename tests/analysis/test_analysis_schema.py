"""The tables' schema: round trip, types, version refusal, concatenation of sweeps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import schema as S
from infogan.config import KEYS


def _trials_table(sweep: str, metrics: list[str]) -> pa.Table:
    schema = S.trials_schema(metrics)
    rows = [
        {"sweep": sweep, "trial_id": f"t{i}", "run_id": f"r{i}", "status": "finished", "seed": i, "config_id": "c", "stage": "search",
         "steps_done": 10, "loss.lambda_cont": 0.1 * (i + 1), "codes.categorical": "10,3", "data.download": False,
         "start_time": pd.Timestamp(1_700_000_000_000 + i, unit="ms", tz="UTC"),
         **{S.FINAL_PREFIX + m: 0.5 + i for m in metrics}}
        for i in range(3)
    ]
    return pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in rows], schema=schema)


def test_every_config_key_has_a_typed_column() -> None:
    schema = S.trials_schema(["eval/mig", "train/loss_d"])
    assert set(KEYS) <= set(schema.names)
    assert schema.field("loss.lambda_cont").type == pa.float64()
    assert schema.field("train.seed").type == pa.int64()
    assert schema.field("data.download").type == pa.bool_()
    assert schema.field("codes.categorical").type == pa.string()
    assert "best/eval/mig" in schema.names and "best/train/loss_d" not in schema.names
    assert schema.metadata[S.SCHEMA_VERSION_KEY] == str(S.SCHEMA_VERSION).encode()


def test_round_trip(tmp_path: Path) -> None:
    table = _trials_table("s", ["eval/mig", "eval/fid"])
    path = S.write_table(table, tmp_path / "s" / S.TRIALS_FILE)
    back = S.read_trials(path)
    pd.testing.assert_frame_equal(back, table.to_pandas())
    assert back["seed"].dtype == "int64" and back["loss.lambda_cont"].dtype == "float64"
    assert str(back["start_time"].dtype) == "datetime64[ms, UTC]"
    assert pq.read_schema(path).equals(table.schema)
    # Same table, same bytes: nothing time-dependent is written.
    again = S.write_table(table, tmp_path / "again.parquet")
    assert again.read_bytes() == path.read_bytes()


def test_sweeps_with_different_metrics_concatenate(tmp_path: Path) -> None:
    S.write_table(_trials_table("a", ["eval/mig"]), tmp_path / "a" / S.TRIALS_FILE)
    S.write_table(_trials_table("b", ["eval/mig", "eval/sap"]), tmp_path / "b" / S.TRIALS_FILE)
    df = S.read_trials(tmp_path)
    assert len(df) == 6 and df.groupby("sweep").size().to_dict() == {"a": 3, "b": 3}
    assert df.loc[df.sweep == "a", "final/eval/sap"].isna().all()
    assert df["seed"].dtype == "int64"


def _with_metadata(table: pa.Table, meta: dict[bytes, bytes] | None) -> pa.Table:
    return table.replace_schema_metadata(meta)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({S.SCHEMA_VERSION_KEY: b"99", S.TABLE_KIND_KEY: b"trials"}, f"version 99 is newer than the version {S.SCHEMA_VERSION}"),
        ({S.SCHEMA_VERSION_KEY: b"1", S.TABLE_KIND_KEY: b"trials"}, "version 1 is not supported"),
        ({S.SCHEMA_VERSION_KEY: b"banana", S.TABLE_KIND_KEY: b"trials"}, "unknown schema version"),
        ({S.SCHEMA_VERSION_KEY: b"0", S.TABLE_KIND_KEY: b"trials"}, "unknown schema version"),
        (None, "not a table written by"),
        ({S.SCHEMA_VERSION_KEY: str(S.SCHEMA_VERSION).encode(), S.TABLE_KIND_KEY: b"curves"}, "expected a 'trials' table"),
    ],
)
def test_bad_versions_are_refused(tmp_path: Path, meta: dict | None, message: str) -> None:
    path = tmp_path / S.TRIALS_FILE
    pq.write_table(_with_metadata(_trials_table("s", ["eval/mig"]), meta), path)
    with pytest.raises(S.SchemaVersionError, match=message):
        S.read_trials(path)


def test_reading_tables_needs_only_pandas_and_pyarrow(tmp_path: Path) -> None:
    S.write_table(_trials_table("s", ["eval/mig"]), tmp_path / "s" / S.TRIALS_FILE)
    code = (
        "import sys; from analysis import schema; "
        f"df = schema.read_trials({str(tmp_path)!r}); "
        "bad = [m for m in ('mlflow', 'ray', 'torch', 'infogan.config') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_analysis_never_imports_ray() -> None:
    code = (
        "import sys, analysis.collect, analysis.compare, analysis.plots, analysis.report, analysis.synthetic, "
        "analysis.__main__; assert 'ray' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_metric_direction() -> None:
    assert S.metric_direction("final/eval/fid") == "min"
    assert S.metric_direction("train/loss_d") == "min"
    assert S.metric_direction("best/eval/mig") == "max"
    assert S.metric_direction("eval/some_new_metric") == "max"


def test_quality_metrics_get_best_columns_and_bookkeeping_does_not() -> None:
    logged = ["eval/mig", "eval/fid", "eval/factor_vae", "eval/seconds", "eval/factor_vae_train",
              "eval/factor_vae_num_active", "eval/dci_informativeness_train", "train/loss_d", "time/wall_seconds"]
    schema = S.trials_schema(logged)
    assert sorted(n for n in schema.names if n.startswith(S.BEST_PREFIX)) == [
        "best/eval/factor_vae", "best/eval/fid", "best/eval/mig"]
    assert all(S.FINAL_PREFIX + m in schema.names for m in logged)  # every metric keeps its final value
    df = pd.DataFrame({S.FINAL_PREFIX + m: [0.0] for m in logged})
    assert S.quality_columns(df) == ["final/eval/factor_vae", "final/eval/fid", "final/eval/mig"]
    assert S.quality_columns(df, fid=False) == ["final/eval/factor_vae", "final/eval/mig"]
    assert S.is_quality("best/eval/mig") and not S.is_quality("final/eval/seconds")


@pytest.mark.parametrize(("drop", "retype", "message"), [
    ("sweep", None, "sweep missing"),
    ("status", None, "status missing"),
    (None, ("seed", pa.string()), "seed is string, expected int64"),
])
def test_right_version_wrong_columns_is_refused_by_name(tmp_path: Path, drop: str | None,
                                                         retype: tuple[str, pa.DataType] | None, message: str) -> None:
    table = _trials_table("s", ["eval/mig"])
    meta = table.schema.metadata
    if drop:
        table = table.drop_columns([drop])
    if retype:
        i = table.schema.get_field_index(retype[0])
        table = table.set_column(i, pa.field(retype[0], retype[1]), table.column(i).cast(retype[1]))
    path = tmp_path / S.TRIALS_FILE
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(S.SchemaVersionError, match=message):
        S.read_trials(path)


def test_a_pair_of_tables_is_written_together_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trials = _trials_table("s", ["eval/mig"])
    old = {tmp_path / "a.parquet": trials, tmp_path / "b.parquet": trials}
    S.write_tables(old)
    before = {p: p.read_bytes() for p in old}
    real_write = pq.write_table
    calls = {"n": 0}

    def full_disk(table: pa.Table, where: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        real_write(table, where, **kwargs)

    monkeypatch.setattr(pq, "write_table", full_disk)
    new = _trials_table("s", ["eval/mig", "eval/sap"])
    with pytest.raises(OSError, match="No space left"):
        S.write_tables({p: new for p in old})
    assert {p: p.read_bytes() for p in old} == before  # the first file was not replaced alone
    assert sorted(f.name for f in tmp_path.iterdir()) == ["a.parquet", "b.parquet"]  # no temp files left


def test_tables_that_do_not_exist_say_to_collect_first(tmp_path: Path) -> None:
    for missing in (tmp_path / "notables", tmp_path / "notables" / "trials.parquet"):
        with pytest.raises(FileNotFoundError, match=f"no tables at {missing}; run `python -m analysis collect"):
            S.read_trials(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no trials.parquet under"):
        S.read_trials(tmp_path / "empty")
