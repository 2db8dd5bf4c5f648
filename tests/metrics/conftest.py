"""Fixtures for the metric tests: a tiny fake ground-truth dataset and representations of it.

The fake has F=3 factors of sizes (3, 5, 8). An image is the concatenation of the factors'
one-hot vectors, shape (1, 1, 16) in {-1, +1}, so a representation can read the factors back
exactly (the "identity" code) and tests control exactly what the codes carry.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

SIZES = (3, 5, 8)


class FakeGroundTruth:
    """GroundTruthDataset with one-hot images and no ``sample_fixed_factor`` (the fallback path)."""

    name = "fake"
    factor_names = ("small", "medium", "large")
    factor_sizes = SIZES
    image_shape = (1, 1, sum(SIZES))
    num_classes = None

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(0, s, n) for s in SIZES], axis=1).astype(np.int64)

    def images_from_factors(self, factors: np.ndarray) -> torch.Tensor:
        offsets = np.cumsum((0,) + SIZES[:-1])
        images = -torch.ones(len(factors), 1, 1, sum(SIZES))
        rows = torch.arange(len(factors))
        for j, offset in enumerate(offsets):
            images[rows, 0, 0, torch.from_numpy(factors[:, j] + offset)] = 1.0
        return images

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator)))
        return self.images_from_factors(self.sample_factors(n, rng))

    def eval_set(self, n: int, seed: int) -> tuple[torch.Tensor, None]:
        return self.images_from_factors(self.sample_factors(n, np.random.default_rng(seed))), None


class FakeWithFixedSampler(FakeGroundTruth):
    """The same dataset with its own ``sample_fixed_factor`` (the path dSprites takes)."""

    def __init__(self) -> None:
        self.fixed_calls = 0

    def sample_fixed_factor(self, factor_index: int, n: int, rng: np.random.Generator) -> np.ndarray:
        self.fixed_calls += 1
        factors = self.sample_factors(n, rng)
        factors[:, factor_index] = rng.integers(0, SIZES[factor_index])
        return factors


def read_factors(images: torch.Tensor) -> np.ndarray:
    """Decode the fake images back to their (n, 3) factor indices, as float codes."""
    flat = images.reshape(len(images), -1)
    parts = torch.split(flat, list(SIZES), dim=1)
    return torch.stack([p.argmax(dim=1) for p in parts], dim=1).double().numpy()


def make_representation(
    noise: float = 0.0,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    seed: int = 0,
) -> Callable[[torch.Tensor], np.ndarray]:
    """A representation_fn: factors read from the image, optionally noised and transformed.

    The noise comes from its own seeded generator, so two representations built with the same
    arguments give identical codes for identical call sequences.
    """
    noise_rng = np.random.default_rng(seed)

    def representation_fn(images: torch.Tensor) -> np.ndarray:
        codes = read_factors(images)
        if noise:
            codes = codes + noise * noise_rng.normal(size=codes.shape)
        return codes if transform is None else transform(codes)

    return representation_fn


def permute_and_scale(codes: np.ndarray) -> np.ndarray:
    """Permute the three codes and scale them by positive and negative factors."""
    return codes[:, [2, 0, 1]] * np.array([-3.0, 0.5, 2.0])


@pytest.fixture
def fake_data() -> FakeGroundTruth:
    return FakeGroundTruth()


@pytest.fixture
def fake_data_fixed() -> FakeWithFixedSampler:
    return FakeWithFixedSampler()


@pytest.fixture
def balanced_factors() -> np.ndarray:
    """Every combination of the fake's factors, 20 times: (20 * 120, 3), exactly uniform marginals."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in SIZES], indexing="ij"), axis=-1).reshape(-1, 3)
    return np.tile(grid, (20, 1)).astype(np.int64)


@pytest.fixture
def make_rep() -> Callable[..., Callable[[torch.Tensor], np.ndarray]]:
    """The ``make_representation`` factory."""
    return make_representation


@pytest.fixture
def scramble() -> Callable[[np.ndarray], np.ndarray]:
    """The ``permute_and_scale`` code transform."""
    return permute_and_scale
