"""Networks: the generator G, the discriminator trunk shared by the D head and the Q head, and
InfoGAN-CR's contrastive classifier.

Two families, picked by ``ModelConfig.resolved_arch``:
- ``mnist``: the InfoGAN paper's MNIST networks (28 px; also 32 and 64).
  G: FC 1024 -> FC (S/4)^2*128 -> upconv 64 -> upconv C, BN + ReLU, tanh output.
  Trunk: conv 64 -> conv 128 -> FC 1024, leaky ReLU.  Q: FC 128 -> codes.
- ``conv``: InfoGAN-CR's 64x64 dSprites stack (also 32): stride-2 convs 32-32-64-64 (three for
  32 px), FC 128, mirrored in G.  Q: FC 128 -> codes.
``model.d_norm`` says how D/Q are normalised: ``batch`` puts batch norm where the paper does (the
MNIST trunk's second conv and FC, and Q's hidden layer), ``spectral`` puts spectral norm on every
D/Q layer and no batch norm anywhere in D/Q (InfoGAN-CR's "InfoGAN (modified)"), ``none`` neither.
``model.leak`` is D's leaky-ReLU slope (0.1 in the InfoGAN paper, 0.2 in InfoGAN-CR).
``width`` multiplies every channel count and hidden size, for cheap CPU runs.

Pixel range: outside the networks images are in [-1, 1] (datasets, metrics, figures). With
``model.output='sigmoid'`` (both official codes) the networks work on [0, 1]: G ends with a
sigmoid and D/Q/CR read ``(x + 1) / 2``, so a background pixel is 0 and zero padding adds no edge
(``Generator.forward`` and ``to_network_range`` hold the two maps). ``tanh`` keeps [-1, 1] inside.
``model.g_blocks`` orders G's hidden blocks: ``act_bn`` (InfoGAN-CR: ReLU → BN after the dense
layers, leaky ReLU → BN after the deconvolutions) or ``bn_act`` (openai/InfoGAN: BN → ReLU).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from infogan.config import CodesConfig, ModelConfig


def _w(n: int, width: float) -> int:
    return max(4, int(round(n * width)))


@dataclass
class QOutput:
    """Q's posterior parameters for one batch."""

    logits: list[torch.Tensor]  # one (B, K_i) per categorical code
    mean: torch.Tensor  # (B, n_continuous)
    log_std: torch.Tensor | None  # (B, n_continuous), None when Q's std is fixed at 1


class Generator(nn.Module):
    """latent (B, latent_dim) -> images (B, C, S, S) in [-1, 1] (see the module's pixel range)."""

    def __init__(self, codes: CodesConfig, model: ModelConfig):
        super().__init__()
        c, s, w = model.channels, model.image_size, model.width
        act_bn = model.g_blocks == "act_bn"

        def block(layer: nn.Module, out: int, act: nn.Module, norm: type[nn.Module]) -> list[nn.Module]:
            return [layer, act, norm(out)] if act_bn else [layer, norm(out), nn.ReLU(True)]

        def deconv_act() -> nn.Module:  # InfoGAN-CR's deconvolutions end with its lrelu (slope model.leak)
            return nn.LeakyReLU(model.leak, inplace=True) if act_bn else nn.ReLU(True)

        if model.resolved_arch == "mnist":
            self.base = s // 4
            ch, hidden, mid = _w(128, w), _w(1024, w), _w(64, w)
            dense = [*block(nn.Linear(codes.latent_dim, hidden), hidden, nn.ReLU(True), nn.BatchNorm1d),
                     *block(nn.Linear(hidden, self.base ** 2 * ch), self.base ** 2 * ch, nn.ReLU(True),
                            nn.BatchNorm1d)]
            deconvs = block(nn.ConvTranspose2d(ch, mid, 4, 2, 1), mid, deconv_act(), nn.BatchNorm2d)  # (B, 64, S/2, S/2)
            last_in = mid
        else:
            chans = [_w(n, w) for n in ((64, 64, 32, 32) if s == 64 else (64, 64, 32))]
            self.base = 4
            ch, hidden = chans[0], _w(128, w)
            dense = [*block(nn.Linear(codes.latent_dim, hidden), hidden, nn.ReLU(True), nn.BatchNorm1d),
                     *block(nn.Linear(hidden, 4 * 4 * ch), 4 * 4 * ch, nn.ReLU(True), nn.BatchNorm1d)]
            deconvs = []
            for cin, cout in zip(chans, chans[1:], strict=False):  # each doubles H and W
                deconvs += block(nn.ConvTranspose2d(cin, cout, 4, 2, 1), cout, deconv_act(), nn.BatchNorm2d)
            last_in = chans[-1]
        self.fc = nn.Sequential(*dense)
        self.deconv = nn.Sequential(*deconvs, nn.ConvTranspose2d(last_in, c, 4, 2, 1))  # (B, C, S, S) logits
        self.channels = ch
        self.sigmoid = model.output == "sigmoid"

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        h = self.fc(latent).view(-1, self.channels, self.base, self.base)
        out = self.deconv(h)
        # sigmoid: G's image is sigmoid(out) in [0, 1], handed out as 2·sigmoid − 1 in [-1, 1]
        # (D reads it back with to_network_range); the same function as tanh(out / 2).
        return torch.sigmoid(out).mul(2.0).sub(1.0) if self.sigmoid else torch.tanh(out)


