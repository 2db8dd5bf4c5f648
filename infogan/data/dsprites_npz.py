"""DeepMind's published dSprites file as a dataset with the procedural renderer's interface.

It owns finding ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` under ``data.root``, checking
its layout, and holding its images on the device. Nothing is downloaded: the file comes from
github.com/deepmind/dsprites-dataset and is put there by the user.

The file holds ``imgs`` (N, 64, 64) uint8 in {0, 1}, ``latents_classes`` (N, 6) int64 (a constant
colour column, then shape, scale, orientation, pos_x, pos_y) and ``latents_values``, plus a
pickled ``metadata`` entry that is never read (reading it would need ``allow_pickle``, which
would let the file run code). The factor sizes are derived from ``latents_classes``, which must
form the complete row-major grid in dSprites' order (3 × 6 × 40 × 32 × 32 for the published
file), so the flat index of a factor combination is its row.

``imgs`` is streamed out of the archive in chunks and held as packed bits, 1/8 of a byte per
pixel: 377 MB for the published layout at 64 px (3.0 GB as uint8, 12 GB as float32), 94 MB at
32 px and 72 MB at 28 px; a batch is unpacked to {-1, +1} floats on the device. Loading a
full-size file of this layout took 0.5 GB above the process's memory at its peak (``np.load``
of ``imgs`` alone takes 3 GB) and 7 s at 64 px, 21 s at 32 or 28 px, on one CPU thread. At 32
and 28 px each image is reduced once at load by area averaging (``adaptive_avg_pool2d``), a
pixel on when at least half of what it covers is: binary like the renderer's.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from infogan.data.dsprites import ALLOWED_SIZES, FACTOR_NAMES, DSpritesGrid, decode_index

FILE_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
SOURCE_SIZE = 64
# Images read, reduced and packed per step: 16 MB of uint8 pixels at a time.
_READ_CHUNK = 4096


class DSpritesNpz(DSpritesGrid):
    """The published dSprites images, indexed by their factors.

    Args:
        path: the .npz file.
        image_size: side of the returned images, one of 28, 32, 64 (the file's 64 is reduced once).
        device: where the images are held and returned.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is truncated, corrupt or not laid out as the published file;
            the message names the file.
    """

    source = "npz"  # the FID feature net's cache tells it from the renderer's

    def __init__(self, path: str | Path, image_size: int = 64, device: torch.device | str = "cpu"):
        if image_size not in ALLOWED_SIZES:
            raise ValueError(f"DSpritesNpz: image_size={image_size!r} is not allowed; use one of {ALLOWED_SIZES}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"dSprites file {self.path} not found: put DeepMind's published file "
                "(github.com/deepmind/dsprites-dataset) there; nothing is downloaded"
            )
        self.image_size = image_size
        self.image_shape = (1, image_size, image_size)
        self.device = torch.device(device)
        try:
            self.factor_sizes, packed = _read(self.path, image_size)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:  # a truncated or foreign file
            raise ValueError(
                f"dSprites file {self.path} cannot be read ({type(err).__name__}: {err}); is it complete?"
            ) from None
        self._bits = torch.from_numpy(packed).to(self.device)  # (N, S*S/8) uint8, 8 pixels a byte
        # Flat index of a factor row = factors · strides (row-major, pos_y fastest).
        strides = np.cumprod((1, *self.factor_sizes[:0:-1]))[::-1].copy()
        self._strides = torch.from_numpy(strides).to(self.device)
        self._shifts = torch.arange(7, -1, -1, dtype=torch.uint8, device=self.device)  # np.packbits' order

    @property
    def _label(self) -> str:
        return f"dSprites file {self.path.name}"

    def _images(self, factors: torch.Tensor) -> torch.Tensor:
        """(n, 5) int64 factor indices on the device -> (n, 1, S, S) in {-1, +1}."""
        index = (factors * self._strides).sum(dim=1)
        packed = self._bits[index]  # (n, S*S/8)
        bits = (packed[:, :, None] >> self._shifts).bitwise_and_(1)  # (n, S*S/8, 8)
        size = self.image_size
        return bits.view(len(index), 1, size, size).float().mul_(2.0).sub_(1.0)


def load(root: str | Path, image_size: int = 64, device: torch.device | str = "cpu") -> DSpritesNpz:
    """The published dSprites file ``<root>/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``."""
    return DSpritesNpz(Path(root) / FILE_NAME, image_size=image_size, device=device)


def _read(path: Path, image_size: int) -> tuple[tuple[int, ...], np.ndarray]:
    """Check the archive's layout and read its images.

    Returns:
        The factor sizes (shape, scale, orientation, pos_x, pos_y) and the images as packed
        bits, (N, image_size² / 8) uint8, row i being the image of flat factor index i.
    """
    with zipfile.ZipFile(path) as archive:
        members = {Path(name).stem: name for name in archive.namelist()}
        missing = [key for key in ("imgs", "latents_classes") if key not in members]
        if missing:
            raise ValueError(
                f"dSprites file {path} has no {' or '.join(missing)} "
                f"(keys: {', '.join(sorted(members)) or 'none'}); expected DeepMind's {FILE_NAME}"
            )
        with archive.open(members["latents_classes"]) as stream:
            classes = np.lib.format.read_array(stream, allow_pickle=False)
        sizes = _factor_sizes(path, classes)
        with archive.open(members["imgs"]) as stream:
            return sizes, _read_images(path, stream, len(classes), image_size)


def _factor_sizes(path: Path, classes: np.ndarray) -> tuple[int, ...]:
    """The grid's sizes, after checking that ``classes`` is the complete row-major grid."""
    width = 1 + len(FACTOR_NAMES)  # the colour column, then dSprites' five factors
    if classes.ndim != 2 or classes.shape[1] != width or classes.dtype != np.int64 or len(classes) == 0:
        raise ValueError(
            f"dSprites file {path}: latents_classes is {classes.dtype} {classes.shape}, "
            f"expected int64 (N, {width}) (colour, {', '.join(FACTOR_NAMES)})"
        )
    if classes.min() < 0 or (classes[:, 0] != 0).any():
        raise ValueError(f"dSprites file {path}: latents_classes has negative classes or a colour other than 0")
    sizes = tuple(int(s) for s in classes[:, 1:].max(axis=0) + 1)
    expected = decode_index(np.arange(int(np.prod(sizes))), sizes)
    if len(classes) != len(expected) or not np.array_equal(classes[:, 1:], expected):
        raise ValueError(
            f"dSprites file {path}: latents_classes do not form the complete row-major grid "
            f"{' x '.join(map(str, sizes))} in dSprites' order (pos_y fastest)"
        )
    return sizes


def _read_images(path: Path, stream, count: int, image_size: int) -> np.ndarray:
    """Stream ``imgs.npy`` chunk by chunk into packed bits at ``image_size``."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f"dSprites file {path}: imgs is a .npy of version {version}, expected 1.0 or 2.0")
    expected = (count, SOURCE_SIZE, SOURCE_SIZE)
    if tuple(shape) != expected or dtype != np.uint8 or fortran:
        raise ValueError(
            f"dSprites file {path}: imgs is {dtype} {tuple(shape)}{' (Fortran order)' if fortran else ''}, "
            f"expected uint8 {expected} (one image per latents_classes row)"
        )
    pixels_per_image = image_size * image_size
    packed = np.empty((count, pixels_per_image // 8), dtype=np.uint8)
    for lo in range(0, count, _READ_CHUNK):
        hi = min(lo + _READ_CHUNK, count)
        want = (hi - lo) * SOURCE_SIZE * SOURCE_SIZE
        raw = stream.read(want)
        if len(raw) != want:
            raise ValueError(f"dSprites file {path}: imgs ends after {lo + len(raw) // SOURCE_SIZE**2} images "
                             f"of {count}; is the file complete?")
        chunk = np.frombuffer(raw, dtype=np.uint8).reshape(hi - lo, SOURCE_SIZE, SOURCE_SIZE)
        if chunk.max(initial=0) > 1:
            raise ValueError(f"dSprites file {path}: imgs holds pixel values above 1, expected 0/1 images")
        on = chunk.astype(bool)
        if image_size != SOURCE_SIZE:
            # Area averaging, then on where at least half the covered area is on.
            area = F.adaptive_avg_pool2d(torch.from_numpy(chunk.astype(np.float32))[:, None], image_size)
            on = (area[:, 0] >= 0.5).numpy()
        packed[lo:hi] = np.packbits(on.reshape(hi - lo, pixels_per_image), axis=1)
    return packed
