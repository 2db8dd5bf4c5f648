"""One training iteration of InfoGAN / InfoGAN-CR: the networks, their optimisers and the update.

Per iteration, on one real batch and one latent batch (InfoGAN-CR's order):
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

Fast paths: one trunk pass for real and fake images (batch norm normalising each half on its
own, as two passes would), one trunk pass shared by D's and Q's heads, fused (or foreach) Adam, autocast (bf16/fp16) + channels_last on
GPUs. Losses stay on the device; the caller moves them to the host once per log interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from infogan import codes as latent_codes
from infogan import losses
from infogan.config import Config
from infogan.model import CRClassifier, QOutput, build, build_cr

# Every iteration logs these; the CR columns are NaN on iterations without a CR step.
LOSS_NAMES = ("loss_d", "loss_g", "nll_cat", "nll_cont")
CR_LOSS_NAMES = ("loss_cr", "cr_accuracy")
Pair = tuple[latent_codes.Latent, latent_codes.Latent, torch.Tensor]  # (first, second, shared code index)
_CR_STREAM = 1  # the CR classifier's seed stream beside train.seed (see InfoGANStep.start_cr)


def _adam(params: list[dict[str, Any]], cfg: Config, device: torch.device) -> torch.optim.Adam:
    betas = (cfg.optim.beta1, cfg.optim.beta2)
    lr = params[0]["lr"]
    try:  # the fused kernel exists for CUDA and (recent torch) CPU; it keeps its step count on the device
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError):
        # capturable on a GPU: a CUDA graph may capture the update (train.step_mode='graph')
        cuda = device.type == "cuda"
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=cuda, capturable=cuda)


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


def _set_requires_grad(params: Sequence[torch.nn.Parameter], flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


def cr_classifier(cfg: Config) -> CRClassifier:
    """InfoGAN-CR's classifier as a run with ``cfg`` creates it when its CR phase starts, on the CPU.

    Its weights come from a seed of their own derived from ``train.seed`` (``InfoGANStep.start_cr``
    says why), drawn on the CPU so they are the same on every device; the global RNG is untouched.
    """
    seed = int(np.random.SeedSequence((cfg.train.seed, _CR_STREAM)).generate_state(1)[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_cr(cfg.codes, cfg.model)


def info_nll(q: QOutput, latent: latent_codes.Latent) -> tuple[torch.Tensor, torch.Tensor]:
    """Q's negative log-likelihoods of the sampled categorical and continuous codes (nats)."""
    return (losses.categorical_nll(q.logits, latent.categorical),
            losses.gaussian_nll(q.mean, latent.continuous, q.log_std))


