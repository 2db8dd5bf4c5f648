"""A procedural dSprites: binary 2-D shapes rendered on the fly from their ground-truth factors.

It owns the factor grid (shape, scale, orientation, pos_x, pos_y with dSprites' sizes 3, 6, 40,
32, 32 and its row-major index order) in ``DSpritesGrid``, which any other source of dSprites
images can share, a vectorised renderer, and the factor samplers the disentanglement metrics
need. Nothing is downloaded: every image is drawn from its factors, deterministically.

Geometry (in pixels, image width W, pixel centres at j + 0.5, rows growing downwards):
- centre = 0.25·W + 0.5·W·pos for both axes (pos_x moves along columns, pos_y along rows);
- size s = 0.45·W·scale, half-size h = s / 2;
- square: side s; ellipse: semi-axes 1.1·h by 0.55·h (2:1, long axis horizontal at angle 0);
  heart: the curve (x² + y² − 1)³ ≤ x²·y³ (spans x ±1.139, y −1…1.2365) scaled so its width is
  s, lobes up at angle 0;
- orientation rotates counter-clockwise on screen about the shape's centroid, so the position
  factor is the shape's centre of mass (up to clipping at the border and pixelation);
- a pixel is on (+1) when its centre is inside the shape, else off (−1): no anti-aliasing.

This is not pixel-identical to DeepMind's file, so scores on it compare only approximately with
published dSprites numbers.
"""

from __future__ import annotations

import math

import numpy as np
import torch

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPE_NAMES = ("square", "ellipse", "heart")
ALLOWED_SIZES = (28, 32, 64)

# Fraction of the image width spanned by a scale-1 shape, and the span of the centre positions.
_SIZE_FRACTION = 0.45
_POS_MARGIN = 0.25
_POS_SPAN = 0.5
# Ellipse semi-axes in units of the half-size h: about the square's extent, elongated 2:1.
_ELLIPSE_SEMI_MAJOR = 1.1
_ELLIPSE_SEMI_MINOR = 0.55
# The heart curve's half-width and its area centroid (y, in the curve's own units), measured
# numerically on a fine grid; rotating about the centroid keeps the centre of mass at `pos`.
_HEART_HALF_WIDTH = 1.139
_HEART_CENTROID_Y = 0.2935
# Images rendered per chunk: bounds the (chunk, H, W) temporaries to a few MB, which keeps
# them in cache on CPU and keeps memory flat for large evaluation sets.
_CHUNK = 128


