"""Tune overhead: one trial's wall time inside a sweep ÷ the same training run standalone, in one run.

Both runs use the same flat config (same steps, evaluations, checkpoints, figures, thread count):
- standalone: ``infogan.loop.train(cfg, run_dir=...)`` in this process;
- inside Tune: a one-trial ``sweeps/lambda_search.py`` sweep (every searched key fixed, FIFO, local
  Ray, a temporary sqlite MLflow store), so the trial pays for everything a real one does:
  ``ray.tune.report`` with checkpoints, MLflow params/metrics/figures/checkpoint artifacts.

The trial's wall time is its MLflow child run's span (created when the trainable starts, ended
when it returns). The driver's whole wall time (Ray start-up, actor start, Tune's bookkeeping)
is printed too: a fixed per-sweep/per-trial cost that long trials amortise. Target: ratio <= 1.05.
A warm-up run first builds the FID feature net's cache so neither timed run trains it.

    python benchmarks/tune_overhead.py                     # ~3-5 minutes on 2 cores
    python benchmarks/tune_overhead.py --steps 2000 --eval-every 500 --width 1.0
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from infogan.config import Config, value_text
from infogan.loop import train
from sweeps import lambda_search, record, spaces, tracking


def flat_config(args: argparse.Namespace, cache_dir: str) -> dict[str, Any]:
    """The benchmark's config: the sweep's dSprites space at the smoke test's evaluation sizes."""
    space = spaces.base_space("dsprites").with_fixed(spaces.BUDGETS["smoke"]["fixed"])
    flat = dict(space.sample_config().to_flat())
    flat.update({
        "model.width": args.width, "train.steps": args.steps, "train.eval_every": args.eval_every,
        "train.checkpoint_every": args.eval_every, "train.batch_size": args.batch_size, "train.threads": args.threads,
        "eval.cache_dir": cache_dir, "train.device": "cpu", "codes.categorical": [3],
    })
    return flat


def standalone(flat: dict[str, Any], root: Path) -> float:
    """Seconds for ``train()`` with a run directory (figures, checkpoints, metrics written)."""
    torch.set_num_threads(flat["train.threads"])
    start = time.perf_counter()
    result = train(Config.from_flat(flat), run_dir=root / "standalone")
    elapsed = time.perf_counter() - start
    assert result.status == "finished", result.message
    return elapsed


def in_tune(flat: dict[str, Any], root: Path) -> tuple[float, float]:
    """(trial seconds, driver seconds) for a one-trial sweep of the same config."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    sets = [f"{k}={value_text(v)}" for k, v in flat.items()]
    argv = ["--name", "overhead", "--num-samples", "1", "--max-concurrent", "1", "--search", "random",
            "--scheduler", "fifo", "--storage-path", str(root / "tune"), "--tracking-uri", uri,
            "--cpus-per-trial", str(flat["train.threads"]), "--budget", "smoke"]
    for item in sets:
        argv += ["--set", item]
    start = time.perf_counter()
    code = lambda_search.main(argv)
    driver = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"the sweep failed with exit code {code}")
    client = tracking.client(uri)
    experiment = client.get_experiment_by_name("overhead")
    (run,) = [r for r in client.search_runs([experiment.experiment_id])
              if r.data.tags.get(record.TAG_ROLE) == record.ROLE_TRIAL]
    return (run.info.end_time - run.info.start_time) / 1000.0, driver


def main(argv: Sequence[str] | None = None) -> int:
    """Run the warm-up, the standalone run and the one-trial sweep; print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tune-overhead-") as tmp:
        root = Path(tmp)
        flat = flat_config(args, str(root / "cache"))
        train(Config.from_flat({**flat, "train.steps": 1, "train.eval_every": 1}))  # warm-up: FID net cache
        alone = standalone(flat, root)
        trial, driver = in_tune(flat, root)
    report = {
        "steps": args.steps, "threads": args.threads, "standalone_s": round(alone, 2),
        "tune_trial_s": round(trial, 2), "ratio_trial_over_standalone": round(trial / alone, 3),
        "tune_driver_s": round(driver, 2), "ratio_driver_over_standalone": round(driver / alone, 3),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
