"""Cost of each disentanglement metric at disentanglement_lib's standard sizes, on this CPU.

The model is taken out of the measurement: the dataset has dSprites' factor sizes
(3, 6, 40, 32, 32) but its "images" are 1×1×5 placeholders holding the factor indices, and the
representation reads them back as codes = factor / size + Gaussian noise (one code per factor,
plus optional pure-noise codes). What is timed is sampling, the metric's own classifiers and
statistics, and the Python around them. The number of images each metric encodes is printed
too: multiply it by a model's per-image encoding cost to get the full evaluation cost.

    python benchmarks/metrics_cost.py                  # 5 codes, standard sizes
    python benchmarks/metrics_cost.py --noise-codes 5  # 10 codes, as a 5-code + 5-noise model
    python benchmarks/metrics_cost.py --scale 0.1      # one tenth of every standard size
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from infogan.metrics import (
    compute_beta_vae,
    compute_dci,
    compute_factor_vae,
    compute_mig,
    compute_modularity,
    compute_sap,
)

FACTOR_SIZES = (3, 6, 40, 32, 32)  # dSprites without colour


class _PlaceholderDSprites:
    """dSprites' factor grid with placeholder images that simply hold the factor indices."""

    name = "placeholder-dsprites"
    factor_names = ("shape", "scale", "orientation", "pos_x", "pos_y")
    factor_sizes = FACTOR_SIZES
    image_shape = (1, 1, len(FACTOR_SIZES))
    num_classes = None

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(0, s, n) for s in FACTOR_SIZES], axis=1).astype(np.int64)

    def sample_fixed_factor(self, factor_index: int, n: int, rng: np.random.Generator) -> np.ndarray:
        factors = self.sample_factors(n, rng)
        factors[:, factor_index] = rng.integers(0, FACTOR_SIZES[factor_index])
        return factors

    def images_from_factors(self, factors: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(factors).float().reshape(len(factors), 1, 1, -1)  # (n, 1, 1, F)


def _representation(noise: float, noise_codes: int, seed: int) -> Callable[[torch.Tensor], np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = np.array(FACTOR_SIZES, dtype=np.float64)

    def representation_fn(images: torch.Tensor) -> np.ndarray:
        factors = images.reshape(len(images), -1).double().numpy()
        codes = factors / sizes + noise * rng.normal(size=factors.shape)
        extra = rng.normal(size=(len(images), noise_codes))
        return np.concatenate([codes, extra], axis=1)

    return representation_fn


def _counting(
    fn: Callable[[torch.Tensor], np.ndarray], counter: list[int]
) -> Callable[[torch.Tensor], np.ndarray]:
    def counted(images: torch.Tensor) -> np.ndarray:
        counter[0] += len(images)
        return fn(images)

    return counted


def main(argv: list[str] | None = None) -> None:
    """Time every metric once at the standard (or scaled) sizes and print one line each."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--noise", type=float, default=0.05, help="std of the noise on each code (default 0.05)"
    )
    parser.add_argument("--noise-codes", type=int, default=0, help="extra pure-noise codes (default 0)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every standard size (default 1)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads and DCI forest n_jobs (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    def size(n: int) -> int:
        return max(2, round(n * args.scale))

    runs: list[tuple[str, Callable[..., dict[str, float]], dict[str, int]]] = [
        ("mig", compute_mig, {"num_train": size(10_000)}),
        (
            "factor_vae",
            compute_factor_vae,
            {"num_train": size(10_000), "num_eval": size(5_000), "num_variance_estimate": size(10_000)},
        ),
        ("beta_vae", compute_beta_vae, {"num_train": size(10_000), "num_eval": size(5_000)}),
        ("dci", compute_dci, {"num_train": size(10_000), "num_test": size(5_000), "n_jobs": args.threads}),
        ("sap", compute_sap, {"num_train": size(10_000), "num_test": size(5_000)}),
        ("modularity", compute_modularity, {"num_train": size(10_000), "num_test": size(5_000)}),
    ]
    num_codes = len(FACTOR_SIZES) + args.noise_codes
    print(
        f"metrics cost: synthetic codes (factor/size + N(0, {args.noise}^2), {num_codes} codes), "
        f"placeholder images; model encoding cost EXCLUDED. sizes x{args.scale:g}, {args.threads} thread(s)"
    )
    total = 0.0
    for name, compute, sizes in runs:
        counter = [0]
        representation_fn = _counting(_representation(args.noise, args.noise_codes, args.seed), counter)
        start = time.perf_counter()
        result = compute(representation_fn, _PlaceholderDSprites(), np.random.default_rng(args.seed), **sizes)
        seconds = time.perf_counter() - start
        total += seconds
        scores = " ".join(f"{k}={v:.3f}" for k, v in result.items())
        print(f"{name:<11} {seconds:7.1f} s  {counter[0]:>9,} images encoded  {scores}")
    print(f"{'total':<11} {total:7.1f} s")


if __name__ == "__main__":
    main()
