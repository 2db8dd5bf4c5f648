"""An in-process ensemble: K InfoGAN trainings stacked into one training step.

On a GPU one step of these small GANs is bound by kernel launches, not arithmetic (issue 15:
0.06% of an H200). ``EnsembleStep`` trains K members (other seeds, code weights, learning rates
or betas) in one step whose kernels are K times larger: every weight is stacked on a leading
member axis, convolutions run as grouped convolutions (``groups=K``, images laid out as
(B, K*C, S, S)), linear layers as batched matmuls on (K, B, F), batch norm over K*C channels (each
member's channels keep their own statistics and running averages), spectral norm as a batched
power iteration per member, and Adam as a dozen elementwise operations over one flat buffer of all
members' weights, each member with its own learning rates and betas. Nothing mixes two members:
each member's loss is a mean over its own batch, and the step minimises their sum, whose gradient
for a member's weights is that member's gradient alone.

Each member is its separate run: it starts with the weights ``train()`` would build for its config
(``torch.manual_seed(train.seed)``, then the networks), draws every iteration from its own loop
generator through its own ``IterationSampler``, and follows InfoGAN-CR's order (CR step, D step,
``train.g_steps`` G steps, spectral-norm power iterations and batch-norm statistics exactly where
``InfoGANStep`` runs them). Its losses equal the separate run's to float rounding (grouped kernels
sum in another order); ``tests/test_ensemble.py`` states how closely. The step's compute compiles
with ``torch.compile(fullgraph=True)`` (``compile``); a CUDA-graph capture of the whole iteration
(``train.step_mode=graph``'s ``infogan.capture``) is not wired to it yet. A member reads out as an
``InfoGANStep`` (``member_step``: for evaluation) or a checkpoint that ``infogan.train.train``
resumes as a plain single run (``member_checkpoint``), reads back in (``load_member``), and is
dropped without disturbing the others (``drop``: a scheduler stopped it).

Why not ``torch.func.vmap`` over ``stack_module_state``: spectral norm's power iteration writes its
vectors with ``out=``, which vmap cannot batch, and on the MNIST trunk vmap's batching rules cost
three times the dispatches of one model (views and permutes around each op); explicit stacked
layers cost about what one model does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from infogan import checkpoint as ckpt
from infogan import codes as latent_codes
from infogan.config import KEYS, Config, key_role
from infogan.data.base import ImageDataset
from infogan.model import CRClassifier, Discriminator, Generator, QOutput, to_network_range
from infogan.sampling import Draw, IterationSampler, loop_generator
from infogan.step import CR_LOSS_NAMES, LOSS_NAMES, InfoGANStep, compile_compute, cr_classifier

# What members may differ in: the keys that change no tensor's shape and no step's structure (the
# per-member hyperparameters), and the keys that change nothing the step computes.
MEMBER_KEYS = ("train.seed", "loss.lambda_cat", "loss.lambda_cont", "loss.lambda_cr",
               "optim.lr_d", "optim.lr_g", "optim.lr_q", "optim.lr_cr", "optim.beta1", "optim.beta2")
_FREE_ROLES = ("speed", "bookkeeping", "budget", "evaluation")
_FREE_KEYS = ("train.threads",)


def may_differ(key: str) -> bool:
    """Whether the members of one ensemble may differ in config key ``key``."""
    return key in MEMBER_KEYS or key in _FREE_KEYS or key_role(key) in _FREE_ROLES


def check_members(cfgs: Sequence[Config]) -> None:
    """Refuse configs that cannot train as one ensemble, naming the first key that differs.

    Raises:
        ValueError: no config, a key outside ``MEMBER_KEYS`` (and the budget, intervals, threads
            and evaluation settings) differs, InfoGAN-CR is on in some members only, or fp16.
    """
    if not cfgs:
        raise ValueError("an ensemble needs at least one member config")
    flats = [c.to_flat() for c in cfgs]
    for key in KEYS:
        if may_differ(key):
            continue
        values = list(dict.fromkeys(repr(f[key]) for f in flats))
        if len(values) > 1:
            raise ValueError(
                f"cannot train these configs as one ensemble: they differ in {key} ({', '.join(values)}); "
                f"members may differ only in {', '.join(MEMBER_KEYS)} and in the budget, intervals and "
                "evaluation settings (the networks' shapes and the step's structure must be the same)")
    on = [c.loss.lambda_cr > 0 for c in cfgs]
    if any(on) and not all(on):
        raise ValueError("cannot train these configs as one ensemble: loss.lambda_cr is 0 in some members and "
                         "> 0 in others; InfoGAN-CR (its classifier and step) must be on in every member or in none")
    if cfgs[0].train.precision == "fp16":
        raise ValueError("invalid config value train.precision='fp16' for an ensemble: fp16's loss scaler skips "
                         "a step for every member when one member's gradients overflow; use 'fp32' or 'bf16'")


# ---- stacked layers ------------------------------------------------------------------------------
# Layouts: "conv" activations are (B, K*C, H, W), member k's channels at k*C:(k+1)*C (what a
# grouped convolution reads and writes); "dense" activations are (K, B, F) (what bmm reads).


class _Stacked(nn.Module):
    """K copies of one layer, each tensor stacked on a leading member axis.

    ``member_keys`` maps each stacked tensor's attribute to the key of the same tensor in the
    single layer's ``state_dict`` (spectral norm keeps the weight and its vectors under
    ``parametrizations.weight``), so a member's ``state_dict`` is read out and written back by key.
    A tensor is stored in the shape its kernel reads (``_take``'s layouts), members in order, so
    ``member_view`` is a (K, *single shape) view of it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.member_keys: dict[str, str] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}  # one member's shape of each tensor
        self._layouts: dict[str, str] = {}

    def _take(self, layers: Sequence[nn.Module], attr: str, key: str, parameter: bool, layout: str = "stacked") -> None:
        """Register K layers' tensor ``key`` as ``attr``, (K, *shape) stored as ``layout``:
        ``stacked`` as is, ``merged`` (K*shape[0], *shape[1:]) (batch norm over K*C channels),
        ``column`` (K, *shape, 1) and ``row`` (K, 1, *shape) (batched matmuls' operands)."""
        stacked = torch.stack([layer.state_dict(keep_vars=True)[key].detach() for layer in layers])
        self.member_keys[attr], self._shapes[attr], self._layouts[attr] = key, tuple(stacked.shape[1:]), layout
        self._store(attr, stacked, parameter, True)

    def _store(self, attr: str, stacked: torch.Tensor, parameter: bool, requires_grad: bool) -> None:
        layout = self._layouts[attr]
        stored = {"stacked": stacked, "merged": stacked.flatten(0, 1) if stacked.dim() > 1 else stacked,
                  "column": stacked.unsqueeze(-1), "row": stacked.unsqueeze(1)}[layout].contiguous()
        if parameter:
            setattr(self, attr, nn.Parameter(stored, requires_grad))
        elif attr in self._buffers:
            setattr(self, attr, stored)
        else:
            self.register_buffer(attr, stored)

    def member_view(self, attr: str) -> torch.Tensor:
        """Tensor ``attr`` as a (K, *one member's shape) view."""
        return getattr(self, attr).view(-1, *self._shapes[attr])

    def keep(self, index: torch.Tensor) -> None:
        """Keep only the members ``index`` (new tensors: an optimiser must be rebuilt)."""
        for attr in self.member_keys:
            t = getattr(self, attr)
            kept = self.member_view(attr).detach().index_select(0, index)
            self._store(attr, kept, isinstance(t, nn.Parameter), t.requires_grad)


