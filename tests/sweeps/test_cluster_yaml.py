"""cluster.yaml passes Ray's own schema check offline and keeps the properties the docs promise."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sweeps.conftest import REPO

CLUSTER_YAML = REPO / "cluster.yaml"


def _load() -> dict[str, Any]:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def _validate(cfg: dict[str, Any]) -> dict[str, Any]:
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(cfg))
    validate_config(prepared)
    return prepared


def test_cluster_yaml_passes_rays_schema() -> None:
    prepared = _validate(_load())
    assert prepared["head_node_type"] == "head"


def test_schema_check_catches_a_typo() -> None:
    import jsonschema

    cfg = _load()
    cfg["available_node_types"]["gpu_worker"]["max_wokers"] = 4
    with pytest.raises(jsonschema.ValidationError):
        _validate(cfg)


def test_head_gpu_workers_storage_mlflow_and_auth() -> None:
    cfg = _load()
    nodes = cfg["available_node_types"]
    assert nodes["head"]["resources"] == {"CPU": 0}  # trials run on workers only
    worker = nodes["gpu_worker"]
    assert worker["min_workers"] == 0 < worker["max_workers"] <= cfg["max_workers"]
    setup = "\n".join(cfg["setup_commands"])
    assert "pip install" in setup and "/home/ubuntu/infogan-sweeps" in setup and "/mnt/shared" in setup
    assert "-c /home/ubuntu/infogan-sweeps/constraints.txt" in setup  # the versions the tests passed with
    assert cfg["file_mounts"]["/home/ubuntu/infogan-sweeps"] == "."
    head_start = "\n".join(cfg["head_start_ray_commands"])
    server = next(c for c in cfg["head_start_ray_commands"] if "mlflow server --" in c)
    assert "--backend-store-uri postgresql://mlflow:mlflow@localhost/mlflow" in server and "--workers 1" in server
    head_setup = "\n".join(cfg["head_setup_commands"])
    assert "apt-get install -y -qq postgresql" in head_setup and "psycopg2" in head_setup
    # The interpreter comes from uv, not the image (Ray's latest_dlami is Ubuntu 18.04 / Python 3.6).
    assert "--python 3.11" in setup and all(n["node_config"]["ImageId"] != "latest_dlami" for n in nodes.values())
    assert "**/.git" not in cfg["rsync_exclude"]  # the parent run records the commit
    assert "--artifacts-destination /mnt/shared/mlartifacts" in server
    assert "--dashboard-host=127.0.0.1" in head_start
    starts = [c for c in cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"] if "ray start" in c]
    assert len(starts) == 2 and all("RAY_AUTH_MODE=token" in c for c in starts)
    assert "/home/ubuntu/.ray/auth_token" in cfg["file_mounts"]


def test_docs_cover_the_cluster_workflow() -> None:
    docs = (REPO / "docs" / "cluster.md").read_text()
    for command in ("ray up cluster.yaml", "ray job submit", "ray dashboard cluster.yaml", "ray attach cluster.yaml -p 5000",
                    "ray down cluster.yaml", "--storage-path /mnt/shared/ray_results", "--resume"):
        assert command in docs, command
    assert Path(CLUSTER_YAML).is_file()
