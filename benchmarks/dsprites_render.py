"""Procedural dSprites rendering speed: images/s per image size and shape, optionally against a git revision.

The renderer is timed through ``images_from_factors`` on fixed factor batches (a mixed batch and
one batch per shape), on the CPU with the given thread count. With ``--against REV`` the
``infogan/data/dsprites.py`` of that revision is loaded beside the working tree's and both are
timed in turns in the same process, best of ``--repeats`` rounds, so a busy machine slows both
alike.

    python benchmarks/dsprites_render.py                       # 64, 32 and 28 px, one thread
    python benchmarks/dsprites_render.py --against HEAD~1 --sizes 64
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from infogan.data import dsprites

SHAPES = ("mixed", "square", "ellipse", "heart")


def module_at(revision: str) -> ModuleType:
    """``infogan/data/dsprites.py`` as it was at a git revision, imported under another name."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "show", f"{revision}:infogan/data/dsprites.py"], cwd=root,
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "dsprites_at_revision.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("dsprites_at_revision", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def images_per_second(render, factors: np.ndarray, seconds: float) -> float:
    render(factors)  # warm-up
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        render(factors)
        n += len(factors)
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 32, 28])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7, help="rounds; the best of each is reported")
    parser.add_argument("--seconds", type=float, default=0.3, help="timing window per round")
    parser.add_argument("--against", metavar="REV", help="also time dsprites.py at this git revision")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    modules = {"now": dsprites}
    if args.against:
        modules[args.against] = module_at(args.against)
    rng = np.random.default_rng(0)
    for size in args.sizes:
        renderers = {name: module.DSprites(size) for name, module in modules.items()}
        batches = {}
        for k, shape in enumerate(SHAPES):
            factors = renderers["now"].sample_factors(args.batch, rng)
            if k:
                factors[:, 0] = k - 1
            batches[shape] = factors
        best = {(name, shape): 0.0 for name in renderers for shape in SHAPES}
        for _ in range(args.repeats):
            for name, renderer in renderers.items():
                for shape, factors in batches.items():
                    rate = images_per_second(renderer.images_from_factors, factors, args.seconds)
                    best[name, shape] = max(best[name, shape], rate)
        for shape in SHAPES:
            figures = "  ".join(f"{name} {best[name, shape]:>10,.0f}" for name in renderers)
            print(f"{size:>3} px  {shape:<8} images/s: {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
