"""The lambda_search CLI: argument resolution, and errors that must come before any trial."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sweeps import lambda_search
from sweeps.checks import SweepCheckError, check_sweep, local_store_on_cluster
from sweeps.cli import build_parser, settings_from_args
from sweeps.settings import DEFAULT_METRIC, DEFAULT_METRICS
from tests.sweeps.conftest import SCRIPT, free_port, subprocess_env


def test_defaults_are_a_cpu_sized_dsprites_sweep(tmp_path: Path) -> None:
    args = build_parser().parse_args([])
    settings, space = settings_from_args(args)
    assert settings.dataset == "dsprites" and settings.budget == "cpu" and settings.search == "tpe"
    # No ASHA at the cpu budget: its rungs were measured to rank the final MIG by luck (issue 24).
    assert settings.scheduler == "fifo" and settings.metrics == [DEFAULT_METRIC]
    assert settings.num_samples == 4 and settings.steps == 300
    assert (settings.confirm, settings.confirm_seeds, settings.confirm_per) == (2, 3, "")  # issue 24's defaults
    assert space.fixed["train.threads"] == 1 and space.fixed["data.name"] == "dsprites"
    assert {"loss.lambda_cont", "optim.lr_d", "optim.lr_g", "codes.n_continuous"} <= set(space.params)


def test_flags_reach_settings_and_space() -> None:
    args = build_parser().parse_args([
        "--smoke-test", "--steps", "30", "--set", "loss.q_std=learned", "--range", "train.batch_size=16,32",
        "--search", "random", "--cpus-per-trial", "2", "--gpus-per-trial", "0.5", "--seed", "3",
    ])
    settings, space = settings_from_args(args)
    assert settings.budget == "smoke" and settings.num_samples == 2 and settings.steps == 30
    assert settings.scheduler == "fifo" and settings.gpus_per_trial == 0.5 and settings.seed == 3
    assert space.fixed["loss.q_std"] == "learned" and space.params["train.batch_size"].choices == (16, 32)
    assert space.fixed["train.threads"] == 2
    assert settings.params()["metric"] == DEFAULT_METRICS[settings.dataset]


def test_multi_objective_parses_and_refuses_asha() -> None:
    parser = build_parser()
    settings, _ = settings_from_args(parser.parse_args(["--multi-objective"]))
    assert settings.metrics == ["eval/fid", "eval/mig"] and settings.modes == ["min", "max"]
    assert settings.scheduler == "fifo"
    with pytest.raises(SweepCheckError, match="ASHA"):
        check_sweep(*settings_from_args(parser.parse_args(["--multi-objective", "--scheduler", "asha"])))
    with pytest.raises(ValueError, match="METRIC:min"):
        settings_from_args(parser.parse_args(["--multi-objective", "eval/fid:low,eval/mig:max"]))


@pytest.mark.parametrize(("extra", "match"), [
    (["--range", "loss.lambda_cr=0,2"], "includes 0 and positive"),
    (["--range", "loss.lambda_cr=0:2"], "includes 0 and positive"),
    (["--set", "train.precision=fp16"], "fp16"),
])
def test_ensemble_refuses_members_that_cannot_share_a_step(extra: list[str], match: str) -> None:
    parser = build_parser()
    base = ["--budget", "smoke", "--set", "codes.n_continuous=5", "--ensemble", "2"]
    with pytest.raises(SweepCheckError, match=match):
        check_sweep(*settings_from_args(parser.parse_args([*base, *extra])))
    check_sweep(*settings_from_args(parser.parse_args([*base, "--range", "loss.lambda_cr=1,2"])))
    check_sweep(*settings_from_args(parser.parse_args([*base, "--range", "loss.lambda_cr=0.5:2"])))
    # Without --ensemble each trial is a step of its own: a CR and a plain trial in one sweep are fine.
    check_sweep(*settings_from_args(parser.parse_args(["--budget", "smoke", "--range", "loss.lambda_cr=0,2"])))


@pytest.mark.parametrize(("flags", "match"), [
    (["--confirm", "-1"], "--confirm -1: allowed is >= 0"),
    (["--confirm-seeds", "1"], "--confirm-seeds 1: allowed is >= 2"),
    (["--confirm-per", "loss.lambda_cr"], "--confirm-per loss.lambda_cr: not a searched key"),
])
def test_confirmation_flags_are_checked(flags: list[str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        settings_from_args(build_parser().parse_args(flags))


def test_confirmation_flags_reach_the_settings() -> None:
    settings, _ = settings_from_args(build_parser().parse_args(
        ["--confirm", "0", "--confirm-seeds", "5", "--range", "loss.lambda_cr=0,2", "--confirm-per", "loss.lambda_cr"]))
    assert (settings.confirm, settings.confirm_seeds, settings.confirm_per) == (0, 5, "loss.lambda_cr")
    assert settings_from_args(build_parser().parse_args(["--smoke-test"]))[0].confirm == 0  # CI's search alone


def test_bad_value_is_exit_2_with_the_key_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert lambda_search.main(["--set", "loss.lambda_cat=-1"]) == 2
    assert "loss.lambda_cat" in capsys.readouterr().err


def test_checkpoints_between_reports_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # The cpu budget reports every 100 steps; checkpoints every 75 would mostly never reach Tune.
    assert lambda_search.main(["--set", "train.checkpoint_every=75"]) == 2
    assert "train.checkpoint_every=75" in capsys.readouterr().err
    settings, _ = settings_from_args(
        build_parser().parse_args(["--set", "train.checkpoint_every=50"]))
    assert settings.steps == 300


def test_resume_without_a_sweep_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lambda_search.main(["--resume", "--name", "nothing", "--storage-path", str(tmp_path)]) == 2
    assert "nothing to resume" in capsys.readouterr().err


@pytest.mark.integration
def test_unreachable_tracking_server_fails_before_any_trial(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    storage = tmp_path / "tune"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke-test", "--tracking-uri", uri, "--storage-path", str(storage)],
        capture_output=True, text=True, timeout=120, env=subprocess_env(tmp_path), cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "unreachable" in errors[0] and uri in errors[0]
    assert not storage.exists()  # no Tune experiment, hence no trial, was started
    assert "Trial" not in proc.stdout and "ray" not in proc.stderr.lower().replace(uri, "")


def test_a_file_store_is_refused_on_a_cluster_of_several_machines() -> None:
    sqlite, server = "sqlite:////tmp/mlflow.db", "http://10.0.0.1:5000"
    assert "2 machines" in local_store_on_cluster(sqlite, {"10.0.0.1", "10.0.0.2"}, joined=True)
    assert "autoscaling" in local_store_on_cluster("file:///tmp/mlruns", {"10.0.0.1"}, joined=True)
    # One machine (a laptop, or two Ray nodes sharing its disk) is fine; so is a server anywhere.
    assert local_store_on_cluster(sqlite, {"127.0.0.1"}, joined=False) is None
    assert local_store_on_cluster(server, {"10.0.0.1", "10.0.0.2"}, joined=True) is None


@pytest.mark.parametrize(("argv", "expected"), [
    (["--num-samples", "0"], "--num-samples 0: allowed is >= 1"),
    (["--max-concurrent", "0"], "--max-concurrent 0: allowed is >= 1"),
    (["--gpus-per-trial", "-1"], "--gpus-per-trial -1.0: allowed is >= 0"),
    (["--cpus-per-trial", "0"], "--cpus-per-trial 0.0: allowed is > 0"),
    (["--max-failures", "-5"], "--max-failures -5"),
    (["--set", "loss.lamda_cat=1"], "did you mean 'loss.lambda_cat'"),
    (["--loss.lambda_cat", "5"], "config keys are set with --set KEY=VALUE"),
    (["--num-sample", "3"], "unknown flag '--num-sample'"),  # no silent abbreviation
    # An objective no trial would report: refused before Ray starts, named with the flag it came in.
    (["--metric", "eval/foo"], "--metric eval/foo: not reported by every evaluation"),
    (["--metric", "eval/mgi"], "eval/mgi: not reported by every evaluation of this sweep's trials (did you mean eval/mig?); choose"),
    (["--multi-objective", "eval/fid:min,eval/foo:max"], "--multi-objective eval/foo: not reported"),
    (["--metric", "eval/factor_vae"], "eval.intermediate sets the rest"),  # only at the last step
    (["--dataset", "digits", "--metric", "eval/mig"], "choose eval/cat_accuracy, eval/cat_nmi, eval/fid"),
])
def test_bad_sweep_inputs_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                              expected: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(lambda_search.main([*argv, "--storage-path", str(tmp_path / "tune"),
                                             "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and len(err[0]) < 300, err
    assert not (tmp_path / "tune").exists() and not (tmp_path / "m.db").exists()


def test_run_sweep_from_python_is_held_to_the_same_checks(tmp_path: Path) -> None:
    # README says a sweep may be started from Python: its checks live in run_sweep, not only in the CLI.
    from sweeps import spaces
    from sweeps.settings import SweepSettings
    from sweeps.tuner import run_sweep

    space = spaces.base_space("dsprites").with_fixed(spaces.BUDGETS["smoke"]["fixed"])
    settings = SweepSettings(metrics=["eval/fid", "eval/mig"], modes=["min", "max"], scheduler="asha",
                             storage_path=str(tmp_path / "tune"), tracking_uri=f"sqlite:///{tmp_path}/m.db")
    with pytest.raises(SweepCheckError, match="ASHA ranks trials by one metric"):
        run_sweep(settings, space)
    settings.scheduler, settings.metrics = "fifo", ["eval/fid", "eval/migg"]
    with pytest.raises(SweepCheckError, match="did you mean eval/mig"):
        run_sweep(settings, space)
    assert not (tmp_path / "tune").exists() and not (tmp_path / "m.db").exists()


@pytest.mark.integration
@pytest.mark.slow
def test_a_sweep_whose_every_trial_failed_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # MNIST from an empty folder: the config is valid, every trial fails when it loads the data.
    (tmp_path / "empty").mkdir()
    code = lambda_search.main(["--smoke-test", "--num-samples", "1", "--dataset", "mnist", "--max-failures", "0",
                               "--set", f"data.root={tmp_path / 'empty'}", "--storage-path", str(tmp_path / "tune"),
                               "--tracking-uri", f"sqlite:///{tmp_path}/m.db"])
    captured = capsys.readouterr()
    assert code == 1, captured.err[-2000:]
    assert "search 1 trial (1 failed)" in captured.out and "every trial of the search failed" in captured.err
