"""scikit-learn's bundled handwritten digits (1,797 8x8 images, labels 0-9), resized once.

It ships with scikit-learn, so it is real labelled data that needs no download: the dataset for
quick runs, tests and the categorical-accuracy check.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits

from infogan.data.base import TensorImageDataset, resize, to_unit_range


def load(image_size: int = 28, device: torch.device | str = "cpu") -> TensorImageDataset:
    """All 1,797 digits as (1797, 1, image_size, image_size) in [-1, 1], with labels 0-9."""
    bunch = load_digits()
    pixels = torch.from_numpy(bunch.images.astype(np.float32)).unsqueeze(1)  # (N, 1, 8, 8) in [0, 16]
    images = resize(to_unit_range(pixels, 16.0), image_size)
    return TensorImageDataset("digits", images.contiguous().to(device), bunch.target.astype(np.int64), 10)
