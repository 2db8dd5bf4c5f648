"""The training iteration of one member: InfoGAN-CR's recipe (spectral norm, two G steps, the CR
classifier), the optimisers' ownership of the networks, the CR phase. (Several members:
tests/test_members.py.)"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from torch.nn.utils import parametrize

from infogan import checkpoint, codes
from infogan.config import Config
from infogan.data import load_dataset
from infogan.loop import train
from infogan.model import build, build_cr
from infogan.sampling import Draw
from infogan.step import CR_LOSS_NAMES, LOSS_NAMES, InfoGANStep

# InfoGAN-CR's dSprites recipe is the default config; only sizes shrink.
TINY_DSPRITES = {
    "model.image_size": 32, "model.width": 0.125, "train.steps": 6, "train.batch_size": 8,
    "train.device": "cpu", "train.precision": "fp32", "train.eval_every": 3, "train.checkpoint_every": 3,
    "train.log_every": 1, "data.eval_size": 64, "eval.intermediate": "categorical", "eval.final": "categorical",
}


def _step(cfg: Config) -> InfoGANStep:
    """A one-member step on the CPU, as train() builds it."""
    cpu = torch.device("cpu")
    return InfoGANStep([cfg], load_dataset(cfg, cpu), cpu)


def _one(latent: codes.Latent) -> codes.Latent:
    """One batch's latents as a one-member step's compute reads them: (1, B, ...)."""
    return codes.Latent(latent.noise[None], latent.categorical[None], latent.continuous[None])


def _run(step: InfoGANStep, real: torch.Tensor, latent: codes.Latent, pair: object = None,
         g_latents: list[codes.Latent] | None = None) -> torch.Tensor:
    """One iteration of a one-member step on the given inputs; its losses (n_losses,)."""
    return step([Draw(real, latent, g_latents, pair)])[0]  # type: ignore[arg-type]


def test_default_config_is_infogan_cr_modified_recipe() -> None:
    cfg = Config()
    assert (cfg.codes.n_continuous, cfg.codes.noise_dim, cfg.codes.categorical) == (5, 5, ())
    assert cfg.model.d_norm == "spectral" and cfg.model.leak == 0.2
    assert cfg.loss.lambda_cont == 0.05 and cfg.loss.q_std == "fixed" and cfg.loss.q_update == "with_d"
    assert (cfg.optim.lr_g, cfg.optim.lr_d, cfg.optim.lr_q, cfg.optim.beta1, cfg.optim.beta2) == (1e-3, 2e-3, 2e-3, 0.5, 0.999)
    assert cfg.train.g_steps == 2 and cfg.train.batch_size == 64 and cfg.loss.lambda_cr == 0
    assert (cfg.model.output, cfg.model.g_blocks, cfg.train.g_latent) == ("sigmoid", "act_bn", "shared")
    assert cfg.train.precision == "fp32"  # the published numbers are fp32; autocast only when asked


def test_fresh_latent_for_g_equal_to_d_latent_is_the_shared_step() -> None:
    # A "fresh" G batch that happens to equal D's batch must give the shared path's losses and
    # weights: the only difference between the recipes is which latents G's update sees.
    cfg = Config.from_flat({**TINY_DSPRITES, "train.g_steps": 1})
    a = _step(cfg)
    b = copy.deepcopy(a)
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        real = torch.where(torch.rand(8, 1, 32, 32, generator=gen) > 0.7, 1.0, -1.0)
        latent = codes.sample(cfg.codes, 8, gen)
        torch.testing.assert_close(_run(a, real, latent), _run(b, real, latent, g_latents=[latent]))
    # (G's batch-norm running statistics differ: the fresh path runs G once more per step.)
    for (name, x), y in zip(a.g.named_parameters(), b.g.parameters(), strict=True):
        torch.testing.assert_close(x, y, msg=name)
    other = codes.sample(cfg.codes, 8, gen)
    assert not torch.allclose(_run(copy.deepcopy(a), real, latent), _run(copy.deepcopy(a), real, latent, g_latents=[other]))


def test_fresh_g_latents_are_drawn_by_the_loop_and_change_the_run() -> None:
    shared = train(Config.from_flat({**TINY_DSPRITES, "train.steps": 3}))
    fresh = train(Config.from_flat({**TINY_DSPRITES, "train.steps": 3, "train.g_latent": "fresh"}))
    again = train(Config.from_flat({**TINY_DSPRITES, "train.steps": 3, "train.g_latent": "fresh"}))
    assert fresh.history == again.history  # deterministic
    assert fresh.history[-1]["loss_g"] != shared.history[-1]["loss_g"]


@pytest.mark.parametrize("size", [32, 64])
def test_spectral_norm_on_every_d_and_q_layer_and_no_batch_norm(size: int) -> None:
    cfg = Config.from_flat({"model.image_size": size})
    _, d = build(cfg.codes, cfg.model, learned_std=False)
    layers = [m for m in d.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == (4 if size == 64 else 3) + 1 + 1 + 2  # convs, trunk FC, D head, Q's two
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert not [m for m in d.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    # Spectral norm holds each layer's largest singular value at about 1.
    d.train()
    for _ in range(30):
        d(torch.randn(4, 1, size, size))
    weight = layers[-1].weight.detach()
    assert torch.linalg.matrix_norm(weight, ord=2) == pytest.approx(1.0, abs=0.05)


def test_batch_norm_option_keeps_the_papers_mnist_networks() -> None:
    cfg = Config.from_flat({"model.image_size": 28, "model.d_norm": "batch"})
    _, d = build(cfg.codes, cfg.model, learned_std=False)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in d.trunk) == 1
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in d.q_head)
    assert not any(parametrize.is_parametrized(m) for m in d.modules())


def test_one_trunk_pass_for_two_batches_equals_two_passes_with_batch_norm() -> None:
    cfg = Config.from_flat({"model.image_size": 28, "model.d_norm": "batch", "model.width": 0.25})
    torch.manual_seed(0)
    _, d = build(cfg.codes, cfg.model, learned_std=False)
    twin = copy.deepcopy(d)
    d.train()
    twin.train()
    real, fake = torch.randn(6, 1, 28, 28), torch.randn(6, 1, 28, 28) + 1.0  # other batch statistics
    together = d.features(torch.cat([real, fake]), groups=2)
    apart = torch.cat([twin.features(real), twin.features(fake)])
    torch.testing.assert_close(together, apart, rtol=1e-5, atol=1e-6)
    # The running statistics saw the two batches one after the other, as with two passes.
    for a, b in zip(d.buffers(), twin.buffers(), strict=True):
        torch.testing.assert_close(a, b)
    # One pass over the mixed batch would have normalised them together: a different result.
    assert not torch.allclose(copy.deepcopy(twin).features(torch.cat([real, fake])), apart, atol=1e-3)


def test_cr_classifier_sees_a_stacked_pair() -> None:
    cfg = Config.from_flat({"model.image_size": 32, "model.width": 0.25})
    cr = build_cr(cfg.codes, cfg.model)
    logits = cr(torch.randn(3, 1, 32, 32), torch.randn(3, 1, 32, 32))
    assert logits.shape == (3, cfg.codes.n_codes)
    assert cr.trunk[0].in_channels == 2


def _count_steps(monkeypatch: pytest.MonkeyPatch, opt: object) -> dict[str, int]:
    calls = {"n": 0}
    original = opt.step

    def counted(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(opt, "step", counted)
    return calls


@pytest.mark.parametrize("g_steps", [1, 2, 3])
def test_g_steps_updates_g_that_often_per_d_update(monkeypatch: pytest.MonkeyPatch, g_steps: int) -> None:
    cfg = Config.from_flat({**TINY_DSPRITES, "train.g_steps": g_steps})
    step = _step(cfg)
    g_updates, d_updates = _count_steps(monkeypatch, step.opt_g), _count_steps(monkeypatch, step.opt_d)
    gen = torch.Generator().manual_seed(0)
    out = _run(step, torch.rand(8, 1, 32, 32) * 2 - 1, codes.sample(cfg.codes, 8, gen))
    assert (d_updates["n"], g_updates["n"]) == (1, g_steps)
    assert out.shape == (len(LOSS_NAMES),) and torch.isfinite(out).all()


def test_d_and_q_learn_nothing_from_g_loss_and_cr_classifier_nothing_from_d() -> None:
    cfg = Config.from_flat({**TINY_DSPRITES, "loss.lambda_cr": 2.0})
    step = _step(cfg)
    assert step.cr is None  # created when the CR phase starts
    step.start_cr()
    gen = torch.Generator().manual_seed(0)
    before = {k: v.clone() for k, v in step.member_weights(0).items()}
    real = torch.rand(8, 1, 32, 32) * 2 - 1
    _run(step, real, codes.sample(cfg.codes, 8, gen), codes.sample_pairs(cfg.codes, 8, gen))
    after = step.member_weights(0)
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"generator", "discriminator", "cr"}
    # Only the D and CR optimisers own D/Q and CR weights; G's owns G's only.
    g_owned = {id(p) for group in step.opt_g.param_groups for p in group["params"]}
    assert g_owned == {id(p) for p in step.g.parameters()}
    cr_owned = {id(p) for group in step.opt_cr.param_groups for p in group["params"]}
    assert cr_owned == {id(p) for p in step.cr.parameters()}


def _snapshot(params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def _grads(params: list[torch.nn.Parameter]) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.clone() for p in params]


def _same(a: list[torch.Tensor | None], b: list[torch.Tensor | None]) -> bool:
    return all((x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
               for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("q_update", ["with_d", "with_g"])
def test_q_head_learns_from_the_optimiser_its_mode_names_and_frozen_nets_get_no_gradient(
    monkeypatch: pytest.MonkeyPatch, q_update: str
) -> None:
    # One iteration, watched at each optimiser step: the D step must not reach G (its fakes are
    # detached), the G steps must not reach D's trunk and head (frozen), and Q's head must move in
    # the step of the optimiser that owns it: D's (with_d, the official code) or G's (with_g,
    # the paper's min over G and Q), and in no other.
    cfg = Config.from_flat({**TINY_DSPRITES, "loss.q_update": q_update})
    step = _step(cfg)
    g_params, q_params = list(step.g.parameters()), list(step.d.q_head.parameters())
    d_params = step.d.d_parameters()  # trunk + D head
    owned = lambda opt: {id(p) for group in opt.param_groups for p in group["params"]}  # noqa: E731
    assert (owned(step.opt_d if q_update == "with_d" else step.opt_g) & {id(p) for p in q_params}) == \
        {id(p) for p in q_params}
    assert not owned(step.opt_g if q_update == "with_d" else step.opt_d) & {id(p) for p in q_params}

    seen: dict[str, object] = {}
    d_step, g_step = step.opt_d.step, step.opt_g.step

    def watched_d_step(*args: object, **kwargs: object) -> object:
        seen["g_grads_in_d_step"] = _grads(g_params)
        q_before = _snapshot(q_params)
        out = d_step(*args, **kwargs)
        seen["q_moved_in_d_step"] = not _same(q_before, _snapshot(q_params))
        seen["d_after_d_step"], seen["d_grads_after_d_step"] = _snapshot(d_params), _grads(d_params)
        seen["q_grads_after_d_step"] = _grads(q_params)
        return out

    def watched_g_step(*args: object, **kwargs: object) -> object:
        seen["d_requires_grad_in_g_step"] = any(p.requires_grad for p in d_params)
        seen["d_grads_in_g_step"] = _grads(d_params)
        seen["q_grads_in_g_step"] = _grads(q_params)
        q_before = _snapshot(q_params)
        out = g_step(*args, **kwargs)
        seen["q_moved_in_g_step"] = not _same(q_before, _snapshot(q_params))
        return out

    monkeypatch.setattr(step.opt_d, "step", watched_d_step)
    monkeypatch.setattr(step.opt_g, "step", watched_g_step)
    gen = torch.Generator().manual_seed(0)
    g_before = _snapshot(g_params)
    _run(step, torch.rand(8, 1, 32, 32) * 2 - 1, codes.sample(cfg.codes, 8, gen))

    assert all(grad is None for grad in seen["g_grads_in_d_step"])  # type: ignore[union-attr]
    assert not seen["d_requires_grad_in_g_step"]
    assert _same(seen["d_grads_in_g_step"], seen["d_grads_after_d_step"])  # type: ignore[arg-type]
    assert _same(seen["d_after_d_step"], _snapshot(d_params))  # type: ignore[arg-type]  # G steps left D as it was
    assert not _same(g_before, _snapshot(g_params))
    assert seen["q_moved_in_d_step"] == (q_update == "with_d")
    assert seen["q_moved_in_g_step"] == (q_update == "with_g")
    # Q's head gets gradients from the loss of the step that updates it, and only from that one.
    q_grads_changed = not _same(seen["q_grads_in_g_step"], seen["q_grads_after_d_step"])  # type: ignore[arg-type]
    assert q_grads_changed == (q_update == "with_g")
    assert all((grad is None) == (q_update == "with_g") for grad in seen["q_grads_after_d_step"])  # type: ignore[union-attr]
    assert all(p.requires_grad for p in step.d.parameters())  # unfrozen after the G steps


def test_cr_losses_are_logged_from_cr_start_on_and_resume_is_exact(tmp_path: Path) -> None:
    cfg = Config.from_flat({**TINY_DSPRITES, "loss.lambda_cr": 2.0, "loss.cr_start": 2})
    full = train(cfg, run_dir=tmp_path / "full")
    assert full.status == "finished"
    assert "loss_cr" not in full.history[0] and "loss_cr" not in full.history[1]  # steps 1-2: no CR
    for row in full.history[2:]:
        assert math.isfinite(row["loss_cr"]) and 0.0 <= row["cr_accuracy"] <= 1.0
        assert set(CR_LOSS_NAMES) <= set(row)
    half = train(cfg.replace(**{"train.steps": 3}), run_dir=tmp_path / "half")
    resumed = train(cfg, run_dir=tmp_path / "resumed", resume=half.checkpoint)
    assert half.history + resumed.history == full.history
    state = checkpoint.load(resumed.checkpoint)
    assert state.cr is not None and state.opt_cr is not None
    ref = checkpoint.load(full.checkpoint)
    assert all(torch.equal(ref.cr[k], state.cr[k]) for k in ref.cr)


def test_switching_cr_on_at_resume_is_the_one_run_protocol(tmp_path: Path) -> None:
    # The published protocol: plain InfoGAN to step k, then CR with a fresh classifier. One run
    # with CR from k, and a plain run resumed at k with CR switched on, are the same run.
    cr = {"loss.lambda_cr": 2.0, "loss.cr_start": 3}
    one_run = train(Config.from_flat({**TINY_DSPRITES, **cr}), run_dir=tmp_path / "one")
    plain = train(Config.from_flat({**TINY_DSPRITES, "train.steps": 3}), run_dir=tmp_path / "plain")
    assert checkpoint.load(plain.checkpoint).cr is None
    switched = train(Config.from_flat({**TINY_DSPRITES, **cr}), run_dir=tmp_path / "switched", resume=plain.checkpoint)
    rows = [{k: v for k, v in row.items() if k not in CR_LOSS_NAMES} for row in one_run.history[:3]]
    assert plain.history == rows and one_run.history[3:] == switched.history
    a, b = checkpoint.load(one_run.checkpoint), checkpoint.load(switched.checkpoint)
    for part in ("generator", "discriminator", "cr"):
        assert all(torch.equal(getattr(a, part)[k], getattr(b, part)[k]) for k in getattr(a, part)), part


def test_resume_may_move_cr_only_before_its_phase_starts(tmp_path: Path) -> None:
    cfg = Config.from_flat({**TINY_DSPRITES, "loss.lambda_cr": 2.0, "loss.cr_start": 2, "train.steps": 3})
    started = train(cfg, run_dir=tmp_path / "a")  # checkpoint at step 3, CR active from step 3
    with pytest.raises(ValueError, match=r"cannot resume.*loss\.lambda_cr: 2\.0 -> 0\.0.*step 3"):
        train(cfg.replace(**{"loss.lambda_cr": 0.0, "train.steps": 6}), resume=started.checkpoint)
    plain = train(cfg.replace(**{"loss.lambda_cr": 0.0}), run_dir=tmp_path / "b")
    with pytest.raises(ValueError, match=r"loss\.cr_start"):  # CR would have run at step 3 already
        train(cfg.replace(**{"train.steps": 6}), resume=plain.checkpoint)
    later = train(cfg.replace(**{"train.steps": 6, "loss.cr_start": 4}), resume=plain.checkpoint)
    assert later.status == "finished" and "loss_cr" in later.history[-1]


def _code_bands(cfg: Config, z: torch.Tensor) -> torch.Tensor:
    """A stand-in G whose images show every continuous code: image row r is code r * n // 32's
    value, so the two images of a pair are equal exactly in the shared code's band. (B, 1, 32, 32)"""
    cont = z[0, :, -cfg.codes.n_continuous:]  # (B, n) in [-1, 1]
    rows = cont[:, torch.arange(32) * cfg.codes.n_continuous // 32]  # (B, 32)
    return rows[:, None, :, None].expand(-1, 1, 32, 32).contiguous()


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_cr_classifier_learns_to_tell_the_shared_code(seed: int) -> None:
    # The CR step's own parts (pairs, G's pair images, the classifier's loss and update) with a G
    # whose images depend on the codes by construction: what a trained G provides, minus the GAN
    # dynamics that made the accuracy after a short training depend on the seed (0.20-0.37 after
    # 300 tiny steps for seeds 0-4). Pairs labelled with another code than the shared one (the
    # control) leave it at chance, 1/5. Seeds 0-9 ended at 0.44-0.81 (nine of them >= 0.78).
    cfg = Config.from_flat({**TINY_DSPRITES, "model.width": 0.25, "loss.lambda_cr": 2.0, "train.seed": seed})

    def accuracy(control: bool) -> float:
        torch.manual_seed(seed)
        step = _step(cfg)
        step.start_cr()
        step._generate = lambda z: _code_bands(cfg, z)  # type: ignore[method-assign]
        gen = torch.Generator().manual_seed(seed)
        accuracies = []
        for _ in range(300):
            first, second, shared = codes.sample_pairs(cfg.codes, 32, gen)
            if control:
                shared = shared[torch.randperm(len(shared), generator=gen)]
            loss, acc = step._cr_losses(*step._pair_images((_one(first), _one(second), shared[None])), shared[None])
            step._update(step.opt_cr, loss)
            accuracies.append(float(acc))
        return sum(accuracies[-50:]) / 50

    assert accuracy(control=False) > 0.35
    assert accuracy(control=True) < 0.27
