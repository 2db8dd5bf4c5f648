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


def test_mnist_preset_runs_the_official_recipe_on_idx_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_data_mnist import make_dataset

    make_dataset(tmp_path / "data", "mnist")
    # The preset's recipe (full width, batch 128, 5,000 steps) shrunk only in size and length.
    assert main(["--preset", "mnist", "--data.root", str(tmp_path / "data"), "--model.width", "0.125",
                 "--train.batch_size", "8", "--train.steps", "2", "--train.eval_every", "2",
                 "--train.checkpoint_every", "2", "--data.eval_size", "40", "--eval.fid", "false",
                 "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "finished" and "eval/cat_accuracy" in summary
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["data.name"], config["model.d_norm"], config["loss.lambda_cont"], config["optim.lr_d"]) == \
        ("mnist", "batch", 1.0, 2e-4)


def test_presets_stack_left_to_right(tmp_path: Path) -> None:
    from infogan.train import build_parser, config_from_args

    cfg = config_from_args(build_parser().parse_args(["--preset", "dsprites-32", "--preset", "eval-infogan-cr",
                                                      "--eval.num_votes_eval", "100"]))
    assert cfg.model.image_size == 32 and cfg.eval.mig_points == 73_728 and cfg.eval.num_votes_eval == 100
