"""Choosing a path and a packing from measured speeds (infogan.speeds): known answers."""

from __future__ import annotations

import pytest
import torch

from infogan import speeds
from infogan.config import Config
from infogan.speeds import PathSpeed

CFG = Config.from_flat({"model.image_size": 32, "train.steps": 2000})
KEY = speeds.model_key(CFG)


def _table(*rows: tuple[str, str, int, float, float]) -> tuple[PathSpeed, ...]:
    return tuple(PathSpeed(kind, KEY, mode, k, rate, compile_s, "test") for kind, mode, k, rate, compile_s in rows)


def test_compiled_only_where_its_gain_repays_its_compile_time_within_the_run() -> None:
    # 10 vs 12 steps/s: compiling saves 1/60 s a step, so 30 s of compiling pays back after 1,800 steps.
    table = _table(("cpu", "eager", 1, 10.0, 0.0), ("cpu", "compiled", 1, 12.0, 30.0))
    assert speeds.fastest_step_mode("cpu", CFG.replace(**{"train.steps": 1000}), table=table) == "eager"
    assert speeds.fastest_step_mode("cpu", CFG.replace(**{"train.steps": 2000}), table=table) == "compiled"
    assert speeds.fastest_step_mode("cpu", CFG.replace(**{"train.steps": 1800}), table=table) == "eager"  # a tie


def test_a_device_kind_or_model_nobody_measured_gets_the_eager_step() -> None:
    table = _table(("NVIDIA H100 80GB HBM3", "graph", 1, 600.0, 40.0))
    assert speeds.fastest_step_mode("NVIDIA H200", CFG, table=table) == "eager"
    assert speeds.fastest_step_mode("NVIDIA H100 80GB HBM3", CFG.replace(**{"model.width": 0.5}), table=table) == "eager"
    assert speeds.fastest_step_mode("NVIDIA H100 80GB HBM3", CFG, table=table) == "graph"
    for cpu in ("cpu", speeds.device_kind(torch.device("cpu"))):  # no graph on a CPU, whatever its model
        assert speeds.fastest_step_mode(cpu, CFG, table=_table((cpu, "graph", 1, 99.0, 0.0))) == "eager"
    assert speeds.members_to_pack("NVIDIA H200", CFG, 32, table=table) == 1


def test_pack_only_where_packing_was_measured_faster() -> None:
    # As measured on a CPU: the stacked step trains fewer model-steps/s than one member alone.
    slower = _table(("cpu", "eager", 1, 13.5, 0.0), ("cpu", "eager", 8, 9.7, 0.0))
    assert speeds.members_to_pack("cpu", CFG, 8, table=slower) == 1
    faster = _table(("gpu", "graph", 1, 600.0, 40.0), ("gpu", "graph", 8, 3200.0, 60.0),
                    ("gpu", "graph", 32, 4000.0, 90.0))
    assert speeds.members_to_pack("gpu", CFG, 32, table=faster) == 32
    assert speeds.members_to_pack("gpu", CFG, 16, table=faster) == 8  # at most what the sweep allows
    assert speeds.members_to_pack("gpu", CFG, 1, table=faster) == 1


def test_every_measured_path_names_its_machine_and_a_known_mode() -> None:
    for p in speeds.PATHS:
        assert p.step_mode in ("eager", "compiled", "graph") and p.members >= 1 and p.model_steps_per_second > 0
        assert p.compile_seconds >= 0 and p.source, p


@pytest.mark.parametrize("key", ["train.tf32"])
def test_numerics_keys_are_recorded_config(key: str) -> None:
    from infogan.config import key_role

    assert key_role(key) == "numerics" and Config().to_flat()[key] is True
