"""Datasets by name: dSprites (procedural, the embedded default, or DeepMind's published file),
sklearn digits, MNIST, Fashion-MNIST.

Nothing downloads unless ``data.download`` is true (MNIST-style datasets only).
"""

from __future__ import annotations

import torch

from infogan.config import Config
from infogan.data.base import GroundTruthDataset, ImageDataset, TensorImageDataset

__all__ = ["GROUND_TRUTH_DATASETS", "GroundTruthDataset", "ImageDataset", "TensorImageDataset", "load_dataset"]

# The datasets ``load_dataset`` gives as a ``GroundTruthDataset`` (known factors: the disentanglement
# metrics), for what must be known before loading (a sweep's metric names); tests hold it to it.
GROUND_TRUTH_DATASETS = frozenset({"dsprites"})


def load_dataset(cfg: Config, device: torch.device | str = "cpu") -> ImageDataset:
    """The dataset ``cfg.data.name`` at ``cfg.model.image_size``, held on ``device``."""
    name, size = cfg.data.name, cfg.model.image_size
    if name == "dsprites" and cfg.data.dsprites_source == "npz":
        from infogan.data import dsprites_npz

        return dsprites_npz.load(cfg.data.root, image_size=size, device=device)
    if name == "dsprites":
        from infogan.data.dsprites import DSprites

        return DSprites(image_size=size, device=device)
    if name == "digits":
        from infogan.data import digits

        return digits.load(image_size=size, device=device)
    if name in ("mnist", "fashion_mnist"):
        from infogan.data import mnist

        return mnist.load(name, cfg.data.root, image_size=size, device=device, download=cfg.data.download)
    raise ValueError(f"unknown dataset {name!r}")  # unreachable: DataConfig validates the name
