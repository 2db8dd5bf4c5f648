"""Checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds G, D/Q (and InfoGAN-CR's classifier), their optimisers, the step, the flat config, the loop's data/latent
generator state and the global torch RNG states. It is written atomically (temp file + rename)
so a crash mid-write never leaves a torn file, and read with ``weights_only=True``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from infogan.atomic import atomic_path
from infogan.config import upgrade_saved

FILENAME = "checkpoint.pt"
FORMAT_VERSION = 1


@dataclass
class TrainingState:
    """What the loop saves and restores."""

    step: int
    generator: dict[str, Any]
    discriminator: dict[str, Any]
    opt_d: dict[str, Any]
    opt_g: dict[str, Any]
    config: dict[str, Any]
    loop_rng: torch.Tensor  # the loop's torch.Generator state (batches, latents)
    torch_rng: torch.Tensor
    cuda_rng: list[torch.Tensor]
    scaler: dict[str, Any] | None = None
    cr: dict[str, Any] | None = None  # InfoGAN-CR's classifier (runs with loss.lambda_cr > 0)
    opt_cr: dict[str, Any] | None = None


def save(state: TrainingState, directory: str | os.PathLike[str]) -> Path:
    """Write ``directory/checkpoint.pt`` atomically; returns its path."""
    path = Path(directory) / FILENAME
    payload = {"format_version": FORMAT_VERSION, **state.__dict__}
    with atomic_path(path, fsync=True) as tmp:
        torch.save(payload, tmp)
    return path


def resolve(path: str | os.PathLike[str]) -> Path:
    """Accept a checkpoint file or a directory holding ``checkpoint.pt``."""
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return path


def load(path: str | os.PathLike[str]) -> TrainingState:
    """Read a checkpoint written by ``save`` (tensors and plain containers only); its config in
    today's keys (``infogan.config.upgrade_saved``).

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: the file cannot be read or has another format version (the path is named).
    """
    file = resolve(path)
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError) as err:  # truncated, or not a torch file
        raise ValueError(f"cannot read the checkpoint {file} ({type(err).__name__}: {str(err)[:200]}); "
                         "it may be truncated: use an earlier one (checkpoints/step_*)") from err
    version = payload.pop("format_version", None)
    if version != FORMAT_VERSION:
        raise ValueError(f"checkpoint format {version!r} is not supported (expected {FORMAT_VERSION})")
    payload["config"] = upgrade_saved(payload["config"])  # an older version's retired keys, read as today's
    return TrainingState(**payload)
