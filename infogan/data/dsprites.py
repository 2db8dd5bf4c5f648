"""A procedural dSprites: binary 2-D shapes rendered on the fly from their ground-truth factors.

It owns the factor grid (shape, scale, orientation, pos_x, pos_y with dSprites' sizes 3, 6, 40,
32, 32 and its row-major index order) in ``DSpritesGrid``, which the loader of DeepMind's own
file (``infogan.data.dsprites_npz``) shares, a vectorised renderer with dSprites' geometry, and the
factor samplers the disentanglement metrics need. Nothing is downloaded: every image is drawn from
its factors, deterministically.

Geometry, in pixels of the 64-px image at scale 1 (every length is multiplied by the scale,
0.5 … 1, and by W / 64 at width W; pixel (row i, column j) has its centre at (i + 0.5, j + 0.5)):
- centre = W/4 + W/2 · pos (16 … 48 px at 64 px): pos_x moves along columns (0 = left), pos_y
  along rows (0 = top); the shape rotates about this point;
- square: side 19.2 (0.3 W);
- ellipse: semi-axes 12.75 × 7.225, the long axis horizontal at orientation 0;
- heart: two lobes, discs of radius 5.27 centred at (±4.4, 3.9) from the rotation centre, each
  joined to the tip (0, −8.75) by its convex hull; lobes up at orientation 0;
- orientation θ = 2π · k / 39 turns the shape counter-clockwise on screen;
- a pixel is on (+1) when its centre is inside the shape, else off (−1): no anti-aliasing.
The farthest any shape reaches from its centre is the square's corner, 13.6 px of the 16 px
from the extreme centres to the image's edge, so no pixel of any factor combination touches the image's outermost rows or columns, at
any size, as in dSprites.

Where the numbers come from: the 320 binary frames of dSprites' README animation
(github.com/deepmind/dsprites-dataset, dsprites.gif, commit fa310c6, Apache-2.0), which walks one
factor at a time. Each frame's factors were recovered by searching the factor grid for the best
IoU with a candidate renderer; the square's side, the ellipse's semi-axes and the heart's lobe
and tip were then fitted to the mean IoU over all frames. The result: 62 of the 64 square frames and 54 of the 64 ellipse frames
pixel-exact (IoU ≥ 0.989 for the rest), hearts IoU 0.964 on average (0.886 at worst); the
real square covers 20 × 20 = 400 pixels unrotated and 368 at 45° (its true side is 19.2), the
ellipse 288, the heart 222 (scale 1, orientation 0). Orientation turns counter-clockwise (the
dataset's reloading notebook shows its orientation-0.8 rad ellipses leaning up to the right),
pos_x = 0 is the left edge (the notebook's density plot for it), and pos_y = 0 the top (the
animation moves a sprite down first when it walks pos_y, as it walks every factor up first).
The heart's exact outline (DeepMind drew sprites with LÖVE) and pixels whose centres lie on an
edge differ, so scores compare closely, not exactly, with published dSprites numbers; with the
published file at hand, ``data.dsprites_source='npz'`` trains on it instead.
"""

from __future__ import annotations

import math

import numpy as np
import torch

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPE_NAMES = ("square", "ellipse", "heart")
ALLOWED_SIZES = (28, 32, 64)

# Lengths in pixels of a 64-px image at scale 1, fitted to dSprites' frames (module docstring).
_REFERENCE_WIDTH = 64.0
_SQUARE_HALF_SIDE = 9.6
_ELLIPSE_SEMI_AXES = (12.75, 7.225)
_HEART_LOBE = (4.4, 3.9, 5.27)  # right lobe's centre x, centre y (up) and radius
_HEART_TIP = 8.75  # distance of the tip below the rotation centre
# Pixels tested per chunk: each (chunk, K, K) float32 temporary is 512 KB, so the few alive at
# once stay in a CPU core's L2 cache (2 MB here; at 2 MB per temporary the heart ran ~3x slower),
# and memory stays flat for large evaluation sets.
_CHUNK_PIXELS = 2**17
# The tested window's side as a fraction of the image's (see ``DSprites.__init__``).
_WINDOW_FRACTION = 0.5


