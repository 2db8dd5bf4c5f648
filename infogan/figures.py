"""Figures: the fixed-noise sample grid and the paper's latent traversals, as PNG.

Both are drawn with torchvision.utils so the grids look like every other PyTorch GAN's; the
same fixed noise is used at every step so grids are comparable across a run.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from infogan import codes as latent_codes
from infogan.atomic import atomic_path
from infogan.config import CodesConfig
from infogan.model import Generator


def _save_atomic(grid: torch.Tensor, path: Path) -> Path:
    with atomic_path(path) as tmp:
        save_image(grid, tmp, format="png")
    return path


@torch.inference_mode()
def _generate(g: Generator, cfg: CodesConfig, latent: latent_codes.Latent, device: torch.device) -> torch.Tensor:
    was_training = g.training
    g.eval()
    try:
        images = g(latent_codes.assemble(cfg, latent.to(device))).float().cpu()
    finally:
        g.train(was_training)
    return (images + 1) / 2  # [-1, 1] -> [0, 1]


def sample_grid(g: Generator, cfg: CodesConfig, path: str | os.PathLike[str], device: torch.device,
                n: int = 64, seed: int = 1234) -> Path:
    """An n-image grid from fixed noise and codes (same seed -> same latents at every step)."""
    latent = latent_codes.sample(cfg, n, torch.Generator().manual_seed(seed))
    images = _generate(g, cfg, latent, device)
    return _save_atomic(make_grid(images, nrow=int(n**0.5), padding=2, pad_value=0.5), Path(path))


def traversal_grid(g: Generator, cfg: CodesConfig, path: str | os.PathLike[str], device: torch.device,
                   n_steps: int = 10, span: float = 2.0, seed: int = 1234) -> Path:
    """Latent traversals, one panel per continuous code stacked vertically: rows are the values of
    the first categorical code (or fixed noise draws), columns sweep that continuous code over
    [-span, span] with everything else fixed. A thin white row separates panels.
    """
    if cfg.n_continuous == 0:
        latent = latent_codes.sample(cfg, n_steps * 4, torch.Generator().manual_seed(seed))
        if cfg.categorical:  # rows: the first categorical code's values
            latent.categorical[:, 0] = torch.arange(latent.categorical.shape[0]) % cfg.categorical[0]
        panels = [_generate(g, cfg, latent, device)]
    else:
        panels = [
            _generate(g, cfg, latent_codes.traversal(cfg, i, n_steps, span, torch.Generator().manual_seed(seed)), device)
            for i in range(cfg.n_continuous)
        ]
    rows = []
    for i, panel in enumerate(panels):
        rows.append(make_grid(panel, nrow=n_steps, padding=2, pad_value=0.0))
        if i < len(panels) - 1:
            rows.append(torch.ones(rows[-1].shape[0], 6, rows[-1].shape[2]))
    return _save_atomic(torch.cat(rows, dim=1), Path(path))
