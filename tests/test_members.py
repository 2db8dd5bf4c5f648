"""A step of K members (infogan.step) against K separate runs, on the CPU.

Three members that differ in seed, code weights, learning rates and betas, on the default dSprites
recipe (spectral norm, two G steps), the MNIST recipe (batch norm in D, fresh G latents, one G step)
and InfoGAN-CR (its classifier from step 4 on). A separate run is a step of that one member, as
``train()`` builds it (``_separate``), or ``train()`` itself.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from infogan import checkpoint, losses
from infogan.codes import assemble
from infogan.config import Config
from infogan.data import load_dataset
from infogan.loop import train
from infogan.model import build
from infogan.step import InfoGANStep, check_members

TINY = {
    "model.image_size": 32, "model.width": 0.125, "train.batch_size": 8, "train.device": "cpu",
    "train.log_every": 1, "train.eval_every": 1000, "train.checkpoint_every": 1000,
    "eval.intermediate": "categorical", "eval.final": "categorical", "data.eval_size": 64,
}
RECIPES = {
    "dsprites": {},
    "digits": {"data.name": "digits", "model.image_size": 28, "model.d_norm": "batch", "codes.categorical": (10,),
               "train.g_latent": "fresh", "train.g_steps": 1, "model.g_blocks": "bn_act"},
    "dsprites-cr": {"loss.lambda_cr": 2.0, "loss.cr_start": 3},
}
MEMBERS = [
    {"train.seed": 0},
    {"train.seed": 1, "loss.lambda_cont": 0.2, "optim.lr_g": 5e-4, "optim.beta1": 0.7, "loss.lambda_cr": 1.0},
    {"train.seed": 2, "loss.lambda_cat": 0.5, "optim.lr_d": 1e-3, "optim.lr_q": 3e-3, "optim.beta2": 0.99,
     "optim.lr_cr": 1e-3},
]
CPU = torch.device("cpu")


def _configs(recipe: str) -> list[Config]:
    base = {**TINY, **RECIPES[recipe]}
    return [Config.from_flat({**base, **m} if base.get("loss.lambda_cr") else
                             {**base, **{k: v for k, v in m.items() if k != "loss.lambda_cr"}}) for m in MEMBERS]


def _separate(cfg: Config) -> InfoGANStep:
    """A separate run's step (one member), built as ``train()`` builds it."""
    return InfoGANStep([cfg], load_dataset(cfg, CPU), CPU)


def _separate_losses(cfg: Config, steps: int) -> torch.Tensor:
    return _ensemble_losses(_separate(cfg), 1, steps)[0]  # (steps, n_losses)


def _ensemble(cfgs: list[Config]) -> InfoGANStep:
    return InfoGANStep(cfgs, load_dataset(cfgs[0], CPU), CPU)


def _ensemble_losses(ens: InfoGANStep, first: int, last: int) -> torch.Tensor:
    return torch.stack([ens.iteration(ens.cr_active(i)) for i in range(first, last + 1)], dim=1)  # (K, steps, n)


@pytest.mark.parametrize("recipe", ["dsprites", "digits"])
def test_members_start_with_their_separate_runs_weights(recipe: str) -> None:
    cfgs = _configs(recipe)
    before = torch.get_rng_state()
    ens = _ensemble(cfgs)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's global RNG is left alone
    for k, cfg in enumerate(cfgs):
        single = _separate(cfg)
        member = ens.member_state_dict(k)
        for net in ("generator", "discriminator"):
            expected = single.member_state_dict(0)[net]
            assert member[net].keys() == expected.keys()
            for key, value in expected.items():
                assert torch.equal(member[net][key], value), (k, net, key)
        assert torch.equal(ens.samplers[k].generator.get_state(), single.samplers[0].generator.get_state())
        # ... and as a plain run of the model's single networks: the same weights and buffers.
        torch.manual_seed(cfg.train.seed)
        g, d = build(cfg.codes, cfg.model, learned_std=False)
        assert all(torch.equal(member["generator"][key], value) for key, value in g.state_dict().items())
        assert all(torch.equal(member["discriminator"][key], value) for key, value in d.state_dict().items())


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_each_member_draws_its_separate_runs_batches(recipe: str) -> None:
    # Each member draws from its own generator in its run's order; the ensemble renders all the
    # members' real images at once, to the same pixels.
    cfgs = _configs(recipe)
    ens = _ensemble(cfgs)
    samplers = [_separate(cfg).samplers[0] for cfg in cfgs]
    for i in range(1, 6):
        cr = ens.cr_active(i)
        for got, expected in zip(ens.draw(cr), (s(cr) for s in samplers), strict=True):
            _assert_states_equal(got.__dict__, expected.__dict__, f"step {i}")


