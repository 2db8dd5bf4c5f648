"""End to end with a local sqlite MLflow store: a small sweep with one forced-diverging trial."""

from __future__ import annotations

import json
import signal
import tempfile
from pathlib import Path

import pytest

from sweeps import lambda_search, record
from tests.sweeps.readback import assert_finished_child, assert_parent_contract, steps_of, sweep_runs


@pytest.mark.integration
@pytest.mark.slow
def test_sweep_with_a_diverging_trial_logs_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    # The first trial uses an absurd learning rate (the loop treats losses above 1e6 as divergence).
    absurd = json.dumps([{"optim.lr_d": 1000.0, "optim.lr_g": 1000.0}])
    handler = signal.getsignal(signal.SIGINT)
    code = lambda_search.main([
        "--smoke-test", "--num-samples", "3", "--scheduler", "fifo", "--name", "diverge",
        "--storage-path", str(tmp_path / "tune"), "--tracking-uri", uri, "--points-to-evaluate", absurd,
    ])
    assert code == 0
    assert signal.getsignal(signal.SIGINT) is handler  # Tune's handler does not outlive the sweep
    assert (tmp_path / "tune" / "diverge" / record.PARENT_FILE).is_file()
    # The loop's working folders (pruned checkpoints) stay out of what Tune copies to its storage,
    # where pruning under a copy failed experiment snapshots, and are gone when their trials end.
    trial_dirs = sorted((tmp_path / "tune" / "diverge").glob("trial_*"))
    assert len(trial_dirs) == 3 and not [p for d in trial_dirs for p in d.rglob("step_*")]
    assert not [p for d in trial_dirs for p in Path(tempfile.gettempdir()).glob(f"infogan-trial-{d.name.removeprefix('trial_')}-*")]
    client, parent, children = sweep_runs(uri, "diverge")
    assert_parent_contract(client, parent, "diverge", 3)
    assert parent.info.status == "FINISHED"
    assert len(children) == 3 and len({c.data.tags[record.TAG_TRIAL_ID] for c in children}) == 3
    statuses = sorted(c.data.tags[record.TAG_STATUS] for c in children)
    assert statuses == ["diverged", "finished", "finished"]
    diverged = next(c for c in children if c.data.tags[record.TAG_STATUS] == "diverged")
    assert float(diverged.data.params["optim.lr_d"]) == 1000.0
    assert diverged.data.metrics[record.METRIC_DIVERGED] == 1.0
    assert record.METRIC_DIVERGED_STEP in diverged.data.metrics
    assert "diverged at step" in diverged.data.tags[record.TAG_ERROR]
    assert steps_of(client, diverged.info.run_id, record.METRIC_DIVERGED_STEP)
    for child in children:
        if child is not diverged:
            assert_finished_child(client, child, steps=20, eval_every=10)
            assert child.data.metrics[record.METRIC_DIVERGED] == 0.0
