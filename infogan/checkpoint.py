"""Checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds G, D/Q, both optimisers, the step, the flat config, the loop's data/latent
generator state and the global torch RNG states. It is written atomically (temp file + rename)
so a crash mid-write never leaves a torn file, and read with ``weights_only=True``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

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


def save(state: TrainingState, directory: str | os.PathLike[str]) -> Path:
    """Write ``directory/checkpoint.pt`` atomically; returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    payload = {"format_version": FORMAT_VERSION, **state.__dict__}
    path = directory / FILENAME
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".checkpoint-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
    """Read a checkpoint written by ``save`` (tensors and plain containers only)."""
    payload = torch.load(resolve(path), map_location="cpu", weights_only=True)
    version = payload.pop("format_version", None)
    if version != FORMAT_VERSION:
        raise ValueError(f"checkpoint format {version!r} is not supported (expected {FORMAT_VERSION})")
    return TrainingState(**payload)
