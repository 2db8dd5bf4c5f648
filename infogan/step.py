"""One training iteration of InfoGAN / InfoGAN-CR for K members: the networks, their optimisers and
the update.

Per iteration, each member on its own real batch and latent batch (InfoGAN-CR's order):
1. **CR step** (only with ``loss.lambda_cr > 0`` from step ``loss.cr_start`` on): G draws pairs
   of images that share the noise and one randomly selected code (the other codes drawn anew);
   the CR classifier learns, on the detached pairs, which code was shared.
2. **D step** on real and detached fake images: GAN loss for the trunk + D head. With
   ``loss.q_update='with_d'`` (both official codes) the MI term on the same detached fakes is
   added, so the shared trunk and Q's head learn to infer codes from D's optimiser.
3. ``train.g_steps`` **G steps** on the same latent batch (``train.g_latent='shared'``,
   InfoGAN-CR) or each on a fresh one (``'fresh'``, openai/InfoGAN): GAN loss + lambda * (code NLLs)
   (+ lambda_cr * the CR classifier's cross-entropy on fresh pairs: G is rewarded for making the
   shared code easy to tell). The MI gradient flows from Q's outputs back through Q's head and
   the trunk into G; the trunk (and Q's head in 'with_d' mode) and the CR classifier are frozen
   for this backward pass, so only G (and Q's head in 'with_g' mode, the paper's min over G and
   Q) is updated and no weight gradients are wasted on D. With a shared latent batch the first G
   step reuses the fakes drawn before the D step (G has not changed since); later ones draw them
   again.

**Members.** A step trains K members (``cfgs``): one is a plain run; several (other seeds, code
weights, learning rates or betas: ``MEMBER_KEYS``) train as one iteration of K-times larger kernels
(``infogan.stacked``: every weight on a leading member axis; ``infogan.stacked_adam``: each
member's learning rates and betas). Each member is its own run: it starts with the weights its
config's seed gives (``torch.manual_seed(train.seed)``, then ``infogan.model.build``), draws every
iteration from its own loop generator through its own ``IterationSampler``, and minimises its own
loss (``infogan.losses`` reduce per member; the step minimises their sum, whose gradient for a
member's weights is that member's gradient alone). Its losses equal those of the same config
trained alone to float rounding (grouped kernels sum in another order; tests/test_step.py says how
closely). A member reads out as single networks (``member_networks``: evaluation, figures) or a
checkpoint (``member_checkpoint``: what ``infogan.loop.train`` resumes), is written back
(``load_member``) and leaves without disturbing the others (``drop``: a scheduler stopped it).

Fast paths: one trunk pass for real and fake images (batch norm normalising each half on its
own, as two passes would), one trunk pass shared by D's and Q's heads, fused Adam, autocast
(bf16/fp16) on GPUs, compiled compute (``compile``). Losses stay on the device; the caller moves
them to the host once per log interval.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn

from infogan import checkpoint as ckpt
from infogan import codes as latent_codes
from infogan import losses
from infogan.config import KEYS, Config, key_role
from infogan.data.base import ImageDataset
from infogan.model import CRClassifier, Discriminator, Generator, QOutput, build, build_cr
from infogan.sampling import Draw, IterationSampler, loop_generator
from infogan.stacked import (
    StackedCRClassifier,
    StackedDiscriminator,
    StackedGenerator,
    keep_members,
    member_tensors,
)
from infogan.stacked_adam import NamedParameters, StackedAdam

# Every iteration logs these; the CR columns are NaN on iterations without a CR step.
LOSS_NAMES = ("loss_d", "loss_g", "nll_cat", "nll_cont")
CR_LOSS_NAMES = ("loss_cr", "cr_accuracy")
Pair = tuple[latent_codes.Latent, latent_codes.Latent, torch.Tensor]  # (first, second, shared code index)
_CR_STREAM = 1  # the CR classifier's seed stream beside train.seed (see InfoGANStep.start_cr)

# What members may differ in: the keys that change no tensor's shape and no step's structure (the
# per-member hyperparameters), and the keys that change nothing the step computes.
MEMBER_KEYS = ("train.seed", "loss.lambda_cat", "loss.lambda_cont", "loss.lambda_cr",
               "optim.lr_d", "optim.lr_g", "optim.lr_q", "optim.lr_cr", "optim.beta1", "optim.beta2")
_FREE_ROLES = ("speed", "bookkeeping", "budget", "evaluation")
_FREE_KEYS = ("train.threads",)


def may_differ(key: str) -> bool:
    """Whether the members of one step may differ in config key ``key``."""
    return key in MEMBER_KEYS or key in _FREE_KEYS or key_role(key) in _FREE_ROLES


def check_members(cfgs: Sequence[Config]) -> None:
    """Refuse configs that cannot train as members of one step, naming the first key that differs.

    Raises:
        ValueError: no config, a key outside ``MEMBER_KEYS`` (and the budget, intervals, threads
            and evaluation settings) differs, InfoGAN-CR is on in some members only, or fp16 with
            several members.
    """
    if not cfgs:
        raise ValueError("a training step needs at least one member config")
    flats = [c.to_flat() for c in cfgs]
    for key in KEYS:
        if may_differ(key):
            continue
        values = list(dict.fromkeys(repr(f[key]) for f in flats))
        if len(values) > 1:
            raise ValueError(
                f"cannot train these configs as members of one step: they differ in {key} ({', '.join(values)}); "
                f"members may differ only in {', '.join(MEMBER_KEYS)} and in the budget, intervals and "
                "evaluation settings (the networks' shapes and the step's structure must be the same)")
    on = [c.loss.lambda_cr > 0 for c in cfgs]
    if any(on) and not all(on):
        raise ValueError("cannot train these configs as members of one step: loss.lambda_cr is 0 in some members "
                         "and > 0 in others; InfoGAN-CR (its classifier and step) must be on in every member or in none")
    if len(cfgs) > 1 and cfgs[0].train.precision == "fp16":
        raise ValueError("invalid config value train.precision='fp16' for several members: fp16's loss scaler skips "
                         "a step for every member when one member's gradients overflow; use 'fp32' or 'bf16'")


def cr_classifier(cfg: Config) -> CRClassifier:
    """InfoGAN-CR's classifier as a run with ``cfg`` creates it when its CR phase starts, on the CPU.

    Its weights come from a seed of their own derived from ``train.seed`` (``InfoGANStep.start_cr``
    says why), drawn on the CPU so they are the same on every device; the global RNG is untouched.
    """
    seed = int(np.random.SeedSequence((cfg.train.seed, _CR_STREAM)).generate_state(1)[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_cr(cfg.codes, cfg.model)


COMPUTE = ("_generate", "_d_losses", "_g_losses", "_cr_losses")  # a step's compilable functions


def compile_compute(step: Any, mode: str | None, backend: str) -> None:
    """Replace ``step``'s compute functions (``COMPUTE``) with ``torch.compile``d ones.

    Dynamo keys compiled code by function and guards it on the step object, so every new step in
    a process compiles its functions anew and counts against Dynamo's recompile limit (8): a
    process that builds several steps (a benchmark, tests, a worker running trial after trial)
    would hit it. The compiler's caches are reset first, so each compile starts from a clean
    slate; steps compiled before recompile on their next call (from the on-disk kernel cache).
    """
    torch.compiler.reset()
    for name in COMPUTE:
        setattr(step, name, torch.compile(getattr(step, name), mode=mode, backend=backend,
                                          dynamic=False, fullgraph=True))


def info_nll(q: QOutput, latent: latent_codes.Latent) -> tuple[torch.Tensor, torch.Tensor]:
    """Q's negative log-likelihoods of the sampled categorical and continuous codes (nats), per member."""
    return (losses.categorical_nll(q.logits, latent.categorical),
            losses.gaussian_nll(q.mean, latent.continuous, q.log_std))


