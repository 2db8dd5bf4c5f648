"""Collecting sweeps: record → table logic on fake runs (fast) and a real local MLflow store."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from analysis import collect as C
from analysis import schema as S
from analysis import sources
from infogan.config import KEYS
from sweeps import record


def fake_run(run_id: str, trial_id: str, *, status_tag: str | None = "finished", mlflow_status: str = "FINISHED",
             params: dict | None = None, start: int = 1_000, tags: dict | None = None) -> SimpleNamespace:
    """Something shaped like ``mlflow.entities.Run`` for build_tables."""
    t = {record.TAG_ROLE: record.ROLE_TRIAL, record.TAG_SWEEP: "s", record.TAG_TRIAL_ID: trial_id, record.TAG_PARENT_RUN_ID: "p"}
    if status_tag is not None:
        t[record.TAG_STATUS] = status_tag
    t.update(tags or {})
    info = SimpleNamespace(run_id=run_id, start_time=start, end_time=start + 5000, status=mlflow_status,
                           experiment_id="1", artifact_uri=f"file:///a/{run_id}/artifacts")
    return SimpleNamespace(info=info, data=SimpleNamespace(tags=t, params=params or {}, metrics={}))


def history(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["run_id", "metric", "step", "value", "timestamp"])


def test_build_tables_final_best_status_and_config_types() -> None:
    runs = [
        fake_run("r1", "a", params={"loss.lambda_cont": "0.5", "codes.categorical": "10,3", "train.seed": "7",
                                    "data.download": "False", "train.steps": "3", "loss.new_knob": "x"},
                 tags={record.TAG_FID_FEATURE_NET: "lenet@1"}),
        # Logged by an older version: eval.fid=False meant "no FID in either stage".
        fake_run("r2", "b", status_tag="running", mlflow_status="FAILED",
                 params={"train.seed": "1", "eval.fid": "False", "eval.intermediate": "mig,fid"}),
    ]
    h = history([
        ("r1", "eval/mig", 1, 0.2, 10), ("r1", "eval/mig", 3, 0.1, 30), ("r1", "eval/mig", 2, 0.4, 20),
        ("r1", "eval/fid", 1, 50.0, 10), ("r1", "eval/fid", 3, 30.0, 30), ("r1", "eval/fid", 2, 20.0, 20),
        ("r1", "time/wall_seconds", 3, 12.5, 31), ("r2", "train/loss_d", 1, float("nan"), 5),
    ])
    trials, curves = C.build_tables("s", [], runs, h)
    df = trials.to_pandas().set_index("trial_id")
    assert df.loc["a", "final/eval/mig"] == 0.1 and df.loc["a", "best/eval/mig"] == 0.4
    assert df.loc["a", "best/eval/fid"] == 20.0 and df.loc["a", "final/eval/fid"] == 30.0  # FID: lower is best
    assert "best/train/loss_d" not in df.columns and "best/time/wall_seconds" not in df.columns
    assert df.loc["a", "wall_seconds"] == 12.5 and df.loc["a", "steps_done"] == 3
    assert df.loc["a", "status"] == "finished" and df.loc["b", "status"] == "failed"
    assert df.loc["a", "seed"] == 7 and df.loc["a", "loss.lambda_cont"] == 0.5
    assert df.loc["a", "codes.categorical"] == "10,3" and not df.loc["a", "data.download"]
    assert df.loc["a", "loss.new_knob"] == "x"  # a param newer than this config: kept as text
    assert "eval.fid" not in df.columns and df.loc["b", "eval.intermediate"] == "mig"  # retired keys read as today's
    assert df.loc["a", "artifact/traversal"] == "file:///a/r1/artifacts/figures/traversal.png"
    assert df.loc["b", "wall_seconds"] == 5.0  # no time metric: run end − start
    assert set(KEYS) <= set(df.columns)
    assert curves.num_rows == 8 and curves.column("step").to_pylist()[:3] == [1, 2, 3]


def test_restarted_trial_keeps_the_run_that_got_furthest() -> None:
    runs = [fake_run("old", "a", start=1), fake_run("new", "a", start=2)]
    h = history([("old", "eval/mig", 5, 0.3, 1), ("new", "eval/mig", 2, 0.1, 2)])
    trials, curves = C.build_tables("s", [], runs, h)
    assert trials.column("run_id").to_pylist() == ["old"]
    assert set(curves.column("run_id").to_pylist()) == {"old"}


def test_points_logged_twice_by_a_retry_keep_the_last() -> None:
    # The retry resumed from the step-2 checkpoint and logged steps 3 and 4 again, later.
    h = history([
        ("r1", "eval/mig", 2, 0.2, 20), ("r1", "eval/mig", 3, 0.9, 30), ("r1", "eval/mig", 4, 0.8, 40),
        ("r1", "eval/mig", 3, 0.3, 130), ("r1", "eval/mig", 4, 0.4, 140), ("r1", "train/loss_d", 4, 1.0, 40),
    ])
    trials, curves = C.build_tables("s", [], [fake_run("r1", "a")], h)
    mig = curves.to_pandas().query("metric == 'eval/mig'")
    assert mig["step"].tolist() == [2, 3, 4] and mig["value"].tolist() == [0.2, 0.3, 0.4]
    assert curves.num_rows == 4
    row = trials.to_pylist()[0]
    assert row["best/eval/mig"] == 0.4 and row["final/eval/mig"] == 0.4  # the first attempt's 0.9 is gone


def _read(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return S.read_trials(folder / S.TRIALS_FILE), S.read_curves(folder / S.CURVES_FILE)


@pytest.mark.slow
def test_collect_is_idempotent_and_complete(mlflow_store, tmp_path: Path) -> None:
    a = C.collect(mlflow_store.uri, sweep="demo", tune_dir=mlflow_store.tune_dir, out_dir=tmp_path / "a", progress=False)
    b = C.collect(mlflow_store.uri, sweep="demo", tune_dir=mlflow_store.tune_dir, out_dir=tmp_path / "b", progress=False)
    for kind in (S.TRIALS, S.CURVES):
        assert a.paths[kind].read_bytes() == b.paths[kind].read_bytes()
    ta, ca = _read(tmp_path / "a" / "demo")
    tb, cb = _read(tmp_path / "b" / "demo")
    pd.testing.assert_frame_equal(ta, tb)
    pd.testing.assert_frame_equal(ca, cb)
    # 8 MLflow trials + 1 that only Tune knows (it crashed before opening its run).
    assert len(ta) == 9 and ta["trial_id"].is_unique
    status = ta.set_index("trial_id")["status"]
    assert status["t00000"] == "finished" and status["t00002"] == "stopped_early"
    assert status["t00003"] == "diverged" and status["t00005"] == "failed" and status["tune_only"] == "failed"
    assert pd.isna(ta.set_index("trial_id").loc["tune_only", "run_id"])
    # A diverged run's NaN loss survives the store (is_nan flag) and is its final value.
    div = ca[(ca.trial_id == "t00003") & (ca.metric == "train/loss_d")]
    assert div["value"].iloc[-1] != div["value"].iloc[-1] and div["value"].iloc[:-1].notna().all()
    assert pd.isna(ta.set_index("trial_id").loc["t00003", "final/train/loss_d"])
    assert ta.set_index("trial_id").loc["t00003", "diverged_step"] == 20
    assert ta["fid_feature_net"].dropna().unique().tolist() == ["lenet_dsprites@abc123"]
    assert (ta.set_index("trial_id").loc["t00000", "final/eval/mig"]
            == ca[(ca.trial_id == "t00000") & (ca.metric == "eval/mig")].sort_values("step")["value"].iloc[-1])
    assert not list((tmp_path / "a" / "demo").glob(".*tmp"))  # no temp files left behind


@pytest.mark.slow
def test_collect_by_parent_run_id_matches_by_name(mlflow_store) -> None:
    by_name = C.collect(mlflow_store.uri, sweep="demo", progress=False)
    by_parent = C.collect(mlflow_store.uri, parent_run_id=mlflow_store.sweep.parent_run_id, progress=False)
    pd.testing.assert_frame_equal(by_name.trials.to_pandas(), by_parent.trials.to_pandas())  # NaN-aware
    pd.testing.assert_frame_equal(by_name.curves.to_pandas(), by_parent.curves.to_pandas())
    assert by_name.trials.num_rows == 8  # without the Tune folder the Tune-only trial is unknown


@pytest.mark.slow
def test_sweeps_concatenate_and_cli(mlflow_store, tmp_path: Path, capsys) -> None:
    from analysis.__main__ import main
    from analysis.synthetic import log_synthetic_sweep

    log_synthetic_sweep(mlflow_store.uri, "other", lambdas=(0.1,), seeds=(0,), steps=6, eval_every=3,
                        eval_metrics=("eval/mig", "eval/sap"))
    out = tmp_path / "tables"
    assert main(["collect", "--tracking-uri", mlflow_store.uri, "--sweep", "demo", "--out", str(out), "--no-progress"]) == 0
    assert main(["collect", "--tracking-uri", mlflow_store.uri, "--sweep", "other", "--out", str(out), "--no-progress"]) == 0
    trials = S.read_trials(out)
    assert sorted(trials["sweep"].unique()) == ["demo", "other"]
    # The space each sweep logged lies beside its tables; the report's default knob comes from it.
    assert json.loads((S.sweep_dir(out, "demo") / "search_space.json").read_text())["params"] == {
        "loss.lambda_cont": {"low": 0.01, "high": 1.0, "log": True}}
    assert trials.loc[trials.sweep == "demo", "final/eval/sap"].isna().all()  # only "other" logged SAP
    assert trials.loc[trials.sweep == "other", "final/eval/sap"].notna().all()
    assert len(S.read_curves(out).groupby(["sweep", "trial_id"])) == len(trials)
    assert main(["collect", "--tracking-uri", mlflow_store.uri, "--sweep", "nope", "--out", str(out)]) == 2
    assert "no MLflow experiment named 'nope'" in capsys.readouterr().err
    assert main(["report", "--tables", str(out), "--sweep", "demo", "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "## Pareto front" in text and "(figures/pareto.png)" in text
    # The synthetic sweep repeats every lambda over two seeds: the study table has their spread.
    assert "## Study: metrics by loss.lambda_cont, with seed spread" in text and "(figures/study.png)" in text
    assert "| loss.lambda_cont | n | n_seeds | eval/mig mean | eval/mig std |" in text
    assert "## Hyperparameter importance" in text and "| loss.lambda_cont |" in text.split("## Hyperparameter importance")[1]
    assert "python -m analysis codes" in text  # no codes.npz yet: the report says how to get ModelCentrality
    assert (tmp_path / "rep" / "figures" / "pareto.png").stat().st_size > 1000


@pytest.mark.slow
def test_two_parents_with_one_sweep_name_are_refused(mlflow_store) -> None:
    from analysis.synthetic import log_synthetic_sweep

    first = log_synthetic_sweep(mlflow_store.uri, "twice", lambdas=(0.1,), seeds=(0,), steps=2, eval_every=1)
    second = log_synthetic_sweep(mlflow_store.uri, "twice", lambdas=(0.1,), seeds=(1,), steps=2, eval_every=1)
    with pytest.raises(ValueError, match="2 parent runs") as err:
        C.collect(mlflow_store.uri, sweep="twice", progress=False)
    message = str(err.value)
    assert first.parent_run_id in message and second.parent_run_id in message
    assert "--parent-run-id" in message and "started 2023-11-14" in message  # the synthetic start time
    one = C.collect(mlflow_store.uri, parent_run_id=second.parent_run_id, progress=False).trials.to_pandas()
    assert one["run_id"].tolist() == list(second.run_ids) and one["seed"].tolist() == [1]


@pytest.mark.slow
def test_cli_default_store_is_the_sweeps(mlflow_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from analysis.__main__ import main

    # No --tracking-uri, no $MLFLOW_TRACKING_URI: sqlite:///mlflow.db in the current folder, as the sweep.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(mlflow_store.root)
    assert main(["collect", "--sweep", "demo", "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    assert len(S.read_trials(tmp_path / "a")) == 8
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store.uri)
    assert main(["collect", "--sweep", "demo", "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    assert len(S.read_trials(tmp_path / "b")) == 8


@pytest.mark.slow
def test_api_fallback_reads_the_same_histories(mlflow_store, monkeypatch: pytest.MonkeyPatch) -> None:
    # An HTTP tracking server has no SQL session: collect then uses per-run get_metric_history.
    fast = C.collect(mlflow_store.uri, sweep="demo", progress=False)

    def no_sql(*args, **kwargs):
        raise ImportError("pretend MLflow moved its table models")

    monkeypatch.setattr(sources, "_histories_sql", no_sql)
    slow = C.collect(mlflow_store.uri, sweep="demo", progress=False)
    pd.testing.assert_frame_equal(fast.trials.to_pandas(), slow.trials.to_pandas())
    pd.testing.assert_frame_equal(fast.curves.to_pandas(), slow.curves.to_pandas())


def test_read_tune_dir_survives_a_truncated_line(tmp_path: Path) -> None:
    trial = tmp_path / "trainable_x"
    trial.mkdir()
    (trial / "result.json").write_text(
        '{"trial_id": "x", "training_iteration": 1, "step": 5, "eval/mig": 0.3, "time_total_s": 2.0, '
        '"config": {"loss": {"lambda_cont": 0.1}, "train.seed": 3}}\n{"trial_id": "x", "trainin'
    )
    (trial / "error.txt").write_text("boom")
    got = sources.read_tune_dir(tmp_path)["x"]
    assert got.errored and got.wall_seconds == 2.0 and len(got.rows) == 1
    assert got.config == {"loss.lambda_cont": 0.1, "train.seed": 3}  # nested configs are flattened
    trials, curves = C.build_tables("s", [], [], C.pd.DataFrame(columns=["run_id", "metric", "step", "value", "timestamp"]),
                                    {"x": got})
    row = trials.to_pylist()[0]
    assert row["status"] == "failed" and row["seed"] == 3 and row["final/eval/mig"] == 0.3 and row["run_id"] is None
    assert curves.num_rows == 1


def test_collect_never_creates_or_initialises_a_store(tmp_path: Path, capsys) -> None:
    from analysis.__main__ import main

    missing = tmp_path / "nope" / "mlflow.db"
    assert main(["collect", "--tracking-uri", f"sqlite:///{missing}", "--sweep", "s", "--out", str(tmp_path / "t")]) == 2
    assert "no MLflow store at" in capsys.readouterr().err and not missing.exists() and not missing.parent.exists()
    empty = tmp_path / "empty.db"
    empty.touch()
    assert main(["collect", "--tracking-uri", f"sqlite:///{empty}", "--sweep", "s", "--out", str(tmp_path / "t")]) == 2
    assert "holds no MLflow tables" in capsys.readouterr().err and empty.stat().st_size == 0
    assert not (tmp_path / "t").exists()


@pytest.mark.slow
def test_collect_into_an_unwritable_folder_is_one_line(mlflow_store, tmp_path: Path, capsys, monkeypatch) -> None:
    import os

    from analysis.__main__ import main

    # MLflow's default (a tqdm bar per artifact download), whatever an earlier test left behind.
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)

    if os.geteuid() == 0:
        out = tmp_path / "file-not-folder"
        out.write_text("a file where the folder should be")  # root ignores permission bits
    else:
        out = tmp_path / "locked"
        out.mkdir(mode=0o500)
    assert main(["collect", "--tracking-uri", mlflow_store.uri, "--sweep", "demo", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot use {out}") and "Traceback" not in err[0]


@pytest.mark.slow
def test_curves_carry_each_fid_points_feature_network(mlflow_store) -> None:
    curves = C.collect(mlflow_store.uri, sweep="demo", progress=False).curves.to_pandas()
    fid = curves[curves["metric"] == "eval/fid"]
    assert len(fid) and (fid["fid_feature_net"] == "lenet_dsprites@abc123").all()
    assert curves.loc[curves["metric"] != "eval/fid", "fid_feature_net"].isna().all()


@pytest.mark.slow
def test_report_with_two_fid_networks_drops_only_the_fid_parts(mlflow_store, tmp_path: Path) -> None:
    import pyarrow as pa

    from analysis.report import write_report

    res = C.collect(mlflow_store.uri, sweep="demo", progress=False)
    trials, curves = res.trials.to_pandas(), res.curves.to_pandas()
    other = trials["trial_id"].iloc[0]
    trials.loc[trials["trial_id"] == other, "fid_feature_net"] = "inception@xyz"
    curves.loc[(curves["trial_id"] == other) & (curves["metric"] == "eval/fid"), "fid_feature_net"] = "inception@xyz"
    folder = tmp_path / "tables" / "demo"
    S.write_table(pa.Table.from_pandas(trials, schema=res.trials.schema, preserve_index=False), folder / S.TRIALS_FILE)
    S.write_table(pa.Table.from_pandas(curves, schema=res.curves.schema, preserve_index=False), folder / S.CURVES_FILE)
    text = write_report(tmp_path / "tables", tmp_path / "rep", sweep="demo", statuses=None).read_text()
    board = text.split("## Search leaderboard by eval/mig")[1].split("## ")[0]
    assert "| trial_id |" in board and "eval/fid is left out" in board  # the leaderboard stays, without FID
    figures = text.split("## Figures")[1]
    assert "learning_curves.png" in figures and "_Skipped" not in figures
