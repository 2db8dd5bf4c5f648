"""The run record contract, tested once, directly: what every writer and reader goes through."""

from __future__ import annotations

import subprocess
import sys

import pytest

from infogan.config import KEYS, NON_SEMANTIC_KEYS, RESUMABLE_KEYS, Config, key_role, value_text
from sweeps import record as R


def test_status_read_back_from_the_records() -> None:
    # Ray keeps error.txt after a retry that went on to settle the trial: the trial's tag wins.
    for tag in ("finished", "diverged", "stopped_early"):
        assert R.recorded_status(tag, "FINISHED", True, False, 10, 10) == tag
    # Without a verdict, error.txt means the trial died.
    assert R.recorded_status("running", "RUNNING", True, False, 5, 10) == "failed"
    assert R.recorded_status(None, None, True, False, None, 10) == "failed"
    assert R.recorded_status("stopped_early", "FINISHED", None, False, 5, 10) == "stopped_early"
    assert R.recorded_status(None, "FINISHED", None, True, 5, 10) == "diverged"
    assert R.recorded_status("running", "RUNNING", None, False, 5, 10) == "running"
    assert R.recorded_status("running", "RUNNING", False, False, 5, 10) == "running"
    assert R.recorded_status(None, "FINISHED", False, False, 5, 10) == "stopped_early"
    assert R.recorded_status(None, "FINISHED", False, False, 10, 10) == "finished"
    assert R.recorded_status(None, "KILLED", None, False, 5, 10) == "stopped_early"


def test_the_drivers_verdict_and_when_a_trials_own_tag_stands() -> None:
    assert R.trial_status("ERROR", {"step": 20}, 20) == "failed"
    assert R.trial_status("TERMINATED", {"step": 7, R.METRIC_DIVERGED: 1.0}, 20) == "diverged"
    assert R.trial_status("TERMINATED", {"step": 10}, 20) == "stopped_early"
    assert R.trial_status("TERMINATED", {"step": 20}, 20) == "finished"
    assert R.trial_status("TERMINATED", None, 20) == "stopped_early"  # ended before its first report
    # A trial that tagged itself finished is not overruled by a stale "stopped early" guess.
    assert R.keeps_own_status("finished", "stopped_early", run_ended=True)
    assert not R.keeps_own_status("finished", "stopped_early", run_ended=False)
    assert not R.keeps_own_status("running", "stopped_early", run_ended=True)
    assert R.keeps_own_status("failed", "failed", run_ended=True)


@pytest.mark.parametrize("key", KEYS)
def test_every_config_value_round_trips_through_its_param_text(key: str) -> None:
    value = Config().to_flat()[key]
    back = R.value_from_param(key, value_text(value))
    expected = value_text(value) if isinstance(value, list) else value
    assert back == expected and type(back) is type(expected)


def test_param_text_that_does_not_parse_reads_back_as_missing() -> None:
    assert R.value_from_param("train.seed", "banana") is None
    assert R.value_from_param("train.steps", "12.0") == 12  # a float-typed source
    assert R.value_from_param("codes.categorical", "[10, 3]") == "10,3"
    assert R.value_from_param("loss.lambda_cont", None) is None


def test_config_id_ignores_exactly_the_non_semantic_keys() -> None:
    base = Config().to_flat()
    for key in KEYS:
        other = Config.from_flat({key: _another_value(key)}).to_flat() if _another_value(key) is not None else None
        if other is None:
            continue
        same = R.config_id(base) == R.config_id(other)
        assert same == (key in NON_SEMANTIC_KEYS), key
    assert {key_role(k) for k in NON_SEMANTIC_KEYS} == {"seed", "machine", "numerics", "speed", "bookkeeping"}
    assert "train.steps" in RESUMABLE_KEYS and "train.steps" not in NON_SEMANTIC_KEYS
    assert "train.precision" not in RESUMABLE_KEYS and "loss.lambda_cont" not in RESUMABLE_KEYS


def _another_value(key: str) -> object:
    value = Config().to_flat()[key]
    alternatives = {
        "train.device": "cpu", "train.precision": "fp32", "data.root": "elsewhere", "eval.inception_weights": None,
        "eval.cache_dir": "/tmp/other", "codes.categorical": [3], "model.image_size": 32, "model.arch": "conv",
        "data.name": "digits", "eval.feature_net": None, "eval.intermediate": "mig", "eval.final": "mig,fid",
        "model.channels": None,  # one value allowed
    }
    if key in alternatives:
        return alternatives[key]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.5
    if key == "loss.gan":
        return "lsgan"
    if key in ("model.d_norm",):
        return "batch"
    if key == "codes.noise_dist":
        return "normal"
    if key in ("loss.q_std",):
        return "learned"
    if key == "loss.q_update":
        return "with_g"
    if key == "eval.dci_model":
        return "gradient_boosting"
    return None


def test_the_record_module_imports_nothing_heavy() -> None:
    code = ("import sys; import sweeps.record; "
            "bad = [m for m in ('mlflow', 'ray', 'torch', 'optuna', 'pandas', 'infogan.config') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
