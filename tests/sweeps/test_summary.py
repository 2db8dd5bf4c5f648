"""The sweep's answer on the parent run and in the closing output (no Ray cluster: Trial-like objects)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest

from sweeps import ranking, record, summary, tracking
from sweeps.uncertainty import MIN_TRIALS


@dataclass
class FakeTrial:
    """The part of Tune's Trial the summary reads."""

    trial_id: str
    config: dict[str, Any]
    last_result: dict[str, Any]
    status: str = "TERMINATED"
    extra: dict[str, Any] = field(default_factory=dict)


def _trials() -> list[FakeTrial]:
    cfg = {"train.steps": 20, "train.seed": 0}
    return [
        FakeTrial("a", {**cfg, "loss.lambda_cont": 0.1}, {"step": 20, "eval/mig": 0.10, "eval/fid": 50.0}),
        FakeTrial("b", {**cfg, "loss.lambda_cont": 0.3, "__trial_index__": 1}, {"step": 20, "eval/mig": 0.30}),
        FakeTrial("c", {**cfg, "loss.lambda_cont": 0.2}, {"step": 10, "eval/mig": 0.20}),  # cut by ASHA
        FakeTrial("d", {**cfg, "loss.lambda_cont": 0.5}, {}, status="RUNNING"),
    ]


def test_trial_rows_are_the_ended_trials_with_their_status_seed_and_params() -> None:
    rows = summary.trial_rows(_trials(), ["eval/mig"], ["loss.lambda_cont"])
    assert rows["trial_id"].tolist() == ["a", "b", "c"]  # d has not ended
    assert rows["status"].tolist() == ["finished", "finished", "stopped_early"]
    assert rows.loc[1, "seed"] == 1  # the repeat index became the seed
    assert rows.loc[0, "eval/fid"] == 50.0 and rows.loc[1, "loss.lambda_cont"] == 0.3
    assert math.isnan(rows.loc[1, "eval/fid"])


def test_closing_text_counts_statuses_and_shows_the_best_trials() -> None:
    board = ranking.ranked(summary.trial_rows(_trials(), ["eval/mig"], ["loss.lambda_cont"]), "eval/mig", False)
    text = summary.closing_text({"name": "s", "trials": 4, "statuses": {"finished": 2, "stopped_early": 1},
                                 "where": {"report": "python -m analysis report", "nothing": None}},
                                board, ["eval/mig"], ["loss.lambda_cont"])
    assert text.splitlines()[0] == "sweep 's': search 4 trials (2 finished, 1 stopped_early)"
    assert text.splitlines()[4].split()[0] == "b"  # the best trial first
    assert "search, best 3 by eval/mig (one seed per trial" in text and "report: python -m analysis report" in text and "nothing" not in text
    assert "Pareto front" not in text
    several = summary.closing_text({"name": "s", "pareto_front": [{"trial_id": "a"}, {"trial_id": "b"}]},
                                   board, ["eval/fid", "eval/mig"], [])
    assert "Pareto front of eval/fid, eval/mig: a, b" in several.splitlines()


def test_ui_urls_open_the_model_training_view() -> None:
    exp, run = summary.ui_urls("http://head:5000/", "7", "abc")
    assert exp == "http://head:5000/#/experiments/7?workflowType=machine_learning"
    assert run == "http://head:5000/#/experiments/7/runs/abc?workflowType=machine_learning"
    assert summary.ui_urls("sqlite:////x/mlflow.db", "1", "r")[0].startswith("http://127.0.0.1:5000/#/experiments/1")


def test_optuna_storage_defaults_beside_the_mlflow_store(tmp_path: Path) -> None:
    assert summary.default_optuna_storage(f"sqlite:///{tmp_path}/mlflow.db", "/x", "s") == f"sqlite:///{tmp_path}/optuna.db"
    assert summary.default_optuna_storage("http://h:5000", str(tmp_path), "s") == f"sqlite:///{tmp_path}/s/optuna.db"
    assert summary.default_optuna_storage("http://h:5000", "s3://bucket/tune", "s") is None
    assert summary.dashboard_command("sqlite:///o.db") == "optuna-dashboard sqlite:///o.db"


