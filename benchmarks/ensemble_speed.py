"""A step of K members (infogan.step) against K separate one-member steps: dispatches and steps/s.

For each recipe and each K (members with seeds 0..K-1), in one process and one run (ratios are only
meaningful within one run):
1. operator dispatches per iteration (aten calls seen by a TorchDispatchMode: a machine-independent
   proxy for kernel launches) of the eager K-member step, split into its K members' draws (each from
   its own generator, as its separate run draws) and the stacked step, against K separate
   iterations of one-member steps (a plain run's) of the same members;
2. iterations per second of the K-member step and of K separate steps run one after the other in
   this process, as model-steps/s (K x iterations/s), timed in alternating windows (a background
   load drifts through both), and the median of the windows' ratios.

The separate steps are eager; the K-member step is eager, or compiled with ``--compile inductor``
(its compute, as ``train.step_mode=compiled`` compiles it; the first iterations, compilation
included, are warm-up). With K = 1 both sides are the same step: the ratio shows the timing's noise.
Nothing is asserted.

    python benchmarks/ensemble_speed.py --tiny --ensemble 1,2,4,8          # CPU-sized, ~2 min
    python benchmarks/ensemble_speed.py --device cuda --ensemble 1,8,32,128 --recipes dsprites
    python benchmarks/ensemble_speed.py --device cuda --ensemble 8,32,128 --compile inductor
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark modules
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # infogan, when run from elsewhere

from gpu_speed import RECIPES, dispatches_per_step, recipe_config, steps_per_second  # noqa: E402

from infogan.config import Config  # noqa: E402
from infogan.data import load_dataset  # noqa: E402
from infogan.loop import resolve_device  # noqa: E402
from infogan.speeds import cpu_name  # noqa: E402
from infogan.step import InfoGANStep  # noqa: E402


def member_configs(name: str, k: int, device: torch.device, tiny: bool) -> list[Config]:
    base = recipe_config(name, device, "eager", tiny)
    return [base.replace(**{"train.seed": seed}) for seed in range(k)]


def separate_iterations(cfgs: list[Config], device: torch.device) -> Callable[[], torch.Tensor]:
    """One iteration of each member's separate run (a one-member step), one after the other."""
    dataset = load_dataset(cfgs[0], device)
    steps = [InfoGANStep([cfg], dataset, device) for cfg in cfgs]
    for step in steps:
        step.train()
    return lambda: torch.cat([step.iteration(False) for step in steps])


def measure(name: str, k: int, args: argparse.Namespace, device: torch.device) -> str:
    """One line: recipe ``name`` with K members, the K-member step against K separate steps."""
    cfgs = member_configs(name, k, device, args.tiny)
    ens = InfoGANStep(cfgs, load_dataset(cfgs[0], device), device)
    ens.train()
    for _ in range(2):  # optimiser state exists before counting
        ens.iteration(False)
    draws = ens.draw(False)
    step_count = dispatches_per_step(lambda: ens(draws))[0]  # counted eager, before any compile
    total = dispatches_per_step(lambda: ens.iteration(False))[0]
    if args.compile:  # as train.step_mode=compiled: CUDA graphs per compiled function on a GPU
        ens.compile(mode="reduce-overhead" if device.type == "cuda" else None, backend=args.compile)
    separate = separate_iterations(cfgs, device)
    for _ in range(2):
        separate()
    separate_count = dispatches_per_step(separate)[0]
    ens_rate, sep_rate, ratio = interleaved_rates(lambda: ens.iteration(False), separate, device, args)
    return (f"{name:12s} K={k:<3d} dispatches/iteration: K-member step {total:6d} (draws {total - step_count:5d} + "
            f"step {step_count:5d}), {k} separate {separate_count:6d} = {separate_count / total:5.2f}x | "
            f"model-steps/s: K-member {k * ens_rate:8.1f}, separate {k * sep_rate:8.1f}, ratio {ratio:5.2f}x")


def interleaved_rates(a: Callable[[], torch.Tensor], b: Callable[[], torch.Tensor], device: torch.device,
                      args: argparse.Namespace) -> tuple[float, float, float]:
    """Iterations/s of ``a`` and ``b`` timed in alternating windows (``args.rounds`` each, ``args.seconds``
    in all), so a background load's drift hits both: their medians and the median of the rounds' ratios."""
    window = args.seconds / (2 * args.rounds)
    rates_a, rates_b = [], []
    for i in range(args.rounds):
        rates_a.append(steps_per_second(a, device, window, args.warmup if i == 0 else 0))
        rates_b.append(steps_per_second(b, device, window, args.warmup if i == 0 else 0))
    ratios = [x / y for x, y in zip(rates_a, rates_b, strict=True)]
    return statistics.median(rates_a), statistics.median(rates_b), statistics.median(ratios)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated: " + ", ".join(RECIPES))
    parser.add_argument("--ensemble", default="1,2,4,8", help="comma-separated K (members per step)")
    parser.add_argument("--seconds", type=float, default=6.0, help="timing per line (both sides, all rounds)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timing windows per side")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--tiny", action="store_true", help="width 0.125, batch 16: a CPU-sized run")
    parser.add_argument("--compile", default="", metavar="BACKEND",
                        help="compile the K-member step with torch.compile's backend BACKEND (inductor; "
                             "aot_eager traces without a compiler)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as train() does
    args.recipes = [r for r in args.recipes.split(",") if r]
    args.ensemble = [int(k) for k in args.ensemble.split(",") if k]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(f"device: {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{'tiny models' if args.tiny else 'full recipes'}, fp32, K-member step {args.compile or 'eager'}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}",
          flush=True)
    for name in args.recipes:
        for k in args.ensemble:
            print(measure(name, k, args, device), flush=True)


if __name__ == "__main__":
    main()