def _stack(tensors: Sequence[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """``torch.stack``, a view for one tensor (a member of one copies nothing)."""
    return tensors[0].unsqueeze(dim) if len(tensors) == 1 else torch.stack(list(tensors), dim)


def _stack_latents(latents: Sequence[latent_codes.Latent]) -> latent_codes.Latent:
    """K latent batches -> one (K, B, ...)."""
    return latent_codes.Latent(_stack([lt.noise for lt in latents]), _stack([lt.categorical for lt in latents]),
                               _stack([lt.continuous for lt in latents]))


def _named(net: nn.Module, stacked: nn.Module, keep: Callable[[str], bool]) -> NamedParameters:
    """The stacked parameters of ``stacked`` whose single names pass ``keep``, in the single network
    ``net``'s order (a single run's optimiser numbers its parameters in that order)."""
    tensors = member_tensors(stacked)
    return [(name, tensors[name][1], tuple(p.shape)) for name, p in net.named_parameters() if keep(name)]


class InfoGANStep:
    """G, D/Q (and the CR classifier) of K members, their optimisers and one training iteration.

    Args:
        cfgs: one config per member; they may differ only in ``MEMBER_KEYS`` and in settings that
            change nothing the step computes (``check_members``).
        dataset: the training data (the members' data config is one), on ``device``.
        device: where the networks live.
        amp_dtype: the autocast dtype, None for fp32 (fp16 with one member only).
    Builds each member's networks exactly as a run of its config does (``torch.manual_seed`` with
    its seed, then ``infogan.model.build``, on the CPU as on any device) and gives it its loop
    generator; the caller's global RNG state is left as it was.
    """

    def __init__(self, cfgs: Sequence[Config], dataset: ImageDataset, device: torch.device,
                 amp_dtype: torch.dtype | None = None):
        check_members(cfgs)
        self.cfgs, self.device, self.dataset, self.amp_dtype = list(cfgs), device, dataset, amp_dtype
        self.cfg = self.cfgs[0]  # what every member shares: shapes, codes, the step's structure
        self.ids = list(range(len(cfgs)))  # each member's position in the configs it was built from
        self.q_with_d = self.cfg.loss.q_update == "with_d"
        singles, self.torch_rng = [], []
        with torch.random.fork_rng(devices=[]):
            for cfg in self.cfgs:
                torch.manual_seed(cfg.train.seed)
                singles.append(build(cfg.codes, cfg.model, learned_std=cfg.loss.q_std == "learned"))
                self.torch_rng.append(torch.get_rng_state())  # the run's global RNG after building (checkpoints)
        self._single_g, self._single_d = singles[0]  # the single networks' parameter order and state keys
        self.g = StackedGenerator([g for g, _ in singles]).to(device)
        self.d = StackedDiscriminator([d for _, d in singles]).to(device)
        self.samplers = [IterationSampler(cfg, dataset, loop_generator(cfg.train.seed, device)) for cfg in self.cfgs]
        self.cr: StackedCRClassifier | None = None
        self.opt_cr: StackedAdam | None = None
        self._single_cr: CRClassifier | None = None
        self._graph_trees = False  # compiled with reduce-overhead (a CUDA graph per function)
        self.version = 0  # changes whenever a tensor the iteration uses is replaced (CR starts, a member leaves)
        self._hyperparameters()
        self.opt_d, self.opt_g = self._optimiser("d"), self._optimiser("g")
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        self._autocast: Callable[[], AbstractContextManager[Any]] = (
            (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else nullcontext)

    # -- the members' hyperparameters and parameter groups (a single run's optimisers)

    def _values(self, key: str) -> list[float]:
        return [float(c.to_flat()[key]) for c in self.cfgs]

    def _hyperparameters(self) -> None:
        def on_device(key: str) -> torch.Tensor:
            return torch.tensor(self._values(key), dtype=torch.float32, device=self.device)

        self.lambda_cat, self.lambda_cont, self.lambda_cr = (on_device(f"loss.{k}") for k in ("lambda_cat", "lambda_cont",
                                                                                              "lambda_cr"))

    def _param_groups(self, which: str) -> tuple[list[NamedParameters], list[str]]:
        """The parameter groups of D's optimiser (trunk + D head, + Q's head in 'with_d' mode), G's
        (+ Q's head in 'with_g' mode) or the CR classifier's, and each group's learning-rate key."""
        def q(name: str) -> bool:
            return name.startswith("q_head.")

        if which == "cr":
            assert self.cr is not None and self._single_cr is not None
            return [_named(self._single_cr, self.cr, lambda n: True)], ["optim.lr_cr"]
        q_group = ([_named(self._single_d, self.d, q)], ["optim.lr_q"])
        if which == "d":
            groups, lrs = [_named(self._single_d, self.d, lambda n: not q(n))], ["optim.lr_d"]
            return (groups + q_group[0], lrs + q_group[1]) if self.q_with_d else (groups, lrs)
        groups, lrs = [_named(self._single_g, self.g, lambda n: True)], ["optim.lr_g"]
        return (groups, lrs) if self.q_with_d else (groups + q_group[0], lrs + q_group[1])

    def _optimiser(self, which: str) -> StackedAdam:
        """A fresh optimiser of ``_param_groups(which)`` with each member's learning rates and betas."""
        groups, lrs = self._param_groups(which)
        betas = list(zip(self._values("optim.beta1"), self._values("optim.beta2"), strict=True))
        return StackedAdam(groups, [self._values(k) for k in lrs], betas)

    def _frozen_in_g_step(self) -> list[nn.Parameter]:
        """Nothing but G (and Q's head in 'with_g' mode) learns from G's loss."""
        frozen = self.d.d_parameters() + (list(self.d.q_head.parameters()) if self.q_with_d else [])
        return frozen + (list(self.cr.parameters()) if self.cr is not None else [])

    @property
    def k(self) -> int:
        """The number of members."""
        return len(self.cfgs)

    @property
    def uses_cr(self) -> bool:
        return self.cfg.loss.lambda_cr > 0

    @property
    def loss_names(self) -> tuple[str, ...]:
        return LOSS_NAMES + (CR_LOSS_NAMES if self.uses_cr else ())

    def cr_active(self, step: int) -> bool:
        """Whether iteration ``step`` (1-based) has a CR step (and G a CR term); the same in every member."""
        return self.uses_cr and step > self.cfg.loss.cr_start

    def networks(self) -> list[nn.Module]:
        return [self.g, self.d] + ([self.cr] if self.cr is not None else [])

    def optimisers(self) -> list[StackedAdam]:
        return [self.opt_d, self.opt_g] + ([self.opt_cr] if self.opt_cr is not None else [])

    def generators(self) -> list[torch.Generator]:
        """The members' loop generators (what an iteration draws from)."""
        return [s.generator for s in self.samplers]

    def train(self) -> None:
        for net in self.networks():
            net.train()

    def start_cr(self) -> None:
        """Create every member's InfoGAN-CR classifier and its optimiser, fresh, as the CR phase starts.

        The published protocol trains plain InfoGAN, then switches CR on with a re-initialised
        classifier. Its weights come from a seed of their own (derived from ``train.seed``), not
        from the global RNG, so a run that switches CR on at step k and a plain run resumed at k
        with CR switched on train the same classifier, and the steps before k are those of a run
        without CR.
        """
        crs = [cr_classifier(cfg) for cfg in self.cfgs]
        self._single_cr = crs[0]
        self.cr = StackedCRClassifier(crs).to(self.device)
        self.opt_cr = self._optimiser("cr")
        self.version += 1

    def compile(self, mode: str | None = None, backend: str = "inductor") -> None:
        """Compile the step's compute with ``torch.compile``: G's forward, D's loss, G's loss and
        the CR classifier's loss, each with its backward; the updates stay as they are.

        Each function is always called with the same weights frozen (D's in G's loss, none in
        D's), so each compiles once per input shape (and again when a member leaves). Compiled
        kernels fuse the elementwise work, so the losses match the eager step's to rounding, not
        bit for bit.

        Args:
            mode: ``torch.compile``'s mode (``"reduce-overhead"``: a CUDA graph per function).
            backend: ``"inductor"`` (generated kernels); ``"aot_eager"`` traces the same graphs
                but runs PyTorch's own kernels (tests of the tracing, no compiler needed).
        """
        compile_compute(self, mode, backend)
        self._graph_trees = mode == "reduce-overhead"

    def _new_graph_step(self) -> None:
        """With reduce-overhead's CUDA graphs, a compiled function's next replay may overwrite its
        previous outputs only once a new step is marked: at each iteration and before each G pass
        after the first (which replays G's forward again)."""
        if self._graph_trees:
            torch.compiler.cudagraph_mark_step_begin()

    # -- one iteration

    def draw(self, cr: bool) -> list[Draw]:
        """Every member's next draw from its own loop generator (``IterationSampler``): each draws
        its keys (the factors or indices of its real batch) and latents, in its run's order; the
        members' real images are then rendered at once (the same pixels, one render)."""
        drawn = [sampler.draw_keys(cr) for sampler in self.samplers]
        reals = self.samplers[0].render(torch.cat([keys for keys, _ in drawn])).chunk(self.k)
        return [Draw(real, d.latent, d.g_latents, d.pair) for real, (_, d) in zip(reals, drawn, strict=True)]

    def iteration(self, cr: bool) -> torch.Tensor:
        """Draw and train one iteration; ``cr`` says whether InfoGAN-CR's phase has started."""
        return self(self.draw(cr))

    def __call__(self, draws: Sequence[Draw]) -> torch.Tensor:
        """One iteration of every member on its own draw.

        Args:
            draws: one ``Draw`` per member (``draw``), on the device.
        Returns:
            (K, n_losses) on the device: each member's losses, ordered as ``loss_names`` (CR
            columns NaN without a CR step).
        """
        if len(draws) != self.k:
            raise ValueError(f"got {len(draws)} draws for a step of {self.k} members")
        cfg = self.cfg
        real = draws[0].real if self.k == 1 else torch.stack([d.real for d in draws], dim=1).flatten(1, 2)  # (B, K*C, S, S)
        latent = _stack_latents([d.latent for d in draws])  # (K, B, ...)
        g_latents = None
        if draws[0].g_latents is not None:
            g_latents = [_stack_latents([d.g_latents[i] for d in draws])  # type: ignore[index]
                         for i in range(cfg.train.g_steps)]
        pair: Pair | None = None
        if draws[0].pair is not None:
            pairs = [d.pair for d in draws]
            pair = (_stack_latents([p[0] for p in pairs]), _stack_latents([p[1] for p in pairs]),  # type: ignore[index]
                    _stack([p[2] for p in pairs]))  # type: ignore[index]

        z = self._assemble(latent)
        self._new_graph_step()
        with self._autocast():
            fake = self._generate(z)  # (B, K*C, S, S)
            pair_images = self._pair_images(pair)

        cr_stats: list[torch.Tensor] = []
        if pair is not None:
            if self.cr is None:
                self.start_cr()
            assert self.opt_cr is not None
            with self._autocast():
                loss_cr, cr_accuracy = self._cr_losses(pair_images[0].detach(), pair_images[1].detach(), pair[2])
            self._update(self.opt_cr, loss_cr)
            cr_stats = [loss_cr.detach().clone(), cr_accuracy.clone()]

        # ---- D step: trunk + D head (+ Q head on the same detached fakes in 'with_d' mode)
        with self._autocast():
            loss_d_total, loss_d = self._d_losses(real, fake.detach(), latent)
        self._update(self.opt_d, loss_d_total)

        # ---- G steps: GAN loss + lambda * NLL of the codes (+ CR), through the frozen D/Q/CR
        frozen = self._frozen_in_g_step()
        for p in frozen:
            p.requires_grad_(False)
        try:
            for k in range(cfg.train.g_steps):
                g_latent = latent if g_latents is None else g_latents[k]
                if k > 0:
                    self._new_graph_step()
                with self._autocast():
                    if g_latents is not None:
                        fake = self._generate(self._assemble(g_latent))
                    elif k > 0:
                        fake = self._generate(z)
                    if k > 0:
                        pair_images = self._pair_images(pair)
                    shared = pair[2] if pair is not None else None
                    loss_g_total, *g_terms = self._g_losses(fake, g_latent, pair_images, shared)
                self._update(self.opt_g, loss_g_total)
                if k == 0:  # G's first step: with a shared latent, the fakes D was trained on
                    # copies: a compiled function's CUDA graph may overwrite its outputs at its next replay
                    logged = [loss_d.detach().clone(), *(t.detach().clone() for t in g_terms)]
        finally:
            for p in frozen:
                p.requires_grad_(True)
        if self.uses_cr:
            nan = torch.full((self.k,), math.nan, device=loss_d.device)
            logged += cr_stats or [nan, nan]
        return torch.stack([t.float() for t in logged], dim=1)

    # The step's compute, as functions of tensors and the networks' weights: what the compiled
    # and captured paths compile (``compile``); the eager path calls them as they are.

    def _assemble(self, latent: latent_codes.Latent) -> torch.Tensor:
        """G's input (K, B, latent_dim), by ``codes.assemble`` on the members' batches laid end to end."""
        k, b = latent.noise.shape[:2]
        flat = latent_codes.Latent(latent.noise.flatten(0, 1), latent.categorical.flatten(0, 1),
                                   latent.continuous.flatten(0, 1))
        return latent_codes.assemble(self.cfg.codes, flat).view(k, b, -1)

    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.g(z)

    def _pair_images(self, pair: Pair | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        if pair is None:
            return None
        first, second, _ = pair
        both = latent_codes.Latent(*(torch.cat([a, b], 1) for a, b in zip(
            (first.noise, first.categorical, first.continuous), (second.noise, second.categorical, second.continuous),
            strict=True)))
        return self._generate(self._assemble(both)).chunk(2)  # one G pass for both halves of every pair

    def _d_losses(self, real: torch.Tensor, fake: torch.Tensor, latent: latent_codes.Latent
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's loss to minimise (GAN loss, + lambda * code NLLs on the fakes in 'with_d'
        mode) and its GAN part, (K,) each."""
        d = self.d
        # One trunk pass for both halves; batch norm (if any) keeps their statistics apart.
        h_real, h_fake = d.features(torch.cat([real, fake]), groups=2).chunk(2, dim=1)  # (K, B, hidden) each
        loss_d = losses.d_loss(d.d_logit(h_real), d.d_logit(h_fake), self.cfg.loss.gan)
        if not self.q_with_d:
            return loss_d, loss_d
        nll_cat, nll_cont = info_nll(d.q(h_fake), latent)
        return loss_d + self.lambda_cat * nll_cat + self.lambda_cont * nll_cont, loss_d

    def _g_losses(self, fake: torch.Tensor, latent: latent_codes.Latent,
                  pair_images: tuple[torch.Tensor, torch.Tensor] | None, shared: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each member's loss to minimise (GAN loss + lambda * code NLLs + lambda_cr * CR
        cross-entropy) and its GAN loss and code NLLs, (K,) each."""
        d = self.d
        h = d.features(fake)
        loss_g = losses.g_loss(d.d_logit(h), self.cfg.loss.gan)
        nll_cat, nll_cont = info_nll(d.q(h), latent)
        total = loss_g + self.lambda_cat * nll_cat + self.lambda_cont * nll_cont
        if pair_images is not None and shared is not None and self.cr is not None:
            total = total + self.lambda_cr * losses.cross_entropy(self.cr(*pair_images), shared)
        return total, loss_g, nll_cat, nll_cont

    def _cr_losses(self, first: torch.Tensor, second: torch.Tensor, shared: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """The CR classifiers' cross-entropy on the members' pairs, and their accuracy, (K,) each."""
        assert self.cr is not None
        logits = self.cr(first, second).float()  # (K, B, n_codes)
        return losses.cross_entropy(logits, shared), (logits.detach().argmax(-1) == shared).float().mean(-1)

    def _update(self, opt: StackedAdam, loss: torch.Tensor) -> None:
        # The members' losses summed: each member's weights get their own loss's gradient alone.
        # The scaler (fp16, one member) is updated after every step: G may step several times per
        # iteration, and GradScaler refuses a second step of one optimiser before update().
        opt.zero_grad()
        self.scaler.scale(loss.sum()).backward()
        self.scaler.step(opt)
        self.scaler.update()

    # -- members in and out

    def _pairs(self) -> list[tuple[str, nn.Module, nn.Module]]:
        """(checkpoint key, single network, stacked network) of every network, the CR classifier once created."""
        nets = [("generator", self._single_g, self.g), ("discriminator", self._single_d, self.d)]
        if self.cr is not None and self._single_cr is not None:
            nets.append(("cr", self._single_cr, self.cr))
        return nets

    def _optimiser_keys(self) -> list[tuple[str, StackedAdam]]:
        return [("opt_d", self.opt_d), ("opt_g", self.opt_g)] + ([("opt_cr", self.opt_cr)] if self.opt_cr else [])

    def member_weights(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's floating-point weights and buffers (views), named ``generator.…``,
        ``discriminator.…``, ``cr.…`` (what a divergence check looks at)."""
        return {f"{key}.{name}": view[k] for key, _, net in self._pairs()
                for name, (view, _) in member_tensors(net).items() if view.is_floating_point()}

    def member_networks(self, k: int) -> tuple[Generator, Discriminator]:
        """Member k's G and D/Q as single networks on the device, in training mode, holding its
        weights now (copies: for evaluation and figures; the global RNG untouched)."""
        with torch.random.fork_rng(devices=[]):
            g, d = build(self.cfg.codes, self.cfg.model, learned_std=self.cfg.loss.q_std == "learned")
        g.load_state_dict(self._network_state(k, self.g))
        d.load_state_dict(self._network_state(k, self.d))
        return g.to(self.device), d.to(self.device)

    @staticmethod
    def _network_state(k: int, net: nn.Module) -> dict[str, torch.Tensor]:
        """Member k's ``state_dict`` of the stacked network ``net``, as its single network's (copies)."""
        return {name: view[k].detach().clone() for name, (view, _) in member_tensors(net).items()}

    def member_state_dict(self, k: int) -> dict[str, Any]:
        """Member k's networks, optimisers and scaler as a single run saves them (a checkpoint's
        ``generator``, ``discriminator``, ``opt_d``, ``opt_g``, ``cr``, ``opt_cr``, ``scaler``)."""
        state: dict[str, Any] = {"cr": None, "opt_cr": None}
        for key, _, net in self._pairs():
            state[key] = self._network_state(k, net)
        for key, opt in self._optimiser_keys():
            state[key] = opt.member_state_dict(k)
        state["scaler"] = self.scaler.state_dict() if self.scaler.is_enabled() else None
        return state

    def load_member(self, k: int, state: dict[str, Any]) -> None:
        """Write a single run's state (``member_state_dict``, a checkpoint) into member k.

        A state from InfoGAN-CR's phase starts the phase for every member (the others' classifiers
        fresh, as their first CR step would create them).

        Raises:
            ValueError: the state's networks do not fit the members' (other shapes or layers).
        """
        if state.get("cr") is not None and self.cr is None:
            self.start_cr()
        with torch.no_grad():
            for key, _, net in self._pairs():
                stacked = member_tensors(net)
                values = state[key]
                if set(values) != set(stacked):
                    raise ValueError(f"the {key} state's keys {sorted(set(values) ^ set(stacked))} do not fit the step")
                for name, (view, _) in stacked.items():
                    if values[name].shape != view[k].shape:
                        raise ValueError(f"the {key} state's {name} has shape {tuple(values[name].shape)}, the step's "
                                         f"{tuple(view[k].shape)}")
                    view[k].copy_(values[name])
        for key, opt in self._optimiser_keys():
            opt.load_member_state_dict(k, state[key])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    def member_checkpoint(self, k: int, step: int) -> ckpt.TrainingState:
        """Member k at iteration ``step`` as a checkpoint its own run resumes from."""
        cuda = self.device.type == "cuda"
        return ckpt.TrainingState(step=step, config=self.cfgs[k].to_flat(), **self.member_state_dict(k),
                                  loop_rng=self.samplers[k].generator.get_state(), torch_rng=self.torch_rng[k],
                                  cuda_rng=torch.cuda.get_rng_state_all() if cuda else [])

    def restore_generator(self, k: int, state: torch.Tensor, step: int) -> None:
        """Member k's loop generator from a checkpoint's ``loop_rng`` at ``step``.

        A generator state belongs to one kind of device (the CPU's Mersenne Twister, CUDA's
        Philox): a checkpoint made on another kind cannot continue its draws, so the generator is
        seeded from (``train.seed``, ``step``) instead, with a warning that the batches from here
        on differ from the uninterrupted run's.
        """
        generator = self.samplers[k].generator
        if state.numel() == generator.get_state().numel():
            generator.set_state(state)
            return
        seed = int(np.random.SeedSequence((self.cfgs[k].train.seed, step)).generate_state(1)[0])
        generator.manual_seed(seed)
        warnings.warn(f"the checkpoint at step {step} was made on another kind of device: its data and latent "
                      f"draws cannot continue on {self.device.type}, so they restart from a seed of (train.seed, "
                      f"step); the run goes on, but its batches differ from the uninterrupted run's", stacklevel=2)

    def drop(self, k: int) -> None:
        """Remove member k (a scheduler stopped it); the others keep their states bit for bit and
        train on.

        Raises:
            ValueError: k is the last member (end the run instead).
        """
        if not 0 <= k < self.k:
            raise ValueError(f"no member {k} in a step of {self.k}")
        if self.k == 1:
            raise ValueError("cannot drop the last member of a step; end its run instead")
        keep = [i for i in range(self.k) if i != k]
        index = torch.tensor(keep, device=self.device)
        for net in self.networks():
            keep_members(net, index)
        for name in ("cfgs", "ids", "samplers", "torch_rng"):
            setattr(self, name, [getattr(self, name)[i] for i in keep])
        self._hyperparameters()
        cpu_index = index.cpu()
        self.opt_d = self.opt_d.kept(cpu_index, self._param_groups("d")[0])
        self.opt_g = self.opt_g.kept(cpu_index, self._param_groups("g")[0])
        if self.opt_cr is not None:
            self.opt_cr = self.opt_cr.kept(cpu_index, self._param_groups("cr")[0])
        self.version += 1
