"""End to end: ``--ensemble 2`` trains a smoke sweep's trials two at a time in one worker, each
still its own Tune trial and MLflow run (sweeps.ensemble_trials)."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import pytest

from sweeps import lambda_search, record
from tests.sweeps.readback import assert_ended_child, assert_parent_contract, sweep_runs


@pytest.mark.integration
@pytest.mark.slow
def test_an_ensemble_sweep_trains_trials_in_pairs_and_records_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # A worker starts as soon as its second member joins; the wait only bounds a slow trial start
    # (trial processes import torch and open their runs first), so pairs form on a busy machine too.
    monkeypatch.setenv("INFOGAN_ENSEMBLE_WAIT_S", "120")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    argv = ["--smoke-test", "--num-samples", "4", "--name", "ens", "--storage-path", str(tmp_path / "tune"),
            "--tracking-uri", uri, "--ensemble", "2"]
    # The smoke space searches a code layout, which changes the networks' shapes: refused, one line.
    assert lambda_search.main(argv) == 2
    tmp = Path(tempfile.gettempdir())
    members_before = set(tmp.glob("infogan-member-*"))
    assert lambda_search.main([*argv, "--set", "codes.n_continuous=5"]) == 0
    client, parent, children = sweep_runs(uri, "ens")
    assert_parent_contract(client, parent, "ens", 4)
    assert len(children) == 4
    statuses = [assert_ended_child(client, child, steps=20, eval_every=10) for child in children]
    assert record.STATUS_FINISHED in statuses  # ASHA lets the first trial at each rung through
    # Two workers, two members each; a run names its worker and its members (itself included).
    workers = Counter(child.data.tags[record.TAG_ENSEMBLE_WORKER] for child in children)
    assert sorted(workers.values()) == [2, 2]
    for child in children:
        members = child.data.tags[record.TAG_ENSEMBLE_MEMBERS].split(",")
        assert child.data.tags[record.TAG_TRIAL_ID] in members and len(members) == 2
        partners = {c.data.tags[record.TAG_TRIAL_ID] for c in children
                    if c.data.tags[record.TAG_ENSEMBLE_WORKER] == child.data.tags[record.TAG_ENSEMBLE_WORKER]}
        assert partners == set(members)
    # Checkpoints reached Tune (for retries and --resume) and no working folder outlived its trial.
    assert all(list((tmp_path / "tune" / "ens" / f"trial_{c.data.tags[record.TAG_TRIAL_ID]}").glob("checkpoint_*"))
               for c in children)
    assert set(tmp.glob("infogan-member-*")) <= members_before  # the workers' run folders
    assert not [p for c in children for p in tmp.glob(f"infogan-trial-{c.data.tags[record.TAG_TRIAL_ID]}-*")]
