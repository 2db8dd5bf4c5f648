"""The procedural dSprites' geometry against real dSprites frames, optionally beside a git revision's.

Prints, per renderer (the working tree's, and ``--against REV``'s ``infogan/data/dsprites.py``):
each shape's bounding box and area at the image centre, orientation 0, scales 1 and 0.5; its
mean area over the 40 orientations; the areas' ratios; the share of the whole factor grid
(737,280 images) with a pixel on the image border; and the IoU with the real frames committed in
tests/fixtures/dsprites_real_frames.npz (DeepMind's dsprites.gif, their factors recovered by search),
per shape and overall. Real dSprites, measured on its frames at 64 px: square 20x20 (400 px),
ellipse 26x14 (288), heart 20x17 (about 225); areas 1 : 0.72 : 0.56; no pixel on the border.

    python benchmarks/dsprites_geometry.py                      # the working tree's renderer, 64 px
    python benchmarks/dsprites_geometry.py --against 7065f5d --sizes 64 32 28
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dsprites_render import module_at  # noqa: E402

from infogan.data import dsprites  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "dsprites_real_frames.npz"
SHAPES = ("square", "ellipse", "heart")


def _render(module, size: int, factors: np.ndarray) -> np.ndarray:
    return (module.DSprites(image_size=size).images_from_factors(factors) > 0).numpy()[:, 0]


def describe(module, size: int) -> list[str]:
    lines = []
    centre = 16  # the middle of the 32 positions
    areas = {}
    for shape, name in enumerate(SHAPES):
        cells = []
        for scale in (5, 0):  # scale 1 and 0.5
            img = _render(module, size, np.array([[shape, scale, 0, centre, centre]]))[0]
            rows, cols = np.nonzero(img)
            cells.append(f"{np.ptp(cols) + 1}x{np.ptp(rows) + 1} ({img.sum()} px)")
        every = np.array([[shape, 5, o, centre, centre] for o in range(40)])
        areas[name] = _render(module, size, every).sum(axis=(1, 2)).mean()
        lines.append(f"  {name:8s} scale 1: {cells[0]:16s} scale 0.5: {cells[1]:14s} "
                     f"mean area over orientations: {areas[name]:6.1f}")
    ratios = " : ".join(f"{areas[n] / areas['square']:.2f}" for n in SHAPES)
    lines.append(f"  areas square : ellipse : heart = {ratios}")
    grid = dsprites.DSprites(image_size=size)
    touching = total = 0
    for start in range(0, grid.num_images, 65_536):
        factors = grid.factors_from_index(np.arange(start, min(start + 65_536, grid.num_images)))
        img = _render(module, size, factors)
        border = img[:, 0].any(1) | img[:, -1].any(1) | img[:, :, 0].any(1) | img[:, :, -1].any(1)
        touching += int(border.sum())
        total += len(factors)
    lines.append(f"  images with a pixel on the border: {touching} of {total} ({100 * touching / total:.2f}%)")
    return lines


def against_real(module) -> list[str]:
    data = np.load(FIXTURE, allow_pickle=False)
    real = np.unpackbits(data["frames"], axis=1).reshape(-1, 64, 64).astype(bool)
    mine = _render(module, 64, data["factors"])
    iou = (real & mine).sum(axis=(1, 2)) / (real | mine).sum(axis=(1, 2))
    per_shape = ", ".join(f"{n} {iou[data['factors'][:, 0] == s].mean():.3f}" for s, n in enumerate(SHAPES))
    return [f"  IoU with {len(iou)} real frames: mean {iou.mean():.3f}, worst {iou.min():.3f} ({per_shape})"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64])
    parser.add_argument("--against", default=None, help="a git revision whose renderer to show beside")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    renderers = [("working tree", dsprites)] + ([(args.against, module_at(args.against))] if args.against else [])
    for label, module in renderers:
        for size in args.sizes:
            print(f"{label}, {size} px:")
            print("\n".join(describe(module, size)))
        print("\n".join(against_real(module)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
