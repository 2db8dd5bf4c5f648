"""The sweep's command line: ``python sweeps/lambda_search.py`` / ``infogan-sweep``.

Resolves the flags into ``SweepSettings`` and a validated search space (every mistake is one line
naming the flag or key, exit 2, before anything runs), then hands them to ``sweeps.tuner``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infogan import speeds
from infogan.config import flat_value
from sweeps import packing, record, spaces, tracking
from sweeps.checks import SweepCheckError
from sweeps.settings import (
    DEFAULT_METRIC,
    DEFAULT_METRICS,
    DEFAULT_MODE,
    DEFAULT_MULTI_OBJECTIVE,
    SweepSettings,
)
from sweeps.storage import read_storage_json
from sweeps.tuner import run_sweep


def build_parser() -> argparse.ArgumentParser:
    """The ``lambda_search`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python sweeps/lambda_search.py",
        description="Search InfoGAN's lambdas, code sizes and learning rates: Optuna TPE inside Ray Tune, "
                    "ASHA early stopping, every trial tracked in MLflow (one parent run per sweep).",
        epilog=(
            "examples:\n"
            "  python sweeps/lambda_search.py                      # CPU-sized sweep on dSprites, local Ray + MLflow\n"
            "  python sweeps/lambda_search.py --smoke-test         # 2 tiny trials (CI)\n"
            "  python sweeps/lambda_search.py --dataset digits --num-samples 20 --steps 1500\n"
            "  python sweeps/lambda_search.py --set loss.q_std=learned --range loss.lambda_cont=0.001:0.5:log\n"
            "  python sweeps/lambda_search.py --range train.batch_size=32,64 --space my_space.yaml\n"
            "  python sweeps/lambda_search.py --multi-objective eval/fid:min,eval/mig:max\n"
            "  python sweeps/lambda_search.py --search grid --range loss.lambda_cont=0.01,0.1,1 --seeds 3\n"
            "  python sweeps/lambda_search.py --resume --name lambda_search   # continue an interrupted sweep\n"
            "  python sweeps/lambda_search.py --address auto --budget gpu --gpus-per-trial 0.5 \\\n"
            "      --storage-path /mnt/shared/ray_results --tracking-uri http://127.0.0.1:5000   # on a cluster\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # --num-sample must not silently mean --num-samples
    )
    add = parser.add_argument
    add("--name", default=None, help="sweep name: Tune experiment directory and MLflow experiment (default lambda_search)")
    add("--dataset", default="dsprites", choices=["dsprites", "digits", "mnist", "fashion_mnist"],
        help="dataset whose base space is searched (mnist needs --set data.root=DIR)")
    cpu, gpu = spaces.BUDGETS["cpu"], spaces.BUDGETS["gpu"]
    gpu_time = speeds.describe(gpu["fixed"]["train.steps"], speeds.H200_EIGHT_PROCESSES, gpu["num_samples"])
    add("--budget", default=None, choices=sorted(spaces.BUDGETS),
        help=f"training budget preset: smoke (CI), cpu (default: {cpu['num_samples']} search trials of "
             f"{cpu['fixed']['train.steps']:,} steps, then {cpu['confirm']} configs and the recipe x "
             f"{cpu['confirm_seeds']} seeds; 6.9 min measured on 2 cores), gpu (a cluster: "
             f"{gpu['num_samples']} trials of {gpu['fixed']['train.steps']:,} steps; before early stopping, {gpu_time}; then "
             f"{gpu['confirm']} configs and the recipe x {gpu['confirm_seeds']} seeds)")
    add("--steps", type=int, default=None, help="training steps per trial (overrides the budget's)")
    add("--num-samples", type=int, default=None, help="number of trials (default from the budget)")
    add("--max-concurrent", type=int, default=None, help="trials running at once (default from the budget)")
    add("--metric", default=None, help=f"objective metric key (default {DEFAULT_METRIC}; any reported eval/ or train/ key)")
    add("--mode", default=DEFAULT_MODE, choices=["min", "max"], help=f"objective direction (default {DEFAULT_MODE})")
    add("--multi-objective", nargs="?", const=DEFAULT_MULTI_OBJECTIVE, default=None, metavar="M:MODE,...",
        help=f"optimise several metrics (Pareto front; no ASHA). Bare flag: {DEFAULT_MULTI_OBJECTIVE}")
    add("--search", default="tpe", choices=["tpe", "random", "nsga2", "grid"],
        help="sampler: tpe (seeded, multivariate; default), random (no early stopping), nsga2, grid (every "
             "combination of the --range choices; ranges must be choices)")
    add("--seeds", type=int, default=1, metavar="N",
        help="run every sampled config with N training seeds (train.seed, +1, ...) as N trials sharing a "
             "config id, for seed spread; the searcher learns from their mean (default 1)")
    add("--confirm", type=int, default=None, metavar="K",
        help="after the search, re-train its K best configs and the recipe's own config with fresh seeds at the "
             f"full budget, and state the answer with intervals (default {cpu['confirm']}; 0: no confirmation; "
             "several objectives: K configs spread along the Pareto front)")
    add("--confirm-seeds", type=int, default=None, metavar="N",
        help=f"seeds per confirmed config (default {cpu['confirm_seeds']}; at least 2 for an interval)")
    add("--confirm-per", default=None, metavar="KEY",
        help="confirm the K best configs of every level of a searched KEY (e.g. loss.lambda_cr: the best "
             "InfoGAN and the best InfoGAN-CR at equal budget)")
    add("--scheduler", default=None, choices=["asha", "fifo"],
        help="asha (default with tpe) or fifo (no early stopping; default with random and multi-objective)")
    add("--grace-period", type=int, default=0,
        help="ASHA: steps before the first cut (default: a third of --steps); ASHA's clock is training "
             "work in images (train/images), so recipes with more G steps per D step are cut at equal work")
    add("--seed", type=int, default=0, help="sampler seed (training seeds stay train.seed)")
    add("--set", action="append", default=[], metavar="KEY=VALUE", help="fix a config key (repeatable)")
    add("--range", action="append", default=[], metavar="KEY=LO:HI[:log]|KEY=A,B,C",
        help="search a config key over a range or choices (repeatable)")
    add("--space", default=None, metavar="FILE", help="YAML/JSON space overrides (applied before --range/--set)")
    add("--points-to-evaluate", default=None, metavar="JSON|@FILE",
        help="configs to try first, e.g. '[{\"optim.lr_d\": 0.0002}]' (the rest of each is sampled)")
    add("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial (also torch threads; default 1)")
    add("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial; fractions like 0.5 share a GPU")
    add("--ensemble", default="auto", metavar="K|auto",
        help="train K trials at a time in one worker as the members of one step (K-times larger kernels: a "
             "GPU is launch-bound on one model); each stays its own Tune trial, reported and stopped by ASHA "
             "on its own. A worker holds --cpus-per-trial/--gpus-per-trial; its members may differ only in "
             "seeds, loss weights, learning rates and betas. auto (default): pack where packing was measured "
             "faster on the trials' kind of device (infogan/speeds.py; a config's seeds together with "
             "--seeds), else one trial per process: today everywhere, as no measurement shows a gain")
    add("--max-failures", type=int, default=2, help="retries of a failed trial from its last checkpoint")
    add("--address", default=None, help="Ray cluster to join ('auto' or ray://host:10001); default a local Ray")
    add("--wait-for-resources", action="store_true",
        help="start even if the cluster cannot place a trial now (an autoscaling cluster adds nodes on demand); "
             "without it such a request is an error, not an endless wait")
    add("--storage-path", default=None,
        help="Tune storage: shared storage (NFS path or s3://...) on clusters (default ./runs/sweeps)")
    add("--tracking-uri", default=None,
        help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db)")
    add("--optuna-storage", default=None, metavar="URL",
        help="Optuna RDB storage for the sweep's study, watchable with `optuna-dashboard URL` (default "
             "$OPTUNA_STORAGE, else sqlite optuna.db beside a local MLflow store or in the Tune folder)")
    add("--resume", action="store_true", help="continue the sweep --name from its Tune state (finished trials kept)")
    add("--smoke-test", action="store_true", help="two tiny trials in a temporary storage dir (CI)")
    return parser


def _parse_objectives(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    if not args.multi_objective:
        return [args.metric or DEFAULT_METRICS[args.dataset]], [args.mode]
    metrics, modes = [], []
    for item in args.multi_objective.split(","):
        metric, sep, mode = item.strip().rpartition(":")
        if not sep or mode not in ("min", "max") or not metric:
            raise ValueError(f"--multi-objective expects METRIC:min|max,..., got {item!r}")
        metrics.append(metric)
        modes.append(mode)
    if len(metrics) < 2:
        raise ValueError("--multi-objective needs at least two METRIC:MODE pairs")
    return metrics, modes


def _parse_points(text: str | None) -> list[dict[str, Any]]:
    if not text:
        return []
    raw = Path(text[1:]).read_text() if text.startswith("@") else text
    points = json.loads(raw)
    if isinstance(points, dict):
        points = [points]
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise ValueError("--points-to-evaluate expects a JSON object or a list of objects")
    return [{k: flat_value(k, v) for k, v in p.items()} for p in points]


def settings_from_args(args: argparse.Namespace) -> tuple[SweepSettings, spaces.SearchSpace]:
    """Resolve the CLI into sweep settings and a validated search space.

    Raises:
        ValueError: a bad flag, key or value (the message names it).
    """
    for flag, value, ok, allowed in (
        ("--num-samples", args.num_samples, args.num_samples is None or args.num_samples >= 1, ">= 1"),
        ("--max-concurrent", args.max_concurrent, args.max_concurrent is None or args.max_concurrent >= 1, ">= 1"),
        ("--cpus-per-trial", args.cpus_per_trial, args.cpus_per_trial > 0, "> 0"),
        ("--gpus-per-trial", args.gpus_per_trial, args.gpus_per_trial >= 0, ">= 0"),
        ("--max-failures", args.max_failures, args.max_failures >= -1, ">= 0, or -1 for unlimited retries"),
        ("--grace-period", args.grace_period, args.grace_period >= 0, ">= 0 (0: a third of the steps)"),
        ("--steps", args.steps, args.steps is None or args.steps >= 1, ">= 1"),
        ("--seeds", args.seeds, args.seeds >= 1, ">= 1"),
        ("--confirm", args.confirm, args.confirm is None or args.confirm >= 0, ">= 0 (0: no confirmation)"),
        ("--confirm-seeds", args.confirm_seeds, args.confirm_seeds is None or args.confirm_seeds >= 2,
         ">= 2 (one seed has no spread; 3 or more for an interval worth reading)"),
    ):
        if not ok:
            raise ValueError(f"{flag} {value}: allowed is {allowed}")
    budget_name = args.budget or ("smoke" if args.smoke_test else "cpu")
    budget = spaces.BUDGETS[budget_name]
    metrics, modes = _parse_objectives(args)
    space = spaces.base_space(args.dataset).with_fixed(budget["fixed"])
    space = space.with_fixed({"train.threads": max(1, int(args.cpus_per_trial))})
    if args.steps is not None:
        space = space.with_fixed({"train.steps": flat_value("train.steps", args.steps)})
    if args.space:
        space = spaces.load_space_file(args.space, base=space)
    ranges = dict(spaces.parse_range(r) for r in args.range)
    if args.search == "grid":
        # A grid spans exactly the --range keys; the base space's other ranges stay at the recipe.
        recipe = spaces.recipe(args.dataset)
        space = space.with_fixed({k: flat_value(k, recipe[k]) for k in space.params if k not in ranges})
    space = space.with_params(ranges)
    space = space.with_fixed(dict(spaces.parse_set(s) for s in args.set))
    space.validate()
    if args.confirm_per and args.confirm_per not in space.params:
        raise ValueError(f"--confirm-per {args.confirm_per}: not a searched key of this sweep "
                         f"(searched: {', '.join(space.params) or 'none'})")
    steps = int(space.fixed.get("train.steps", 0)) or space.sample_config().train.steps
    ensemble = packing.resolve_ensemble(packing.parse_ensemble(str(args.ensemble)), space.sample_config(),
                                        list(space.params), args.seeds, args.gpus_per_trial)
    search = args.search
    # ASHA by default where it can rank one objective over single seeds and the budget's rungs are
    # not measured to rank by luck (spaces.BUDGETS' "early_stopping").
    asha_fits = search == "tpe" and len(metrics) == 1 and args.seeds == 1 and budget.get("early_stopping", True)
    scheduler = args.scheduler or ("asha" if asha_fits else "fifo")
    num_samples = budget["num_samples"] if args.num_samples is None else args.num_samples
    if search == "grid" and args.num_samples is None and all(p.choices for p in space.params.values()):
        num_samples = math.prod(len(p.choices or ()) for p in space.params.values())
    settings = SweepSettings(
        name=args.name or ("smoke_test" if args.smoke_test else "lambda_search"),
        dataset=args.dataset, budget=budget_name, steps=steps,
        num_samples=num_samples, seeds=args.seeds,
        # With --ensemble K, K trials run in each of the budget's workers.
        max_concurrent=budget["max_concurrent"] * ensemble if args.max_concurrent is None else args.max_concurrent,
        ensemble=ensemble,
        confirm=budget["confirm"] if args.confirm is None else args.confirm,
        confirm_seeds=budget["confirm_seeds"] if args.confirm_seeds is None else args.confirm_seeds,
        confirm_per=args.confirm_per or "",
        metrics=metrics, modes=modes, search=search, scheduler=scheduler, seed=args.seed,
        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial, max_failures=args.max_failures,
        grace_period=args.grace_period, storage_path=args.storage_path or "", address=args.address or "",
        tracking_uri=tracking.resolve_tracking_uri(args.tracking_uri),
        optuna_storage=args.optuna_storage or os.environ.get("OPTUNA_STORAGE", ""),
        wait_for_resources=args.wait_for_resources,
        points_to_evaluate=_parse_points(args.points_to_evaluate),
    )
    return settings, space


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
    Returns:
        The process exit code.
    """
    from infogan.cli import parse_args

    args = parse_args(build_parser(), argv, config_flags=False)
    temp_storage = None
    if args.smoke_test and args.resume and not args.storage_path:
        print("error: --smoke-test keeps its state in a temporary folder that is gone when it ends: there is "
              "nothing to resume (pass --storage-path to keep a smoke sweep)", file=sys.stderr)
        return 2
    try:
        settings, space = settings_from_args(args)
        if not settings.storage_path:
            if args.smoke_test:
                temp_storage = tempfile.mkdtemp(prefix="infogan-smoke-")
                settings.storage_path = temp_storage
            else:
                settings.storage_path = str(Path("runs/sweeps").resolve())
        if args.resume:
            saved = read_storage_json(settings.storage_path, settings.name, record.ARTIFACT_SWEEP_CONFIG)
            if saved is None:
                print(f"error: nothing to resume: no sweep {settings.name!r} in {settings.storage_path}", file=sys.stderr)
                return 2
            restored = SweepSettings(**saved["settings"])
            restored.storage_path = settings.storage_path
            restored.address = settings.address
            if args.tracking_uri:
                restored.tracking_uri = settings.tracking_uri
            settings = restored
            space = spaces.space_from_json(saved["space"])
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        return run_sweep(settings, space, resume=args.resume)
    except SweepCheckError as err:  # the sweep's own consistency checks, before Ray starts
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if temp_storage:
            shutil.rmtree(temp_storage, ignore_errors=True)