def _spectral(layer: nn.Module) -> bool:
    """Whether ``layer`` is wrapped by ``spectral_norm`` (the one power iteration per forward, dim 0)."""
    if not parametrize.is_parametrized(layer, "weight"):
        return False
    sn = layer.parametrizations.weight
    if len(sn) != 1 or type(sn[0]).__name__ != "_SpectralNorm" or sn[0].dim != 0 or sn[0].n_power_iterations != 1:
        raise TypeError(f"no stacked form of {type(layer).__name__}'s weight parametrization {sn}")
    return True


class _StackedWeighted(_Stacked):
    """A stacked layer with a weight (K, out, ...) and a bias, optionally spectrally normalised."""

    bias_layout = "stacked"

    def __init__(self, layers: Sequence[nn.Module]):
        super().__init__()
        self.sn = _spectral(layers[0])
        if self.sn:
            self._take(layers, "weight", "parametrizations.weight.original", True)
            self._take(layers, "u", "parametrizations.weight.0._u", False, "column")  # (K, out, 1)
            self._take(layers, "v", "parametrizations.weight.0._v", False, "column")  # (K, in * kh * kw, 1)
            self.eps = layers[0].parametrizations.weight[0].eps
        else:
            self._take(layers, "weight", "weight", True)
        if layers[0].bias is None:
            raise TypeError(f"no stacked form of a {type(layers[0]).__name__} without a bias")
        self._take(layers, "bias", "bias", True, self.bias_layout)

    def normalised_weight(self) -> torch.Tensor:
        """The weight, divided per member by its largest singular value's estimate with spectral norm.

        As ``torch.nn.utils.parametrizations.spectral_norm`` does on every access of the weight:
        in training mode one power iteration updates u and v in place (no gradient), then
        sigma = u . (W v) with copies of u and v (later forwards update them in place before backward).
        """
        if not self.sn:
            return self.weight
        mat = self.weight.flatten(2)  # (K, out, in)
        if self.training:
            with torch.no_grad():
                F.normalize(torch.bmm(mat, self.v), dim=1, eps=self.eps, out=self.u)
                F.normalize(torch.bmm(mat.transpose(1, 2), self.u), dim=1, eps=self.eps, out=self.v)
        u, v = self.u.clone(), self.v.clone()
        sigma = torch.bmm(u.transpose(1, 2), torch.bmm(mat, v))  # (K, 1, 1)
        return self.weight / (sigma if self.weight.dim() == 3 else sigma.view(-1, *[1] * (self.weight.dim() - 1)))


class StackedLinear(_StackedWeighted):
    """K ``nn.Linear`` layers: dense (K, B, in) -> (K, B, out), one batched matmul."""

    bias_layout = "row"  # (K, 1, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.normalised_weight().transpose(1, 2))


