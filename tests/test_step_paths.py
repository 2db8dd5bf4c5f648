"""The step's paths (train.step_mode): compiled and captured iterations against the eager one.

On the CPU: the compiled path traced by TorchDynamo/AOTAutograd (``aot_eager``: the traced graphs
run PyTorch's own kernels, so the losses must equal the eager step's exactly), the same with
inductor's generated kernels (slow: a C++ compile; equal to rounding), the warm-up a capture needs
undone to the bit, and resuming a run on another path. The CUDA twins (the whole iteration as a
CUDA graph) are marked ``gpu``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from infogan import checkpoint
from infogan.capture import check_capturable, warm_up
from infogan.config import Config
from infogan.data import load_dataset
from infogan.loop import make_iteration, resolve_step_mode, train
from infogan.stacked_adam import StackedAdam
from infogan.step import InfoGANStep

TINY = {
    "model.image_size": 32, "model.width": 0.125, "train.batch_size": 8, "train.device": "cpu",
    "train.log_every": 1, "train.eval_every": 1000, "train.checkpoint_every": 1000,
    "eval.intermediate": "categorical", "eval.final": "categorical", "data.eval_size": 64,
}
# Every compiled function: G's forward, D's and G's losses, the CR classifier's (from step 4 on),
# G's fresh latents (openai's recipe) and the MNIST networks with batch norm in D.
RECIPES = {
    "dsprites-cr": {"loss.lambda_cr": 2.0, "loss.cr_start": 4},
    "digits": {"data.name": "digits", "model.image_size": 28, "model.d_norm": "batch", "codes.categorical": (10,),
               "codes.noise_dim": 8, "train.g_latent": "fresh", "train.g_steps": 1, "model.g_blocks": "bn_act"},
}


CPU = torch.device("cpu")


def _step(cfgs: list[Config]) -> InfoGANStep:
    return InfoGANStep(cfgs, load_dataset(cfgs[0], CPU), CPU)


def _losses(cfg: Config, steps: int, mode: str, backend: str = "inductor", warmup: int = 0,
            members: int = 1) -> list[torch.Tensor]:
    """The per-step losses (K, n) of ``steps`` iterations of a fresh step of ``members`` members
    (seeds 0, 1, ...) on the CPU path ``mode``."""
    step = _step([cfg.replace(**{"train.seed": s}) for s in range(members)])
    if mode == "compiled":
        step.compile(backend=backend)
    iteration = make_iteration("eager", step)
    if warmup:
        warm_up(step, lambda: iteration(False), warmup)
    return [iteration(step.cr_active(i)) for i in range(1, steps + 1)]


@pytest.mark.parametrize("members", [1, 3])
@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_compiled_step_traces_exactly_the_eager_step(recipe: str, members: int) -> None:
    cfg = Config.from_flat({**TINY, **RECIPES[recipe]})
    eager = _losses(cfg, 30 // members, "eager", members=members)
    traced = _losses(cfg, 30 // members, "compiled", backend="aot_eager", members=members)
    torch.testing.assert_close(torch.stack(traced), torch.stack(eager), rtol=0, atol=0, equal_nan=True)


# Inductor's kernels fuse and reorder float sums, so they match the eager step to rounding; a GAN
# amplifies such differences as it trains (measured on the CPU, dsprites-cr: 1e-7 at step 1,
# 1e-5 by step 20, 3e-2 by step 25 and 1.2 by step 30; the digits recipe with batch norm in D
# faster). So the test holds each step to ONE_STEP from the same state, at 30 states along the
# eager run, and the first TRAJECTORY_STEPS steps of two independent runs to TRAJECTORY
# (measured at step 20: 1.2e-4 on an AVX-512 EPYC and 1.0e-4 with AVX2 kernels on it). The CR
# accuracy counts a batch's right answers: a logit within rounding of its rival flips one answer,
# 1/B, so that column is held to one answer.
ONE_STEP = 1e-4  # relative and absolute, every loss of one step from the same state
TRAJECTORY_STEPS, TRAJECTORY = 20, 1e-3


@pytest.mark.slow
def test_inductor_compiled_step_gives_the_eager_losses_to_rounding() -> None:
    cfg = Config.from_flat({**TINY, **RECIPES["dsprites-cr"]})
    eager, compiled = _step([cfg]), _step([cfg])
    compiled.compile()
    for i in range(1, 31):
        compiled.load_member(0, eager.member_state_dict(0))  # the same state (copies)
        draws = eager.draw(eager.cr_active(i))
        expected = eager(draws)
        got = compiled(copy.deepcopy(draws))
        torch.testing.assert_close(got, expected, rtol=ONE_STEP, atol=ONE_STEP, equal_nan=True, msg=f"step {i}")
    runs = [torch.cat(_losses(cfg, TRAJECTORY_STEPS, mode)) for mode in ("eager", "compiled")]
    accuracy = list(compiled.loss_names).index("cr_accuracy")
    losses = [i for i in range(runs[0].shape[1]) if i != accuracy]
    torch.testing.assert_close(runs[1][:, losses], runs[0][:, losses], rtol=TRAJECTORY, atol=TRAJECTORY, equal_nan=True)
    one_answer = 1 / cfg.train.batch_size
    torch.testing.assert_close(runs[1][:, accuracy], runs[0][:, accuracy], rtol=0, atol=one_answer, equal_nan=True)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_warm_up_before_a_capture_leaves_no_trace(recipe: str) -> None:
    # A capture runs warm-up iterations and writes the training state back: a fresh Adam state
    # included (zeros and step 0 are exactly what Adam starts from).
    cfg = Config.from_flat({**TINY, **RECIPES[recipe]})
    plain = _losses(cfg, 8, "eager")
    warmed = _losses(cfg, 8, "eager", warmup=3)
    torch.testing.assert_close(torch.stack(warmed), torch.stack(plain), rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize(("before", "after"), [("eager", "compiled"), ("compiled", "eager"), ("compiled", "compiled")])
def test_a_run_resumes_on_any_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, before: str, after: str) -> None:
    # Started on one path, resumed on another (compiled = traced here, so exactly): the
    # uninterrupted eager run's losses, across the switch to InfoGAN-CR's phase at step 4.
    monkeypatch.setattr(InfoGANStep, "compile", _traced_compile)
    cfg = Config.from_flat({**TINY, **RECIPES["dsprites-cr"], "train.steps": 8, "train.checkpoint_every": 3,
                            "train.eval_every": 3})
    whole = train(cfg, run_dir=tmp_path / "whole")
    first = train(cfg.replace(**{"train.steps": 3, "train.step_mode": before}), run_dir=tmp_path / "first")
    second = train(cfg.replace(**{"train.step_mode": after}), run_dir=tmp_path / "second",
                   resume=first.checkpoint)
    assert first.history + second.history == whole.history
    a, b = checkpoint.load(whole.checkpoint), checkpoint.load(second.checkpoint)
    assert all(torch.equal(a.generator[k], b.generator[k]) for k in a.generator)


_compile = InfoGANStep.compile


def _traced_compile(self: InfoGANStep, mode: str | None = None, backend: str = "inductor") -> None:
    _compile(self, mode=mode, backend="aot_eager")


def test_step_modes_a_device_cannot_run_are_clear_errors() -> None:
    cpu = torch.device("cpu")
    cfg = Config.from_flat(TINY)
    assert resolve_step_mode(cfg, cpu, None) == "eager"  # auto; nothing measured for a tiny model
    assert resolve_step_mode(cfg.replace(**{"train.step_mode": "compiled"}), cpu, None) == "compiled"
    with pytest.raises(ValueError, match=r"train.step_mode='graph' on a CPU: a CUDA graph needs a GPU"):
        resolve_step_mode(cfg.replace(**{"train.step_mode": "graph"}), cpu, None)
    with pytest.raises(ValueError, match="train.step_mode='graph' on a CPU"):
        train(Config.from_flat({**TINY, "train.steps": 1, "train.step_mode": "graph"}))


def test_the_optimisers_a_graph_captures_are_capturable() -> None:
    # A CUDA graph replays its kernels: an optimiser whose step count lives on the host would replay
    # one step forever, and torch refuses to capture it ("capturable is False"). Before the steps
    # were one engine, the single step built Adam(fused=True) on a GPU without capturable (the
    # graph path's first capture would have raised); the check the capture runs refuses it.
    fused = torch.optim.Adam([torch.nn.Parameter(torch.zeros(3))], fused=True)
    with pytest.raises(ValueError, match="not capturable"):
        check_capturable([fused])
    check_capturable([torch.optim.Adam([torch.nn.Parameter(torch.zeros(3))], capturable=True)])
    # The step's optimisers keep every state tensor, the step counts included, on the parameters'
    # device, whatever it is (here the meta device stands for a GPU: no memory, no kernels).
    for members in (1, 3):
        step = _step([Config.from_flat({**TINY, **RECIPES["dsprites-cr"], "train.seed": s}) for s in range(members)])
        step.start_cr()
        check_capturable(step.optimisers())
        meta = [torch.nn.Parameter(torch.zeros(members, 4, 2, device="meta"))]
        opt = StackedAdam([[("w", meta[0], (4, 2))]], [[1e-3] * members], [(0.5, 0.999)] * members)
        assert opt.capturable and {t.device.type for t in (opt.steps, *opt.exp_avg, *opt.exp_avg_sq)} == {"meta"}


# ---- the CUDA twins -----------------------------------------------------------------------------

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _cuda_run(tmp_path: Path, name: str, mode: str, steps: int, resume: Path | None = None,
              **extra: object) -> object:
    cfg = Config.from_flat({**TINY, **RECIPES["dsprites-cr"], "train.device": "cuda", "train.steps": steps,
                            "train.step_mode": mode, "train.checkpoint_every": 5, "train.eval_every": 5, **extra})
    return train(cfg, run_dir=tmp_path / name, resume=resume)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("mode", ["compiled", "graph"])
def test_cuda_paths_give_the_eager_losses(tmp_path: Path, mode: str) -> None:
    eager = _cuda_run(tmp_path, "eager", "eager", 30)
    fast = _cuda_run(tmp_path, mode, mode, 30)
    rows = lambda r: torch.tensor([[row[k] for k in sorted(row)] for row in r.history])  # noqa: E731
    n = TRAJECTORY_STEPS
    torch.testing.assert_close(rows(fast)[:n], rows(eager)[:n], rtol=TRAJECTORY, atol=TRAJECTORY, equal_nan=True)
    assert fast.status == "finished" and len(fast.history) == 30


@pytest.mark.gpu
@gpu
def test_cuda_graph_run_resumes_exactly_and_across_paths(tmp_path: Path) -> None:
    whole = _cuda_run(tmp_path, "whole", "graph", 15)
    first = _cuda_run(tmp_path, "first", "graph", 10)
    again = _cuda_run(tmp_path, "again", "graph", 15, resume=first.checkpoint)
    assert first.history + again.history == whole.history  # the same captured kernels: bit for bit
    eager_first = _cuda_run(tmp_path, "eager_first", "eager", 10)
    on_graph = _cuda_run(tmp_path, "on_graph", "graph", 15, resume=eager_first.checkpoint)
    assert len(on_graph.history) == 5 and on_graph.status == "finished"
