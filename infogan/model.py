"""Networks: the generator G and the discriminator trunk shared by the D head and the Q head.

Two families, picked by ``ModelConfig.resolved_arch``:
- ``mnist``: the InfoGAN paper's MNIST networks (28 px; also 32 and 64).
  G: FC 1024 -> FC (S/4)^2*128 -> upconv 64 -> upconv C, BN + ReLU, tanh output.
  Trunk: conv 64 -> conv 128 + BN -> FC 1024 + BN, leaky ReLU 0.1.  Q: FC 128 + BN -> codes.
- ``conv``: the 64x64 dSprites-style stack (also 32): stride-2 convs 32-32-64-64 (three for 32 px),
  FC 128, mirrored in G.
``width`` multiplies every channel count and hidden size, for cheap CPU runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

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
    """latent (B, latent_dim) -> images (B, C, S, S) in [-1, 1]."""

    def __init__(self, codes: CodesConfig, model: ModelConfig):
        super().__init__()
        c, s, w = model.channels, model.image_size, model.width
        if model.resolved_arch == "mnist":
            self.base = s // 4
            ch = _w(128, w)
            self.fc = nn.Sequential(
                nn.Linear(codes.latent_dim, _w(1024, w)), nn.BatchNorm1d(_w(1024, w)), nn.ReLU(True),
                nn.Linear(_w(1024, w), self.base * self.base * ch), nn.BatchNorm1d(self.base * self.base * ch),
                nn.ReLU(True),
            )
            self.deconv = nn.Sequential(
                nn.ConvTranspose2d(ch, _w(64, w), 4, 2, 1), nn.BatchNorm2d(_w(64, w)), nn.ReLU(True),  # (B, 64, S/2, S/2)
                nn.ConvTranspose2d(_w(64, w), c, 4, 2, 1), nn.Tanh(),  # (B, C, S, S)
            )
        else:
            chans = [_w(n, w) for n in ((64, 64, 32, 32) if s == 64 else (64, 64, 32))]
            self.base = 4
            ch = chans[0]
            self.fc = nn.Sequential(
                nn.Linear(codes.latent_dim, _w(128, w)), nn.BatchNorm1d(_w(128, w)), nn.ReLU(True),
                nn.Linear(_w(128, w), 4 * 4 * ch), nn.BatchNorm1d(4 * 4 * ch), nn.ReLU(True),
            )
            layers: list[nn.Module] = []
            for cin, cout in zip(chans, chans[1:], strict=False):  # each doubles H and W
                layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.ReLU(True)]
            layers += [nn.ConvTranspose2d(chans[-1], c, 4, 2, 1), nn.Tanh()]  # (B, C, S, S)
            self.deconv = nn.Sequential(*layers)
        self.channels = ch

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        h = self.fc(latent).view(-1, self.channels, self.base, self.base)
        return self.deconv(h)


class Discriminator(nn.Module):
    """Shared trunk with two heads: D's real/fake logit and Q's code posterior."""

    def __init__(self, codes: CodesConfig, model: ModelConfig, learned_std: bool):
        super().__init__()
        c, s, w = model.channels, model.image_size, model.width
        lrelu = nn.LeakyReLU(0.1, inplace=True)
        if model.resolved_arch == "mnist":
            hidden = _w(1024, w)
            self.trunk = nn.Sequential(
                nn.Conv2d(c, _w(64, w), 4, 2, 1), lrelu,  # (B, 64, S/2, S/2)
                nn.Conv2d(_w(64, w), _w(128, w), 4, 2, 1), nn.BatchNorm2d(_w(128, w)), lrelu,  # (B, 128, S/4, S/4)
                nn.Flatten(),
                nn.Linear(_w(128, w) * (s // 4) ** 2, hidden), nn.BatchNorm1d(hidden), lrelu,
            )
            q_hidden = _w(128, w)
        else:
            chans = [c] + [_w(n, w) for n in ((32, 32, 64, 64) if s == 64 else (32, 64, 64))]
            layers: list[nn.Module] = []
            for cin, cout in zip(chans, chans[1:], strict=False):  # each halves H and W
                layers += [nn.Conv2d(cin, cout, 4, 2, 1), lrelu]
            hidden = _w(128, w)
            layers += [nn.Flatten(), nn.Linear(chans[-1] * 4 * 4, hidden), lrelu]  # (B, hidden)
            self.trunk = nn.Sequential(*layers)
            q_hidden = hidden
        self.d_head = nn.Linear(hidden, 1)
        self.n_cat = list(codes.categorical)
        self.n_cont = codes.n_continuous
        self.learned_std = learned_std
        n_out = sum(self.n_cat) + self.n_cont * (2 if learned_std else 1)
        self.q_head = nn.Sequential(
            nn.Linear(hidden, q_hidden), nn.BatchNorm1d(q_hidden), nn.LeakyReLU(0.1, inplace=True),
            nn.Linear(q_hidden, n_out),
        )

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The shared trunk's features (B, hidden)."""
        return self.trunk(images)

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


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for conv/linear weights and N(1, 0.02) for BN scales, as DCGAN and InfoGAN do."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
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
