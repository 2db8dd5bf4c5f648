"""The dataset interface the training loop and the metrics rely on.

Images are float tensors in [-1, 1], shape (N, C, H, W), on the dataset's device. A dataset
that fits in memory is held as one tensor on the training device, so the hot loop only indexes
it (no DataLoader, no per-sample Python). Sampling is driven by a ``torch.Generator`` owned by
the loop, which makes training deterministic and resumable.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class ImageDataset(Protocol):
    """What ``train()`` needs from a dataset."""

    name: str
    image_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int | None  # classes of ``eval_set`` labels, None if unlabelled

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """A training batch (n, C, H, W) in [-1, 1] on the dataset's device."""
        ...

    def eval_set(self, n: int, seed: int) -> tuple[torch.Tensor, np.ndarray | None]:
        """A deterministic evaluation set: up to n images on the device and their labels (or None)."""
        ...


@runtime_checkable
class GroundTruthDataset(ImageDataset, Protocol):
    """A dataset generated from known factors of variation (dSprites): what the metrics need."""

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, F) int64 factor indices, each uniform over its range."""
        ...

    def images_from_factors(self, factors: np.ndarray) -> torch.Tensor:
        """Render (n, F) factor indices to images (n, C, H, W) in [-1, 1] on the device."""
        ...


class TensorImageDataset:
    """A dataset held as one tensor on the device, with optional integer labels."""

    def __init__(self, name: str, images: torch.Tensor, labels: np.ndarray | None, num_classes: int | None):
        if images.ndim != 4:
            raise ValueError(f"{name}: images must be (N, C, H, W), got shape {tuple(images.shape)}")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"{name}: {len(images)} images but {len(labels)} labels")
        self.name = name
        self.images = images  # (N, C, H, W) in [-1, 1]
        self.labels = labels
        self.num_classes = num_classes
        self.image_shape = tuple(images.shape[1:])

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        # With-replacement sampling keeps the loop's only data state in the generator, so a
        # resumed run draws exactly the batches an uninterrupted run would.
        return self.images_from_keys(self.sample_keys(n, generator))

    def sample_keys(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """The random part of ``sample``: (n,) int64 image indices, on the generator's device."""
        return torch.randint(len(self.images), (n,), generator=generator, device=generator.device)

    def images_from_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """The images of ``sample_keys``'s draws (any number of batches laid end to end)."""
        return self.images[keys.to(self.images.device)]

    def eval_set(self, n: int, seed: int) -> tuple[torch.Tensor, np.ndarray | None]:
        n = min(n, len(self.images))
        idx = np.sort(np.random.default_rng(seed).permutation(len(self.images))[:n])
        labels = None if self.labels is None else self.labels[idx]
        return self.images[torch.from_numpy(idx).to(self.images.device)], labels

    def to(self, device: torch.device | str) -> TensorImageDataset:
        return TensorImageDataset(self.name, self.images.to(device), self.labels, self.num_classes)


def to_unit_range(pixels: torch.Tensor, max_value: float) -> torch.Tensor:
    """Map pixels in [0, max_value] to float32 in [-1, 1]."""
    return pixels.float().mul_(2.0 / max_value).sub_(1.0)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (N, C, H, W) images to size x size once, at load time (bilinear, antialiased)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return torch.nn.functional.interpolate(
        images, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    ).clamp_(-1.0, 1.0)
