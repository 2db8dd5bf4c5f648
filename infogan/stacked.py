"""K copies of the networks as one set of networks: every weight stacked on a leading member axis.

The training step (``infogan.step``) trains K members (other seeds, code weights, learning rates,
betas) in one iteration of K-times larger kernels: convolutions run as grouped convolutions
(``groups=K``, images laid out as (B, K*C, S, S)), linear layers as batched matmuls on (K, B, F),
batch norm over K*C channels (each member's channels keep their own statistics and running
averages), spectral norm as a batched power iteration per member. Nothing mixes two members.

With one member (K = 1, a plain run) every layer runs the single network's own operators on the
single network's layouts ((B, F) dense activations; in-place activations; ``torch.mv`` power
iterations), so a run of one member costs what ``infogan.model``'s networks cost and computes
what they compute; the networks' boundaries (``StackedGenerator``, ``StackedDiscriminator``,
``StackedCRClassifier``) take and give the member axis either way.

A member's weights read out as the single network's ``state_dict`` (``member_tensors``: each stacked
tensor keyed as in one member's ``state_dict``, with a (K, ...) view of it) and are written back
the same way; ``keep`` drops members (a scheduler stopped one) in place of the tensors.

Why not ``torch.func.vmap`` over ``stack_module_state``: spectral norm's power iteration writes its
vectors with ``out=``, which vmap cannot batch, and on the MNIST trunk vmap's batching rules cost
three times the dispatches of one model (views and permutes around each op); explicit stacked
layers cost about what one model does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from infogan.model import CRClassifier, Discriminator, Generator, QOutput, to_network_range

# Layouts: "conv" activations are (B, K*C, H, W), member k's channels at k*C:(k+1)*C (what a
# grouped convolution reads and writes); "dense" activations are (K, B, F) (what bmm reads), and
# (B, F) with one member (the single network's layout).


class _Stacked(nn.Module):
    """K copies of one layer, each tensor stacked on a leading member axis.

    ``member_keys`` maps each stacked tensor's attribute to the key of the same tensor in the
    single layer's ``state_dict`` (spectral norm keeps the weight and its vectors under
    ``parametrizations.weight``), so a member's ``state_dict`` is read out and written back by key.
    A tensor is stored in the shape its kernel reads (``_take``'s layouts), members in order, so
    ``member_view`` is a (K, *single shape) view of it. One member's tensors are stored in the
    single layer's shapes: its operators then see the single network's leaves (and autograd sums
    a weight's gradients in the same order, to the bit).
    """

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
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
        layout = "single" if len(stacked) == 1 else self._layouts[attr]
        stored = {"single": stacked[0], "stacked": stacked,
                  "merged": stacked.flatten(0, 1) if stacked.dim() > 1 else stacked,
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
        self.k = len(index)


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
        super().__init__(len(layers))
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
        """The weight, divided per member by its largest singular value's estimate with spectral
        norm: (K, out, ...), or the single layer's (out, ...) with one member.

        As ``torch.nn.utils.parametrizations.spectral_norm`` does on every access of the weight:
        in training mode one power iteration updates u and v in place (no gradient), then
        sigma = u . (W v) with copies of u and v (later forwards update them in place before
        backward). One member runs its operators (``torch.mv``, ``torch.vdot``) on (out,) and (in,)
        views of u and v.
        """
        if self.k == 1:
            weight = self.weight
            if not self.sn:
                return weight
            mat, u_out, v_out = weight.flatten(1), self.u, self.v
            if self.training:
                with torch.no_grad():
                    F.normalize(torch.mv(mat, v_out), dim=0, eps=self.eps, out=u_out)
                    F.normalize(torch.mv(mat.t(), u_out), dim=0, eps=self.eps, out=v_out)
            return weight / torch.vdot(u_out.clone(), torch.mv(mat, v_out.clone()))
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
    """K ``nn.Linear`` layers: dense (K, B, in) -> (K, B, out), one batched matmul ((B, in) -> (B, out)
    with one member: ``F.linear``)."""

    bias_layout = "row"  # (K, 1, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.normalised_weight()
        if self.k == 1:
            return F.linear(x, w, self.bias)
        return torch.baddbmm(self.bias, x, w.transpose(1, 2))


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
        if self.k == 1:
            return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation)
        return F.conv2d(x, w.flatten(0, 1), self.bias.flatten(), self.stride, self.padding, self.dilation,
                        groups=self.k)


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
        if self.k == 1:
            return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                      self.output_padding, 1, self.dilation)
        w = self.weight  # (K, in, out, kh, kw): grouped, (K*in, out, kh, kw)
        return F.conv_transpose2d(x, w.flatten(0, 1), self.bias.flatten(), self.stride, self.padding,
                                  self.output_padding, self.k, self.dilation)


class StackedBatchNorm(_Stacked):
    """K batch norms as one over K*C channels (member k's statistics stay its own).

    ``BatchNorm1d`` layers read and write the dense layout, ``BatchNorm2d`` the conv layout. With
    ``groups = g`` (``model.SplitBatchNorm``: D's real and fake halves), g equal slices of the
    batch are normalised one after the other, as the single layer does.
    """

    groups = 1

    def __init__(self, layers: Sequence[nn.modules.batchnorm._BatchNorm]):
        super().__init__(len(layers))
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
        if not self.dense or self.k == 1:
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
        if self.k == 1:
            return x.flatten(1)
        return x.reshape(x.shape[0], self.k, -1).transpose(0, 1)

    def keep(self, index: torch.Tensor) -> None:
        self.k = len(index)


class StackedActivation(nn.Module):
    """ReLU or leaky ReLU, any layout: in place with one member (as the single networks), out of
    place with several (batch norm's dense output is then a transposed view, and an in-place op
    on a view makes autograd rebase it: as_strided and copies in every backward)."""

    def __init__(self, k: int, slope: float | None):
        super().__init__()
        self.k, self.slope = k, slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inplace = self.k == 1
        return F.relu(x, inplace) if self.slope is None else F.leaky_relu(x, self.slope, inplace)

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
    if isinstance(first, nn.ReLU):
        return StackedActivation(len(layers), None)
    if isinstance(first, nn.LeakyReLU):
        return StackedActivation(len(layers), first.negative_slope)
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


def keep_members(net: nn.Module, index: torch.Tensor) -> None:
    """Keep only the members ``index`` of every stacked layer of ``net`` (their tensors are new)."""
    for module in net.modules():
        if isinstance(module, (_Stacked, StackedFlatten, StackedActivation)):
            module.keep(index)
        elif isinstance(module, _Members):
            module.k = len(index)


class _Members(nn.Module):
    """A stacked network: its member count ``k`` (the boundaries' layouts depend on it)."""

    k: int


class StackedGenerator(_Members):
    """K generators: latents (K, B, latent_dim) -> images in the conv layout (B, K*C, S, S), in [-1, 1]."""

    def __init__(self, gens: Sequence[Generator]):
        super().__init__()
        self.k = len(gens)
        self.fc, self.deconv = stack_layers([g.fc for g in gens]), stack_layers([g.deconv for g in gens])
        self.channels, self.base, self.sigmoid = gens[0].channels, gens[0].base, gens[0].sigmoid

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        if self.k == 1:
            h = self.fc(latent[0]).view(-1, self.channels, self.base, self.base)  # (B, ch, base, base)
        else:
            h = self.fc(latent)  # (K, B, ch * base * base)
            h = h.transpose(0, 1).reshape(h.shape[1], -1, self.base, self.base)  # (B, K*ch, base, base)
        out = self.deconv(h)
        return torch.sigmoid(out).mul(2.0).sub(1.0) if self.sigmoid else torch.tanh(out)


class StackedDiscriminator(_Members):
    """K discriminators (trunk, D head, Q head): images in the conv layout -> dense (K, B, ...) outputs."""

    def __init__(self, ds: Sequence[Discriminator]):
        super().__init__()
        first = ds[0]
        self.k = len(ds)
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
            h = self.trunk(images)
        finally:
            for m in norms:
                m.groups = 1
        return h.unsqueeze(0) if self.k == 1 else h

    def _head(self, head: nn.Module, h: torch.Tensor) -> torch.Tensor:
        return head(h[0]).unsqueeze(0) if self.k == 1 else head(h)

    def d_logit(self, h: torch.Tensor) -> torch.Tensor:
        return self._head(self.d_head, h).squeeze(2)  # (K, B)

    def q(self, h: torch.Tensor) -> QOutput:
        out = self._head(self.q_head, h)  # (K, B, n_out)
        n = sum(self.n_cat)
        logits = list(torch.split(out[..., :n], self.n_cat, dim=-1)) if self.n_cat else []
        rest = out[..., n:]
        return QOutput(logits, rest[..., : self.n_cont], rest[..., self.n_cont:] if self.learned_std else None)

    def d_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters()) + list(self.d_head.parameters())


class StackedCRClassifier(_Members):
    """K InfoGAN-CR classifiers: two image batches in the conv layout -> logits (K, B, n_codes)."""

    def __init__(self, crs: Sequence[CRClassifier]):
        super().__init__()
        self.k = len(crs)
        self.trunk, self.head = stack_layers([c.trunk for c in crs]), stack_layers([c.head for c in crs])
        self.model_cfg = crs[0].model_cfg

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        if self.k == 1:
            pair = torch.cat([first, second], dim=1)
        else:
            b, kc, s, _ = first.shape
            # Each member's pair stacked on its channels: [first_k, second_k], as the single classifier's cat.
            pair = torch.stack([first.view(b, self.k, kc // self.k, s, s), second.view(b, self.k, kc // self.k, s, s)],
                               dim=2).view(b, 2 * kc, s, s)
        h = self.trunk(to_network_range(pair, self.model_cfg))
        return self.head(h).unsqueeze(0) if self.k == 1 else self.head(h)