class StackedConv2d(_StackedWeighted):
    """K ``nn.Conv2d`` layers: conv layout (B, K*in, H, W) -> (B, K*out, H', W'), one grouped convolution."""

    def __init__(self, layers: Sequence[nn.Conv2d]):
        super().__init__(layers)
        first = layers[0]
        if first.groups != 1 or first.padding_mode != "zeros" or isinstance(first.padding, str):
            raise TypeError(f"no stacked form of {first}")
        self.stride, self.padding, self.dilation = first.stride, first.padding, first.dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.normalised_weight()  # (K, out, in, kh, kw)
        return F.conv2d(x, w.flatten(0, 1), self.bias.flatten(), self.stride, self.padding, self.dilation,
                        groups=w.shape[0])


class StackedConvTranspose2d(_StackedWeighted):
    """K ``nn.ConvTranspose2d`` layers: conv layout (B, K*in, H, W) -> (B, K*out, H', W')."""

    def __init__(self, layers: Sequence[nn.ConvTranspose2d]):
        first = layers[0]
        if parametrize.is_parametrized(first, "weight") or first.groups != 1 or first.padding_mode != "zeros":
            raise TypeError(f"no stacked form of {first}")
        super().__init__(layers)
        self.stride, self.padding, self.dilation = first.stride, first.padding, first.dilation
        self.output_padding = first.output_padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight  # (K, in, out, kh, kw): grouped, (K*in, out, kh, kw)
        return F.conv_transpose2d(x, w.flatten(0, 1), self.bias.flatten(), self.stride, self.padding,
                                  self.output_padding, w.shape[0], self.dilation)


class StackedBatchNorm(_Stacked):
    """K batch norms as one over K*C channels (member k's statistics stay its own).

    ``BatchNorm1d`` layers read and write the dense layout, ``BatchNorm2d`` the conv layout. With
    ``groups = g`` (``model.SplitBatchNorm``: D's real and fake halves), g equal slices of the
    batch are normalised one after the other, as the single layer does.
    """

    groups = 1

    def __init__(self, layers: Sequence[nn.modules.batchnorm._BatchNorm]):
        super().__init__()
        first = layers[0]
        if not (first.affine and first.track_running_stats) or first.momentum is None:
            raise TypeError(f"no stacked form of {first}")
        self.dense = isinstance(first, nn.BatchNorm1d)
        self.eps, self.momentum = first.eps, first.momentum
        for name in ("weight", "bias"):  # (K*C,): member k's channels at k*C:(k+1)*C
            self._take(layers, name, name, True, "merged")
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self._take(layers, name, name, False, "merged")

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                            self.momentum, self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.dense:
            return self._split(x)
        k, b, f = x.shape
        y = self._split(x.transpose(0, 1).reshape(b, k * f))  # (B, K*F)
        return y.view(b, k, f).transpose(0, 1)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        if self.groups == 1 or not self.training:
            return self._normalise(x)
        return torch.cat([self._normalise(part) for part in x.chunk(self.groups)])


class StackedFlatten(nn.Module):
    """``nn.Flatten`` from the conv layout (B, K*C, H, W) to the dense layout (K, B, C*H*W)."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], self.k, -1).transpose(0, 1)

    def keep(self, index: torch.Tensor) -> None:
        self.k = len(index)


def stack_layers(layers: Sequence[nn.Module]) -> nn.Module:
    """The stacked form of K identically shaped layers (or ``nn.Sequential`` of them), same child names.

    Raises:
        TypeError: a layer with no stacked form here.
    """
    first = layers[0]
    if isinstance(first, nn.Sequential):
        return nn.Sequential(*(stack_layers([seq[i] for seq in layers]) for i in range(len(first))))
    if isinstance(first, nn.Linear):
        return StackedLinear(layers)
    if isinstance(first, nn.Conv2d):
        return StackedConv2d(layers)
    if isinstance(first, nn.ConvTranspose2d):
        return StackedConvTranspose2d(layers)
    if isinstance(first, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return StackedBatchNorm(layers)
    if isinstance(first, nn.Flatten) and first.start_dim == 1 and first.end_dim == -1:
        return StackedFlatten(len(layers))
    # Elementwise, any layout; out of place: batch norm's dense output is a transposed view, and an
    # in-place op on a view makes autograd rebase it (as_strided and copies in every backward).
    if isinstance(first, nn.ReLU):
        return nn.ReLU()
    if isinstance(first, nn.LeakyReLU):
        return nn.LeakyReLU(first.negative_slope)
    raise TypeError(f"no stacked form of {type(first).__name__}")


def member_tensors(net: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Every stacked tensor of ``net``, keyed as in one member network's ``state_dict``: a
    (K, *one member's shape) view of it, and the tensor itself (the parameter an optimiser holds)."""
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for prefix, module in net.named_modules():
        if isinstance(module, _Stacked):
            for attr, key in module.member_keys.items():
                out[f"{prefix}.{key}" if prefix else key] = (module.member_view(attr), getattr(module, attr))
    return out


class StackedGenerator(nn.Module):
    """K generators: latents (K, B, latent_dim) -> images in the conv layout (B, K*C, S, S), in [-1, 1]."""

    def __init__(self, gens: Sequence[Generator]):
        super().__init__()
        self.fc, self.deconv = stack_layers([g.fc for g in gens]), stack_layers([g.deconv for g in gens])
        self.channels, self.base, self.sigmoid = gens[0].channels, gens[0].base, gens[0].sigmoid

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        h = self.fc(latent)  # (K, B, ch * base * base)
        h = h.transpose(0, 1).reshape(h.shape[1], -1, self.base, self.base)  # (B, K*ch, base, base)
        out = self.deconv(h)
        return torch.sigmoid(out).mul(2.0).sub(1.0) if self.sigmoid else torch.tanh(out)


