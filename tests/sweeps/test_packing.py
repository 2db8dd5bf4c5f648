"""``--ensemble``: packing trials into one step only where it was measured faster (sweeps.packing)."""

from __future__ import annotations

import pytest

from infogan import speeds
from infogan.config import Config
from infogan.speeds import PathSpeed
from sweeps import cli, packing

CFG = Config.from_flat({"model.image_size": 32})


def _faster_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    key, kind = speeds.model_key(CFG), packing.trial_device_kind(0.0)
    monkeypatch.setattr(speeds, "PATHS", (PathSpeed(kind, key, "eager", 1, 10.0, 0.0, "test"),
                                          PathSpeed(kind, key, "eager", 4, 30.0, 0.0, "test"),
                                          PathSpeed(kind, key, "eager", 8, 20.0, 0.0, "test")))


def test_ensemble_values() -> None:
    assert packing.parse_ensemble("auto") == "auto" and packing.parse_ensemble("3") == 3
    for bad in ("0", "-2", "many", "1.5"):
        with pytest.raises(ValueError, match=f"--ensemble {bad}: allowed is auto or"):
            packing.parse_ensemble(bad)


def test_auto_packs_nothing_where_packing_was_never_measured_faster() -> None:
    # Today's table: the stacked step measured slower on CPUs, nothing on GPUs.
    assert packing.resolve_ensemble("auto", CFG, ["loss.lambda_cont"], 1, 0.0) == 1
    assert packing.resolve_ensemble("auto", CFG, ["loss.lambda_cont"], 3, 1.0) == 1
    assert packing.resolve_ensemble(4, CFG, ["codes.n_continuous"], 1, 0.0) == 4  # a number is what it says


def test_auto_packs_where_measured_faster_and_keeps_a_configs_seeds_together(monkeypatch: pytest.MonkeyPatch) -> None:
    _faster_on_cpu(monkeypatch)
    assert packing.resolve_ensemble("auto", CFG, ["loss.lambda_cont", "optim.lr_g"], 1, 0.0) == 4
    assert packing.resolve_ensemble("auto", CFG, [], 3, 0.0) == 1  # only K = 1, 4, 8 measured; 3 seeds allow 1
    assert packing.resolve_ensemble("auto", CFG, [], 8, 0.0) == 4
    # ... never where trials cannot share a step.
    assert packing.resolve_ensemble("auto", CFG, ["codes.n_continuous"], 1, 0.0) == 1
    assert packing.resolve_ensemble("auto", CFG, ["loss.lambda_cr"], 1, 0.0) == 1
    assert packing.resolve_ensemble("auto", CFG.replace(**{"train.precision": "bf16"}), [], 1, 0.0) == 4


def test_the_sweep_cli_resolves_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    settings, _ = cli.settings_from_args(cli.build_parser().parse_args(["--budget", "smoke"]))
    assert settings.ensemble == 1  # the default, auto, on a CPU
    with pytest.raises(ValueError, match="--ensemble 0"):
        cli.settings_from_args(cli.build_parser().parse_args(["--budget", "smoke", "--ensemble", "0"]))
