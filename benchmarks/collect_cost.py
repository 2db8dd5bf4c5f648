"""Benchmark: the cost of ``analysis collect`` on a large synthetic sweep in a real MLflow store.

Logs N synthetic trials × S steps (a few train metrics every step, eval metrics every
``--eval-every`` steps) to a local SQLite MLflow store under a temporary folder with
``MlflowClient.log_batch``, then times ``analysis.collect.collect`` writing both Parquet tables.
Prints both times; asserts nothing (numbers depend on the machine).

    python benchmarks/collect_cost.py                      # 1,000 trials x 200 steps
    python benchmarks/collect_cost.py --trials 100         # quicker
    python benchmarks/collect_cost.py --keep /tmp/bench    # keep the store and tables
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark.

    Args:
        argv: arguments (default: sys.argv[1:]).

    Returns:
        Exit code.
    """
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=1000, help="trials to log (default 1000)")
    p.add_argument("--steps", type=int, default=200, help="logged steps per trial (default 200)")
    p.add_argument("--eval-every", type=int, default=20, help="steps between eval metrics (default 20)")
    p.add_argument("--keep", default=None, help="folder to keep the store and tables in (default: a temp dir, removed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)

    from analysis.collect import collect
    from analysis.synthetic import log_synthetic_sweep

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="collect_cost_"))
    work.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    try:
        t0 = time.perf_counter()
        sweep = log_synthetic_sweep(uri, "collect_cost", n_trials=args.trials, steps=args.steps,
                                    eval_every=args.eval_every, lambdas=(0.01, 0.03, 0.1, 0.3, 1.0),
                                    seeds=(0, 1, 2), progress=not args.no_progress)
        t_log = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = collect(uri, sweep=sweep.name, out_dir=work / "tables", progress=not args.no_progress)
        t_collect = time.perf_counter() - t0
        print(f"logged {args.trials} trials x {args.steps} steps ({res.curves.num_rows} metric points) "
              f"to {uri} in {t_log:.1f} s")
        print(f"collect: {res.trials.num_rows} trials, {res.curves.num_rows} curve rows in {t_collect:.1f} s "
              f"(target < 60 s)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
