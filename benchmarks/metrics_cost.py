"""Evaluation cost, in one run: each metric's seconds at the standard sizes, then the whole
evaluation as a share of a trial's wall time (target <= 10% for the default sweep's trials).

Part 1, the metrics alone. The model is taken out of the measurement: the dataset has dSprites'
factor sizes (3, 6, 40, 32, 32) but its "images" are 1×1×5 placeholders holding the factor
indices, and the representation reads them back as codes = factor / size + Gaussian noise (one
code per factor, plus optional pure-noise codes). What is timed is sampling, the metric's own
classifiers and statistics, and the Python around them, at disentanglement_lib's standard sizes.
The number of images each metric encodes is printed too.

Part 2, a real trial (per ``--preset``, default ``dsprites-quick``, or ``--sweep-budget cpu``: a
trial of the README's default sweep). One trial is trained with the metrics switched off (its
training time); then its staged evaluations (``infogan.metrics.suite.Evaluator``) are timed on
the trained G and Q: an intermediate one (``eval.intermediate``: MIG on a reduced sample and a
small FID, by default) and the final one (every metric: Q encoding real images + MIG, FactorVAE,
BetaVAE, DCI, SAP, modularity, and FID = generation + feature extraction), at the trial's sizes
and, unless ``--skip-standard``, at the standard sizes. Printed: seconds per evaluation of each
kind, the one-off real-image FID statistics, each metric family's seconds when the final
evaluation computes it alone, and the evaluation's share of the trial:
(one-off + intermediate evaluations × their cost + the final one) ÷ (training + that). The FID
feature net is trained and cached before timing: all trials share one.

    python benchmarks/metrics_cost.py                          # both parts, dsprites-quick
    python benchmarks/metrics_cost.py --skip-metrics --sweep-budget cpu   # the README sweep's trials
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
from infogan.config import Config, EvalConfig, metric_set
from infogan.data import load_dataset
from infogan.loop import full_evaluation_steps, run_evaluation_steps, train
from infogan.metrics import (
    compute_beta_vae,
    compute_dci,
    compute_factor_vae,
    compute_mig,
    compute_modularity,
    compute_sap,
)
from infogan.metrics.suite import Evaluator
from infogan.model import build
from infogan.presets import PRESETS

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


def _has_fid(cfg: Config) -> bool:
    return "fid" in metric_set(cfg.eval.intermediate) | metric_set(cfg.eval.final)


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


def trial_config(preset: str | None, sweep_budget: str | None, threads: int, cache_dir: str,
                 trial_steps: int | None) -> tuple[str, Config]:
    """The config of the trial to measure: a preset's, or a default sweep trial's (the dSprites
    base space at its recipe values with the budget's fixed settings)."""
    if sweep_budget is not None:
        from sweeps import spaces

        overrides = {**spaces.recipe("dsprites"), **spaces.BUDGETS[sweep_budget]["fixed"]}
        label = f"default sweep trial (budget {sweep_budget}, recipe values)"
    else:
        overrides = dict(PRESETS[preset or "dsprites-quick"]["overrides"])
        label = f"preset {preset}"
    overrides.update({"train.device": "cpu", "train.threads": threads, "eval.cache_dir": cache_dir})
    if trial_steps is not None:  # smoke runs only: the fraction then is not the trial's
        overrides["train.steps"] = trial_steps
    return label, Config.from_flat(overrides)


def trial_fraction(label: str, base: Config, scale: float, standard: bool, tmp: str) -> None:
    """Part 2: train one trial, time its staged evaluations, print their share of the trial.

    A trial evaluates every ``train.eval_every`` steps: the intermediate evaluations compute
    ``eval.intermediate`` at reduced sizes, the last one ``eval.final`` at full sizes; each kind
    of FID needs its real-image statistics once per run.
    """
    tc = base.train
    eval_steps = run_evaluation_steps(base)
    n_inter = len(eval_steps) - len(full_evaluation_steps(base))
    quiet = base.replace(**{"eval.intermediate": "categorical", "eval.final": "categorical"})
    wall, result = _timed(lambda: train(quiet, run_dir=f"{tmp}/run"))
    train_seconds = tc.steps * tc.batch_size / result.images_per_second
    print(f"[2] {label}: {tc.steps} steps of batch {tc.batch_size} trained in {train_seconds:.1f} s "
          f"({result.images_per_second:.0f} images/s; {wall:.1f} s with checkpoints); evaluations at steps "
          f"{eval_steps[:3]}{'...' if len(eval_steps) > 3 else ''}: {n_inter} intermediate + "
          f"{len(eval_steps) - n_inter} final")

    g, d = build(base.codes, base.model, learned_std=base.loss.q_std == "learned")
    state = checkpoint.load(result.checkpoint)
    g.load_state_dict(state.generator)
    d.load_state_dict(state.discriminator)
    dataset = load_dataset(base, "cpu")
    cpu = torch.device("cpu")
    if _has_fid(base):
        net_seconds, _ = _timed(lambda: Evaluator(base, dataset, cpu).prepare_fid())
        print(f"    FID feature net trained and cached once per machine (not counted): {net_seconds:.1f} s")

    def scaled(n: int) -> int:
        return max(16, round(n * scale))  # 16 keeps every size above its config minimum

    standard_sizes = {f"eval.{k}": scaled(getattr(EvalConfig(), k))
                      for k in ("num_points", "num_test", "num_votes_train", "num_votes_eval", "fid_samples")}
    runs = [("trial sizes", base)]
    if standard:
        runs.append((f"standard sizes x{scale:g}" if scale != 1 else "standard sizes", base.replace(**standard_sizes)))
    for size_label, cfg in runs:
        evaluator = Evaluator(cfg, dataset, cpu)
        setup = 0.0
        if _has_fid(cfg):  # real-image statistics: once per run and sample size
            setup += _timed(lambda ev=evaluator: ev.prepare_fid(final=False))[0] if n_inter else 0.0
            setup += _timed(lambda ev=evaluator: ev.prepare_fid(final=True))[0]
        inter_seconds, inter = _timed(lambda ev=evaluator: ev(g, d, final=False)) if n_inter else (0.0, {})
        final_seconds, final = _timed(lambda ev=evaluator: ev(g, d, final=True))
        per_trial = setup + n_inter * inter_seconds + final_seconds
        share = per_trial / (train_seconds + per_trial)
        print(f"    {size_label}: intermediate evaluation {inter_seconds:.1f} s ({', '.join(sorted(evaluator.families(False)))}), "
              f"final {final_seconds:.1f} s (all families), FID real statistics {setup:.1f} s once")
        print(f"      evaluation per trial {per_trial:6.1f} s = {100 * per_trial / train_seconds:5.1f}% of training, "
              f"{100 * share:4.1f}% of the trial's wall time (target <= 10%)")
        print("      final: " + " ".join(f"{k.removeprefix('eval/')}={v:.3f}" for k, v in final.items()
                                         if k != "eval/seconds" and not k.endswith("_train")))
        if inter:
            print("      intermediate: " + " ".join(f"{k.removeprefix('eval/')}={v:.3f}" for k, v in inter.items()
                                                    if k != "eval/seconds" and not k.endswith("_train")))
        alone = []
        for family in sorted(evaluator.families(True)):  # where the final evaluation's time goes
            solo = Evaluator(cfg.replace(**{"eval.final": family}), dataset, cpu)
            if family == "fid":
                solo.prepare_fid(final=True)  # the feature net is cached; real statistics are once per run
            alone.append((family, _timed(lambda ev=solo: ev(g, d, final=True))[0]))
        print("      final, each family alone (encoding included in each): "
              + ", ".join(f"{family} {seconds:.1f} s" for family, seconds in alone))


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
    parser.add_argument("--sweep-budget", default=None, choices=("smoke", "cpu", "gpu"),
                        help="part 2: measure a trial of the default sweep with this budget instead of a preset "
                             "(python sweeps/lambda_search.py's trials use budget cpu)")
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
        trials = [(None, args.sweep_budget)] if args.sweep_budget else [(p, None) for p in args.preset or ["dsprites-quick"]]
        for preset, budget in trials:
            with tempfile.TemporaryDirectory() as tmp:
                label, cfg = trial_config(preset, budget, args.threads, f"{tmp}/cache", args.trial_steps)
                trial_fraction(label, cfg, args.scale, not args.skip_standard, tmp)


if __name__ == "__main__":
    main()
