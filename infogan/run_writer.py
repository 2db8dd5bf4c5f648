"""A run directory: what a standalone or swept run leaves on disk, every file written atomically.

``<run>/config.json`` (the flat config), ``checkpoints/step_N/checkpoint.pt`` + ``latest.json``,
``figures/samples.png`` and ``figures/traversal.png`` (refreshed at every evaluation),
``eval.jsonl`` (one line per evaluation, the FID's feature network beside the FID) and
``metrics.json`` (how the run ended: ``finished``, ``diverged`` or ``interrupted``; its training
speed). A writer without a directory writes nothing, so ``train(cfg)`` alone leaves no trace.
``latest_checkpoint`` reads ``latest.json`` back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from infogan import checkpoint as ckpt
from infogan import figures
from infogan.atomic import write_json
from infogan.config import Config


def checkpoint_dir(run_dir: str | os.PathLike[str], step: int) -> Path:
    """Where a run keeps its checkpoint of ``step``: ``<run>/checkpoints/step_NNNNNNNN``."""
    return Path(run_dir) / "checkpoints" / f"step_{step:08d}"


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> tuple[int, Path] | None:
    """(step, directory) of the last checkpoint a run wrote, or None if it has none.

    ``latest.json`` is rewritten only after its checkpoint is whole, so it never names a torn one.
    The directory is rebuilt from ``run_dir`` (the path stored in it may be relative to another
    working directory).
    """
    try:
        step = int(json.loads((Path(run_dir) / "checkpoints" / "latest.json").read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    directory = checkpoint_dir(run_dir, step)
    return (step, directory) if (directory / ckpt.FILENAME).is_file() else None


class RunWriter:
    """Writes one run's directory (or nothing, with ``run_dir=None``)."""

    def __init__(self, run_dir: str | os.PathLike[str] | None, cfg: Config):
        self.path = Path(run_dir) if run_dir is not None else None
        self.cfg = cfg

    def config(self) -> None:
        if self.path is not None:
            write_json(self.path / "config.json", self.cfg.to_flat())

    def checkpoint(self, step: int, state: ckpt.TrainingState) -> Path | None:
        """Save a checkpoint and point ``latest.json`` at it; returns its directory (None without a run)."""
        if self.path is None:
            return None
        directory = checkpoint_dir(self.path, step)
        ckpt.save(state, directory)
        write_json(self.path / "checkpoints" / "latest.json", {"step": step, "path": str(directory)})
        return directory

    def evaluation(self, step: int, metrics: dict[str, float], tags: dict[str, str], g: torch.nn.Module,
                   device: torch.device) -> None:
        """The figures of this evaluation and its ``eval.jsonl`` line."""
        if self.path is None:
            return
        figures.sample_grid(g, self.cfg.codes, self.path / "figures" / "samples.png", device)
        figures.traversal_grid(g, self.cfg.codes, self.path / "figures" / "traversal.png", device)
        with open(self.path / "eval.jsonl", "a") as fh:
            # The FID's feature-net id sits next to the FID so no reader mixes extractors.
            fh.write(json.dumps({"step": step, **metrics, **tags}) + "\n")

    def ending(self, summary: dict[str, Any]) -> None:
        """``metrics.json``: how the run ended (status, step, speed, last metrics, checkpoint)."""
        if self.path is not None:
            write_json(self.path / "metrics.json", summary)
