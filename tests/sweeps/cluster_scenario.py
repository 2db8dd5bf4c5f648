"""Run by test_cluster.py in its own process: a two-node local Ray cluster loses its worker node mid-trial.

Starts ``ray.cluster_utils.Cluster`` (head + one worker, one CPU each, auth mode from the
environment), runs a two-trial sweep through ``lambda_search.main``, and once the trial running on
the worker node has reported a checkpoint, removes that node (kills its raylet and workers). Writes
``{"exit_code", "victim", "victim_step_at_kill"}`` to the JSON path given as the last argument.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any


def _trials(storage: Path, name: str) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for result in (storage / name).glob("trial_*/result.json"):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        out[result.parent.name.removeprefix("trial_")] = rows
    return out


def _parent(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")), 0)


def _on_node(pid: int, raylet_pid: int) -> bool:
    """Whether ``pid`` descends from the node's raylet (Ray workers are the raylet's children)."""
    while pid > 1:
        pid = _parent(pid)
        if pid == raylet_pid:
            return True
    return False


def main(argv: list[str]) -> int:
    """argv: storage dir, tracking URI, sweep name, steps, report path."""
    storage, uri, name, steps, report_path = Path(argv[0]), argv[1], argv[2], int(argv[3]), Path(argv[4])
    import ray
    from ray.cluster_utils import Cluster

    from sweeps import lambda_search

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    raylet_pid = worker.all_processes["raylet"][0].process.pid
    report: dict[str, Any] = {"victim": None, "victim_step_at_kill": None}

    def kill_worker_when_its_trial_checkpointed() -> None:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            for trial_id, rows in _trials(storage, name).items():
                if rows and _on_node(rows[-1]["pid"], raylet_pid) and 0 < rows[-1]["step"] < steps:
                    report.update(victim=trial_id, victim_step_at_kill=rows[-1]["step"])
                    cluster.remove_node(worker, allow_graceful=False)
                    return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_worker_when_its_trial_checkpointed, daemon=True)
    ray.init(address=cluster.address)
    try:
        killer.start()
        report["exit_code"] = lambda_search.main([
            "--smoke-test", "--name", name, "--storage-path", str(storage), "--tracking-uri", uri,
            "--num-samples", "2", "--max-concurrent", "2", "--steps", str(steps), "--scheduler", "fifo",
            "--set", "train.eval_every=20", "--set", "train.checkpoint_every=20", "--max-failures", "3",
        ])
        killer.join(timeout=5)
    finally:
        ray.shutdown()
        cluster.shutdown()
    report_path.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