class InfoGANStep:
    """G, D/Q (and the CR classifier), their optimisers and one training iteration.

    Args:
        cfg: the experiment config.
        device: where the networks live.
        amp_dtype: the autocast dtype, or None for fp32.
    Builds the networks with the global torch RNG (seed it first).
    """

    def __init__(self, cfg: Config, device: torch.device, amp_dtype: torch.dtype | None):
        self.cfg, self.device = cfg, device
        self.g, self.d = build(cfg.codes, cfg.model, learned_std=cfg.loss.q_std == "learned")
        self.g.to(device)
        self.d.to(device)
        if device.type == "cuda":
            for net in self.networks():
                net.to(memory_format=torch.channels_last)

        o = cfg.optim
        q_params = list(self.d.q_head.parameters())
        self.q_with_d = cfg.loss.q_update == "with_d"
        d_groups = [{"params": self.d.d_parameters(), "lr": o.lr_d}]
        g_groups = [{"params": list(self.g.parameters()), "lr": o.lr_g}]
        (d_groups if self.q_with_d else g_groups).append({"params": q_params, "lr": o.lr_q})
        self.opt_d = _adam(d_groups, cfg, device)
        self.opt_g = _adam(g_groups, cfg, device)
        # InfoGAN-CR's classifier is created when the CR phase starts (``start_cr``).
        self.cr: CRClassifier | None = None
        self.opt_cr: torch.optim.Adam | None = None
        # Nothing but G (and Q's head in 'with_g' mode) learns from G's loss.
        self.frozen_in_g_step = self.d.d_parameters() + (q_params if self.q_with_d else [])
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        self._autocast: Callable[[], AbstractContextManager[Any]] = (
            (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else nullcontext)

    @property
    def uses_cr(self) -> bool:
        return self.cfg.loss.lambda_cr > 0

    @property
    def loss_names(self) -> tuple[str, ...]:
        return LOSS_NAMES + (CR_LOSS_NAMES if self.uses_cr else ())

    def networks(self) -> list[torch.nn.Module]:
        return [self.g, self.d] + ([self.cr] if self.cr is not None else [])

    def optimisers(self) -> list[torch.optim.Optimizer]:
        return [self.opt_d, self.opt_g] + ([self.opt_cr] if self.opt_cr is not None else [])

    def compile(self, mode: str | None = None, backend: str = "inductor") -> None:
        """Compile the step's compute with ``torch.compile``: G's forward, D's loss, G's loss and
        the CR classifier's loss, each with its backward; the updates stay as they are.

        Each function is always called with the same weights frozen (D's in G's loss, none in
        D's), so each compiles once per input shape. Compiled kernels fuse the elementwise work,
        so the losses match the eager step's to rounding, not bit for bit.

        Args:
            mode: ``torch.compile``'s mode (``"reduce-overhead"``: a CUDA graph per function).
            backend: ``"inductor"`` (generated kernels); ``"aot_eager"`` traces the same graphs
                but runs PyTorch's own kernels (tests of the tracing, no compiler needed).
        """
        compile_compute(self, mode, backend)

    def cr_active(self, step: int) -> bool:
        """Whether iteration ``step`` (1-based) has a CR step (and G a CR term)."""
        return self.uses_cr and step > self.cfg.loss.cr_start

    def start_cr(self) -> None:
        """Create InfoGAN-CR's classifier and its optimiser, fresh, as the CR phase starts.

        The published protocol trains plain InfoGAN, then switches CR on with a re-initialised
        classifier. Its weights come from a seed of their own (derived from ``train.seed``), not
        from the global RNG, so a run that switches CR on at step k and a plain run resumed at k
        with CR switched on train the same classifier, and the steps before k are those of a run
        without CR.
        """
        self.cr = cr_classifier(self.cfg).to(self.device)
        if self.device.type == "cuda":
            self.cr.to(memory_format=torch.channels_last)
        self.opt_cr = _adam([{"params": list(self.cr.parameters()), "lr": self.cfg.optim.lr_cr}], self.cfg, self.device)
        self.frozen_in_g_step = self.frozen_in_g_step + list(self.cr.parameters())

    def train(self) -> None:
        for net in self.networks():
            net.train()

    # ---------------------------------------------------------------------------------------

    def __call__(self, real: torch.Tensor, latent: latent_codes.Latent, pair: Pair | None = None,
                 g_latents: Sequence[latent_codes.Latent] | None = None) -> torch.Tensor:
        """One iteration.

        Args:
            real: (B, C, S, S) real images on the device.
            latent: B latents on the device (the D step's; also every G step's unless ``g_latents``).
            pair: CR pairs ``(first, second, shared_code_index)`` on the device, or None.
            g_latents: one latent batch per G step (``train.g_latent='fresh'``), or None.
        Returns:
            The iteration's losses on the device, ordered as ``loss_names`` (CR columns NaN
            without a CR step).
        """
        cfg = self.cfg
        z = latent_codes.assemble(cfg.codes, latent)
        with self._autocast():
            fake = self._generate(z)  # (B, C, S, S)
            pair_images = self._pair_images(pair)

        cr_stats: list[torch.Tensor] = []
        if pair is not None:
            if self.cr is None:
                self.start_cr()
            with self._autocast():
                loss_cr, cr_accuracy = self._cr_losses(pair_images[0].detach(), pair_images[1].detach(), pair[2])
            self._update(self.opt_cr, loss_cr)
            cr_stats = [loss_cr.detach(), cr_accuracy]

        # ---- D step: trunk + D head (+ Q head on the same detached fakes in 'with_d' mode)
        with self._autocast():
            loss_d_total, loss_d = self._d_losses(real, fake.detach(), latent)
        self._update(self.opt_d, loss_d_total)

        # ---- G steps: GAN loss + lambda * NLL of the codes (+ CR), through the frozen D/Q/CR
        _set_requires_grad(self.frozen_in_g_step, False)
        try:
            for k in range(cfg.train.g_steps):
                g_latent = latent if g_latents is None else g_latents[k]
                with self._autocast():
                    if g_latents is not None:
                        fake = self._generate(latent_codes.assemble(cfg.codes, g_latent))
                    elif k > 0:
                        fake = self._generate(z)
                    if k > 0:
                        pair_images = self._pair_images(pair)
                    shared = pair[2] if pair is not None else None
                    loss_g_total, *g_terms = self._g_losses(fake, g_latent, pair_images, shared)
                self._update(self.opt_g, loss_g_total)
                if k == 0:  # G's first step: with a shared latent, the fakes D was trained on
                    logged = [loss_d.detach(), *(t.detach() for t in g_terms)]
        finally:
            _set_requires_grad(self.frozen_in_g_step, True)
        if self.uses_cr:
            nan = torch.full((), math.nan, device=loss_d.device)
            logged += cr_stats or [nan, nan]
        return torch.stack([t.float() for t in logged])

    # The step's compute, as functions of tensors and the networks' weights: what the compiled
    # and captured paths compile (``compile``); the eager path calls them as they are.

    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.g(z)

    def _pair_images(self, pair: Pair | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        if pair is None:
            return None
        first, second, _ = pair
        both = self._generate(latent_codes.assemble(self.cfg.codes, latent_codes.cat([first, second])))
        return both.chunk(2)  # one G pass for both halves of every pair

    def _d_losses(self, real: torch.Tensor, fake: torch.Tensor, latent: latent_codes.Latent
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """D's loss to minimise (GAN loss, + lambda * code NLLs on the fakes in 'with_d' mode) and its GAN part."""
        d, lc = self.d, self.cfg.loss
        # One trunk pass for both halves; batch norm (if any) keeps their statistics apart.
        h_real, h_fake = d.features(torch.cat([real, fake]), groups=2).chunk(2)
        loss_d = losses.d_loss(d.d_logit(h_real), d.d_logit(h_fake), lc.gan)
        if not self.q_with_d:
            return loss_d, loss_d
        nll_cat, nll_cont = info_nll(d.q(h_fake), latent)
        return loss_d + lc.lambda_cat * nll_cat + lc.lambda_cont * nll_cont, loss_d

    def _g_losses(self, fake: torch.Tensor, latent: latent_codes.Latent,
                  pair_images: tuple[torch.Tensor, torch.Tensor] | None, shared: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """G's loss to minimise (GAN loss + lambda * code NLLs + lambda_cr * CR cross-entropy) and
        its GAN loss and code NLLs."""
        d, lc = self.d, self.cfg.loss
        h = d.features(fake)
        loss_g = losses.g_loss(d.d_logit(h), lc.gan)
        nll_cat, nll_cont = info_nll(d.q(h), latent)
        total = loss_g + lc.lambda_cat * nll_cat + lc.lambda_cont * nll_cont
        if pair_images is not None and shared is not None and self.cr is not None:
            total = total + lc.lambda_cr * F.cross_entropy(self.cr(*pair_images).float(), shared)
        return total, loss_g, nll_cat, nll_cont

    def _cr_losses(self, first: torch.Tensor, second: torch.Tensor, shared: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """The CR classifier's cross-entropy on a batch of pairs, and its accuracy."""
        assert self.cr is not None
        logits = self.cr(first, second).float()  # (B, n_codes)
        return F.cross_entropy(logits, shared), (logits.detach().argmax(1) == shared).float().mean()

    def _update(self, opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        # The scaler (fp16 only) is updated after every step: G may step several times per
        # iteration, and GradScaler refuses a second step of one optimiser before update().
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        self.scaler.update()

    # ---------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Weights, optimiser and scaler states (what a checkpoint needs besides RNGs and step)."""
        return {
            "generator": self.g.state_dict(), "discriminator": self.d.state_dict(),
            "opt_d": self.opt_d.state_dict(), "opt_g": self.opt_g.state_dict(),
            "cr": self.cr.state_dict() if self.cr is not None else None,
            "opt_cr": self.opt_cr.state_dict() if self.opt_cr is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.g.load_state_dict(state["generator"])
        self.d.load_state_dict(state["discriminator"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.opt_g.load_state_dict(state["opt_g"])
        if state.get("cr") is not None:  # the CR phase had started
            if self.cr is None:
                self.start_cr()
            assert self.cr is not None and self.opt_cr is not None
            self.cr.load_state_dict(state["cr"])
            self.opt_cr.load_state_dict(state["opt_cr"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    def weights(self) -> dict[str, torch.Tensor]:
        """Every floating-point weight and buffer, named ``generator.…``, ``discriminator.…``, ``cr.…``."""
        nets: list[tuple[str, torch.nn.Module]] = [("generator", self.g), ("discriminator", self.d)]
        nets += [("cr", self.cr)] if self.cr is not None else []
        return {f"{prefix}.{name}": t for prefix, net in nets
                for name, t in net.state_dict().items() if t.is_floating_point()}

