"""The latent layout: sampling z and the codes, assembling G's input, and traversal grids.

G's input is ``[z | one-hot(c_1) | ... | one-hot(c_k) | c_cont]`` of width ``CodesConfig.latent_dim``.
Continuous codes have the prior Unif(-1, 1); noise is Unif(-1, 1) (the official code) or N(0, 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from infogan.config import CodesConfig


@dataclass
class Latent:
    """One batch of latent inputs; tensors live on the sampling device until ``to()``."""

    noise: torch.Tensor  # (B, noise_dim)
    categorical: torch.Tensor  # (B, n_categorical) int64 class indices
    continuous: torch.Tensor  # (B, n_continuous) in [-1, 1]

    def to(self, device: torch.device | str) -> Latent:
        return Latent(self.noise.to(device), self.categorical.to(device), self.continuous.to(device))


def sample(cfg: CodesConfig, n: int, generator: torch.Generator) -> Latent:
    """Draw n latents from the prior with ``generator``, on the generator's device.

    Static shapes and no host synchronisation, so a CUDA graph can capture it.
    """
    device = generator.device
    if cfg.noise_dist == "uniform":
        noise = torch.rand(n, cfg.noise_dim, generator=generator, device=device) * 2 - 1
    else:
        noise = torch.randn(n, cfg.noise_dim, generator=generator, device=device)
    cats = [torch.randint(k, (n,), generator=generator, device=device) for k in cfg.categorical]
    categorical = torch.stack(cats, dim=1) if cats else torch.zeros(n, 0, dtype=torch.long, device=device)
    continuous = torch.rand(n, cfg.n_continuous, generator=generator, device=device) * 2 - 1
    return Latent(noise, categorical, continuous)


def cat(latents: list[Latent]) -> Latent:
    """Concatenate latent batches along the batch axis."""
    return Latent(torch.cat([lt.noise for lt in latents]), torch.cat([lt.categorical for lt in latents]),
                  torch.cat([lt.continuous for lt in latents]))


def sample_pairs(cfg: CodesConfig, n: int, generator: torch.Generator) -> tuple[Latent, Latent, torch.Tensor]:
    """InfoGAN-CR's contrastive pairs: n pairs that share the noise and one selected code.

    The shared code is drawn uniformly over all codes (categorical codes first, then continuous,
    Q's output order); every other code is drawn independently for the two images.

    Returns:
        ``(first, second, shared)``, ``shared`` (n,) int64 the index of the shared code.
    """
    first, second = sample(cfg, n, generator), sample(cfg, n, generator)
    shared = torch.randint(cfg.n_codes, (n,), generator=generator, device=generator.device)
    # Column c of the codes (categorical first, then continuous) is shared where shared == c;
    # torch.where keeps the shapes static (no boolean indexing: capturable).
    n_cat = len(cfg.categorical)
    columns = torch.arange(cfg.n_codes, device=shared.device)
    same = shared[:, None] == columns[None, :]  # (n, n_codes)
    second = Latent(first.noise.clone(), torch.where(same[:, :n_cat], first.categorical, second.categorical),
                    torch.where(same[:, n_cat:], first.continuous, second.continuous))
    return first, second, shared


def assemble(cfg: CodesConfig, latent: Latent) -> torch.Tensor:
    """G's input (B, latent_dim): noise, one-hot categorical codes, continuous codes."""
    parts = [latent.noise]
    parts += [F.one_hot(latent.categorical[:, i], k).to(latent.noise.dtype) for i, k in enumerate(cfg.categorical)]
    parts.append(latent.continuous)
    return torch.cat(parts, dim=1)


def entropies(cfg: CodesConfig) -> dict[str, float]:
    """Prior entropies in nats: ln K per categorical code, ln 2 per Unif(-1,1) code (differential).

    Only the categorical value bounds the variational lower bound (L_I <= H(c)); a differential
    entropy does not bound a continuous code's L_I, which can exceed ln 2 when Q is sharp.
    """
    return {
        "h_cat": float(sum(math.log(k) for k in cfg.categorical)),
        "h_cont": float(cfg.n_continuous * math.log(2.0)),
    }


def traversal(
    cfg: CodesConfig,
    cont_index: int,
    n_steps: int = 10,
    span: float = 2.0,
    generator: torch.Generator | None = None,
) -> Latent:
    """The paper's latent traversal: rows = values of the first categorical code, columns = one
    continuous code swept over [-span, span]; noise and the other codes are fixed (shared by all
    cells). With no categorical code there is one row per fixed noise draw (8 rows).

    Returns a Latent of rows * n_steps entries in row-major order.
    """
    if not 0 <= cont_index < cfg.n_continuous:
        raise ValueError(f"cont_index={cont_index} out of range: there are {cfg.n_continuous} continuous codes")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    rows = cfg.categorical[0] if cfg.categorical else 8
    base = sample(cfg, rows if not cfg.categorical else 1, generator)
    sweep = torch.linspace(-span, span, n_steps)
    noise = base.noise.expand(rows, -1) if cfg.categorical else base.noise
    noise = noise.repeat_interleave(n_steps, dim=0)
    categorical = base.categorical.expand(rows, -1).clone() if cfg.categorical else base.categorical
    if cfg.categorical:
        categorical[:, 0] = torch.arange(rows)
    categorical = categorical.repeat_interleave(n_steps, dim=0)
    continuous = torch.zeros(rows * n_steps, cfg.n_continuous)  # other codes fixed at the prior's centre
    continuous[:, cont_index] = sweep.repeat(rows)
    return Latent(noise, categorical, continuous)
