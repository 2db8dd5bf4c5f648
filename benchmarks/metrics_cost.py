"""Evaluation cost, in one run: each metric's seconds at the standard sizes, then the whole
evaluation as a fraction of a quick-preset trial's training time (issue 3: target <= 5%).

Part 1, the metrics alone. The model is taken out of the measurement: the dataset has dSprites'
factor sizes (3, 6, 40, 32, 32) but its "images" are 1×1×5 placeholders holding the factor
indices, and the representation reads them back as codes = factor / size + Gaussian noise (one
code per factor, plus optional pure-noise codes). What is timed is sampling, the metric's own
classifiers and statistics, and the Python around them, at disentanglement_lib's standard sizes.
The number of images each metric encodes is printed too.

Part 2, a real trial (per ``--preset``, default ``dsprites-quick``). One trial of the preset is
trained with the metrics switched off (its training time, checkpoints included); then the full
evaluation suite (``infogan.metrics.evaluate.Evaluator``: Q encoding real images + MIG,
FactorVAE, BetaVAE, DCI, SAP, modularity, and FID = generation + feature extraction) is timed on
the trained G and Q, at the preset's metric sizes (what its trials run) and, unless
``--skip-standard``, at the standard sizes. Printed: seconds of the disentanglement part and of
FID per evaluation, the one-off real-image FID statistics per run, and
(one-off + evaluations per trial × per evaluation) ÷ training seconds. The FID feature net is
trained and cached before timing: all trials share one.

    python benchmarks/metrics_cost.py                          # both parts, dsprites-quick
    python benchmarks/metrics_cost.py --preset dsprites-quick --preset dsprites
    python benchmarks/metrics_cost.py --skip-trial --noise-codes 5   # part 1 only, 10 codes
    python benchmarks/metrics_cost.py --scale 0.02 --trial-steps 20 --skip-standard  # smoke run
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

from infogan import checkpoint
from infogan.config import Config, EvalConfig
from infogan.data import load_dataset
from infogan.metrics import (
    compute_beta_vae,
    compute_dci,
    compute_factor_vae,
    compute_mig,
    compute_modularity,
    compute_sap,
)
from infogan.metrics.evaluate import Evaluator
from infogan.model import build
from infogan.presets import PRESETS
from infogan.train import train

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


def metric_seconds(noise: float, noise_codes: int, scale: float, threads: int, seed: int) -> float:
    """Part 1: time every metric once at the standard sizes times ``scale``; print one line each.

    Returns:
        the total seconds.
    """

    def size(n: int) -> int:
        return max(2, round(n * scale))

    runs: list[tuple[str, Callable[..., dict[str, float]], dict[str, int]]] = [
        ("mig", compute_mig, {"num_train": size(10_000)}),
        (
            "factor_vae",
            compute_factor_vae,
            {"num_train": size(10_000), "num_eval": size(5_000), "num_variance_estimate": size(10_000)},
        ),
        ("beta_vae", compute_beta_vae, {"num_train": size(10_000), "num_eval": size(5_000)}),
        ("dci", compute_dci, {"num_train": size(10_000), "num_test": size(5_000), "n_jobs": threads}),
        ("sap", compute_sap, {"num_train": size(10_000), "num_test": size(5_000)}),
        ("modularity", compute_modularity, {"num_train": size(10_000), "num_test": size(5_000)}),
    ]
    num_codes = len(FACTOR_SIZES) + noise_codes
    print(
        f"[1] metrics alone: synthetic codes (factor/size + N(0, {noise}^2), {num_codes} codes), "
        f"placeholder images; model encoding EXCLUDED. standard sizes x{scale:g}, {threads} thread(s)"
    )
    total = 0.0
    for name, compute, sizes in runs:
        counter = [0]
        representation_fn = _counting(_representation(noise, noise_codes, seed), counter)
        start = time.perf_counter()
        result = compute(representation_fn, _PlaceholderDSprites(), np.random.default_rng(seed), **sizes)
        seconds = time.perf_counter() - start
        total += seconds
        scores = " ".join(f"{k}={v:.3f}" for k, v in result.items())
        print(f"    {name:<11} {seconds:7.1f} s  {counter[0]:>9,} images encoded  {scores}")
    print(f"    {'total':<11} {total:7.1f} s")
    return total


T = TypeVar("T")


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def trial_fraction(preset: str, threads: int, scale: float, standard: bool, trial_steps: int | None) -> None:
    """Part 2: train one trial of ``preset``, time its evaluation, print the fraction of training."""
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {**PRESETS[preset]["overrides"], "train.device": "cpu", "train.threads": threads,
                     "eval.cache_dir": f"{tmp}/cache"}
        if trial_steps is not None:  # smoke runs only: the fraction then is not the preset's
            overrides["train.steps"] = trial_steps
        base = Config.from_flat(overrides)
        tc = base.train
        n_evals = tc.steps // tc.eval_every + (tc.steps % tc.eval_every != 0)  # plus the final one
        quiet = base.replace(**{"eval.disentanglement": False, "eval.fid": False})
        train_seconds, result = _timed(lambda: train(quiet, run_dir=f"{tmp}/run"))
        print(f"[2] preset {preset}: {tc.steps} steps of batch {tc.batch_size} trained in {train_seconds:.1f} s "
              f"({result.images_per_second:.0f} images/s, checkpoints included); {n_evals} evaluations per trial")

        g, d = build(base.codes, base.model, learned_std=base.loss.q_std == "learned")
        state = checkpoint.load(result.checkpoint)
        g.load_state_dict(state.generator)
        d.load_state_dict(state.discriminator)
        dataset = load_dataset(base, "cpu")
        cpu = torch.device("cpu")
        net_seconds, _ = _timed(lambda: Evaluator(base, dataset, cpu).prepare_fid())
        print(f"    FID feature net trained and cached once per machine (not counted): {net_seconds:.1f} s")

        def scaled(n: int) -> int:
            return max(16, round(n * scale))  # 16 keeps every size above its config minimum

        standard_sizes = {f"eval.{k}": scaled(getattr(EvalConfig(), k))
                          for k in ("num_points", "num_test", "num_votes_train", "num_votes_eval", "fid_samples")}
        runs = [("preset sizes", base)]
        if standard:
            runs.append((f"standard sizes x{scale:g}" if scale != 1 else "standard sizes", base.replace(**standard_sizes)))
        for label, cfg in runs:
            metrics_eval = Evaluator(cfg.replace(**{"eval.fid": False}), dataset, cpu)
            fid_eval = Evaluator(cfg.replace(**{"eval.disentanglement": False}), dataset, cpu)
            dis_seconds, metrics = _timed(lambda ev=metrics_eval: ev(g, d))
            setup_seconds, _ = _timed(fid_eval.prepare_fid)  # real-image statistics, once per run
            fid_seconds, fid = _timed(lambda ev=fid_eval: ev(g, d))
            per_eval = dis_seconds + fid_seconds
            per_trial = setup_seconds + n_evals * per_eval
            print(f"    {label}: per evaluation {per_eval:6.1f} s (metrics + Q encoding {dis_seconds:.1f} s, "
                  f"FID generation + features {fid_seconds:.1f} s); once per run: real FID statistics "
                  f"{setup_seconds:.1f} s")
            print(f"      total per trial {per_trial:6.1f} s = {100 * per_trial / train_seconds:5.1f}% of training "
                  f"(one evaluation: {100 * per_eval / train_seconds:.1f}%; target <= 5%)")
            shown = {**metrics, **fid}
            print("      " + " ".join(f"{k.removeprefix('eval/')}={v:.3f}" for k, v in shown.items()
                                      if k != "eval/seconds" and not k.endswith("_train")))


def main(argv: list[str] | None = None) -> None:
    """Part 1 (each metric at the standard sizes), then part 2 (fraction of a trial) per preset."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--noise", type=float, default=0.05, help="part 1: std of the noise on each code (default 0.05)"
    )
    parser.add_argument("--noise-codes", type=int, default=0, help="part 1: extra pure-noise codes (default 0)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every standard size, in both parts (default 1; < 1 for smoke runs)")
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads and DCI forest n_jobs (default 2: a trial's share)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", action="append", choices=sorted(PRESETS),
                        help="part 2: preset whose trial is measured; repeatable (default dsprites-quick)")
    parser.add_argument("--trial-steps", type=int, default=None,
                        help="part 2: override the preset's steps (smoke runs; the fraction is then not the preset's)")
    parser.add_argument("--skip-standard", action="store_true", help="part 2: only the preset's metric sizes")
    parser.add_argument("--skip-metrics", action="store_true", help="skip part 1")
    parser.add_argument("--skip-trial", action="store_true", help="skip part 2")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    if not args.skip_metrics:
        metric_seconds(args.noise, args.noise_codes, args.scale, args.threads, args.seed)
    if not args.skip_trial:
        for preset in args.preset or ["dsprites-quick"]:
            trial_fraction(preset, args.threads, args.scale, not args.skip_standard, args.trial_steps)


if __name__ == "__main__":
    main()
