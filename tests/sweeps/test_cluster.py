"""A real two-node local Ray cluster: the worker node dies mid-trial, the trial resumes elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sweeps import record
from tests.sweeps.conftest import REPO, subprocess_env
from tests.sweeps.readback import steps_of, sweep_runs

STEPS = 100


@pytest.mark.integration
@pytest.mark.slow
def test_trial_on_a_dead_node_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    from ray.tune import ExperimentAnalysis

    storage, uri, name = tmp_path / "tune", f"sqlite:///{tmp_path}/mlflow.db", "two_nodes"
    report_path = tmp_path / "report.json"
    env = subprocess_env(tmp_path)  # RAY_AUTH_MODE=disabled for every node and the driver alike
    proc = subprocess.run(
        [sys.executable, "-m", "tests.sweeps.cluster_scenario", str(storage), uri, name, str(STEPS), str(report_path)],
        capture_output=True, text=True, timeout=900, env=env, cwd=REPO,
    )
    assert proc.returncode == 0 and report_path.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["exit_code"] == 0, proc.stdout[-3000:]
    victim, killed_at = report["victim"], report["victim_step_at_kill"]
    assert victim is not None, "no trial was seen running on the worker node"

    analysis = ExperimentAnalysis(str(storage / name))
    trials = {t.trial_id: t for t in analysis.trials}
    assert len(trials) == 2 and all(t.status == "TERMINATED" for t in trials.values())
    assert trials[victim].num_failures >= 1
    rows = [json.loads(line) for line in (storage / name / f"trial_{victim}" / "result.json").read_text().splitlines()]
    reported = [r["step"] for r in rows]
    # It continued from its checkpoint: each evaluation step reported once, in order, none restarted.
    assert reported == list(range(20, STEPS + 1, 20)), reported
    assert killed_at in reported
    survivor = next(t for t in trials if t != victim)
    assert trials[survivor].last_result["step"] == STEPS

    client, _, children = sweep_runs(uri, name)
    assert len(children) == 2  # the retried trial kept its child run
    for child in children:
        assert child.data.tags[record.TAG_STATUS] == record.STATUS_FINISHED
        # Losses every 5 steps (the smoke budget's log_every); a retry logs the steps after its
        # checkpoint again, hence sets.
        assert set(steps_of(client, child.info.run_id, "train/loss_d")) == set(range(5, STEPS + 1, 5))
