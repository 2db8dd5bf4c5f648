"""Search comparison at an equal compute budget: TPE + ASHA against random search without early stopping.

Compute is counted in trial-steps (the training steps all trials ran). The TPE+ASHA sweep runs
first with ``--num-samples`` trials; its total compute sets the budget, and random search gets as
many full-length trials as fit in it (at least one). Both sweeps use the same space, seed,
evaluation and objective (``--metric``, default ``eval/mig``), through ``sweeps/lambda_search.py``.

Printed: each method's compute, best objective, and the compute (in the order results arrived)
at which it first reached the target = the lower of the two bests ("compute to reach the best MIG
both found"), plus the best of each at the smaller of the two computes ("best at equal compute").

    python benchmarks/search_comparison.py                         # ~10 minutes on 2 cores
    python benchmarks/search_comparison.py --num-samples 24 --steps 600 --width 0.5
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sweeps import lambda_search


def _rows(experiment: Path) -> list[dict[str, Any]]:
    """Every reported result of every trial, in arrival order."""
    rows = []
    for result in experiment.glob("trial_*/result.json"):
        rows += [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
    return sorted(rows, key=lambda r: r["timestamp"])  # whole seconds: ties keep file order


def curve(experiment: Path, metric: str, mode: str) -> list[tuple[int, float]]:
    """(cumulative trial-steps, best objective so far) after each result, in arrival order."""
    sign = 1.0 if mode == "max" else -1.0
    last_step: dict[str, int] = {}
    compute, best, out = 0, -math.inf, []
    for row in _rows(experiment):
        step = int(row["step"])
        compute += step - last_step.get(row["trial_id"], 0)
        last_step[row["trial_id"]] = step
        value = row.get(metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            best = max(best, sign * value)
        out.append((compute, sign * best if math.isfinite(best) else float("nan")))
    return out


def compute_to_reach(points: list[tuple[int, float]], target: float, mode: str) -> int | None:
    """The first compute at which the best-so-far reached ``target``."""
    for compute, best in points:
        if math.isfinite(best) and (best >= target if mode == "max" else best <= target):
            return compute
    return None


def best_at(points: list[tuple[int, float]], compute: int) -> float:
    """The best-so-far once ``compute`` trial-steps were spent."""
    values = [best for c, best in points if c <= compute]
    return values[-1] if values else float("nan")


def run(name: str, root: Path, common: list[str], extra: list[str]) -> Path:
    """Run one sweep through the CLI; returns its Tune experiment directory."""
    code = lambda_search.main([*common, "--name", name, *extra])
    if code != 0:
        raise SystemExit(f"sweep {name} failed with exit code {code}")
    return root / "tune" / name


def main(argv: Sequence[str] | None = None) -> int:
    """Run both sweeps and print the comparison as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-samples", type=int, default=8, help="TPE+ASHA trials (sets the compute budget)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--metric", default="eval/mig")
    parser.add_argument("--mode", default="max", choices=["min", "max"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-concurrent", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="search-comparison-") as tmp:
        root = Path(tmp)
        common = [
            "--budget", "smoke", "--steps", str(args.steps), "--metric", args.metric, "--mode", args.mode,
            "--seed", str(args.seed), "--max-concurrent", str(args.max_concurrent),
            "--storage-path", str(root / "tune"), "--tracking-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--set", f"model.width={args.width}", "--set", f"train.eval_every={args.eval_every}",
            "--set", f"train.checkpoint_every={args.eval_every}", "--set", f"eval.cache_dir={root / 'cache'}",
        ]
        tpe_dir = run("tpe_asha", root, common, ["--search", "tpe", "--scheduler", "asha",
                                                 "--num-samples", str(args.num_samples)])
        tpe = curve(tpe_dir, args.metric, args.mode)
        budget = tpe[-1][0]
        n_random = max(1, budget // args.steps)  # never more compute than TPE+ASHA spent (but one trial)
        random_dir = run("random_fifo", root, common, ["--search", "random", "--scheduler", "fifo",
                                                       "--num-samples", str(n_random)])
        rnd = curve(random_dir, args.metric, args.mode)
    bests = {"tpe_asha": tpe[-1][1], "random_fifo": rnd[-1][1]}
    target = min(bests.values()) if args.mode == "max" else max(bests.values())
    equal = min(tpe[-1][0], rnd[-1][0])
    report = {
        "metric": args.metric, "mode": args.mode, "steps_per_trial": args.steps,
        "tpe_asha": {"trials": args.num_samples, "compute_trial_steps": tpe[-1][0], "best": bests["tpe_asha"],
                     "compute_to_reach_target": compute_to_reach(tpe, target, args.mode),
                     "best_at_equal_compute": best_at(tpe, equal)},
        "random_fifo": {"trials": n_random, "compute_trial_steps": rnd[-1][0], "best": bests["random_fifo"],
                        "compute_to_reach_target": compute_to_reach(rnd, target, args.mode),
                        "best_at_equal_compute": best_at(rnd, equal)},
        "target": target, "equal_compute": equal,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