# Grouped convolutions and batched matmuls sum in another order than one model's kernels (a step of
# one member runs the single networks' own), so a member's losses equal its separate run's to float
# rounding. From the same state (the separate
# runs' states loaded into the ensemble before every step, the same draws), at 24 states along the
# runs, every loss of every member is within ONE_STEP (relative and absolute); measured on the CPU:
# at most 1.1e-6 (dsprites), 2.4e-6 (dsprites-cr) and 5.7e-6 (digits) of (1 + |loss|).
ONE_STEP, ONE_STEP_STATES = 2e-5, 24


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_one_step_from_the_same_state_gives_each_members_losses(recipe: str) -> None:
    cfgs = _configs(recipe)
    ens = _ensemble(cfgs)
    separate = [_separate(cfg) for cfg in cfgs]
    for i in range(1, ONE_STEP_STATES + 1):
        draws = [step.draw(step.cr_active(i))[0] for step in separate]
        for k, step in enumerate(separate):
            ens.load_member(k, step.member_state_dict(0))
        expected = torch.cat([step([d]) for step, d in zip(separate, draws, strict=True)])
        got = ens(draws)
        assert got.shape == (3, len(ens.loss_names))
        torch.testing.assert_close(got, expected, rtol=ONE_STEP, atol=ONE_STEP, equal_nan=True, msg=f"step {i}")


# Whole runs: a GAN amplifies rounding differences as it trains. Measured on the CPU (max over
# members and losses, ensemble vs separate runs): dsprites 1e-7 at step 3, 1e-5 at step 6, 5e-4 at
# step 10, 6e-3 at 12, 2.6 by 20 (about x3 a step); dsprites-cr 2e-5 at step 10. The digits recipe
# jumps at step 2 (3e-3, then 1e-2 to 4e-2 up to step 30): Adam's first step moves every weight by
# about +-lr whatever the size of its gradient, and the gradients of the biases before batch norm
# (and of the weights that only see the digits' constant background) are zero up to rounding, so
# their signs are the rounding's. Not the ensemble's doing: the separate run alone, with a for-loop
# Adam instead of the fused one (the same formula, other rounding), drifts from itself by 6e-5
# (dsprites) and 1.4e-3 (digits) at step 10 and 0.16 (dsprites) at step 20.
TRAJECTORY_STEPS = 10
TRAJECTORY = {"dsprites": 5e-3, "dsprites-cr": 5e-3, "digits": 1e-1}


def test_one_member_is_the_single_networks_run() -> None:
    # A step of one member runs the single networks' own operators on their own layouts: a plain
    # run's losses and weights are those of model.build's networks trained by torch's fused Adam.
    cfg = _configs("dsprites")[0]
    step = _separate(cfg)
    torch.manual_seed(cfg.train.seed)
    g, d = build(cfg.codes, cfg.model, learned_std=False)
    opt_d = torch.optim.Adam(list(d.parameters()), lr=cfg.optim.lr_d, betas=(cfg.optim.beta1, cfg.optim.beta2),
                             fused=True)
    opt_g = torch.optim.Adam(list(g.parameters()), lr=cfg.optim.lr_g, betas=(cfg.optim.beta1, cfg.optim.beta2),
                             fused=True)
    sampler = copy.deepcopy(step.samplers[0])
    lam = cfg.loss.lambda_cont
    for _ in range(4):
        draw = sampler(False)
        got = step([copy.deepcopy(draw)])[0]
        z = assemble(cfg.codes, draw.latent)
        fake = g(z)
        h_real, h_fake = d.features(torch.cat([draw.real, fake.detach()]), groups=2).chunk(2)
        loss_d = losses.d_loss(d.d_logit(h_real), d.d_logit(h_fake))
        total = loss_d + lam * losses.gaussian_nll(d.q(h_fake).mean, draw.latent.continuous)
        opt_d.zero_grad()
        total.backward()
        opt_d.step()
        for p in d.parameters():
            p.requires_grad_(False)
        for k in range(2):
            fake = fake if k == 0 else g(z)
            h = d.features(fake)
            loss_g = losses.g_loss(d.d_logit(h))
            nll = losses.gaussian_nll(d.q(h).mean, draw.latent.continuous)
            opt_g.zero_grad()
            (loss_g + lam * nll).backward()
            opt_g.step()
            if k == 0:
                expected = torch.stack([loss_d, loss_g, torch.zeros(()), nll]).detach()
        for p in d.parameters():
            p.requires_grad_(True)
        assert torch.equal(got, expected)
    state = step.member_state_dict(0)
    assert all(torch.equal(state["generator"][key], value) for key, value in g.state_dict().items())
    assert all(torch.equal(state["discriminator"][key], value) for key, value in d.state_dict().items())


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_whole_runs_give_each_members_losses(recipe: str) -> None:
    cfgs = _configs(recipe)
    got = _ensemble_losses(_ensemble(cfgs), 1, TRAJECTORY_STEPS)
    expected = torch.stack([_separate_losses(cfg, TRAJECTORY_STEPS) for cfg in cfgs])
    tol = TRAJECTORY[recipe]
    torch.testing.assert_close(got, expected, rtol=tol, atol=tol, equal_nan=True)
    if recipe == "dsprites-cr":  # the CR columns: NaN before the phase, numbers from step 4 on
        assert got[:, :3, 4:].isnan().all() and got[:, 3:, 4:].isfinite().all()


