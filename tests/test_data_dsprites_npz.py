"""DeepMind's dSprites file: layout checks, the renderer's interface, sizes, and the config switch.

The published file is not here (and nothing is downloaded): each test writes a small file of the
same layout, a reduced factor grid whose images the procedural renderer draws.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from infogan.config import Config
from infogan.data import load_dataset
from infogan.data.base import GroundTruthDataset, ImageDataset
from infogan.data.dsprites import DSprites, decode_index
from infogan.data.dsprites_npz import FILE_NAME, DSpritesNpz

SIZES = (3, 2, 4, 4, 4)  # shape, scale, orientation, pos_x, pos_y: 384 images
N = int(np.prod(SIZES))


def published_layout(sizes: tuple[int, ...] = SIZES) -> dict[str, np.ndarray]:
    """The arrays of a dSprites file over a reduced grid, images drawn by the renderer."""
    factors = decode_index(np.arange(int(np.prod(sizes))), sizes)
    images = DSprites(64).images_from_factors(factors)[:, 0] > 0
    classes = np.concatenate([np.zeros((len(factors), 1), dtype=np.int64), factors], axis=1)
    return {
        "imgs": images.numpy().astype(np.uint8),
        "latents_classes": classes,
        "latents_values": classes.astype(np.float64),
        # The published file's metadata is a pickled dict; the loader must never unpickle it.
        "metadata": np.array({"latents_sizes": np.array((1, *sizes))}, dtype=object),
    }


def write(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    return published_layout()


@pytest.fixture(scope="module")
def npz_file(tmp_path_factory, arrays) -> Path:
    return write(tmp_path_factory.mktemp("dsprites") / FILE_NAME, arrays)


@pytest.fixture(scope="module")
def ds(npz_file) -> DSpritesNpz:
    return DSpritesNpz(npz_file)


def test_file_gives_the_dataset_interface_and_its_grid(ds):
    assert ds.factor_sizes == SIZES and ds.num_images == N
    assert ds.name == "dsprites" and ds.num_classes == 3 and ds.image_shape == (1, 64, 64)
    assert ds.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert isinstance(ds, GroundTruthDataset) and isinstance(ds, ImageDataset)


def test_images_are_the_files_rows_in_plus_minus_one(ds, arrays):
    factors = ds.sample_factors(50, np.random.default_rng(0))
    images = ds.images_from_factors(factors)
    assert images.shape == (50, 1, 64, 64) and images.dtype == torch.float32
    assert set(torch.unique(images).tolist()) == {-1.0, 1.0}
    rows = ds.index_from_factors(factors)
    expected = torch.from_numpy(arrays["imgs"][rows]).float()[:, None] * 2 - 1
    assert torch.equal(images, expected)
    # Row i of the file is flat index i of the grid, both ways.
    assert np.array_equal(ds.factors_from_index(rows), factors)
    assert np.array_equal(arrays["latents_classes"][rows, 1:], factors)


def test_sampling_is_seeded_and_draws_factors_like_the_renderer(ds, arrays):
    a = ds.sample(16, torch.Generator().manual_seed(3))
    assert torch.equal(a, ds.sample(16, torch.Generator().manual_seed(3)))
    g = torch.Generator().manual_seed(3)  # the same draws, column by column, as DSprites.sample
    factors = torch.stack([torch.randint(size, (16,), generator=g) for size in SIZES], dim=1).numpy()
    assert torch.equal(a, ds.images_from_factors(factors))
    images, labels = ds.eval_set(30, seed=7)
    expected = ds.sample_factors(30, np.random.default_rng(7))
    assert np.array_equal(labels, expected[:, 0]) and torch.equal(images, ds.images_from_factors(expected))
    held = ds.sample_fixed_factor(2, 32, np.random.default_rng(0))
    assert len(np.unique(held[:, 2])) == 1 and np.all(held < np.array(SIZES))


def test_out_of_grid_factors_name_the_file(ds):
    with pytest.raises(ValueError, match=rf"{FILE_NAME}: factor 'scale' has value 2, allowed 0..1"):
        ds.images_from_factors(np.array([[0, 2, 0, 0, 0]]))


@pytest.mark.parametrize("size", [28, 32])
def test_smaller_sizes_are_area_averaged_once_and_stay_binary(npz_file, arrays, size):
    small = DSpritesNpz(npz_file, image_size=size)
    assert small.image_shape == (1, size, size) and small.factor_sizes == SIZES
    images = small.images_from_factors(decode_index(np.arange(N), SIZES))
    assert set(torch.unique(images).tolist()) == {-1.0, 1.0}
    # A pixel is on where at least half of the 64-px pixels it covers are.
    area = F.adaptive_avg_pool2d(torch.from_numpy(arrays["imgs"]).float()[:, None], size)
    assert torch.equal(images > 0, area >= 0.5)
    # Close to the renderer at that size: same shapes, pixelated alike.
    drawn = DSprites(size).images_from_factors(decode_index(np.arange(N), SIZES)) > 0
    iou = ((images > 0) & drawn).sum() / ((images > 0) | drawn).sum()
    assert iou > 0.85, iou


def test_load_dataset_picks_the_file_by_config(npz_file):
    cfg = Config.from_flat({"data.dsprites_source": "npz", "data.root": str(npz_file.parent), "model.image_size": 32})
    ds = load_dataset(cfg)
    assert isinstance(ds, DSpritesNpz) and ds.image_shape == (1, 32, 32)
    assert isinstance(load_dataset(Config()), DSprites)  # "procedural", the default


def test_npz_source_is_refused_for_other_datasets():
    with pytest.raises(ValueError, match=r"data.dsprites_source='npz' with data.name='digits'"):
        Config.from_flat({"data.name": "digits", "data.dsprites_source": "npz"})


def test_missing_file_says_where_to_put_it(tmp_path):
    cfg = Config.from_flat({"data.dsprites_source": "npz", "data.root": str(tmp_path)})
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path / FILE_NAME} not found.*nothing is downloaded"):
        load_dataset(cfg)


def test_truncated_or_foreign_file_is_one_clear_error(tmp_path, npz_file):
    data = npz_file.read_bytes()
    cut = tmp_path / "cut" / FILE_NAME
    cut.parent.mkdir()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"dSprites file {cut} cannot be read \(BadZipFile"):
        DSpritesNpz(cut)
    text = tmp_path / "text.npz"
    text.write_text("not an archive")
    with pytest.raises(ValueError, match=rf"dSprites file {text} cannot be read"):
        DSpritesNpz(text)


def test_corrupt_image_data_is_one_clear_error(tmp_path, npz_file):
    # A complete archive whose imgs bytes were damaged on disk (still 0/1 pixels): the zip
    # reader's CRC check fails once the member is read to its end.
    damaged = tmp_path / FILE_NAME
    with zipfile.ZipFile(npz_file) as src, zipfile.ZipFile(damaged, "w", zipfile.ZIP_STORED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
        pixels = src.read("imgs.npy")[-4096:]  # the last image, stored as is
    raw = bytearray(damaged.read_bytes())
    at = raw.find(pixels)
    assert at > 0
    raw[at : at + 64] = bytes(b ^ 1 for b in raw[at : at + 64])
    damaged.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=rf"dSprites file {damaged} cannot be read \(BadZipFile: Bad CRC-32"):
        DSpritesNpz(damaged)


def _with(arrays: dict[str, np.ndarray], **changes) -> dict[str, np.ndarray]:
    out = {**arrays, **changes}
    return {k: v for k, v in out.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"imgs": None}, r"has no imgs \(keys: latents_classes, latents_values, metadata\)"),
        ({"latents_classes": None}, r"has no latents_classes"),
        ("float_images", r"imgs is float32 \(384, 64, 64\), expected uint8 \(384, 64, 64\)"),
        ("small_images", r"imgs is uint8 \(384, 32, 32\), expected uint8 \(384, 64, 64\)"),
        ("grey_images", r"pixel values above 1"),
        ("int32_classes", r"latents_classes is int32 \(384, 6\), expected int64"),
        ("five_columns", r"latents_classes is int64 \(384, 5\)"),
        ("shuffled", r"do not form the complete row-major grid 3 x 2 x 4 x 4 x 4"),
        ("incomplete", r"do not form the complete row-major grid"),
        ("colour", r"a colour other than 0"),
    ],
)
def test_wrong_layout_is_one_clear_error(tmp_path, arrays, changes, message):
    if isinstance(changes, dict):
        bad = _with(arrays, **changes)
    else:
        imgs, classes = arrays["imgs"], arrays["latents_classes"]
        bad = _with(arrays, **{
            "float_images": {"imgs": imgs.astype(np.float32)},
            "small_images": {"imgs": imgs[:, ::2, ::2].copy()},
            "grey_images": {"imgs": imgs * 255},
            "int32_classes": {"latents_classes": classes.astype(np.int32)},
            "five_columns": {"latents_classes": classes[:, 1:].copy()},
            "shuffled": {"latents_classes": classes[np.random.default_rng(0).permutation(N)]},
            "incomplete": {"imgs": imgs[:-1].copy(), "latents_classes": classes[:-1].copy()},
            "colour": {"latents_classes": np.concatenate([np.ones((N, 1), np.int64), classes[:, 1:]], axis=1)},
        }[changes])
    path = write(tmp_path / FILE_NAME, bad)
    with pytest.raises(ValueError, match=rf"dSprites file {path}: .*{message}|dSprites file {path} {message}"):
        DSpritesNpz(path)