class DSpritesGrid:
    """dSprites' factor grid: samplers and flat-index codecs, shared by every source of its images.

    A subclass sets ``factor_sizes``, ``image_shape`` and ``device`` and implements ``_images``,
    which maps checked (n, 5) int64 factor indices on the device to (n, 1, S, S) images.
    """

    name = "dsprites"
    factor_names = FACTOR_NAMES
    factor_sizes: tuple[int, ...] = FACTOR_SIZES
    image_shape: tuple[int, int, int]
    device: torch.device

    @property
    def num_classes(self) -> int:
        """Classes of the ``eval_set`` labels: the shape factor's values."""
        return self.factor_sizes[0]

    @property
    def num_images(self) -> int:
        """Size of the full factor grid (737,280 for dSprites)."""
        return math.prod(self.factor_sizes)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """A training batch from uniformly drawn factors.

        Args:
            n: batch size.
            generator: CPU generator; the batch depends only on its state.

        Returns:
            (n, 1, S, S) float32 in {-1, +1} on the device.
        """
        cols = [torch.randint(size, (n,), generator=generator) for size in self.factor_sizes]
        return self._images(torch.stack(cols, dim=1).to(self.device))

    def eval_set(self, n: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
        """n images from factors drawn with ``np.random.default_rng(seed)``, labelled by shape.

        Returns:
            images (n, 1, S, S) on the device, labels (n,) int64 in {0, 1, 2}.
        """
        factors = self.sample_factors(n, np.random.default_rng(seed))
        return self.images_from_factors(factors), factors[:, 0].copy()

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, 5) int64 factor indices, each uniform over its range."""
        return np.stack([rng.integers(0, size, n) for size in self.factor_sizes], axis=1).astype(np.int64)

    def sample_fixed_factor(self, factor_index: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """Factors for one BetaVAE/FactorVAE vote: one factor shared by the batch, the rest uniform.

        Args:
            factor_index: column to hold fixed (0..4, in ``factor_names`` order).
            n: batch size.
            rng: numpy generator.

        Returns:
            (n, 5) int64 factor indices whose column ``factor_index`` holds one uniformly drawn value.
        """
        if not 0 <= factor_index < len(self.factor_sizes):
            raise ValueError(
                f"{self._label}: factor_index={factor_index!r} must be in 0..{len(self.factor_sizes) - 1}"
            )
        factors = self.sample_factors(n, rng)
        factors[:, factor_index] = rng.integers(0, self.factor_sizes[factor_index])
        return factors

    def images_from_factors(self, factors: np.ndarray) -> torch.Tensor:
        """The images of the given factor indices.

        Args:
            factors: (n, 5) integer indices in ``factor_names`` order.

        Returns:
            (n, 1, S, S) float32 in {-1, +1} (background -1, shape +1) on the device.
        """
        factors = self._check_factors(factors)
        return self._images(torch.from_numpy(factors).to(self.device))

    def factors_from_index(self, index: np.ndarray) -> np.ndarray:
        """Decode flat indices of the full grid into factors, in dSprites' order (pos_y fastest).

        Args:
            index: integer indices in [0, num_images).

        Returns:
            (len(index), 5) int64 factor indices.
        """
        index = np.asarray(index)
        if not np.issubdtype(index.dtype, np.integer):
            raise ValueError(f"{self._label}: index must be integers, got dtype {index.dtype}")
        index = index.astype(np.int64).reshape(-1)
        bad = (index < 0) | (index >= self.num_images)
        if bad.any():
            raise ValueError(f"{self._label}: index {int(index[bad][0])} is outside [0, {self.num_images})")
        return decode_index(index, self.factor_sizes)

    def index_from_factors(self, factors: np.ndarray) -> np.ndarray:
        """Encode factors as flat indices of the full grid (the inverse of ``factors_from_index``)."""
        factors = self._check_factors(factors)
        index = np.zeros(len(factors), dtype=np.int64)
        for col, size in enumerate(self.factor_sizes):
            index = index * size + factors[:, col]
        return index

    # ----- internals --------------------------------------------------------------------------

    @property
    def _label(self) -> str:
        return type(self).__name__

    def _check_factors(self, factors: np.ndarray) -> np.ndarray:
        factors = np.asarray(factors)
        width = len(self.factor_sizes)
        if factors.ndim != 2 or factors.shape[1] != width:
            raise ValueError(f"{self._label}: factors must be (n, {width}), got shape {factors.shape}")
        if not np.issubdtype(factors.dtype, np.integer):
            raise ValueError(f"{self._label}: factors must be integer indices, got dtype {factors.dtype}")
        for col, (name, size) in enumerate(zip(self.factor_names, self.factor_sizes, strict=True)):
            bad = (factors[:, col] < 0) | (factors[:, col] >= size)
            if bad.any():
                raise ValueError(
                    f"{self._label}: factor {name!r} has value {int(factors[bad, col][0])}, allowed 0..{size - 1}"
                )
        return factors.astype(np.int64, copy=False)

    def _images(self, factors: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def decode_index(index: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """Row-major (last factor fastest) flat indices -> (len(index), len(sizes)) int64 factor indices."""
    factors = np.empty((len(index), len(sizes)), dtype=np.int64)
    rest = np.asarray(index, dtype=np.int64)
    for col in range(len(sizes) - 1, -1, -1):
        rest, factors[:, col] = np.divmod(rest, sizes[col])
    return factors


class DSprites(DSpritesGrid):
    """Procedural dSprites (square, ellipse, heart) rendered on the device.

    Args:
        image_size: side of the square images, one of 28, 32, 64.
        device: where images are rendered and returned.
    """

    def __init__(self, image_size: int = 64, device: torch.device | str = "cpu"):
        if image_size not in ALLOWED_SIZES:
            raise ValueError(
                f"DSprites: image_size={image_size!r} is not allowed; use one of {ALLOWED_SIZES}"
            )
        self.image_size = image_size
        self.image_shape = (1, image_size, image_size)
        self.device = torch.device(device)
        w = float(image_size)
        # Pixel-centre coordinates, shared by every batch: x along columns, y upwards (so the
        # shape equations read as in a maths textbook and the heart's lobes point up).
        coords = torch.arange(image_size, dtype=torch.float32, device=self.device) + 0.5
        self._grid_x = coords  # (W,)
        self._grid_y_up = -coords  # (H,)
        # Factor index -> value tables, on the device so rendering only gathers.
        scales = torch.linspace(0.5, 1.0, FACTOR_SIZES[1], dtype=torch.float64)
        angles = torch.linspace(0.0, 2.0 * math.pi, FACTOR_SIZES[2], dtype=torch.float64)
        self._cos = torch.cos(angles).float().to(self.device)
        self._sin = torch.sin(angles).float().to(self.device)
        self._half_size = (0.5 * _SIZE_FRACTION * w * scales).float().to(self.device)
        pos = torch.linspace(0.0, 1.0, FACTOR_SIZES[3], dtype=torch.float64)
        self._centre = (_POS_MARGIN * w + _POS_SPAN * w * pos).float().to(self.device)

    def _images(self, factors: torch.Tensor) -> torch.Tensor:
        """(n, 5) int64 factor indices on the device -> (n, 1, S, S) in {-1, +1}."""
        n, size = len(factors), self.image_size
        out = torch.empty((n, size, size), dtype=torch.float32, device=self.device)
        # Group the batch by shape so each shape's test runs on contiguous chunks; each chunk is
        # finished in a small buffer (cache-resident on CPU) and scattered to its rows of `out`.
        order = torch.sort(factors[:, 0], stable=True).indices
        grouped = factors[order]
        counts = torch.bincount(grouped[:, 0], minlength=len(_SHAPES)).tolist()
        buf = torch.empty((min(n, _CHUNK), size, size), dtype=torch.float32, device=self.device)
        start = 0
        for (test, frame), count in zip(_SHAPES, counts, strict=True):
            for lo in range(start, start + count, _CHUNK):
                hi = min(lo + _CHUNK, start + count)
                inside = test(*self._grid(grouped[lo:hi], *frame))  # (c, H, W) bool
                chunk = buf[: hi - lo].copy_(inside).mul_(2.0).sub_(1.0)  # {0, 1} -> {-1, +1}
                out.index_copy_(0, order[lo:hi], chunk)
            start += count
        return out.unsqueeze(1)

    def _grid(
        self, factors: torch.Tensor, scale_u: float, scale_v: float, shift_v: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel centres in each shape's own frame: u, v of shape (c, H, W).

        The frame is the pixel offset from the shape's centre, inverse-rotated by its angle
        (which rotates the shape counter-clockwise), divided by its half-size, then scaled by
        (scale_u, scale_v) and shifted by shift_v into the units of the shape's equation.
        """
        _, scale, orient, pos_x, pos_y = factors.unbind(dim=1)
        inv_h = (1.0 / self._half_size[scale])[:, None]  # (c, 1)
        cos, sin = self._cos[orient][:, None], self._sin[orient][:, None]  # (c, 1)
        # Offsets depend on one axis each, so everything up to the last step stays (c, W) or
        # (c, H); the (c, H, W) work is one broadcast add per coordinate. y points up.
        dx = (self._grid_x[None, :] - self._centre[pos_x][:, None]) * inv_h  # (c, W)
        dy = (self._grid_y_up[None, :] + self._centre[pos_y][:, None]) * inv_h  # (c, H)
        u = (scale_u * cos * dx)[:, None, :] + (scale_u * sin * dy)[:, :, None]  # (c, H, W)
        v = (scale_v * cos * dy + shift_v)[:, :, None] - (scale_v * sin * dx)[:, None, :]  # (c, H, W)
        return u, v


# Each test takes (u, v) in its equation's units and may overwrite them (they are temporaries).


def _square(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.maximum(u.abs_(), v.abs_(), out=u) <= 1.0


def _ellipse(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return u.mul_(u).addcmul_(v, v) <= 1.0


def _heart(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # (x² + y² − 1)³ <= x²·y³, written to reuse the temporaries.
    x2 = x.mul_(x)
    y2 = y * y
    t = torch.add(x2, y2).sub_(1.0)
    return t.mul(t).mul_(t) <= x2.mul_(y2).mul_(y)


# Per shape (in factor order): its test and (scale_u, scale_v, shift_v), the map from "units of
# the half-size about the centroid" to the test's units. The square is |u|, |v| <= 1; the
# ellipse is normalised by its semi-axes; the heart curve is scaled so its half-width is one
# half-size, with the origin moved from the centroid back to the curve's own origin.
_SHAPES = (
    (_square, (1.0, 1.0, 0.0)),
    (_ellipse, (1.0 / _ELLIPSE_SEMI_MAJOR, 1.0 / _ELLIPSE_SEMI_MINOR, 0.0)),
    (_heart, (_HEART_HALF_WIDTH, _HEART_HALF_WIDTH, _HEART_CENTROID_Y)),
)