def test_a_members_checkpoint_resumes_as_its_single_run(tmp_path: Path) -> None:
    # Member 1 trains 4 steps in the ensemble (the CR phase starts at step 4), is saved, and
    # resumed by train() as a plain run: its steps 5-8 are its separate run's and the ensemble's.
    cfgs = [cfg.replace(**{"train.steps": 8}) for cfg in _configs("dsprites-cr")]
    ens = _ensemble(cfgs)
    _ensemble_losses(ens, 1, 4)
    checkpoint.save(ens.member_checkpoint(1, step=4), tmp_path / "member1")
    resumed = train(cfgs[1], run_dir=tmp_path / "resumed", resume=tmp_path / "member1")
    assert resumed.status == "finished" and [row["step"] for row in resumed.history] == [5, 6, 7, 8]
    columns = ["loss_d", "loss_g", "loss_cr", "cr_accuracy"]  # the log's names for the columns compared
    rows = torch.tensor([[row[n] for n in columns] for row in resumed.history])
    picked = [ens.loss_names.index(n) for n in columns]
    continued = _ensemble_losses(ens, 5, 8)[1][:, picked]
    separate = _separate_losses(cfgs[1], 8)[4:, picked]
    torch.testing.assert_close(rows, continued, rtol=1e-3, atol=1e-3)  # measured: 1.4e-6
    torch.testing.assert_close(rows, separate, rtol=1e-3, atol=1e-3)  # measured: 3.8e-6


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_a_member_state_reads_back_unchanged(recipe: str) -> None:
    cfgs = _configs(recipe)
    ens = _ensemble(cfgs)
    _ensemble_losses(ens, 1, 4)
    states = [ens.member_state_dict(k) for k in range(3)]
    other = _ensemble(cfgs)
    for k in (2, 0, 1):  # in any order
        other.load_member(k, states[k])
    for k in range(3):
        _assert_states_equal(other.member_state_dict(k), states[k])


