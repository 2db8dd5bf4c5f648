"""The standalone CLI: --help, config errors, a tiny run with its outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infogan.cli import main
from infogan.config import KEYS
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


def test_seeds_train_as_the_members_of_one_step_each_in_its_run(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    flags = [f"--{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in TINY.items()]
    assert main([*flags, "--seeds", "3,5", "--out", str(tmp_path), "--no-progress"]) == 0
    summaries = json.loads(capsys.readouterr().out)
    assert list(summaries) == [str(tmp_path / "seed3"), str(tmp_path / "seed5")]
    for seed in (3, 5):
        run = tmp_path / f"seed{seed}"
        assert summaries[str(run)]["status"] == "finished"
        assert json.loads((run / "config.json").read_text())["train.seed"] == seed
        assert (run / "checkpoints" / "step_00000006" / "checkpoint.pt").exists()
    for bad in ("3,3", "x", "-1"):
        assert main([*flags, "--seeds", bad, "--out", str(tmp_path / "bad")]) == 2
        assert "--seeds" in capsys.readouterr().err
    resume = str(tmp_path / "seed3" / "checkpoints" / "step_00000003")
    assert main([*flags, "--seeds", "1,2", "--resume", resume]) == 2
    assert "resume each seed's run" in capsys.readouterr().err


def test_mnist_preset_runs_the_official_recipe_on_idx_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_data_mnist import make_dataset

    make_dataset(tmp_path / "data", "mnist")
    # The preset's recipe (full width, batch 128, 5,000 steps) shrunk only in size and length.
    assert main(["--preset", "mnist", "--data.root", str(tmp_path / "data"), "--model.width", "0.125",
                 "--train.batch_size", "8", "--train.steps", "2", "--train.eval_every", "2",
                 "--train.checkpoint_every", "2", "--data.eval_size", "40", "--eval.final", "categorical",
                 "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "finished" and "eval/cat_accuracy" in summary
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["data.name"], config["model.d_norm"], config["loss.lambda_cont"], config["optim.lr_d"]) == \
        ("mnist", "batch", 1.0, 2e-4)


def test_colour_channels_are_refused_before_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--set", "model.channels=3", "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == \
        "error: invalid config value model.channels='3': allowed is 1 (every dataset here is greyscale)"
    assert not (tmp_path / "run").exists()


def test_presets_stack_left_to_right(tmp_path: Path) -> None:
    from infogan.cli import config_from_args, train_parser

    cfg = config_from_args(train_parser().parse_args(["--preset", "dsprites-32", "--preset", "eval-infogan-cr",
                                                      "--eval.num_votes_eval", "100"]))
    assert cfg.model.image_size == 32 and cfg.eval.mig_points == 73_728 and cfg.eval.num_votes_eval == 100


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize(("argv", "expected"), [
    (["--loss.lamda_cat", "3"], "did you mean '--loss.lambda_cat'"),
    (["--train.step", "7"], "did you mean '--train.steps'"),  # no silent abbreviation
    (["--train.precision", "fp16", "--train.device", "cpu"], "train.precision='fp16' on a CPU"),
    (["--data.name", "mnist", "--data.root", "EMPTY"], "MNIST/raw"),
])
def test_bad_inputs_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                        expected: str) -> None:
    argv = [a.replace("EMPTY", str(tmp_path / "empty")) for a in argv]
    with pytest.raises(SystemExit) as exit_info:  # argparse-level errors exit from the parser
        code = main([*argv, "--out", str(tmp_path / "run"), "--no-progress"])
        raise SystemExit(code)
    assert exit_info.value.code == 2
    assert expected in _one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_truncated_files_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_data_mnist import make_dataset

    make_dataset(tmp_path / "data", "mnist")
    images = tmp_path / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    assert main(["--preset", "mnist", "--data.root", str(tmp_path / "data"), "--out", str(tmp_path / "r")]) == 2
    assert "cannot read the IDX files in" in _one_line_error(capsys)
    bad = tmp_path / "ckpt" / "checkpoint.pt"
    bad.parent.mkdir()
    bad.write_bytes(b"PK\x03\x04 not a whole checkpoint")
    assert main(["--resume", str(bad.parent), "--out", str(tmp_path / "r2")]) == 2
    assert f"cannot read the checkpoint {bad}" in _one_line_error(capsys)


def test_resume_takes_the_checkpoints_config_and_names_forbidden_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = [f"--{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in TINY.items()]
    assert main([*flags, "--train.steps", "3", "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    capsys.readouterr()
    ckpt = tmp_path / "a" / "checkpoints" / "step_00000003"
    # Only the budget and an evaluation setting are given: everything else comes from the checkpoint.
    assert main(["--resume", str(ckpt), "--train.steps", "6", "--data.eval_size", "32", "--out", str(tmp_path / "b"),
                 "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 6
    assert json.loads((tmp_path / "b" / "config.json").read_text())["model.width"] == TINY["model.width"]
    assert main(["--resume", str(ckpt), "--codes.n_continuous", "3", "--out", str(tmp_path / "c")]) == 2
    line = _one_line_error(capsys)
    assert "codes.n_continuous: 2 -> 3" in line and "may change" in line


def test_set_is_the_same_override_as_a_key_flag(tmp_path: Path) -> None:
    from infogan.cli import config_from_args, parse_args, train_parser

    by_set = config_from_args(parse_args(train_parser(), ["--set", "loss.lambda_cr=2", "--set", "train.g_steps=1"]))
    by_flag = config_from_args(parse_args(train_parser(), ["--loss.lambda_cr", "2", "--train.g_steps", "1"]))
    assert by_set == by_flag and by_set.loss.lambda_cr == 2.0
    with pytest.raises(ValueError, match="did you mean 'loss.lambda_cr'"):
        config_from_args(parse_args(train_parser(), ["--set", "loss.lambda_crr=2"]))


def test_console_scripts_point_at_the_clis() -> None:
    import tomllib

    scripts = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    import importlib

    for name, target in scripts.items():
        module, _, func = target.partition(":")
        assert callable(getattr(importlib.import_module(module), func)), name
    assert set(scripts) == {"infogan-train", "infogan-evaluate", "infogan-sweep", "infogan-analysis"}