def to_network_range(images: torch.Tensor, model: ModelConfig) -> torch.Tensor:
    """Images in [-1, 1] -> the range D, Q and the CR classifier read (``model.output``)."""
    return images.add(1.0).mul(0.5) if model.output == "sigmoid" else images


class _SplitBatchNorm:
    """Batch norm that, with ``groups = k``, normalises k equal slices of the batch separately.

    Exactly what k separate forward passes would compute (the running statistics are updated
    slice after slice, as they would be pass after pass), but the convolutions and linear layers
    around it run once on the whole batch: D's step pushes real and fake images through the
    trunk together without mixing their batch statistics, and each weight gradient is one matmul
    instead of two summed ones. The parameters and buffers are those of plain batch norm.
    """

    groups = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normalise = super().forward  # type: ignore[misc]
        if self.groups == 1 or not self.training:
            return normalise(x)
        return torch.cat([normalise(part) for part in x.chunk(self.groups)])


class SplitBatchNorm1d(_SplitBatchNorm, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` with per-slice statistics when ``groups > 1`` (see ``_SplitBatchNorm``)."""


class SplitBatchNorm2d(_SplitBatchNorm, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with per-slice statistics when ``groups > 1`` (see ``_SplitBatchNorm``)."""


def _norm_layer(layer: nn.Module, d_norm: str) -> nn.Module:
    """Wrap a D/Q/CR layer in spectral norm when ``model.d_norm='spectral'``.

    The weight is initialised first, so the power iteration that ``spectral_norm`` runs when it
    wraps the layer starts from the final weight (``init_weights`` leaves wrapped weights alone).
    """
    if d_norm != "spectral":
        return layer
    init_weights(layer)
    return spectral_norm(layer)


def _trunk(model: ModelConfig, in_channels: int, d_norm: str) -> tuple[nn.Sequential, int]:
    """The discriminator-style conv trunk of ``model``'s architecture: images -> (B, hidden).

    Args:
        model: architecture, image size, width and leak.
        in_channels: image channels (2x for the CR classifier's stacked pairs).
        d_norm: ``batch`` (BN where the paper has it), ``spectral`` or ``none``.
    Returns:
        The trunk and its output width.
    """
    s, w = model.image_size, model.width
    batch = d_norm == "batch"

    def lrelu() -> nn.Module:
        return nn.LeakyReLU(model.leak, inplace=True)

    layers: list[nn.Module] = []
    if model.resolved_arch == "mnist":
        hidden = _w(1024, w)
        layers += [_norm_layer(nn.Conv2d(in_channels, _w(64, w), 4, 2, 1), d_norm), lrelu()]  # (B, 64, S/2, S/2)
        layers += [_norm_layer(nn.Conv2d(_w(64, w), _w(128, w), 4, 2, 1), d_norm)]  # (B, 128, S/4, S/4)
        layers += [SplitBatchNorm2d(_w(128, w))] if batch else []
        layers += [lrelu(), nn.Flatten(), _norm_layer(nn.Linear(_w(128, w) * (s // 4) ** 2, hidden), d_norm)]
        layers += [SplitBatchNorm1d(hidden)] if batch else []
        layers += [lrelu()]  # (B, hidden)
    else:
        chans = [in_channels] + [_w(n, w) for n in ((32, 32, 64, 64) if s == 64 else (32, 64, 64))]
        for cin, cout in zip(chans, chans[1:], strict=False):  # each halves H and W
            layers += [_norm_layer(nn.Conv2d(cin, cout, 4, 2, 1), d_norm), lrelu()]
        hidden = _w(128, w)
        layers += [nn.Flatten(), _norm_layer(nn.Linear(chans[-1] * 4 * 4, hidden), d_norm), lrelu()]  # (B, hidden)
    return nn.Sequential(*layers), hidden


class Discriminator(nn.Module):
    """Shared trunk with two heads: D's real/fake logit and Q's code posterior."""

    def __init__(self, codes: CodesConfig, model: ModelConfig, learned_std: bool):
        super().__init__()
        norm = model.d_norm
        self.model_cfg = model
        self.trunk, hidden = _trunk(model, model.channels, norm)
        q_hidden = _w(128, model.width)
        self.d_head = _norm_layer(nn.Linear(hidden, 1), norm)
        self.n_cat = list(codes.categorical)
        self.n_cont = codes.n_continuous
        self.learned_std = learned_std
        n_out = sum(self.n_cat) + self.n_cont * (2 if learned_std else 1)
        # Q is its own head on the shared trunk: FC q_hidden -> codes (InfoGAN-CR's q_l_dim = 128).
        self.q_head = nn.Sequential(
            _norm_layer(nn.Linear(hidden, q_hidden), norm),
            *([nn.BatchNorm1d(q_hidden)] if norm == "batch" else []),
            nn.LeakyReLU(model.leak, inplace=True),
            _norm_layer(nn.Linear(q_hidden, n_out), norm),
        )

    def features(self, images: torch.Tensor, groups: int = 1) -> torch.Tensor:
        """The shared trunk's features (B, hidden).

        Args:
            images: (B, C, S, S).
            groups: the batch is this many equal batches stacked (real and fake images in D's
                step): batch norm keeps their statistics apart, as separate passes would.
        """
        images = to_network_range(images, self.model_cfg)
        if groups == 1:
            return self.trunk(images)
        norms = [m for m in self.trunk if isinstance(m, _SplitBatchNorm)]
        for m in norms:
            m.groups = groups
        try:
            return self.trunk(images)
        finally:
            for m in norms:
                m.groups = 1

    def d_logit(self, h: torch.Tensor) -> torch.Tensor:
        return self.d_head(h).squeeze(1)  # (B,)

    def q(self, h: torch.Tensor) -> QOutput:
        out = self.q_head(h)
        logits = list(torch.split(out[:, : sum(self.n_cat)], self.n_cat, dim=1)) if self.n_cat else []
        rest = out[:, sum(self.n_cat):]
        mean = rest[:, : self.n_cont]
        log_std = rest[:, self.n_cont:] if self.learned_std else None
        return QOutput(logits, mean, log_std)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, QOutput]:
        h = self.features(images)
        return self.d_logit(h), self.q(h)

    def d_parameters(self) -> list[nn.Parameter]:
        """Trunk + D head: what D's optimiser always owns."""
        return list(self.trunk.parameters()) + list(self.d_head.parameters())


class CRClassifier(nn.Module):
    """InfoGAN-CR's contrastive classifier: a pair of images stacked on the channel axis
    (B, 2C, S, S) -> logits (B, n_codes) saying which code the two images share.

    Its trunk is D's architecture with spectral norm on every layer but the last (as in the
    official code), whatever ``model.d_norm`` says: it is a separate network with its own
    optimiser, never part of D.
    """

    def __init__(self, codes: CodesConfig, model: ModelConfig):
        super().__init__()
        self.model_cfg = model
        self.trunk, hidden = _trunk(model, 2 * model.channels, "spectral")
        self.head = nn.Linear(hidden, codes.n_codes)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        pair = to_network_range(torch.cat([first, second], dim=1), self.model_cfg)
        return self.head(self.trunk(pair))  # (B, n_codes)


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for conv/linear weights and N(1, 0.02) for BN scales, as DCGAN and InfoGAN do."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        if not parametrize.is_parametrized(module, "weight"):  # spectral-norm layers: see _norm_layer
            nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build(codes: CodesConfig, model: ModelConfig, learned_std: bool) -> tuple[Generator, Discriminator]:
    """G and D/Q with initialised weights (uses the global torch RNG: seed it first)."""
    g, d = Generator(codes, model), Discriminator(codes, model, learned_std)
    g.apply(init_weights)
    d.apply(init_weights)
    return g, d


def build_cr(codes: CodesConfig, model: ModelConfig) -> CRClassifier:
    """InfoGAN-CR's classifier with initialised weights (uses the global torch RNG)."""
    cr = CRClassifier(codes, model)
    cr.apply(init_weights)
    return cr
