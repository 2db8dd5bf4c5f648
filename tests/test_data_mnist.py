"""MNIST / Fashion-MNIST loading from tiny IDX files written in torchvision's layout."""

from __future__ import annotations

import gzip
import hashlib
import multiprocessing
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from infogan.data.mnist import IDX_FILES, load

CLASS_DIRS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic 0x0000080<ndim>, big-endian dims, raw bytes."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_split(raw: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool = False) -> None:
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
        data = idx_bytes(array)
        path = raw / f"{prefix}-{kind}-ubyte"
        if gz:
            path.with_name(path.name + ".gz").write_bytes(gzip.compress(data))
        else:
            path.write_bytes(data)


def make_dataset(root: Path, name: str, gz: bool = False, n_train: int = 12) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write an ``n_train``-image train and 5-image test split; returns the arrays written."""
    rng = np.random.default_rng(0)
    raw = root / CLASS_DIRS[name] / "raw"
    raw.mkdir(parents=True)
    splits = {}
    for prefix, n in (("train", n_train), ("t10k", 5)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[0] = 0  # one all-black and one all-white image pin both ends of the range
        images[1] = 255
        labels = (np.arange(n) * 3 + 1) % 10
        write_split(raw, prefix, images, labels.astype(np.uint8), gz=gz)
        splits[prefix] = (images, labels)
    return splits


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_load_reads_idx_files(tmp_path, name):
    written = make_dataset(tmp_path, name)
    ds = load(name, tmp_path)
    images, labels = written["train"]
    assert ds.name == name and ds.num_classes == 10
    assert ds.images.shape == (12, 1, 28, 28) and ds.images.dtype == torch.float32
    assert ds.image_shape == (1, 28, 28)
    assert ds.labels.dtype == np.int64 and np.array_equal(ds.labels, labels)
    expected = torch.from_numpy(images).float().unsqueeze(1) / 127.5 - 1.0
    torch.testing.assert_close(ds.images, expected)
    assert ds.images[0].max() == -1.0 and ds.images[1].min() == 1.0

    test = load(name, tmp_path, train=False)
    assert len(test) == 5 and np.array_equal(test.labels, written["t10k"][1])


def test_load_resizes_to_32(tmp_path):
    make_dataset(tmp_path, "mnist")
    ds = load("mnist", tmp_path, image_size=32)
    assert ds.images.shape == (12, 1, 32, 32) and ds.image_shape == (1, 32, 32)
    assert ds.images.min() >= -1.0 and ds.images.max() <= 1.0
    # Constant images stay constant through the resize.
    torch.testing.assert_close(ds.images[0], torch.full((1, 32, 32), -1.0))
    torch.testing.assert_close(ds.images[1], torch.full((1, 32, 32), 1.0))
    batch = ds.sample(4, torch.Generator().manual_seed(0))
    assert batch.shape == (4, 1, 32, 32)


def test_gz_files_are_decompressed_without_download(tmp_path):
    written = make_dataset(tmp_path, "fashion_mnist", gz=True)
    ds = load("fashion_mnist", tmp_path)
    assert np.array_equal(ds.labels, written["train"][1])
    assert (tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def _load_when_all_are_ready(root: str, barrier: Any, results: Any) -> None:
    """One of several processes loading one folder at the same moment (spawned: module level)."""
    try:
        barrier.wait(timeout=300)  # every process has imported torch: their loads overlap
        ds = load("mnist", root)
        digest = hashlib.sha256(ds.images.numpy().tobytes() + ds.labels.tobytes()).hexdigest()
        results.put(("ok", digest))
    except Exception as err:  # reported to the test, which names it
        results.put(("error", f"{type(err).__name__}: {err}"))


@pytest.mark.integration  # starts processes
def test_concurrent_loads_of_gz_files_all_succeed_with_the_same_data(tmp_path):
    # Several runs started at once on one folder of .gz files: each needs the decompressed files,
    # none may read another's half-written copy. The train images are large enough (~8 MB) for
    # decompressions to overlap.
    written = make_dataset(tmp_path, "mnist", gz=True, n_train=10_000)
    context = multiprocessing.get_context("spawn")
    n = 3
    barrier, results = context.Barrier(n), context.Queue()
    procs = [context.Process(target=_load_when_all_are_ready, args=(str(tmp_path), barrier, results)) for _ in range(n)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert [kind for kind, _ in outcomes] == ["ok"] * n, outcomes
    ds = load("mnist", tmp_path)  # the files left behind are whole
    assert np.array_equal(ds.labels, written["train"][1])
    expected = hashlib.sha256(ds.images.numpy().tobytes() + ds.labels.tobytes()).hexdigest()
    assert {digest for _, digest in outcomes} == {expected}
    raw = tmp_path / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir() if not p.name.endswith(".lock")) == \
        sorted([*IDX_FILES, *(f"{f}.gz" for f in IDX_FILES)])  # no temporary copies left


def test_truncated_gz_is_a_clear_error_and_leaves_no_partial_file(tmp_path):
    make_dataset(tmp_path, "mnist", gz=True, n_train=200)
    raw = tmp_path / "MNIST" / "raw"
    gz_file = raw / "train-images-idx3-ubyte.gz"
    gz_file.write_bytes(gz_file.read_bytes()[: gz_file.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cannot read the IDX files in .*train-images-idx3-ubyte\.gz.*are they complete"):
        load("mnist", tmp_path)
    assert not (raw / "train-images-idx3-ubyte").exists()  # a later run decompresses again, not reads half
    assert not [p for p in raw.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")]


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_missing_files_error_names_the_folder_and_the_flag(tmp_path, name):
    with pytest.raises(FileNotFoundError) as info:
        load(name, tmp_path)
    message = str(info.value)
    assert f"{tmp_path / CLASS_DIRS[name] / 'raw'}/" in message
    assert "--data.download true" in message
    for file in IDX_FILES:
        assert file in message


def test_missing_test_split_is_named(tmp_path):
    make_dataset(tmp_path, "mnist")
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="missing: t10k-labels-idx1-ubyte\\."):
        load("mnist", tmp_path)


def test_unknown_name_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="'cifar10'"):
        load("cifar10", tmp_path)



def test_a_failed_write_is_not_blamed_on_the_gz_file(tmp_path, monkeypatch):
    import errno

    from infogan.data import mnist

    def full_disk(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    make_dataset(tmp_path, "mnist", gz=True)
    monkeypatch.setattr(mnist.shutil, "copyfileobj", full_disk)
    with pytest.raises(ValueError, match="cannot decompress train-images-idx3-ubyte.gz .*No space left") as info:
        load("mnist", tmp_path)
    assert "are they complete" not in str(info.value)
    assert not (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()
