"""The training loop: determinism, exact resume, divergence handling and run outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from infogan import checkpoint, losses
from infogan import loop as train_module
from infogan.config import Config
from infogan.loop import EvalReport, train

LOSS_KEYS = ("loss_d", "loss_g", "nll_cat", "nll_cont")


def _losses(result: train_module.TrainResult) -> list[tuple[float, ...]]:
    return [(row["step"], *(row[k] for k in LOSS_KEYS)) for row in result.history]


def test_same_seed_same_losses_other_seed_other_losses(tiny_cfg: Config) -> None:
    a, b = train(tiny_cfg), train(tiny_cfg)
    assert a.status == b.status == "finished"
    assert len(a.history) == tiny_cfg.train.steps  # log_every = 1
    assert _losses(a) == _losses(b)
    c = train(tiny_cfg.replace(**{"train.seed": 1}))
    assert _losses(c) != _losses(a)


@pytest.mark.parametrize("q_update", ["with_d", "with_g"])
def test_resume_continues_exactly(tmp_path: Path, tiny_cfg: Config, q_update: str) -> None:
    cfg = tiny_cfg.replace(**{"loss.q_update": q_update, "loss.q_std": "learned"})
    full = train(cfg, run_dir=tmp_path / "full")
    half = train(cfg.replace(**{"train.steps": 3}), run_dir=tmp_path / "half")
    assert half.checkpoint is not None and half.checkpoint.name == "step_00000003"
    resumed = train(cfg, run_dir=tmp_path / "resumed", resume=half.checkpoint)
    assert _losses(half) + _losses(resumed) == _losses(full)
    assert resumed.step == full.step == 6
    g_full = checkpoint.load(full.checkpoint).generator
    g_resumed = checkpoint.load(resumed.checkpoint).generator
    assert all(torch.equal(g_full[k], g_resumed[k]) for k in g_full)


def test_a_checkpoint_saved_with_the_retired_eval_switches_resumes(tmp_path: Path, tiny_cfg: Config) -> None:
    # Checkpoints of older versions hold eval.fid / eval.disentanglement; they load as the metric
    # sets those switches meant and the run resumes.
    half = train(tiny_cfg.replace(**{"train.steps": 3, "eval.final": "all"}), run_dir=tmp_path / "half")
    path = half.checkpoint / checkpoint.FILENAME
    payload = torch.load(path, weights_only=True)
    payload["config"] = {**payload["config"], "eval.fid": False, "eval.disentanglement": True}
    torch.save(payload, path)
    state = checkpoint.load(half.checkpoint)
    assert "eval.fid" not in state.config and "fid" not in state.config["eval.final"].split(",")
    resumed = train(Config.from_flat(state.config).replace(**{"train.steps": 6}), resume=half.checkpoint)
    assert resumed.status == "finished" and "eval/fid" not in resumed.metrics


def test_resume_refuses_a_different_config(tmp_path: Path, tiny_cfg: Config) -> None:
    half = train(tiny_cfg.replace(**{"train.steps": 3}), run_dir=tmp_path)
    with pytest.raises(ValueError, match=r"loss\.lambda_cat: 1\.0 -> 2\.0"):
        train(tiny_cfg.replace(**{"loss.lambda_cat": 2.0}), resume=half.checkpoint)


def test_divergence_stops_and_keeps_last_good_checkpoint(
    tmp_path: Path, tiny_cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real_g_loss = losses.g_loss

    def g_loss_that_blows_up(logits: torch.Tensor, kind: str = "bce") -> torch.Tensor:
        calls["n"] += 1  # one call per step
        value = real_g_loss(logits, kind)
        return value * float("nan") if calls["n"] >= 5 else value

    monkeypatch.setattr(losses, "g_loss", g_loss_that_blows_up)
    reports: list[EvalReport] = []
    result = train(tiny_cfg, run_dir=tmp_path, on_eval=reports.append)
    assert result.status == "diverged"
    assert result.step == 5
    assert "diverged at step 5" in result.message
    assert result.checkpoint is not None and result.checkpoint.name == "step_00000003"
    state = checkpoint.load(result.checkpoint)
    assert all(torch.isfinite(v).all() for v in state.generator.values() if v.is_floating_point())
    assert reports[-1].metrics["train/diverged_step"] == 5.0
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["status"] == "diverged"
    # The run says which path its steps took (auto resolved; a tiny model was never measured).
    assert (saved["step_mode"], saved["members"]) == ("eager", 1) == (result.step_mode, result.members)


def test_infinite_gradient_never_reaches_a_checkpoint(
    tmp_path: Path, tiny_cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At step 4 G's loss stays finite but its gradient becomes inf, so Adam writes NaN weights;
    # the losses only turn NaN at step 5, after step 4's checkpoint would have been written.
    calls = {"n": 0}
    real_g_loss = losses.g_loss

    def g_loss_with_inf_gradient(logits: torch.Tensor, kind: str = "bce") -> torch.Tensor:
        calls["n"] += 1  # one call per step
        value = real_g_loss(logits, kind)
        if calls["n"] == 4:
            value.register_hook(lambda grad: grad * float("inf"))
        return value

    monkeypatch.setattr(losses, "g_loss", g_loss_with_inf_gradient)
    result = train(tiny_cfg.replace(**{"train.checkpoint_every": 2, "train.eval_every": 2}), run_dir=tmp_path)
    assert result.status == "diverged" and result.step == 4
    assert "diverged at step 4: non-finite weights" in result.message and "generator." in result.message
    assert math.isfinite(result.history[-1]["loss_g"])  # the loss itself never showed it
    assert result.checkpoint is not None and result.checkpoint.name == "step_00000002"
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*")) == ["step_00000002"]
    state = checkpoint.load(result.checkpoint)
    for weights in (state.generator, state.discriminator):
        assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
    assert json.loads((tmp_path / "checkpoints" / "latest.json").read_text())["step"] == 2


def test_absurd_learning_rate_diverges(tiny_cfg: Config) -> None:
    cfg = tiny_cfg.replace(**{"optim.lr_d": 1e3, "optim.lr_g": 1e3, "optim.lr_q": 1e3, "train.steps": 60})
    result = train(cfg)
    assert result.status == "diverged", result.history[-1]
    assert result.step < 60 and "train.max_loss" in result.message
    # The same config at a sane learning rate stays below the bound.
    assert train(cfg.replace(**{"optim.lr_d": 2e-4, "optim.lr_g": 1e-3, "optim.lr_q": 2e-4})).status == "finished"


def test_run_directory_outputs_and_eval_callback(tmp_path: Path, tiny_cfg: Config) -> None:
    reports: list[EvalReport] = []
    result = train(tiny_cfg, run_dir=tmp_path, on_eval=reports.append)
    assert [r.step for r in reports] == [3, 6]
    # log_every=1: the loss rows between reports travel with them (each step's own in metrics).
    assert [[row["step"] for row in r.losses] for r in reports] == [[1, 2], [4, 5]]
    assert {"train/loss_d", "train/loss_g", "train/nll_cat", "train/l_info_cat"} <= set(reports[0].losses[0])
    assert [r.checkpoint.name for r in reports] == ["step_00000003", "step_00000006"]
    for key in ("train/loss_d", "train/l_info_cat", "train/h_cat", "eval/cat_accuracy", "eval/cat_nmi"):
        assert key in reports[-1].metrics
    assert reports[-1].metrics["train/h_cat"] == math.log(10)  # one Cat(10) code: H(c) = ln 10 exactly
    assert reports[-1].metrics["train/l_info_cat"] <= reports[-1].metrics["train/h_cat"]
    for name in ("samples.png", "traversal.png"):
        assert (tmp_path / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "config.json").read_text()) == tiny_cfg.to_flat()
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["status"] == "finished" and saved["metrics"] == pytest.approx(result.metrics)
    assert len((tmp_path / "eval.jsonl").read_text().splitlines()) == 2
    assert not list(tmp_path.rglob(".*tmp"))  # atomic writes leave no temp files


def test_l_info_rises_towards_h_c(tiny_cfg: Config) -> None:
    # 80 steps of batch 16 (~2 s): Q learns to read the Cat(10) code from G's images. Over
    # seeds 0-9 the last 10 steps' L_I was 0.50-0.59 H(c) and the first 10 steps' 0.07-0.08 H(c).
    result = train(tiny_cfg.replace(**{"train.steps": 80, "train.batch_size": 16, "train.log_every": 10,
                                       "train.eval_every": 80, "train.checkpoint_every": 80}))
    h = result.metrics["train/h_cat"]
    first, last = result.history[0]["l_info_cat"], result.history[-1]["l_info_cat"]
    assert first < 0.2 * h
    assert 0.35 * h < last <= h


def test_no_run_dir_writes_nothing(tmp_path: Path, tiny_cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = train(tiny_cfg)
    assert result.checkpoint is None and list(tmp_path.iterdir()) == []


def test_cuda_request_without_gpu_is_a_clear_error(tiny_cfg: Config) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="no CUDA device"):
        train(tiny_cfg.replace(**{"train.device": "cuda"}))


@pytest.mark.parametrize("precision", ["bf16"])
def test_cpu_autocast_runs(tiny_cfg: Config, precision: str) -> None:
    result = train(tiny_cfg.replace(**{"train.precision": precision, "train.steps": 2}))
    assert result.status == "finished"


def test_evaluation_suite_on_dsprites_reports_every_metric(tmp_path: Path) -> None:
    cfg = Config.from_flat({
        "model.image_size": 32, "model.width": 0.125, "codes.noise_dim": 2, "codes.categorical": (3,),
        "codes.n_continuous": 3, "train.steps": 2, "train.batch_size": 8, "train.device": "cpu",
        "train.precision": "fp32", "data.eval_size": 60, "eval.num_points": 200, "eval.num_test": 100,
        "eval.num_votes_train": 40, "eval.num_votes_eval": 20, "eval.vote_batch": 8,
        "eval.fid_samples": 64, "eval.fid_net_steps": 3, "eval.cache_dir": str(tmp_path / "cache"),
    })
    reports: list[EvalReport] = []
    result = train(cfg, run_dir=tmp_path / "run", on_eval=reports.append)
    metrics = result.metrics
    for key in ("mig", "factor_vae", "beta_vae", "dci_disentanglement", "dci_completeness",
                "dci_informativeness", "sap", "modularity", "explicitness", "cat_accuracy", "fid"):
        assert f"eval/{key}" in metrics, key
    for key in ("mig", "factor_vae", "beta_vae", "dci_disentanglement", "sap", "modularity", "cat_accuracy"):
        assert 0.0 <= metrics[f"eval/{key}"] <= 1.0, (key, metrics[f"eval/{key}"])
    assert metrics["eval/fid"] > 0
    assert reports[-1].tags["fid_feature_net"].startswith("lenet-dsprites32@")
    row = json.loads((tmp_path / "run" / "eval.jsonl").read_text().splitlines()[-1])
    assert row["fid_feature_net"] == reports[-1].tags["fid_feature_net"] and row["eval/fid"] == metrics["eval/fid"]
    # Evaluation is seeded: the same model state gives the same numbers.
    again = train(cfg).metrics
    assert {k: v for k, v in again.items() if k != "eval/seconds"} == \
        {k: v for k, v in metrics.items() if k != "eval/seconds"}


def test_cpu_precision_is_fp32_unless_asked() -> None:
    from infogan.loop import resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) is None  # CPU bf16 quality was never measured: opt-in only
    assert resolve_precision("bf16", cpu) == torch.bfloat16 and resolve_precision("fp32", cpu) is None


def test_evaluation_schedules() -> None:
    from infogan.loop import evaluation_steps, is_evaluation_step

    assert evaluation_steps(25, 5) == [5, 10, 15, 20, 25]
    assert evaluation_steps(23, 5) == [5, 10, 15, 20, 23]
    assert evaluation_steps(100, 5, log=True) == [5, 10, 20, 40, 80, 100]
    assert evaluation_steps(100, 5, log=True, also=(33,)) == [5, 10, 20, 33, 40, 80, 100]
    assert not is_evaluation_step(15, 100, 5, log=True) and is_evaluation_step(15, 100, 5)


def test_paper_preset_is_the_published_protocol_in_one_run() -> None:
    from infogan.loop import full_evaluation_steps, run_evaluation_steps
    from infogan.presets import PRESETS

    cfg = Config.from_flat(PRESETS["paper"]["overrides"])
    assert (cfg.train.steps, cfg.loss.cr_start, cfg.loss.lambda_cr) == (322_560, 288_000, 2.0)
    assert cfg.train.steps == 28 * 737_280 // 64  # 28 epochs of dSprites at batch 64
    assert full_evaluation_steps(cfg) == (288_000, 322_560)  # the two rows of InfoGAN-CR's table
    assert run_evaluation_steps(cfg) == [1000 * 2**k for k in range(9)] + [288_000, 322_560]
    assert cfg.eval.mig_points == 73_728 and cfg.eval.dci_model == "gradient_boosting"
    assert Config.from_flat(PRESETS["dsprites-cr"]["overrides"]).loss.cr_start in full_evaluation_steps(
        Config.from_flat(PRESETS["dsprites-cr"]["overrides"]))


def test_the_switch_to_cr_is_a_full_evaluation_and_a_checkpoint(tmp_path: Path) -> None:
    cfg = Config.from_flat({
        "model.image_size": 32, "model.width": 0.125, "train.steps": 5, "train.batch_size": 8, "train.device": "cpu",
        "train.eval_every": 2, "train.checkpoint_every": 4, "data.eval_size": 64,
        "eval.intermediate": "mig", "eval.final": "mig,sap", "eval.num_points": 200, "eval.num_test": 100,
        "eval.intermediate_points": 200, "loss.lambda_cr": 2.0, "loss.cr_start": 3,
    })
    reports: list[EvalReport] = []
    train(cfg, run_dir=tmp_path, on_eval=reports.append)
    assert [r.step for r in reports] == [2, 3, 4, 5]
    full = {r.step for r in reports if "eval/sap" in r.metrics}
    assert full == {3, 5}
    assert [r.step for r in reports if r.checkpoint is not None] == [3, 4, 5]


def _training_presets() -> list[str]:
    from infogan.presets import PRESETS, is_eval_preset

    return sorted(name for name in PRESETS if not is_eval_preset(name))


@pytest.mark.parametrize("name", _training_presets())
def test_every_training_recipe_trains_two_steps(tmp_path: Path, name: str) -> None:
    # Each recipe as published (networks, codes, losses, G's latents, norms), only smaller and
    # shorter; InfoGAN-CR's phase starts at once, so its classifier trains too.
    from infogan.presets import PRESETS
    from tests.test_data_mnist import make_dataset

    recipe = Config.from_flat(PRESETS[name]["overrides"])
    small = {"model.width": 0.125, "train.steps": 2, "train.batch_size": 8, "train.device": "cpu",
             "train.eval_every": 2, "train.checkpoint_every": 2, "train.log_every": 1, "data.eval_size": 32,
             "eval.intermediate": "categorical", "eval.final": "categorical"}
    if recipe.loss.lambda_cr > 0:
        small["loss.cr_start"] = 1
    if recipe.data.name == "mnist":
        make_dataset(tmp_path / "data", "mnist")
        small["data.root"] = str(tmp_path / "data")
    result = train(recipe.replace(**small), run_dir=tmp_path / "run")
    assert result.status == "finished" and result.step == 2, result.message
    assert all(math.isfinite(v) for row in result.history for v in row.values())
    assert ("loss_cr" in result.history[-1]) == (recipe.loss.lambda_cr > 0)
    assert ("eval/cat_accuracy" in result.metrics) == bool(recipe.codes.categorical)
    assert checkpoint.load(result.checkpoint).step == 2