def test_publish_puts_leaderboard_plots_importances_and_best_traversal_on_the_parent(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = tracking.client(uri)
    experiment_id = tracking.get_or_create_experiment(client, "s", uri)
    parent = tracking.start_parent_run(client, experiment_id, "s", {}, {}, {})
    ref = tracking.SweepRef(uri, experiment_id, parent, "s")
    child = tracking.open_child_run(client, ref, "b", "run_trial_b")
    figure = tmp_path / "traversal.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(figure)
    client.log_artifact(child, str(figure), record.ARTIFACT_FIGURES_DIR)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("loss.lambda_cont", 0.01, 1, log=True) + 0.1 * t.suggest_int("codes.n", 1, 3),
                   n_trials=MIN_TRIALS["importance"] - 1)
    summary.publish(client, ref, _trials(), ["eval/mig"], ["max"], ["loss.lambda_cont"], storage)
    files = {a.path for a in client.list_artifacts(parent, summary.ARTIFACT_DIR)}
    assert f"{summary.ARTIFACT_DIR}/parallel_coordinates.png" in files  # importances: not meaningful yet
    assert f"{summary.ARTIFACT_DIR}/param_importances.png" not in files
    assert not [m for m in client.get_run(parent).data.metrics if m.startswith("importance/")]
    study.optimize(lambda t: t.suggest_float("loss.lambda_cont", 0.01, 1, log=True) + 0.1 * t.suggest_int("codes.n", 1, 3),
                   n_trials=1)
    board = summary.publish(client, ref, _trials(), ["eval/mig"], ["max"], ["loss.lambda_cont"], storage)
    assert board["trial_id"].iloc[0] == "b"
    files = {a.path for a in client.list_artifacts(parent, summary.ARTIFACT_DIR)}
    assert {f"{summary.ARTIFACT_DIR}/{n}" for n in ("leaderboard.csv", "leaderboard.md", "parallel_coordinates.png",
                                                   "param_importances.png", "best_trial")} <= files
    run = client.get_run(parent)
    assert run.data.tags[record.TAG_PREFIX + "best_trial_id"] == "b" and run.data.metrics["best/eval/mig"] == 0.3
    assert set(run.data.metrics) >= {"importance/loss.lambda_cont", "importance/codes.n"}
    note = client.get_run(child).data.tags[record.TAG_NOTE]
    assert parent in note and "Images tab" in note


def test_publish_with_too_few_trials_or_no_storage_still_writes_the_leaderboard(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = tracking.client(uri)
    experiment_id = tracking.get_or_create_experiment(client, "s", uri)
    parent = tracking.start_parent_run(client, experiment_id, "s", {}, {}, {})
    ref = tracking.SweepRef(uri, experiment_id, parent, "s")
    summary.publish(client, ref, _trials()[:1], ["eval/mig"], ["max"], ["loss.lambda_cont"], None)
    files = {a.path for a in client.list_artifacts(parent, summary.ARTIFACT_DIR)}
    assert files == {f"{summary.ARTIFACT_DIR}/leaderboard.csv", f"{summary.ARTIFACT_DIR}/leaderboard.md"}


@pytest.mark.parametrize("n", [0, 1])
def test_study_figures_need_two_completed_trials(n: int) -> None:
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=n)
    assert summary.study_figures(study, False, ["m"]) == {}


def test_a_sqlite_study_in_a_folder_that_does_not_exist_yet(tmp_path: Path) -> None:
    # With a tracking server the default study file sits in the sweep's Tune folder, which Tune
    # only creates later: looking the study up must create the folder, not fail.
    url = summary.default_optuna_storage("http://h:5000", str(tmp_path / "tune"), "s")
    assert summary.load_study(url, "s") is None
    optuna.create_study(study_name="s", storage=url)
    assert summary.load_study(url, "s") is not None


