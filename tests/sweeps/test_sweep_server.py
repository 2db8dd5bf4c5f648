"""CI's smoke command against a real ``mlflow server`` process, read back through the MLflow client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.sweeps.conftest import SCRIPT, subprocess_env
from tests.sweeps.readback import artifact_paths, assert_ended_child, assert_parent_contract, sweep_runs


@pytest.mark.integration
@pytest.mark.slow
def test_smoke_test_logs_to_a_real_mlflow_server(mlflow_server: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke-test", "--tracking-uri", mlflow_server, "--name", "smoke_server"],
        capture_output=True, text=True, timeout=600, env=subprocess_env(tmp_path), cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "best 2 by eval/mig" in proc.stdout and f"open {mlflow_server}" in proc.stdout
    assert f"{mlflow_server}/#/experiments/" in proc.stdout and "workflowType=machine_learning" in proc.stdout
    assert "optuna-dashboard sqlite:///" in proc.stdout
    assert not (tmp_path / "mlflow.db").exists()  # nothing went to the local default store
    client, parent, children = sweep_runs(mlflow_server, "smoke_server")
    assert_parent_contract(client, parent, "smoke_server", 2)
    assert len(children) == 2
    statuses = [assert_ended_child(client, child, steps=20, eval_every=10) for child in children]
    # ASHA never cuts the first trial to reach a rung (the cutoff is its own value), so at least
    # one trial runs its whole budget.
    assert "finished" in statuses, statuses
    # The parent run carries the sweep's answer; every child its traversal per evaluation.
    parent_files = artifact_paths(client, parent.info.run_id)
    assert {"sweep/leaderboard.csv", "sweep/leaderboard.md", "sweep/parallel_coordinates.png"} <= parent_files
    assert any(f.startswith("sweep/best_trial/") for f in parent_files), parent_files
    for child in children:
        images = [f for f in artifact_paths(client, child.info.run_id) if f.startswith("images/")]
        assert len([f for f in images if f.endswith(".png")]) >= 1, images
