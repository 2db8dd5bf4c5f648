"""MNIST and Fashion-MNIST from local IDX files, read through torchvision and held on the device.

It owns where the files are looked for and the error that says so. torchvision 0.29 reads
``<root>/MNIST/raw/`` (``<root>/FashionMNIST/raw/`` for Fashion-MNIST) and, without
``download=True``, accepts only when all four uncompressed files are there, the test split's
included, whichever split is asked for. A ``.gz`` copy that sits there instead is decompressed
next to it first (no network), because that is what the downloaded archives look like. Several
runs may start at once on one folder: each file is decompressed by one of them, under a file
lock, into a temporary name that is renamed into place when whole (``infogan.atomic``), so no run
ever reads another's half-written copy.
"""

from __future__ import annotations

import gzip
import shutil
import zlib
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from torchvision.datasets import MNIST, FashionMNIST

from infogan.atomic import atomic_path
from infogan.data.base import TensorImageDataset, resize, to_unit_range

DATASETS: dict[str, type[MNIST]] = {"mnist": MNIST, "fashion_mnist": FashionMNIST}
# What torchvision's MNIST._check_exists requires in the raw folder, for either split.
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def raw_folder(name: str, root: str | Path) -> Path:
    """The folder torchvision reads the IDX files of dataset ``name`` from: ``<root>/<Class>/raw``."""
    return Path(root) / _dataset_class(name).__name__ / "raw"


def load(
    name: str,
    root: str | Path,
    image_size: int = 28,
    device: torch.device | str = "cpu",
    download: bool = False,
    train: bool = True,
) -> TensorImageDataset:
    """Load MNIST or Fashion-MNIST as one tensor on the device.

    Args:
        name: "mnist" or "fashion_mnist".
        root: data root; the files live in ``<root>/MNIST/raw/`` or ``<root>/FashionMNIST/raw/``.
        image_size: side of the returned images; 28 keeps the originals, others are resized once.
        device: where the images are held.
        download: let torchvision fetch the files if they are missing (needs the internet).
        train: the 60,000-image training split if True, else the 10,000-image test split.

    Returns:
        A TensorImageDataset of (N, 1, image_size, image_size) images in [-1, 1] with int64
        labels 0-9.

    Raises:
        FileNotFoundError: the files are missing and ``download`` is False.
        ValueError: a file cannot be read (truncated, not IDX); the message names the folder.
    """
    cls = _dataset_class(name)
    raw = raw_folder(name, root)
    missing = _missing_files(name, raw)
    # torchvision also accepts the processed .pt files older versions wrote; defer to it then.
    legacy = all((raw.parent / "processed" / f).is_file() for f in (cls.training_file, cls.test_file))
    if missing and not download and not legacy:
        raise FileNotFoundError(
            f"{name}: torchvision looks for the IDX files in {raw}/ and needs all four of "
            f"{', '.join(IDX_FILES)} (uncompressed, or as .gz next to them); missing: "
            f"{', '.join(missing)}. Copy them there, or pass --data.download true to fetch them."
        )
    try:
        dataset = cls(str(root), train=train, download=download)
    except (RuntimeError, ValueError, OSError) as err:  # a truncated or foreign file: torch's reshape error
        raise _unreadable(name, raw, err) from err
    pixels = dataset.data.unsqueeze(1)  # (N, 1, 28, 28) uint8
    images = resize(to_unit_range(pixels, 255.0), image_size)
    labels = dataset.targets.numpy().astype(np.int64)
    return TensorImageDataset(name, images.contiguous().to(device), labels, 10)


def _dataset_class(name: str) -> type[MNIST]:
    if name not in DATASETS:
        raise ValueError(f"data.name={name!r} is not an IDX dataset; use one of {sorted(DATASETS)}")
    return DATASETS[name]


def _unreadable(name: str, raw: Path, err: BaseException, file: str = "") -> ValueError:
    where = f"{file}: " if file else ""
    return ValueError(f"{name}: cannot read the IDX files in {raw}/ ({where}{type(err).__name__}: {err}); "
                      "are they complete? Copy them again, or pass --data.download true")


def _missing_files(name: str, raw: Path) -> list[str]:
    """The IDX files absent from ``raw`` after decompressing any .gz copies found there.

    Raises:
        ValueError: a .gz copy cannot be decompressed (truncated, not gzip); the file is named.
    """
    missing = []
    for file in IDX_FILES:
        if not (raw / file).is_file():
            if (raw / f"{file}.gz").is_file():
                _decompress(name, raw, file)
            else:
                missing.append(file)
    return missing


def _decompress(name: str, raw: Path, file: str) -> None:
    """``raw/file.gz`` -> ``raw/file``, once, whole or not at all, however many processes ask."""
    target = raw / file
    try:
        # The lock makes the others wait rather than decompress the same file again; the rename
        # makes the file appear whole, so a reader that took no lock (it found the file) reads it all.
        with FileLock(str(raw / f".{file}.lock")):
            if target.is_file():  # another process decompressed it while this one waited
                return
            with atomic_path(target) as tmp, gzip.open(raw / f"{file}.gz", "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:  # truncated (EOFError), not gzip, corrupt
        raise _unreadable(name, raw, err, f"{file}.gz") from err
    except OSError as err:  # the folder, not the file: read-only, full disk
        raise ValueError(f"{name}: cannot decompress {file}.gz in {raw}/ ({type(err).__name__}: {err}); "
                         "decompress the .gz files there (gunzip -k), or use a writable --data.root") from err
