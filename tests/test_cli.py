"""The standalone CLI: --help, config errors, a tiny run with its outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infogan.config import KEYS
from infogan.train import main
from tests.conftest import TINY


def test_help_lists_every_config_key() -> None:
    out = subprocess.run([sys.executable, "-m", "infogan.train", "--help"], capture_output=True, text=True, check=True)
    for key in KEYS:
        assert f"--{key}" in out.stdout
    assert "examples:" in out.stdout


def test_bad_value_exits_2_with_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--loss.lambda_cont", "-1"]) == 2
    assert "loss.lambda_cont" in capsys.readouterr().err


def test_tiny_run_writes_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = [f"--{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in TINY.items()]
    assert main([*flags, "--out", str(tmp_path), "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "finished" and summary["step"] == TINY["train.steps"]
    assert (tmp_path / "figures" / "traversal.png").exists()
    assert (tmp_path / "checkpoints" / "step_00000006" / "checkpoint.pt").exists()