def _assert_states_equal(a: object, b: object, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        _assert_states_equal(a.__dict__, b.__dict__, where)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _assert_states_equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_states_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


# Dropping member 1 after 4 steps (in the CR recipe: after its classifier exists): the others'
# states are kept bit for bit, and they train on as two members loaded with those states would.
# Against the three-member ensemble they continue only to rounding: grouped kernels of another
# width (K*C channels) may block and sum in another order, and whether they do depends on the
# CPU's kernels (on an AMX Xeon the spectral-norm recipes continued bit for bit; forced to AVX2,
# 9.5e-7 at the first step; an AVX-512 EPYC rounded the digits recipe's batch norm otherwise and
# Adam's first steps amplified it to 1.1e-3 by step 8). So the first step after the drop, from
# the same states, is held to ONE_STEP, and the continuation to the bit to a fresh two-member
# ensemble (the same K: the same kernels on every CPU).


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_dropping_a_member_leaves_the_others_as_they_were(recipe: str) -> None:
    cfgs = _configs(recipe)
    whole, dropped = _ensemble(cfgs), _ensemble(cfgs)
    first = [_ensemble_losses(e, 1, 4) for e in (whole, dropped)]
    torch.testing.assert_close(first[0], first[1], rtol=0, atol=0, equal_nan=True)
    kept_states = [whole.member_state_dict(k) for k in (0, 2)]
    kept_draws = [whole.samplers[k].generator.get_state() for k in (0, 2)]
    dropped.drop(1)
    assert dropped.ids == [0, 2] and dropped.k == 2 and [c.train.seed for c in dropped.cfgs] == [0, 2]
    for k in range(2):
        _assert_states_equal(dropped.member_state_dict(k), kept_states[k])
    two = _ensemble([cfgs[0], cfgs[2]])
    for k in range(2):
        two.load_member(k, copy.deepcopy(kept_states[k]))
        two.samplers[k].generator.set_state(kept_draws[k])
    continued = _ensemble_losses(dropped, 5, 8)
    torch.testing.assert_close(continued, _ensemble_losses(two, 5, 8), rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(continued[:, 0], _ensemble_losses(whole, 5, 5)[[0, 2], 0],
                               rtol=ONE_STEP, atol=ONE_STEP, equal_nan=True)
    with pytest.raises(ValueError, match="no member 2"):
        dropped.drop(2)
    dropped.drop(0)
    with pytest.raises(ValueError, match="cannot drop the last member"):
        dropped.drop(0)


def test_configs_that_change_shapes_or_structure_are_refused() -> None:
    base = Config.from_flat(TINY)
    check_members([base, base.replace(**{"train.seed": 3, "optim.lr_d": 1e-4, "train.steps": 9,
                                         "eval.final": "all", "train.log_every": 5})])
    for key, value in [("model.width", 0.25), ("train.batch_size", 16), ("codes.n_continuous", 3),
                       ("train.g_steps", 1), ("loss.gan", "lsgan"), ("model.d_norm", "none"),
                       ("data.name", "digits"), ("train.precision", "bf16")]:
        with pytest.raises(ValueError, match=f"they differ in {key}"):
            check_members([base, base.replace(**{key: value})])
    with pytest.raises(ValueError, match="loss.lambda_cr is 0 in some members"):
        check_members([base, base.replace(**{"loss.lambda_cr": 1.0})])
    with pytest.raises(ValueError, match="fp16"):
        check_members([base.replace(**{"train.precision": "fp16"})] * 2)
    with pytest.raises(ValueError, match="at least one member"):
        check_members([])
    check_members([base.replace(**{"train.precision": "fp16"})])  # one member: fp16's scaler couples nothing


class _CountDispatches(TorchDispatchMode):
    """Counts the aten operators that compute (a view launches no kernel on any device)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        self.count += not func.is_view
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_the_steps_operator_count_does_not_grow_with_members(recipe: str) -> None:
    # The point of stacking: one step's computing aten operators (kernel launches on a GPU) are the
    # same for 2 members and for 3 (the seeds of one config); only the members' draws (their own
    # generators) are per member. Members that differ in learning rates or betas add one fused Adam
    # call (2 operators) per further set of members that share them, in every group's update.
    def count(cfgs: list[Config]) -> int:
        ens = _ensemble(cfgs)
        _ensemble_losses(ens, 1, 5)  # optimiser state exists, and the CR phase (step 4 on) has started
        draws = ens.draw(ens.cr_active(6))
        with _CountDispatches() as counter:
            ens(draws)
        return counter.count

    seeds = [_configs(recipe)[0].replace(**{"train.seed": s}) for s in range(3)]
    assert count(seeds[:2]) == count(seeds)
    mixed = _configs(recipe)  # each member with its own betas: a set of its own in every group
    group_updates = 2 + (1 if recipe == "digits" else 2) + (recipe == "dsprites-cr")  # D's 2 groups, G's, CR's
    assert count(mixed) - count(mixed[:2]) == 2 * group_updates


@pytest.mark.parametrize("recipe", ["digits", "dsprites-cr"])
def test_compiled_ensemble_traces_exactly_the_eager_ensemble(recipe: str) -> None:
    # torch.compile(fullgraph=True) of the step's compute, traced by TorchDynamo/AOTAutograd and
    # run on PyTorch's own kernels (aot_eager): the eager ensemble's losses to the bit, through
    # the CR phase's start and a member's drop (a recompile for the new K).
    cfgs = _configs(recipe)
    eager, compiled = _ensemble(cfgs), _ensemble(cfgs)
    compiled.compile(backend="aot_eager")
    runs = []
    for ens in (eager, compiled):
        first = _ensemble_losses(ens, 1, 5)
        ens.drop(0)
        runs.append((first, _ensemble_losses(ens, 6, 8)))
    for got, expected in zip(runs[1], runs[0], strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=0, equal_nan=True)