class FakeResults:
    """The part of Tune's ResultGrid the closing summary reads."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame, self.num_errors = frame, 0

    def __len__(self) -> int:
        return len(self.frame)

    def get_dataframe(self) -> pd.DataFrame:
        return self.frame


def test_closing_summary_names_the_best_trial_or_the_pareto_front() -> None:
    from sweeps.settings import SweepSettings
    from sweeps.tuner import _summary

    frame = pd.DataFrame({"trial_id": ["a", "b", "c"], "step": [20, 20, 10], "eval/mig": [0.1, 0.3, math.nan],
                          "eval/fid": [50.0, 80.0, 10.0], "config/loss.lambda_cont": ["0.1", "0.3", "0.2"],
                          "config/train.seed": [0, 0, 0]})
    one = _summary(SweepSettings(metrics=["eval/mig"], modes=["max"]), FakeResults(frame), ["loss.lambda_cont"], "p")
    assert one["best"] == {"trial_id": "b", "step": 20, "metrics": {"eval/mig": 0.3, "eval/fid": 80.0},
                           "config": {"loss.lambda_cont": 0.3}}  # Tune's text typed again
    two = _summary(SweepSettings(metrics=["eval/mig", "eval/fid"], modes=["max", "min"]), FakeResults(frame),
                   ["loss.lambda_cont"], "p")
    assert [row["trial_id"] for row in two["pareto_front"]] == ["a", "b"]  # c has no MIG
    assert (one["trials"], one["parent_run_id"]) == (3, "p") and "best" not in two


def test_closing_text_leads_with_the_answer_and_says_the_search_is_single_seeds() -> None:
    from sweeps.answer import compute_answer

    rows = pd.DataFrame([{"candidate": c, "status": "finished", "seed": s, "eval/mig": v}
                         for c, vals in (("recipe", (0.1, 0.2, 0.15)), ("top1", (0.1, 0.3, 0.2))) for s, v in enumerate(vals)])
    answer = compute_answer(rows, ["eval/mig"], {"recipe": "r", "top1": "t"})
    board = ranking.ranked(summary.trial_rows(_trials(), ["eval/mig"], ["loss.lambda_cont"]), "eval/mig", False)
    text = summary.closing_text({"name": "s", "trials": 1, "statuses": {"finished": 1}, "confirm_statuses": {"finished": 6}},
                                board, ["eval/mig"], ["loss.lambda_cont"], answer=answer, rung_lines=["rung line"])
    lines = text.splitlines()
    assert lines[0] == "sweep 's': search 1 trial (1 finished); confirmation 6 trials (6 finished)"
    assert lines[2].startswith("The answer: 2 configs x 3 fresh seeds")
    assert text.index("The answer") < text.index("search, best 3 by eval/mig (one seed per trial: the best of these is "
                                                  "biased upwards") < text.index("rung line")


def test_progress_counts_the_trials_that_ended_before_a_resume(capsys: pytest.CaptureFixture[str]) -> None:
    from types import SimpleNamespace

    from sweeps.summary import ProgressPrinter

    # A resumed sweep: 2 of its 4 trials ended before the interruption, 2 run on.
    trials = [SimpleNamespace(trial_id=f"t{i}", status=s, config={})
              for i, s in enumerate(["TERMINATED", "ERROR", "RUNNING", "RUNNING"])]
    printer = ProgressPrinter(4, ["eval/mig"], [])
    printer.on_trial_complete(0, trials, trials[2])  # Tune may call this before or after it sets the status
    assert "trial t2 ended (3/4 trials ended)" in capsys.readouterr().out
    trials[2].status = "TERMINATED"
    printer.on_trial_error(0, trials, trials[3])
    assert "trial t3 failed (4/4 trials ended;" in capsys.readouterr().out