class StackedDiscriminator(nn.Module):
    """K discriminators (trunk, D head, Q head): images in the conv layout -> dense (K, B, ...) outputs."""

    def __init__(self, ds: Sequence[Discriminator]):
        super().__init__()
        first = ds[0]
        self.trunk = stack_layers([d.trunk for d in ds])
        self.d_head = stack_layers([d.d_head for d in ds])
        self.q_head = stack_layers([d.q_head for d in ds])
        self.model_cfg, self.n_cat, self.n_cont, self.learned_std = (first.model_cfg, first.n_cat, first.n_cont,
                                                                     first.learned_std)

    def features(self, images: torch.Tensor, groups: int = 1) -> torch.Tensor:
        """(B, K*C, S, S) -> (K, B, hidden); ``groups`` as ``Discriminator.features``."""
        images = to_network_range(images, self.model_cfg)
        norms = [m for m in self.trunk if isinstance(m, StackedBatchNorm)]
        for m in norms:
            m.groups = groups
        try:
            return self.trunk(images)
        finally:
            for m in norms:
                m.groups = 1

    def d_logit(self, h: torch.Tensor) -> torch.Tensor:
        return self.d_head(h).squeeze(2)  # (K, B)

    def q(self, h: torch.Tensor) -> QOutput:
        out = self.q_head(h)  # (K, B, n_out)
        n = sum(self.n_cat)
        logits = list(torch.split(out[..., :n], self.n_cat, dim=-1)) if self.n_cat else []
        rest = out[..., n:]
        return QOutput(logits, rest[..., : self.n_cont], rest[..., self.n_cont:] if self.learned_std else None)

    def d_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters()) + list(self.d_head.parameters())


class StackedCRClassifier(nn.Module):
    """K InfoGAN-CR classifiers: two image batches in the conv layout -> logits (K, B, n_codes)."""

    def __init__(self, crs: Sequence[CRClassifier]):
        super().__init__()
        self.trunk, self.head = stack_layers([c.trunk for c in crs]), stack_layers([c.head for c in crs])
        self.model_cfg = crs[0].model_cfg

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        b, kc, s, _ = first.shape
        k = self.head.weight.shape[0]
        # Each member's pair stacked on its channels: [first_k, second_k], as the single classifier's cat.
        pair = torch.stack([first.view(b, k, kc // k, s, s), second.view(b, k, kc // k, s, s)], dim=2)
        return self.head(self.trunk(to_network_range(pair.view(b, 2 * kc, s, s), self.model_cfg)))


# ---- per-member losses: infogan.losses, reduced over each member's batch ---------------------------


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target), reduction="none").mean(-1)


def member_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """``losses.d_loss`` of each member: logits (K, B) -> (K,)."""
    if kind == "bce":
        return _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)
    if kind == "lsgan":
        return 0.5 * ((real_logits.float() - 1).pow(2).mean(-1) + fake_logits.float().pow(2).mean(-1))
    raise ValueError(f"unknown GAN loss {kind!r}; allowed is 'bce' or 'lsgan'")


