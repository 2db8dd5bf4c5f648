"""Read a sweep back through the MLflow client (shared by the integration tests)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sweeps import record, tracking

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sweep_runs(uri: str, name: str) -> tuple[Any, Any, list[Any]]:
    """(client, parent run, child runs) of the sweep ``name``; asserts there is one parent."""
    client = tracking.client(uri)
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None, f"no MLflow experiment {name!r}"
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get(record.TAG_ROLE) == record.ROLE_PARENT]
    assert len(parents) == 1, [r.data.tags for r in parents]
    children = [r for r in runs if r.data.tags.get(record.TAG_ROLE) == record.ROLE_TRIAL]
    assert all(c.data.tags[record.TAG_PARENT_RUN_ID] == parents[0].info.run_id for c in children)
    return client, parents[0], children


def artifact_paths(client: Any, run_id: str, path: str | None = None) -> set[str]:
    """Every artifact file path of a run."""
    out: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        out |= artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return out


def download_bytes(client: Any, run_id: str, path: str) -> bytes:
    """One artifact's bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(run_id, path, tmp)
        return Path(local).read_bytes()


def steps_of(client: Any, run_id: str, key: str) -> list[int]:
    """The steps at which ``key`` was logged, in order."""
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def assert_parent_contract(client: Any, parent: Any, name: str, num_samples: int) -> None:
    """The parent run's tags, params and artifacts."""
    tags, params = parent.data.tags, parent.data.params
    assert tags[record.TAG_SWEEP] == name and tags[record.TAG_GIT_COMMIT]
    assert {record.TAG_VERSION_PREFIX + p for p in tracking.VERSIONED_PACKAGES} <= set(tags)
    for key in ("num_samples", "metric", "mode", "max_concurrent", "search", "scheduler", "dataset", "steps", "seed"):
        assert f"sweep.{key}" in params, key
    assert params["sweep.num_samples"] == str(num_samples)
    assert {"search_space.json", "sweep_config.json"} <= artifact_paths(client, parent.info.run_id)


def assert_finished_child(client: Any, child: Any, steps: int, eval_every: int, log_every: int = 5) -> None:
    """A finished trial: every config key as a param, metric histories by step, figures, checkpoint.

    Losses are logged every ``log_every`` steps (the smoke budget's 5) and at every evaluation.
    """
    from infogan.config import KEYS

    run_id = child.info.run_id
    assert child.data.tags[record.TAG_STATUS] == record.STATUS_FINISHED
    assert set(child.data.params) == set(KEYS)
    expected_steps = list(range(eval_every, steps + 1, eval_every))
    loss_steps = sorted({*range(log_every, steps + 1, log_every), *expected_steps})
    assert steps_of(client, run_id, "train/loss_d") == loss_steps
    assert steps_of(client, run_id, "eval/mig") == expected_steps  # MIG: at every (staged) evaluation
    assert {record.METRIC_WALL_SECONDS, record.METRIC_IMAGES_PER_SECOND} <= set(child.data.metrics)
    if "eval/fid" in child.data.metrics:  # FIDs name their feature network, so tables never mix them
        assert child.data.tags[record.TAG_FID_FEATURE_NET].startswith("lenet-")
    files = artifact_paths(client, run_id)
    assert {"figures/samples.png", "figures/traversal.png", "checkpoint/checkpoint.pt", "config.json",
            "metrics.json"} <= files, files
    assert download_bytes(client, run_id, "figures/traversal.png").startswith(PNG_MAGIC)
    assert download_bytes(client, run_id, "figures/samples.png").startswith(PNG_MAGIC)


def assert_ended_child(client: Any, child: Any, steps: int, eval_every: int) -> str:
    """A trial of an ASHA sweep: finished (the full contract) or stopped early at a rung.

    ASHA may legitimately cut the second of two trials at its first rung, depending on which
    reports first, so a stopped trial is checked for what it did log: a strict prefix of the
    evaluation steps, its params and its figures.

    Returns:
        The child's status.
    """
    from infogan.config import KEYS

    status = child.data.tags[record.TAG_STATUS]
    if status == record.STATUS_FINISHED:
        assert_finished_child(client, child, steps, eval_every)
        return status
    assert status == record.STATUS_STOPPED_EARLY, status
    run_id = child.info.run_id
    assert set(child.data.params) == set(KEYS)
    logged = steps_of(client, run_id, "eval/mig")  # staged: the only metric every evaluation logs
    expected = list(range(eval_every, steps + 1, eval_every))
    assert logged and len(logged) < len(expected) and logged == expected[:len(logged)], logged
    assert {"figures/samples.png", "figures/traversal.png"} <= artifact_paths(client, run_id)
    return status
