"""The procedural dSprites: factor grid, rendering geometry, determinism and the samplers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infogan.data.base import GroundTruthDataset, ImageDataset
from infogan.data.dsprites import DSprites

SHAPE, SCALE, ORIENT, POS_X, POS_Y = range(5)


def centre_of_mass(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) centre of the on-pixels of each (n, 1, S, S) image, in pixels."""
    on = (images[:, 0] > 0).double()  # (n, S, S)
    idx = torch.arange(images.shape[-1], dtype=torch.float64) + 0.5
    mass = on.sum(dim=(1, 2))
    rows = (on.sum(dim=2) * idx).sum(dim=1) / mass
    cols = (on.sum(dim=1) * idx).sum(dim=1) / mass
    return rows.numpy(), cols.numpy()


def one(shape=0, scale=3, orient=0, pos_x=16, pos_y=16) -> list[int]:
    return [shape, scale, orient, pos_x, pos_y]


@pytest.fixture(scope="module")
def ds() -> DSprites:
    return DSprites(64)


def test_factor_grid_matches_dsprites(ds):
    assert ds.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert ds.factor_sizes == (3, 6, 40, 32, 32)
    assert ds.num_images == 737_280
    assert ds.num_classes == 3
    assert ds.name == "dsprites"
    assert isinstance(ds, GroundTruthDataset) and isinstance(ds, ImageDataset)


@pytest.mark.parametrize("size", [28, 32, 64])
def test_images_are_binary_with_the_right_shape(size):
    ds = DSprites(size)
    assert ds.image_shape == (1, size, size)
    factors = ds.sample_factors(50, np.random.default_rng(0))
    images = ds.images_from_factors(factors)
    assert images.shape == (50, 1, size, size)
    assert images.dtype == torch.float32
    assert set(torch.unique(images).tolist()) == {-1.0, 1.0}
    on = (images > 0).sum(dim=(1, 2, 3))
    # Every sprite is visible and none fills the frame, even the smallest at 28 pixels.
    assert (on > 5).all() and (on < 0.4 * size * size).all()


def test_bad_image_size_is_rejected():
    with pytest.raises(ValueError, match="image_size=48.*28, 32, 64"):
        DSprites(48)


def test_same_factors_give_identical_pixels(ds):
    factors = ds.sample_factors(64, np.random.default_rng(1))
    a, b = ds.images_from_factors(factors), ds.images_from_factors(factors.copy())
    assert torch.equal(a, b)
    # An image does not depend on the rest of its batch (chunking, grouping by shape).
    assert torch.equal(ds.images_from_factors(factors[5:6]), a[5:6])
    assert torch.equal(ds.images_from_factors(factors[::-1].copy()), a.flip(0))


def test_sample_is_deterministic_given_the_generator(ds):
    a = ds.sample(32, torch.Generator().manual_seed(3))
    b = ds.sample(32, torch.Generator().manual_seed(3))
    c = ds.sample(32, torch.Generator().manual_seed(4))
    assert a.shape == (32, 1, 64, 64)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    g = torch.Generator().manual_seed(3)
    first, second = ds.sample(32, g), ds.sample(32, g)
    assert torch.equal(first, a) and not torch.equal(first, second)


def test_eval_set_is_seeded_and_labelled_by_shape(ds):
    images, labels = ds.eval_set(40, seed=7)
    images2, labels2 = ds.eval_set(40, seed=7)
    assert images.shape == (40, 1, 64, 64)
    assert torch.equal(images, images2) and np.array_equal(labels, labels2)
    expected = ds.sample_factors(40, np.random.default_rng(7))
    assert labels.dtype == np.int64
    assert np.array_equal(labels, expected[:, SHAPE])
    assert torch.equal(images, ds.images_from_factors(expected))


def test_shape_factor_changes_the_image(ds):
    images = ds.images_from_factors(np.array([one(shape=k, scale=5, orient=3) for k in range(3)]))
    on = images > 0
    for i in range(3):
        for j in range(i + 1, 3):
            assert (on[i] != on[j]).sum() > 20, f"shapes {i} and {j} differ in too few pixels"
    # The square covers its bounding box; the ellipse is the smallest of the three.
    counts = on.sum(dim=(1, 2, 3)).tolist()
    assert counts[1] < counts[2] < counts[0]


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_position_moves_the_centre_of_mass(ds, shape):
    pos = [0, 8, 16, 24, 31]
    along_x = ds.images_from_factors(np.array([one(shape, 2, 7, p, 16) for p in pos]))
    along_y = ds.images_from_factors(np.array([one(shape, 2, 7, 16, p) for p in pos]))
    rows_x, cols_x = centre_of_mass(along_x)
    rows_y, cols_y = centre_of_mass(along_y)
    assert np.all(np.diff(cols_x) > 5) and np.ptp(rows_x) < 1.0  # pos_x moves along columns only
    assert np.all(np.diff(rows_y) > 5) and np.ptp(cols_y) < 1.0  # pos_y moves along rows only
    # The position is the centre of mass: 0.25 W + 0.5 W pos, within pixelation.
    expected = 16 + 32 * np.array(pos) / 31
    np.testing.assert_allclose(cols_x, expected, atol=0.6)
    np.testing.assert_allclose(rows_y, expected, atol=0.6)


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_scale_grows_the_pixel_count(ds, shape):
    images = ds.images_from_factors(np.array([one(shape, s, 11) for s in range(6)]))
    counts = (images > 0).sum(dim=(1, 2, 3)).numpy()
    assert np.all(np.diff(counts) > 0), counts
    # Area grows with scale squared: scale 1.0 is about 4x scale 0.5.
    assert 3.3 < counts[-1] / counts[0] < 4.7


