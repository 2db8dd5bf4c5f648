"""Pure parts of the trainable: what is reported to Tune (a trial's status is sweeps.record's, tested there)."""

from __future__ import annotations

import math

import pytest

from sweeps.record import STEP
from sweeps.trial_record import tune_result


def test_tune_result_adds_step_and_diverged_flag() -> None:
    out = tune_result({"eval/cat_accuracy": 0.5, "train/loss_d": 1.0}, 30, [("eval/cat_accuracy", "max")], False)
    assert out == {"eval/cat_accuracy": 0.5, "train/loss_d": 1.0, STEP: 30, "train/diverged": 0.0}


def test_diverged_run_reports_the_worst_objective() -> None:
    metrics = {"train/diverged_step": 7.0, "train/loss_d": float("nan")}
    out = tune_result(metrics, 7, [("eval/cat_accuracy", "max"), ("eval/fid", "min")], True)
    assert out["eval/cat_accuracy"] == -math.inf and out["eval/fid"] == math.inf and out["train/diverged"] == 1.0


def test_missing_objective_names_the_available_metrics() -> None:
    with pytest.raises(KeyError, match="eval/cat_accuracy.*train/loss_d"):
        tune_result({"train/loss_d": 1.0, "eval/cat_accuracy": 0.1}, 5, [("eval/mig", "max")], False)


def test_a_trial_has_ended_only_when_tune_says_so_and_then_has_its_verdict() -> None:
    from types import SimpleNamespace

    from sweeps.trainable import ended_status

    def trial(status: str, last: dict | None) -> SimpleNamespace:
        return SimpleNamespace(status=status, last_result=last, config={"train.steps": 20})

    for running in ("PENDING", "RUNNING", "PAUSED"):
        assert ended_status(trial(running, {"step": 20})) is None
    assert ended_status(trial("TERMINATED", {"step": 20})) == "finished"
    assert ended_status(trial("TERMINATED", {"step": 10})) == "stopped_early"  # its config's 20 steps not reached
    assert ended_status(trial("ERROR", None)) == "failed"