def member_g_loss(fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """``losses.g_loss`` of each member: logits (K, B) -> (K,)."""
    if kind == "bce":
        return _bce(fake_logits, 1.0)
    if kind == "lsgan":
        return 0.5 * (fake_logits.float() - 1).pow(2).mean(-1)
    raise ValueError(f"unknown GAN loss {kind!r}; allowed is 'bce' or 'lsgan'")


def member_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each member's mean cross-entropy: logits (K, B, n), targets (K, B) -> (K,)."""
    ce = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none")
    return ce.view(targets.shape).mean(-1)


def member_categorical_nll(logits: list[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """``losses.categorical_nll`` of each member: logits (K, B, K_i) per code, targets (K, B, n_cat) -> (K,)."""
    total = targets.new_zeros(targets.shape[0], dtype=torch.float32)
    for i, lg in enumerate(logits):
        total = total + member_cross_entropy(lg, targets[..., i])
    return total


def member_gaussian_nll(mean: torch.Tensor, target: torch.Tensor, log_std: torch.Tensor | None) -> torch.Tensor:
    """``losses.gaussian_nll`` of each member: (K, B, n_continuous) -> (K,)."""
    mean, target = mean.float(), target.float()
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    if log_std is None:
        per = 0.5 * (target - mean).pow(2) + half_log_2pi
    else:
        log_std = log_std.float().clamp(-5.0, 2.0)
        per = 0.5 * ((target - mean) * torch.exp(-log_std)).pow(2) + log_std + half_log_2pi
    return per.sum(-1).mean(-1)


def member_info_nll(q: QOutput, latent: latent_codes.Latent) -> tuple[torch.Tensor, torch.Tensor]:
    """``step.info_nll`` of each member: Q's outputs and latents (K, B, ...) -> two (K,)."""
    return (member_categorical_nll(q.logits, latent.categorical),
            member_gaussian_nll(q.mean, latent.continuous, q.log_std))


# ---- Adam with per-member hyperparameters ------------------------------------------------------------


class StackedAdam:
    """Adam (torch's, without weight decay or amsgrad) for stacked parameters (K, ...), with a
    learning rate per parameter group and member and betas per member.

    The parameters' data move into one flat buffer, each parameter a contiguous (K, ...) slice of
    it, so an update is about a dozen elementwise operations over every parameter and member at
    once, whatever K is (torch's fused Adam takes one learning rate per group, not per member). As
    torch's fused kernel does, the bias corrections are computed in float64 and the update in the
    parameters' dtype; the step count is kept per member, as torch's per-parameter ``step``.

    Args:
        groups: the parameter groups, each a list of stacked parameters.
        lr: (n_groups, K) learning rates.
        beta1, beta2: (K,) betas.
        eps: Adam's epsilon.
    """

    def __init__(self, groups: Sequence[Sequence[nn.Parameter]], lr: torch.Tensor, beta1: torch.Tensor,
                 beta2: torch.Tensor, eps: float = 1e-8):
        self.groups = [list(g) for g in groups]
        self.params = [p for g in self.groups for p in g]
        k = beta1.numel()
        self.lr, self.beta1, self.beta2, self.eps = lr.double(), beta1.double(), beta2.double(), eps
        device = self.params[0].device
        self.steps = torch.zeros(k, dtype=torch.float32, device=device)  # per member, as torch's state 'step'
        members = torch.arange(k, device=device)
        # Each element's (group, member): the row of the per-step coefficient table it reads.
        self.segment = torch.cat([(gi * k + members).repeat_interleave(p.numel() // k)
                                  for gi, g in enumerate(self.groups) for p in g])
        member = self.segment % k
        self.beta1_el, self.beta2_el = self.beta1.float()[member], self.beta2.float()[member]
        self.one_minus_beta1_el = (1 - self.beta1).float()[member]
        self.one_minus_beta2_el = (1 - self.beta2).float()[member]
        self.flat = torch.cat([p.detach().reshape(-1) for p in self.params])
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(self.flat), torch.zeros_like(self.flat)
        self._slices: dict[int, slice] = {}
        offset = 0
        for p in self.params:
            self._slices[id(p)] = slice(offset, offset + p.numel())
            p.data = self.flat[self._slices[id(p)]].view_as(p)  # the parameter now lives in the flat buffer
            offset += p.numel()

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_of(self, p: nn.Parameter) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, n) views of the first and second moments of the stacked parameter ``p`` (n: one member's)."""
        where, k = self._slices[id(p)], self.steps.numel()
        return self.exp_avg[where].view(k, -1), self.exp_avg_sq[where].view(k, -1)

    @torch.no_grad()
    def step(self) -> None:
        grads = [p.grad for p in self.params]
        if any(g is None for g in grads):
            raise RuntimeError("a stacked parameter got no gradient: every member's loss must reach every parameter")
        grad = torch.cat([g.reshape(-1) for g in grads])  # type: ignore[union-attr]
        self.steps.add_(1)
        t = self.steps.double()
        bias_correction1 = 1 - self.beta1.pow(t)  # (K,)
        bias_correction2_sqrt = (1 - self.beta2.pow(t)).sqrt()
        table = torch.stack([self.lr / bias_correction1, bias_correction2_sqrt.expand_as(self.lr)], dim=-1)
        coefficients = table.float().view(-1, 2)[self.segment]  # (N, 2): step size, sqrt of bias correction 2
        m, v = self.exp_avg, self.exp_avg_sq
        m.mul_(self.beta1_el).addcmul_(grad, self.one_minus_beta1_el)
        v.mul_(self.beta2_el).addcmul_(grad * grad, self.one_minus_beta2_el)
        denom = v.sqrt().div_(coefficients[:, 1]).add_(self.eps)
        self.flat.sub_(coefficients[:, 0] * m / denom)

    def kept(self, index: torch.Tensor, groups: Sequence[Sequence[nn.Parameter]]) -> StackedAdam:
        """A copy for the members ``index``, over ``groups`` (the same parameters, their members kept)."""
        new = StackedAdam(groups, self.lr[:, index], self.beta1[index], self.beta2[index], self.eps)
        for old_p, new_p in zip(self.params, new.params, strict=True):
            for old, fresh in zip(self.state_of(old_p), new.state_of(new_p), strict=True):
                fresh.copy_(old.index_select(0, index))
        new.steps.copy_(self.steps[index])
        return new


# ---- the ensemble -----------------------------------------------------------------------------------


def _stack_latents(latents: Sequence[latent_codes.Latent]) -> latent_codes.Latent:
    return latent_codes.Latent(torch.stack([lt.noise for lt in latents]), torch.stack([lt.categorical for lt in latents]),
                               torch.stack([lt.continuous for lt in latents]))


def _cat_latents(a: latent_codes.Latent, b: latent_codes.Latent) -> latent_codes.Latent:
    """Two stacked latent batches (K, B, ...) concatenated along each member's batch."""
    return latent_codes.Latent(torch.cat([a.noise, b.noise], 1), torch.cat([a.categorical, b.categorical], 1),
                               torch.cat([a.continuous, b.continuous], 1))


StackedPair = tuple[latent_codes.Latent, latent_codes.Latent, torch.Tensor]


class EnsembleStep:
    """K InfoGAN trainings as one training step (see the module docstring).

    Args:
        cfgs: one config per member; they may differ only in ``MEMBER_KEYS`` and in settings that
            change nothing the step computes (``check_members``).
        dataset: the training data (the members' data config is one), on ``device``.
        device: where the stacked networks live.
        amp_dtype: the autocast dtype, None for fp32 (bf16 allowed, fp16 refused).
    Builds each member's networks exactly as ``train()`` does for its config (``torch.manual_seed``
    with its seed, then ``InfoGANStep``) and gives it the loop generator its run would have; the
    caller's global RNG state is left as it was.
    """

    def __init__(self, cfgs: Sequence[Config], dataset: ImageDataset, device: torch.device,
                 amp_dtype: torch.dtype | None = None):
        check_members(cfgs)
        if amp_dtype == torch.float16:
            raise ValueError("an ensemble runs in fp32 or bf16: fp16's loss scaler would couple the members")
        self.cfgs, self.device, self.dataset = list(cfgs), device, dataset
        self.cfg = self.cfgs[0]  # what every member shares: shapes, codes, the step's structure
        self.ids = list(range(len(cfgs)))  # each member's position in the configs it was built from
        singles, self.torch_rng = [], []
        with torch.random.fork_rng(devices=[]):
            for cfg in self.cfgs:
                torch.manual_seed(cfg.train.seed)
                singles.append(InfoGANStep(cfg, torch.device("cpu"), None))  # built on the CPU as on any device
                self.torch_rng.append(torch.get_rng_state())  # the run's global RNG after building (checkpoints)
        self.g = StackedGenerator([s.g for s in singles]).to(device)
        self.d = StackedDiscriminator([s.d for s in singles]).to(device)
        self.q_with_d = self.cfg.loss.q_update == "with_d"
        self.samplers = [IterationSampler(cfg, dataset, loop_generator(cfg.train.seed, device)) for cfg in self.cfgs]
        self.cr: StackedCRClassifier | None = None
        self.opt_cr: StackedAdam | None = None
        self._hyperparameters()
        self.opt_d = StackedAdam(self._d_groups(), self._lrs("optim.lr_d", "optim.lr_q")[: len(self._d_groups())],
                                 self.beta1, self.beta2)
        self.opt_g = StackedAdam(self._g_groups(), self._lrs("optim.lr_g", "optim.lr_q")[: len(self._g_groups())],
                                 self.beta1, self.beta2)
        self._autocast: Callable[[], AbstractContextManager[Any]] = (
            (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else nullcontext)
        self.amp_dtype = amp_dtype

    # -- members' hyperparameters and parameter groups (InfoGANStep's)

    def _member_values(self, key: str) -> torch.Tensor:
        return torch.tensor([float(c.to_flat()[key]) for c in self.cfgs], dtype=torch.float64, device=self.device)

    def _hyperparameters(self) -> None:
        self.lambda_cat = self._member_values("loss.lambda_cat").float()
        self.lambda_cont = self._member_values("loss.lambda_cont").float()
        self.lambda_cr = self._member_values("loss.lambda_cr").float()
        self.beta1, self.beta2 = self._member_values("optim.beta1"), self._member_values("optim.beta2")

    def _lrs(self, *keys: str) -> torch.Tensor:
        return torch.stack([self._member_values(k) for k in keys])  # (n_groups, K)

    def _d_groups(self) -> list[list[nn.Parameter]]:
        q = list(self.d.q_head.parameters())
        return [self.d.d_parameters()] + ([q] if self.q_with_d else [])

    def _g_groups(self) -> list[list[nn.Parameter]]:
        q = list(self.d.q_head.parameters())
        return [list(self.g.parameters())] + ([] if self.q_with_d else [q])

    def _frozen_in_g_step(self) -> list[nn.Parameter]:
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
        """Whether iteration ``step`` (1-based) has a CR step (the same in every member)."""
        return self.uses_cr and step > self.cfg.loss.cr_start

    def networks(self) -> list[nn.Module]:
        return [self.g, self.d] + ([self.cr] if self.cr is not None else [])

    def optimisers(self) -> list[StackedAdam]:
        return [self.opt_d, self.opt_g] + ([self.opt_cr] if self.opt_cr is not None else [])

    def train(self) -> None:
        for net in self.networks():
            net.train()

    def start_cr(self) -> None:
        """Create every member's InfoGAN-CR classifier as its run would (``InfoGANStep.start_cr``)."""
        self.cr = StackedCRClassifier([cr_classifier(cfg) for cfg in self.cfgs]).to(self.device)
        self.opt_cr = StackedAdam([list(self.cr.parameters())], self._lrs("optim.lr_cr"), self.beta1, self.beta2)

    def compile(self, mode: str | None = None, backend: str = "inductor") -> None:
        """Compile the step's compute as ``InfoGANStep.compile`` does (the updates stay eager)."""
        compile_compute(self, mode, backend)

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
            (K, n_losses) on the device: each member's losses as its ``InfoGANStep`` returns them,
            ordered as ``loss_names``.
        """
        if len(draws) != self.k:
            raise ValueError(f"got {len(draws)} draws for an ensemble of {self.k} members")
        cfg = self.cfg
        real = torch.stack([d.real for d in draws], dim=1).flatten(1, 2)  # (B, K*C, S, S)
        latent = _stack_latents([d.latent for d in draws])  # (K, B, ...)
        g_latents = None
        if draws[0].g_latents is not None:
            g_latents = [_stack_latents([d.g_latents[i] for d in draws])  # type: ignore[index]
                         for i in range(cfg.train.g_steps)]
        pair: StackedPair | None = None
        if draws[0].pair is not None:
            pairs = [d.pair for d in draws]
            pair = (_stack_latents([p[0] for p in pairs]), _stack_latents([p[1] for p in pairs]),  # type: ignore[index]
                    torch.stack([p[2] for p in pairs]))  # type: ignore[index]

        z = self._assemble(latent)
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
            cr_stats = [loss_cr.detach(), cr_accuracy]

        with self._autocast():
            loss_d_total, loss_d = self._d_losses(real, fake.detach(), latent)
        self._update(self.opt_d, loss_d_total)

        frozen = self._frozen_in_g_step()
        for p in frozen:
            p.requires_grad_(False)
        try:
            for k in range(cfg.train.g_steps):
                g_latent = latent if g_latents is None else g_latents[k]
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
                if k == 0:
                    logged = [loss_d.detach(), *(t.detach() for t in g_terms)]
        finally:
            for p in frozen:
                p.requires_grad_(True)
        if self.uses_cr:
            nan = torch.full((self.k,), math.nan, device=loss_d.device)
            logged += cr_stats or [nan, nan]
        return torch.stack([t.float() for t in logged], dim=1)

    def _assemble(self, latent: latent_codes.Latent) -> torch.Tensor:
        """G's input (K, B, latent_dim), by ``codes.assemble`` on the members' batches laid end to end."""
        k, b = latent.noise.shape[:2]
        flat = latent_codes.Latent(latent.noise.flatten(0, 1), latent.categorical.flatten(0, 1),
                                   latent.continuous.flatten(0, 1))
        return latent_codes.assemble(self.cfg.codes, flat).view(k, b, -1)

    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.g(z)

    def _pair_images(self, pair: StackedPair | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        if pair is None:
            return None
        both = self._generate(self._assemble(_cat_latents(pair[0], pair[1])))  # (2B, K*C, S, S)
        return both.chunk(2)

    def _d_losses(self, real: torch.Tensor, fake: torch.Tensor, latent: latent_codes.Latent
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        d, lc = self.d, self.cfg.loss
        h_real, h_fake = d.features(torch.cat([real, fake]), groups=2).chunk(2, dim=1)  # (K, B, hidden) each
        loss_d = member_d_loss(d.d_logit(h_real), d.d_logit(h_fake), lc.gan)
        if not self.q_with_d:
            return loss_d, loss_d
        nll_cat, nll_cont = member_info_nll(d.q(h_fake), latent)
        return loss_d + self.lambda_cat * nll_cat + self.lambda_cont * nll_cont, loss_d

    def _g_losses(self, fake: torch.Tensor, latent: latent_codes.Latent,
                  pair_images: tuple[torch.Tensor, torch.Tensor] | None, shared: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        d = self.d
        h = d.features(fake)
        loss_g = member_g_loss(d.d_logit(h), self.cfg.loss.gan)
        nll_cat, nll_cont = member_info_nll(d.q(h), latent)
        total = loss_g + self.lambda_cat * nll_cat + self.lambda_cont * nll_cont
        if pair_images is not None and shared is not None and self.cr is not None:
            total = total + self.lambda_cr * member_cross_entropy(self.cr(*pair_images), shared)
        return total, loss_g, nll_cat, nll_cont

    def _cr_losses(self, first: torch.Tensor, second: torch.Tensor, shared: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.cr is not None
        logits = self.cr(first, second).float()  # (K, B, n_codes)
        return member_cross_entropy(logits, shared), (logits.detach().argmax(-1) == shared).float().mean(-1)

    @staticmethod
    def _update(opt: StackedAdam, loss: torch.Tensor) -> None:
        # The members' losses summed: each member's weights get their own loss's gradient alone.
        opt.zero_grad()
        loss.sum().backward()
        opt.step()

    # -- members in and out

    def _single(self, k: int, cr: bool) -> InfoGANStep:
        """A fresh ``InfoGANStep`` for member k's config on the device (the global RNG untouched)."""
        with torch.random.fork_rng(devices=[]):
            single = InfoGANStep(self.cfgs[k], self.device, self.amp_dtype)
            if cr:
                single.start_cr()
        return single

    def _pairs(self, single: InfoGANStep) -> Iterator[tuple[nn.Module, nn.Module, list[tuple[torch.optim.Optimizer, StackedAdam]]]]:
        """(single network, stacked network) pairs, with the optimisers over their parameters."""
        opts = [(single.opt_d, self.opt_d), (single.opt_g, self.opt_g)]
        yield single.g, self.g, opts
        yield single.d, self.d, opts
        if single.cr is not None and self.cr is not None:
            assert single.opt_cr is not None and self.opt_cr is not None
            yield single.cr, self.cr, [(single.opt_cr, self.opt_cr)]

    def _parameter_map(self, single: InfoGANStep) -> dict[int, tuple[nn.Parameter, StackedAdam, torch.optim.Optimizer]]:
        """id(single parameter) -> (its stacked parameter, the stacked optimiser, the single's)."""
        out: dict[int, tuple[nn.Parameter, StackedAdam, torch.optim.Optimizer]] = {}
        for s_net, e_net, opts in self._pairs(single):
            stacked = member_tensors(e_net)
            for name, p in s_net.named_parameters():
                owner = next(((s, e) for s, e in opts if any(p is q for g in s.param_groups for q in g["params"])), None)
                if owner is not None:
                    out[id(p)] = (stacked[name][1], owner[1], owner[0])  # type: ignore[assignment]
        return out

    def member_step(self, k: int) -> InfoGANStep:
        """Member k as an ``InfoGANStep`` on the device: its weights, buffers and optimiser states
        (what its separate run would hold now), for evaluation or a checkpoint."""
        single = self._single(k, cr=self.cr is not None)
        with torch.no_grad():
            for s_net, e_net, _ in self._pairs(single):
                s_net.load_state_dict({key: view[k] for key, (view, _) in member_tensors(e_net).items()})
        for p_id, (stacked, opt, s_opt) in self._parameter_map(single).items():
            if opt.steps[k] == 0:
                continue  # a fresh optimiser has no state
            p = next(q for g in s_opt.param_groups for q in g["params"] if id(q) == p_id)
            m, v = opt.state_of(stacked)
            s_opt.state[p] = {"step": opt.steps[k].detach().clone().to(p.device),
                              "exp_avg": torch.empty_like(p).copy_(m[k].view_as(p)),
                              "exp_avg_sq": torch.empty_like(p).copy_(v[k].view_as(p))}
        return single

    def member_state_dict(self, k: int) -> dict[str, Any]:
        """Member k's ``InfoGANStep.state_dict()``."""
        return self.member_step(k).state_dict()

    def load_member(self, k: int, state: dict[str, Any]) -> None:
        """Write an ``InfoGANStep.state_dict()`` (e.g. a member's checkpoint) into member k.

        A state from InfoGAN-CR's phase starts the phase for every member (each others' classifier
        fresh, as their first CR step would create it).
        """
        single = self._single(k, cr=state.get("cr") is not None)
        single.load_state_dict(state)
        if single.cr is not None and self.cr is None:
            self.start_cr()
        with torch.no_grad():
            for s_net, e_net, _ in self._pairs(single):
                stacked = member_tensors(e_net)
                values = s_net.state_dict()
                if set(values) != set(stacked):
                    raise ValueError(f"member state's keys {sorted(set(values) ^ set(stacked))} do not fit the ensemble")
                for key, (view, _) in stacked.items():
                    view[k].copy_(values[key])
            steps: dict[StackedAdam, set[float]] = {}
            for p_id, (stacked_p, opt, s_opt) in self._parameter_map(single).items():
                p = next(q for g in s_opt.param_groups for q in g["params"] if id(q) == p_id)
                m, v = opt.state_of(stacked_p)
                st = s_opt.state.get(p, {})
                m[k].copy_(st["exp_avg"].flatten()) if st else m[k].zero_()
                v[k].copy_(st["exp_avg_sq"].flatten()) if st else v[k].zero_()
                steps.setdefault(opt, set()).add(float(st["step"]) if st else 0.0)
            for opt, values in steps.items():
                if len(values) != 1:
                    raise ValueError(f"member state has parameters at different Adam steps {sorted(values)}")
                opt.steps[k] = values.pop()

    def member_checkpoint(self, k: int, step: int) -> ckpt.TrainingState:
        """Member k at iteration ``step`` as a checkpoint its own run resumes from
        (``infogan.train.train(cfg, resume=...)`` after ``checkpoint.save``)."""
        state = self.member_state_dict(k)
        cuda = self.device.type == "cuda"
        return ckpt.TrainingState(step=step, config=self.cfgs[k].to_flat(), **state,
                                  loop_rng=self.samplers[k].generator.get_state(), torch_rng=self.torch_rng[k],
                                  cuda_rng=torch.cuda.get_rng_state_all() if cuda else [])

    def drop(self, k: int) -> None:
        """Remove member k (a scheduler stopped it); the others keep their states bit for bit and
        train on as before (to the bit where the kernels' rounding does not depend on K: on the CPU
        with spectral norm; batch norm over K*C channels rounds its column sums by the width).

        Raises:
            ValueError: k is the last member (discard the ensemble instead).
        """
        if not 0 <= k < self.k:
            raise ValueError(f"no member {k} in an ensemble of {self.k}")
        if self.k == 1:
            raise ValueError("cannot drop the last member of an ensemble; discard the ensemble instead")
        keep = [i for i in range(self.k) if i != k]
        index = torch.tensor(keep, device=self.device)
        for net in self.networks():
            for module in net.modules():
                if isinstance(module, (_Stacked, StackedFlatten)):
                    module.keep(index)
        for name in ("cfgs", "ids", "samplers", "torch_rng"):
            setattr(self, name, [getattr(self, name)[i] for i in keep])
        self._hyperparameters()
        self.opt_d = self.opt_d.kept(index, self._d_groups())
        self.opt_g = self.opt_g.kept(index, self._g_groups())
        if self.cr is not None and self.opt_cr is not None:
            self.opt_cr = self.opt_cr.kept(index, [list(self.cr.parameters())])