class DSpritesGrid:
    """dSprites' factor grid: samplers and flat-index codecs shared by the renderer and the file loader.

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
            generator: the loop's generator (on the CPU or the dataset's device); the batch
                depends only on its state.

        Returns:
            (n, 1, S, S) float32 in {-1, +1} on the device.
        """
        return self.images_from_keys(self.sample_keys(n, generator))

    def sample_keys(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """The random part of ``sample``: (n, 5) int64 factor indices, on the generator's device."""
        cols = [torch.randint(size, (n,), generator=generator, device=generator.device) for size in self.factor_sizes]
        return torch.stack(cols, dim=1)

    def images_from_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """The images of ``sample_keys``'s draws (any number of batches laid end to end: an
        ensemble renders its members' batches at once)."""
        return self._images(keys.to(self.device))

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
    """Procedural dSprites (square, ellipse, heart) rendered on the device with dSprites' geometry.

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
        # Factor index -> value tables, on the device so rendering only gathers.
        scales = torch.linspace(0.5, 1.0, FACTOR_SIZES[1], dtype=torch.float64)
        angles = torch.linspace(0.0, 2.0 * math.pi, FACTOR_SIZES[2], dtype=torch.float64)
        pos = torch.linspace(0.0, 1.0, FACTOR_SIZES[3], dtype=torch.float64)
        self._cos = torch.cos(angles).float().to(self.device)
        self._sin = torch.sin(angles).float().to(self.device)
        # Pixels -> the geometry's units (64-px pixels at scale 1).
        self._inv_unit = (_REFERENCE_WIDTH / (w * scales)).float().to(self.device)
        centre = 0.25 * w + 0.5 * w * pos  # (32,) in pixels, pixel j's centre being at j + 0.5
        self._centre = centre.float().to(self.device)
        # Shapes are tested only in a window of side K around their centre, its corner at
        # round(centre) - K/2: every pixel outside lies K/2 or more from the centre along a row or
        # column, and every shape reaches less than W/4 = K/2 from it (the square's corner,
        # 13.6 px of 16 at 64 px), so nothing is cut off. A quarter of the pixels to test.
        k = int(image_size * _WINDOW_FRACTION)
        self._window = k
        start = torch.floor(centre + 0.5).long() - k // 2
        self._start = start.clamp(0, image_size - k).to(self.device)  # (32,) first row/column
        self._win_coords = torch.arange(k, dtype=torch.float32, device=self.device) + 0.5  # (K,)
        ar = torch.arange(k, device=self.device)
        self._win_offsets = (ar[:, None] * image_size + ar[None, :]).view(1, k * k)  # in a flat image

    def _images(self, factors: torch.Tensor) -> torch.Tensor:
        """(n, 5) int64 factor indices on the device -> (n, 1, S, S) in {-1, +1}.

        On a CPU each shape's test runs on its own images only (grouped by shape, in chunks that
        stay in cache); on a GPU every test runs on every image and the shape selects the mask:
        3x the arithmetic, but static shapes and no host synchronisation, so a CUDA graph can
        capture it. Both give the same pixels.
        """
        windows = self._windows_grouped(factors) if self.device.type == "cpu" else self._windows_static(factors)
        # Each window onto a background of -1, in {-1, +1}.
        n, size, k = len(factors), self.image_size, self._window
        corner = self._start[factors[:, 4]] * size + self._start[factors[:, 3]]  # (n,) flat index
        out = torch.full((n, size * size), -1.0, dtype=torch.float32, device=self.device)
        out.scatter_(1, corner[:, None] + self._win_offsets, windows.view(n, k * k).mul_(2.0).sub_(1.0))
        return out.view(n, 1, size, size)

    def _windows_static(self, factors: torch.Tensor) -> torch.Tensor:
        """(n, K, K) masks, 1 inside: every shape's test on every image, selected by the shape."""
        frame = self._frame(factors)
        shape = factors[:, 0, None, None]
        windows = torch.zeros((len(factors), self._window, self._window), dtype=torch.float32, device=self.device)
        for index, test in enumerate(_SHAPES):
            windows.add_(test(*frame).mul_(shape == index))
        return windows

    def _windows_grouped(self, factors: torch.Tensor) -> torch.Tensor:
        """(n, K, K) masks, 1 inside: each shape's test on its own images, in chunks."""
        n, k = len(factors), self._window
        windows = torch.empty((n, k, k), dtype=torch.float32, device=self.device)
        # Group the batch by shape so each shape's test runs on contiguous chunks.
        order = torch.sort(factors[:, 0], stable=True).indices
        grouped = factors[order]
        counts = torch.bincount(grouped[:, 0], minlength=len(_SHAPES)).tolist()
        step = max(1, _CHUNK_PIXELS // (k * k))
        start = 0
        for test, count in zip(_SHAPES, counts, strict=True):
            for lo in range(start, start + count, step):
                hi = min(lo + step, start + count)
                windows.index_copy_(0, order[lo:hi], test(*self._frame(grouped[lo:hi])))  # 1 in, 0 out
            start += count
        return windows

    def _frame(self, factors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each window pixel's offset from its shape's centre in the geometry's units, and the rotation.

        Returns:
            dx (c, K) along the window's columns, dy (c, K) upwards along its rows, cos and sin
            (c, 1) of the orientation.
        """
        _, scale, orient, pos_x, pos_y = factors.unbind(dim=1)
        inv = self._inv_unit[scale][:, None]  # (c, 1)
        cols = self._start[pos_x][:, None] + self._win_coords[None, :]  # (c, K) pixel centres
        rows = self._start[pos_y][:, None] + self._win_coords[None, :]
        dx = (cols - self._centre[pos_x][:, None]) * inv
        dy = (self._centre[pos_y][:, None] - rows) * inv  # rows grow downwards
        return dx, dy, self._cos[orient][:, None], self._sin[orient][:, None]


# Each test gets (dx, dy, cos, sin) from ``DSprites._frame`` and returns a (c, K, K) float32 mask,
# 1 inside and 0 outside. A point of the shape's own frame (u, v) sits at (dx, dy) =
# (u cos − v sin, u sin + v cos): a counter-clockwise turn. The masks are built with float ops done
# in place (a comparison written as ``t.le_(k)``): on CPU these run several times faster than
# comparisons into a bool tensor, ``torch.where`` or ``torch.maximum``.


def _le(col: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
    """col[c, j] <= row[c, i] as a (c, K, K) mask: one full-size subtraction and one comparison."""
    return torch.sub(col[:, None, :], row[:, :, None]).le_(0.0)


def _half_plane(dx, dy, cos, sin, a: float, b: float, k: float) -> torch.Tensor:
    """a·u + b·v <= k in the shape's frame (u = cos·dx + sin·dy, v = −sin·dx + cos·dy)."""
    return _le((a * cos - b * sin) * dx, k - (a * sin + b * cos) * dy)


def _disc(dx, dy, cos, sin, u0: float, v0: float, r: float) -> torch.Tensor:
    """(u − u0)² + (v − v0)² <= r²: the disc's centre moved into the image's frame."""
    x0, y0 = u0 * cos - v0 * sin, u0 * sin + v0 * cos  # (c, 1)
    return _le((dx - x0) ** 2, r * r - (dy - y0) ** 2)


def _square(dx, dy, cos, sin) -> torch.Tensor:
    h = _SQUARE_HALF_SIDE
    u = torch.add((cos * dx)[:, None, :], (sin * dy)[:, :, None]).abs_().le_(h)
    v = torch.add((-sin * dx)[:, None, :], (cos * dy)[:, :, None]).abs_().le_(h)
    return u.mul_(v)


def _ellipse(dx, dy, cos, sin) -> torch.Tensor:
    # (u/a)² + (v/b)² <= 1 expanded in dx, dy: the dx·dy cross term is the one product that
    # needs the full image; the dx² and dy² terms are added to it by broadcasting.
    ia2, ib2 = _ELLIPSE_SEMI_AXES[0] ** -2, _ELLIPSE_SEMI_AXES[1] ** -2
    cc, ss, cs = cos * cos, sin * sin, cos * sin
    col2 = (cc * ia2 + ss * ib2) * dx * dx  # (c, K)
    row2 = (ss * ia2 + cc * ib2) * dy * dy  # (c, K)
    cross = (2.0 * cs * (ia2 - ib2)) * dx  # (c, K), times dy below
    lhs = torch.mul(cross[:, None, :], dy[:, :, None]).add_(col2[:, None, :]).add_(row2[:, :, None])
    return lhs.le_(1.0)


def _heart_kite() -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The right lobe's outer tangent from the tip and its tangent chord, as (a, b, k): a·u + b·v <= k.

    The heart is the union of each lobe's convex hull with the tip. Such a hull is the disc plus
    the triangle (tip, both tangent points); by the heart's symmetry only each triangle's half on
    its own lobe's side matters, and those two halves form one kite bounded by the two outer
    tangents and the two chords (convex, as the chords meet on the axis above the tangent points).
    """
    cu, cv, r = _HEART_LOBE
    tip_v = -_HEART_TIP
    d = math.hypot(cu, cv - tip_v)
    axis = math.atan2(cv - tip_v, cu)  # direction tip -> lobe centre
    half = math.asin(r / d)
    reach = math.sqrt(d * d - r * r)  # tip to either tangent point
    out_dir = (math.cos(axis - half), math.sin(axis - half))  # the outer tangent (away from the axis)
    in_dir = (math.cos(axis + half), math.sin(axis + half))
    p_out = (reach * out_dir[0], tip_v + reach * out_dir[1])
    p_in = (reach * in_dir[0], tip_v + reach * in_dir[1])
    # Outer tangent: the heart is on its left going tip -> p_out (cross product >= 0).
    outer = (out_dir[1], -out_dir[0], -out_dir[0] * tip_v)
    # Chord p_out -> p_in: the heart's side is the tip's side.
    nu, nv = p_in[1] - p_out[1], p_out[0] - p_in[0]
    k = nu * p_out[0] + nv * p_out[1]
    if nv * tip_v > k:  # the tip (0, tip_v) must satisfy it
        nu, nv, k = -nu, -nv, -k
    return outer, (nu, nv, k)


_HEART_OUTER, _HEART_CHORD = _heart_kite()


def _heart(dx, dy, cos, sin) -> torch.Tensor:
    cu, cv, r = _HEART_LOBE
    kite = None
    for a, b, k in (_HEART_OUTER, _HEART_CHORD):
        for side in (a, -a):  # the right half-plane and its mirror image
            plane = _half_plane(dx, dy, cos, sin, side, b, k)
            kite = plane if kite is None else kite.mul_(plane)
    inside = kite.add_(_disc(dx, dy, cos, sin, cu, cv, r)).add_(_disc(dx, dy, cos, sin, -cu, cv, r))
    return inside.gt_(0.5)  # in the kite or in either lobe


# Per shape, in factor order: its inside test.
_SHAPES = (_square, _ellipse, _heart)
