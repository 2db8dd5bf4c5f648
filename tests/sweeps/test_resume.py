"""Interrupt the driver mid-sweep, then ``--resume``: the requested number of trials, none re-run."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sweeps import record, tracking
from tests.sweeps.conftest import SCRIPT, interrupt_sweep, subprocess_env
from tests.sweeps.readback import sweep_runs

NAME, SAMPLES = "resumable", 3


STEPS = 20  # the smoke budget's train.steps


def _reported_steps(storage: Path, trial_id: str) -> list[int]:
    """The steps of the results Tune's driver has recorded for a trial (its result.json)."""
    steps = []
    for path in (storage / NAME).glob(f"trial_{trial_id}/result.json"):
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError):  # a line being written
                steps.append(int(json.loads(line)["step"]))
    return steps


def _done_children(uri: str, storage: Path) -> list:
    """Trials finished in MLflow whose final result Tune has recorded too.

    A trial closes its MLflow run before its final report reaches Tune; one interrupted in
    between is rightly trained again from its last checkpoint on --resume, so it does not count.
    """
    try:
        _, _, children = sweep_runs(uri, NAME)
    except AssertionError:  # the experiment or the parent run does not exist yet
        return []
    return [c for c in children if c.data.tags.get(record.TAG_STATUS) == record.STATUS_FINISHED
            and STEPS in _reported_steps(storage, c.data.tags[record.TAG_TRIAL_ID])]


def _result_rows(storage: Path, trial_id: str) -> int:
    return len(_reported_steps(storage, trial_id))


@pytest.mark.integration
@pytest.mark.slow
def test_interrupted_sweep_resumes_without_rerunning_finished_trials(tmp_path: Path) -> None:
    from ray.tune import ExperimentAnalysis

    storage, uri = tmp_path / "tune", f"sqlite:///{tmp_path}/mlflow.db"
    env = subprocess_env(tmp_path)
    argv = ["--smoke-test", "--name", NAME, "--storage-path", str(storage)]
    command = [sys.executable, str(SCRIPT), *argv]
    code, first_log = interrupt_sweep(
        [*argv, "--num-samples", str(SAMPLES), "--max-concurrent", "1", "--tracking-uri", uri], tmp_path,
        lambda: _done_children(uri, storage), lambda proc: proc.send_signal(signal.SIGINT), timeout=180,
        what="no trial finished in time")
    assert code == 130, first_log[-3000:]
    assert "--resume" in first_log
    done_before = {c.data.tags[record.TAG_TRIAL_ID]: c for c in _done_children(uri, storage)}
    assert 1 <= len(done_before) < SAMPLES
    client = tracking.client(uri)
    rows_before = {t: _result_rows(storage, t) for t in done_before}
    history_before = {t: [(m.step, m.value) for m in client.get_metric_history(c.info.run_id, "train/loss_d")]
                      for t, c in done_before.items()}

    # Only the name and the storage are needed: the rest was saved with the sweep.
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=600, env=env,
                             cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    analysis = ExperimentAnalysis(str(storage / NAME))
    assert len(analysis.trials) == SAMPLES
    assert all(t.status == "TERMINATED" for t in analysis.trials)
    _, parent, children = sweep_runs(uri, NAME)
    assert parent.info.status == "FINISHED"
    assert len(children) == SAMPLES
    assert {c.data.tags[record.TAG_TRIAL_ID] for c in children} == {t.trial_id for t in analysis.trials}
    assert all(c.data.tags[record.TAG_STATUS] in ("finished", "stopped_early") for c in children)
    for trial_id, rows in rows_before.items():
        assert _result_rows(storage, trial_id) == rows  # Tune got no new result from it
        child = next(c for c in children if c.data.tags[record.TAG_TRIAL_ID] == trial_id)
        history = [(m.step, m.value) for m in client.get_metric_history(child.info.run_id, "train/loss_d")]
        assert history == history_before[trial_id]  # MLflow got nothing new either
    saved = json.loads((storage / NAME / record.PARENT_FILE).read_text())
    assert saved["run_id"] == parent.info.run_id