def test_orientation_rotates_about_the_centre(ds):
    # A quarter turn (orientation 10 is 10/39 of 2 pi, close to 90 degrees) turns the ellipse's
    # horizontal long axis vertical while the centre of mass stays put.
    images = ds.images_from_factors(np.array([one(1, 5, 0, 10, 20), one(1, 5, 10, 10, 20)]))
    on = images[:, 0] > 0
    width = on.any(dim=1).sum(dim=1)  # columns touched
    height = on.any(dim=2).sum(dim=1)  # rows touched
    assert width[0] > 1.7 * height[0] and height[1] > 1.7 * width[1]
    rows, cols = centre_of_mass(images)
    assert abs(rows[0] - rows[1]) < 0.5 and abs(cols[0] - cols[1]) < 0.5
    # Orientations 0 and 39 are both 0 and 2 pi, as in dSprites.
    assert torch.equal(*ds.images_from_factors(np.array([one(2, 5, 0), one(2, 5, 39)])))


def test_fixed_factor_sampler_holds_exactly_one_column(ds):
    rng = np.random.default_rng(0)
    for k in range(5):
        factors = ds.sample_fixed_factor(k, 64, rng)
        assert factors.shape == (64, 5) and factors.dtype == np.int64
        assert len(np.unique(factors[:, k])) == 1
        for other in set(range(5)) - {k}:
            assert len(np.unique(factors[:, other])) > 1, (k, other)
        assert np.all(factors >= 0) and np.all(factors < np.array(ds.factor_sizes))
    # The held value itself is drawn uniformly over the factor's range.
    held = [ds.sample_fixed_factor(SHAPE, 2, rng)[0, SHAPE] for _ in range(300)]
    assert set(held) == {0, 1, 2}
    with pytest.raises(ValueError, match="factor_index=5"):
        ds.sample_fixed_factor(5, 8, rng)


def test_sample_factors_cover_each_range(ds):
    factors = ds.sample_factors(20_000, np.random.default_rng(0))
    assert factors.dtype == np.int64
    for k, size in enumerate(ds.factor_sizes):
        counts = np.bincount(factors[:, k], minlength=size)
        assert len(counts) == size and counts.min() > 0.6 * 20_000 / size


@pytest.mark.parametrize(
    ("column", "value", "name"),
    [(0, 3, "shape"), (1, -1, "scale"), (2, 40, "orientation"), (3, 32, "pos_x"), (4, 99, "pos_y")],
)
def test_out_of_range_factors_are_rejected(ds, column, value, name):
    factors = np.array([one(), one()])
    factors[1, column] = value
    with pytest.raises(ValueError, match=rf"'{name}' has value {value}"):
        ds.images_from_factors(factors)


def test_malformed_factors_are_rejected(ds):
    with pytest.raises(ValueError, match="shape"):
        ds.images_from_factors(np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="integer"):
        ds.images_from_factors(np.zeros((3, 5), dtype=np.float32))


def test_factors_from_index_is_dsprites_mixed_radix(ds):
    # dSprites' latents_bases without the colour column: pos_y varies fastest.
    bases = np.array([245_760, 40_960, 1_024, 32, 1])
    index = np.array([0, 1, 31, 32, 1_024, 40_959, 245_760, 737_279])
    factors = ds.factors_from_index(index)
    assert np.array_equal(factors @ bases, index)
    assert factors[-1].tolist() == [2, 5, 39, 31, 31]
    assert factors[3].tolist() == [0, 0, 0, 1, 0]
    rng = np.random.default_rng(0)
    random_index = rng.integers(0, ds.num_images, 1000)
    assert np.array_equal(ds.index_from_factors(ds.factors_from_index(random_index)), random_index)
    random_factors = ds.sample_factors(1000, rng)
    assert np.array_equal(ds.factors_from_index(ds.index_from_factors(random_factors)), random_factors)
    with pytest.raises(ValueError, match="737280"):
        ds.factors_from_index(np.array([737_280]))
