"""The lambda search: Optuna (TPE) inside Ray Tune with ASHA, tracked in MLflow. ``main(argv)`` is the CLI.

``python sweeps/lambda_search.py`` searches the InfoGAN's lambdas, code sizes and learning rates on
procedural dSprites with a CPU-sized budget (local Ray, local MLflow store) and prints where to
look. The same command runs on a Ray cluster (``--address auto --storage-path <shared>``), resumes
an interrupted sweep (``--resume``), and runs CI's two tiny trials (``--smoke-test``).

Owns: the sweep settings, building the searcher/scheduler/Tuner (or restoring it), the parent
MLflow run, and the end-of-sweep summary. The search space lives in ``sweeps.spaces``, the trial in
``sweeps.trainable``, the MLflow contract in ``sweeps.tracking``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

# Runnable as a script (``python sweeps/lambda_search.py``): the script's own directory is put on
# sys.path first, which would let sweeps/*.py shadow top-level modules; the package is imported by
# its full name, so drop that entry.
if __name__ == "__main__" and sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from sweeps import spaces, tracking  # noqa: E402

# The default objective per dataset (all "max"): MIG where ground-truth factors exist (dSprites),
# categorical accuracy on labelled datasets (it needs a categorical code).
DEFAULT_METRICS = {"dsprites": "eval/mig", "digits": "eval/cat_accuracy", "mnist": "eval/cat_accuracy",
                   "fashion_mnist": "eval/cat_accuracy"}
DEFAULT_METRIC, DEFAULT_MODE = DEFAULT_METRICS["dsprites"], "max"
DEFAULT_MULTI_OBJECTIVE = "eval/fid:min,eval/mig:max"
EXIT_INTERRUPTED = 130


@dataclass
class SweepSettings:
    """Everything that defines a sweep apart from its search space (logged as ``sweep.*`` params)."""

    name: str = "lambda_search"
    dataset: str = "dsprites"
    budget: str = "cpu"
    steps: int = 600
    num_samples: int = 12  # sampled configs; Tune runs num_samples * seeds trials
    max_concurrent: int = 2
    seeds: int = 1  # training seeds per sampled config (Tune's Repeater), for seed spread
    metrics: list[str] = field(default_factory=lambda: [DEFAULT_METRIC])
    modes: list[str] = field(default_factory=lambda: [DEFAULT_MODE])
    search: str = "tpe"
    scheduler: str = "asha"
    seed: int = 0
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 2
    grace_period: int = 0  # ASHA's first rung in steps; 0 = a quarter of the budget
    reduction_factor: int = 3
    storage_path: str = ""
    tracking_uri: str = ""
    optuna_storage: str = ""  # the study's RDB storage URL ("" = in memory)
    wait_for_resources: bool = False
    address: str = ""
    points_to_evaluate: list[dict[str, Any]] = field(default_factory=list)

    @property
    def multi_objective(self) -> bool:
        return len(self.metrics) > 1

    def params(self) -> dict[str, Any]:
        """The settings as MLflow params (without the ``sweep.`` prefix)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("points_to_evaluate",)}
        out["metric"] = ",".join(self.metrics)
        out["mode"] = ",".join(self.modes)
        del out["metrics"], out["modes"]
        out["points_to_evaluate"] = len(self.points_to_evaluate)
        return out


# --------------------------------------------------------------------------------------------
# CLI


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
    add("--budget", default=None, choices=sorted(spaces.BUDGETS),
        help="training budget preset: smoke (CI), cpu (default, ~10-15 min on 2 cores), gpu (a cluster)")
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
    add("--scheduler", default=None, choices=["asha", "fifo"],
        help="asha (default with tpe) or fifo (no early stopping; default with random and multi-objective)")
    add("--grace-period", type=int, default=0,
        help="ASHA: steps before the first cut (default: a quarter of --steps); ASHA's clock is training "
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
    return [{k: spaces.typed_choice(k, v) for k, v in p.items()} for p in points]


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
        ("--grace-period", args.grace_period, args.grace_period >= 0, ">= 0 (0: a quarter of the steps)"),
        ("--steps", args.steps, args.steps is None or args.steps >= 1, ">= 1"),
    ):
        if not ok:
            raise ValueError(f"{flag} {value}: allowed is {allowed}")
    budget_name = args.budget or ("smoke" if args.smoke_test else "cpu")
    budget = spaces.BUDGETS[budget_name]
    metrics, modes = _parse_objectives(args)
    space = spaces.base_space(args.dataset).with_fixed(budget["fixed"])
    space = space.with_fixed({"train.threads": max(1, int(args.cpus_per_trial))})
    if args.steps is not None:
        space = space.with_fixed({"train.steps": spaces.typed_value("train.steps", args.steps)})
    if args.space:
        space = spaces.load_space_file(args.space, base=space)
    ranges = dict(spaces.parse_range(r) for r in args.range)
    if args.search == "grid":
        # A grid spans exactly the --range keys; the base space's other ranges stay at the recipe.
        recipe = spaces.recipe(args.dataset)
        space = space.with_fixed({k: spaces.typed_value(k, recipe[k]) for k in space.params if k not in ranges})
    space = space.with_params(ranges)
    space = space.with_fixed(dict(spaces.parse_set(s) for s in args.set))
    space.validate()
    sample = space.sample_config().train
    steps = int(space.fixed.get("train.steps", 0)) or sample.steps
    if sample.eval_every % sample.checkpoint_every:
        # Tune receives a checkpoint only with a report (one per evaluation): checkpoints written
        # between reports would never reach Tune, and a retried trial would restart further back.
        raise ValueError(f"train.eval_every={sample.eval_every} must be a multiple of "
                         f"train.checkpoint_every={sample.checkpoint_every} in a sweep")
    search = args.search
    scheduler = args.scheduler or ("asha" if search == "tpe" and len(metrics) == 1 and args.seeds == 1 else "fifo")
    if scheduler == "asha" and len(metrics) > 1:
        raise ValueError("ASHA ranks trials by one metric: use --scheduler fifo with --multi-objective")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if args.seeds > 1 and len(metrics) > 1:
        raise ValueError("--seeds averages one objective over seeds for the searcher: not with --multi-objective")
    if args.seeds > 1 and scheduler == "asha":
        raise ValueError("--seeds with ASHA would cut some seeds of a config and not others: use --scheduler fifo")
    num_samples = budget["num_samples"] if args.num_samples is None else args.num_samples
    if search == "grid":
        not_choices = [k for k, p in space.params.items() if p.choices is None]
        if not space.params or not_choices:
            raise ValueError("--search grid needs every searched key given as choices (--range KEY=a,b,c); "
                             f"ranges: {', '.join(not_choices) or 'none searched'}")
        num_samples = math.prod(len(p.choices or ()) for p in space.params.values()) if args.num_samples is None \
            else args.num_samples
    settings = SweepSettings(
        name=args.name or ("smoke_test" if args.smoke_test else "lambda_search"),
        dataset=args.dataset, budget=budget_name, steps=steps,
        num_samples=num_samples, seeds=args.seeds,
        max_concurrent=budget["max_concurrent"] if args.max_concurrent is None else args.max_concurrent,
        metrics=metrics, modes=modes, search=search, scheduler=scheduler, seed=args.seed,
        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial, max_failures=args.max_failures,
        grace_period=args.grace_period, storage_path=args.storage_path or "", address=args.address or "",
        tracking_uri=tracking.resolve_tracking_uri(args.tracking_uri),
        optuna_storage=args.optuna_storage or os.environ.get("OPTUNA_STORAGE", ""),
        wait_for_resources=args.wait_for_resources,
        points_to_evaluate=_parse_points(args.points_to_evaluate),
    )
    if settings.num_samples < 1 or settings.max_concurrent < 1:
        raise ValueError("--num-samples and --max-concurrent must be >= 1")
    return settings, space


# --------------------------------------------------------------------------------------------
# Storage next to Tune's state (local paths or URIs such as s3://)


def _storage_fs(storage_path: str) -> tuple[Any, str]:
    import pyarrow.fs

    if "://" in storage_path:
        fs, root = pyarrow.fs.FileSystem.from_uri(storage_path)
        return fs, root.rstrip("/")
    return pyarrow.fs.LocalFileSystem(), str(Path(storage_path).resolve())


def read_storage_json(storage_path: str, name: str, filename: str) -> dict[str, Any] | None:
    """``<storage>/<name>/<filename>`` as JSON, or None when missing."""
    import pyarrow.fs

    fs, root = _storage_fs(storage_path)
    path = f"{root}/{name}/{filename}"
    if fs.get_file_info(path).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(path) as fh:
        return json.loads(fh.read().decode())


def write_storage_json(storage_path: str, name: str, filename: str, payload: dict[str, Any]) -> None:
    """Write ``<storage>/<name>/<filename>`` (via a temporary name on local disks)."""
    fs, root = _storage_fs(storage_path)
    fs.create_dir(f"{root}/{name}", recursive=True)
    data = json.dumps(payload, indent=2, sort_keys=True, default=str).encode()
    tmp = f"{root}/{name}/.{filename}.tmp"
    with fs.open_output_stream(tmp) as fh:
        fh.write(data)
    fs.move(tmp, f"{root}/{name}/{filename}")


# --------------------------------------------------------------------------------------------
# Tune


def startup_trials(num_samples: int) -> int:
    """TPE's random start-up trials: a third of the sweep, between 3 and Optuna's default 10."""
    return min(10, max(3, num_samples // 3))


def sampler_options(settings: SweepSettings) -> dict[str, Any]:
    """The options of the sweep's sampler (seeded; TPE multivariate with a short start-up)."""
    if settings.search == "tpe":
        # Multivariate TPE models the lambdas and learning rates jointly (they interact). Its
        # random start-up phase (Optuna's default: 10 trials) is shortened for small sweeps, or a
        # 12-trial CPU sweep would be random search with TPE guiding the last two trials only.
        return {"seed": settings.seed, "multivariate": True, "n_startup_trials": startup_trials(settings.num_samples)}
    return {"seed": settings.seed}


def make_sampler(settings: SweepSettings, space: spaces.SearchSpace | None = None) -> Any:
    """The Optuna sampler ``--search`` names, with ``sampler_options``."""
    import optuna

    options = sampler_options(settings)
    if settings.search == "random":
        return optuna.samplers.RandomSampler(**options)
    if settings.search == "grid":
        if space is None:
            raise ValueError("a grid sampler needs the search space")
        return optuna.samplers.GridSampler({k: list(p.choices or ()) for k, p in space.params.items()}, **options)
    if settings.search == "nsga2":
        return optuna.samplers.NSGAIISampler(**options)
    return optuna.samplers.TPESampler(**options)


def build_searcher(settings: SweepSettings, space: spaces.SearchSpace) -> Any:
    """OptunaSearch over the define-by-run space, with a seeded sampler and a concurrency limit."""
    import optuna
    from ray.tune.search import ConcurrencyLimiter, Repeater
    from ray.tune.search.optuna import OptunaSearch

    sampler = make_sampler(settings, space)
    metric: str | list[str] = settings.metrics if settings.multi_objective else settings.metrics[0]
    mode: str | list[str] = settings.modes if settings.multi_objective else settings.modes[0]
    # In a database the study outlives the process: optuna-dashboard can watch it and the
    # parent run's importance plot reads it.
    storage = optuna.storages.RDBStorage(settings.optuna_storage) if settings.optuna_storage else None
    searcher = OptunaSearch(space=space, metric=metric, mode=mode, sampler=sampler, study_name=settings.name,
                            storage=storage, points_to_evaluate=settings.points_to_evaluate or None)
    if settings.seeds > 1:
        # Each suggestion runs `seeds` times (train.seed + index, see trainable.with_repeat_seed);
        # the sampler is told the mean over them.
        searcher = Repeater(searcher, repeat=settings.seeds, set_index=True)
    # Without a limit, TPE would propose every trial before seeing any result (random search).
    return ConcurrencyLimiter(searcher, max_concurrent=settings.max_concurrent)


def build_scheduler(settings: SweepSettings, space: spaces.SearchSpace) -> Any:
    """ASHA on the objective with training work (images) as its clock, or FIFO (no early stopping).

    The clock is ``train/images`` = step x batch x (1 + G steps per D step), not the step: a
    recipe with two G steps per D step is compared with a one-step recipe at equal work.
    """
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from sweeps.trainable import WORK

    if settings.scheduler == "fifo":
        return FIFOScheduler()
    sample = space.sample_config().train
    eval_every, per_step = sample.eval_every, sample.images_per_step
    grace = settings.grace_period or max(eval_every, settings.steps // 4)
    # Trials report every eval_every steps: a rung between two reports would compare trials at
    # the next report instead, so rungs sit on report steps (exactly so when every trial does the
    # same work per step; otherwise each is compared at its first report past the rung).
    grace = math.ceil(grace / eval_every) * eval_every
    # max_t past every trial's budget: trials end at train.steps by themselves, so ASHA's max_t
    # stop never fires (a rung may still fall on the last step: the trainable reports that one last).
    max_t = (settings.steps + 1) * space.max_images_per_step()
    return ASHAScheduler(time_attr=WORK, metric=settings.metrics[0], mode=settings.modes[0], max_t=max_t,
                         grace_period=min(grace, settings.steps) * per_step, reduction_factor=settings.reduction_factor)


def _summary(settings: SweepSettings, results: Any, searched: Sequence[str], parent_run_id: str) -> dict[str, Any]:
    import pandas as pd

    frame: pd.DataFrame = results.get_dataframe()
    out: dict[str, Any] = {"trials": len(results), "errors": results.num_errors, "parent_run_id": parent_run_id}
    present = [m for m in settings.metrics if m in frame.columns]
    if len(present) != len(settings.metrics) or frame.empty:
        return out
    finite = frame[[math.isfinite(v) if isinstance(v, float) else False for v in frame[present[0]]]]
    if settings.multi_objective:
        signs = [1 if m == "min" else -1 for m in settings.modes]
        values = finite[settings.metrics].to_numpy() * signs
        front = [i for i in range(len(values))
                 if not any((values[j] <= values[i]).all() and (values[j] < values[i]).any() for j in range(len(values)))]
        out["pareto_front"] = [{"trial_id": finite.iloc[i]["trial_id"], **{m: finite.iloc[i][m] for m in settings.metrics}}
                               for i in front]
        return out
    if finite.empty:
        return out
    best = finite.sort_values(settings.metrics[0], ascending=settings.modes[0] == "min").iloc[0]
    config = {k.removeprefix("config/"): best[k] for k in frame.columns if k.startswith("config/")}
    out["best"] = {
        "trial_id": best["trial_id"], "step": int(best.get("step", 0)),
        "metrics": {k: float(best[k]) for k in frame.columns
                    if k.startswith(("eval/", "train/")) and isinstance(best[k], (int, float)) and math.isfinite(best[k])},
        # Tune's frame holds some values as text ("6"): typed again through the config.
        "config": {k: spaces.typed_value(k, v) for k, v in config.items() if k in searched},
    }
    return out


def tune_trials(experiment_path: str) -> list[Any]:
    """Tune's ``Trial`` objects of an experiment (their status is not on a ``ResultGrid``'s
    ``Result``), through the public ``tune.ExperimentAnalysis``."""
    from ray.tune import ExperimentAnalysis

    return list(ExperimentAnalysis(experiment_path).trials)


def reconcile_statuses(trials: Sequence[Any], ref: tracking.SweepRef) -> dict[str, str]:
    """Final ``infogan.status`` of every ended trial's child run, from Tune's view of the trial.

    Covers trials whose callback never ran (a driver killed mid-sweep, a restore). Trials that
    have not ended (an interrupted sweep) keep their status; they are counted as ``interrupted``
    (they had reported) or ``not started``, never as stopped early.

    Returns:
        ``{trial_id: status}``.
    """
    from sweeps.trainable import trial_status, trial_steps

    mlflow_client = tracking.client(ref.tracking_uri)
    statuses: dict[str, str] = {}
    for trial in trials:
        if trial.status not in ("TERMINATED", "ERROR"):
            statuses[trial.trial_id] = INTERRUPTED if trial.last_result else NOT_STARTED
            continue
        status = trial_status(trial.status, trial.last_result, trial_steps(trial.config))
        statuses[trial.trial_id] = status
        run_id = tracking.find_child_run(mlflow_client, ref, trial.trial_id)
        if run_id is not None:
            tracking.settle_child_run(mlflow_client, run_id, status)
    return statuses


# How an interrupted sweep's unfinished trials are counted in its summary (not record statuses:
# their runs keep "running" and are reopened when --resume trains them on).
INTERRUPTED, NOT_STARTED = "interrupted", "not started"


def kill_open_child_runs(mlflow_client: Any, ref: tracking.SweepRef, trials: Sequence[Any]) -> None:
    """Mark the child runs of trials that have not ended KILLED (an interrupted sweep)."""
    for trial in trials:
        if trial.status in ("TERMINATED", "ERROR"):
            continue
        run_id = tracking.find_child_run(mlflow_client, ref, trial.trial_id)
        if run_id is not None and mlflow_client.get_run(run_id).info.status == "RUNNING":
            mlflow_client.set_terminated(run_id, "KILLED")


ADDRESS_TIMEOUT_S = 15.0  # how long joining a cluster may take before it is an error


def check_address(address: str, timeout: float = ADDRESS_TIMEOUT_S) -> None:
    """Fail fast when ``--address`` names a host:port nothing answers on (Ray would retry for minutes).

    Raises:
        ValueError: naming the address and what was tried.
    """
    import socket

    if not address or address in ("auto", "local"):
        return
    target = address.removeprefix("ray://").rstrip("/")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--address {address!r}: expected 'auto', HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise ValueError(f"--address {address}: no Ray cluster answers at {host}:{port} within {timeout:g} s ({err}); "
                         "start it (ray start --head / ray up cluster.yaml) or fix the address") from None


def unplaceable(settings: SweepSettings, resources: Mapping[str, float]) -> str | None:
    """Why no trial could ever be placed on the cluster as it is, or None.

    Args:
        settings: the sweep's per-trial request.
        resources: ``ray.cluster_resources()``.
    """
    have_cpu, have_gpu = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    if settings.gpus_per_trial > have_gpu:
        return (f"a trial asks for {settings.gpus_per_trial:g} GPU but the cluster has {have_gpu:g}: it would wait "
                "forever. Use --gpus-per-trial 0 on CPUs, or pass --wait-for-resources if GPU nodes join on demand")
    if settings.cpus_per_trial > have_cpu:
        return (f"a trial asks for {settings.cpus_per_trial:g} CPUs but the cluster has {have_cpu:g}: lower "
                "--cpus-per-trial, or pass --wait-for-resources if nodes join on demand")
    return None


def resume_command(settings: SweepSettings, storage: str) -> str:
    """The exact command that continues this sweep (its settings and space are saved with it)."""
    parts = ["python sweeps/lambda_search.py", "--resume", "--name", settings.name, "--storage-path", storage]
    if settings.address:
        parts += ["--address", settings.address]
    return " ".join(parts)


def local_store_on_cluster(tracking_uri: str, hosts: set[str], joined: bool) -> str | None:
    """Why a machine-local MLflow store would split this sweep's records, or None if it would not.

    Trials log from the node they run on: a ``sqlite:`` or ``file:`` store on a cluster whose
    nodes are different machines gives each machine its own store (and the driver sees none of
    their runs). Nodes that share one machine share its disk, so a local store is fine there.

    Args:
        tracking_uri: the resolved tracking URI.
        hosts: the addresses of the cluster's live nodes.
        joined: whether the driver joined an existing cluster (``--address`` / ``RAY_ADDRESS``),
            which may add machines later (autoscaling).
    Returns:
        The problem in one sentence, or None.
    """
    if urlparse(tracking_uri).scheme not in ("sqlite", "file"):
        return None
    if len(hosts) > 1:
        return (f"the tracking store {tracking_uri} is a file on this machine, but the cluster's nodes run on "
                f"{len(hosts)} machines ({', '.join(sorted(hosts))}): each would log to its own copy. Pass "
                "--tracking-uri http://<head>:5000 (an `mlflow server`, as cluster.yaml starts on the head)")
    if joined:
        return (f"the tracking store {tracking_uri} is a file on this machine: trials on worker machines that "
                "join later (autoscaling) would log to their own copy; use --tracking-uri http://<head>:5000 on clusters")
    return None


def run_sweep(settings: SweepSettings, space: spaces.SearchSpace, resume: bool = False) -> int:
    """Check tracking, start or restore the Tune experiment, run it and print the summary.

    Args:
        settings: the sweep's settings (on resume, those saved with the sweep).
        space: the validated search space.
        resume: continue ``<storage>/<name>`` with ``Tuner.restore``.
    Returns:
        The exit code: 0 done, 2 a usage/tracking error, 130 interrupted (resume it later).
    """
    uri = settings.tracking_uri
    try:
        tracking.check_tracking(uri)  # before Ray starts or any trial runs
    except tracking.TrackingUnavailableError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    storage = settings.storage_path
    if not storage.startswith(("s3://", "gs://", "abfs://", "hdfs://")):
        storage = str(Path(storage).resolve())
    experiment_path = f"{storage.rstrip('/')}/{settings.name}"

    import ray
    from ray import tune

    from sweeps import summary as summary_mod
    from sweeps.trainable import TrialSettings, TrialStatusCallback, make_trainable, trial_dirname

    # Tune warns whenever checkpoints come faster than its state snapshots; expected with short trials.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # The parent run's refresh downloads the best traversal after every trial: no progress bars.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    started_ray = not ray.is_initialized()
    if started_ray:
        # "local" starts a fresh Ray; None would silently join any cluster already running on this
        # machine (ray start, another test), which --address auto makes explicit instead. A driver
        # that `ray job submit` started gets the cluster's address in RAY_ADDRESS.
        address = settings.address or os.environ.get("RAY_ADDRESS") or "local"
        try:
            check_address(address)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        ray.init(address=address, include_dashboard=False, logging_level="WARNING")
    try:
        # Pre-flight, before the tracking store is touched: a request the cluster can never place.
        problem = None if settings.wait_for_resources else unplaceable(settings, ray.cluster_resources())
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        tracking.initialise_store(uri)  # serialised: two sweeps may start together on a new store
        mlflow_client = tracking.client(uri)
        hosts = {node["NodeManagerAddress"] for node in ray.nodes() if node.get("Alive")}
        problem = local_store_on_cluster(uri, hosts, joined=bool(settings.address or os.environ.get("RAY_ADDRESS")))
        if problem and len(hosts) > 1:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        if problem:
            print(f"warning: {problem}", file=sys.stderr)
        if resume:
            parent = read_storage_json(storage, settings.name, tracking.PARENT_FILE)
            if parent is None or not tune.Tuner.can_restore(experiment_path):
                print(f"error: no sweep to resume at {experiment_path}", file=sys.stderr)
                return 2
            ref = tracking.SweepRef(uri, parent["experiment_id"], parent["run_id"], settings.name)
            tracking.reopen_run(mlflow_client, ref.parent_run_id)
        else:
            if tune.Tuner.can_restore(experiment_path):
                print(f"error: sweep {settings.name!r} already exists at {experiment_path}: pass --resume to "
                      "continue it, or choose another --name", file=sys.stderr)
                return 2
            if not settings.optuna_storage:
                settings.optuna_storage = summary_mod.default_optuna_storage(uri, storage, settings.name) or ""
            if summary_mod.load_study(settings.optuna_storage, settings.name) is not None:
                print(f"error: the Optuna storage {settings.optuna_storage} already holds a study {settings.name!r}: "
                      "pass --resume to continue that sweep, or choose another --name", file=sys.stderr)
                return 2
            experiment_id = tracking.get_or_create_experiment(mlflow_client, settings.name, uri)
            sweep_config = {"settings": asdict(settings), "space": space.to_json()}
            run_id = tracking.start_parent_run(mlflow_client, experiment_id, settings.name, settings.params(),
                                               space.to_json(), sweep_config)
            ref = tracking.SweepRef(uri, experiment_id, run_id, settings.name)
            write_storage_json(storage, settings.name, tracking.PARENT_FILE,
                               {"run_id": run_id, "experiment_id": experiment_id, "tracking_uri": uri})
            write_storage_json(storage, settings.name, "sweep_config.json", sweep_config)

        trial_settings = TrialSettings(ref=ref, objectives=tuple(zip(settings.metrics, settings.modes, strict=True)))
        searched = list(space.params)
        updater = summary_mod.ParentRunUpdater(ref, settings.metrics, settings.modes, searched, settings.optuna_storage)
        trainable = make_trainable(trial_settings, settings.cpus_per_trial, settings.gpus_per_trial)
        if resume:
            # Errored trials are retried too: a trial that failed on a tracking outage or a lost
            # node trains on from its last checkpoint.
            tuner = tune.Tuner.restore(experiment_path, trainable, resume_unfinished=True, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=build_searcher(settings, space), scheduler=build_scheduler(settings, space),
                    # concurrency: the searcher's ConcurrencyLimiter
                    num_samples=settings.num_samples * settings.seeds,
                    trial_dirname_creator=trial_dirname,
                ),
                run_config=tune.RunConfig(
                    name=settings.name, storage_path=storage,
                    failure_config=tune.FailureConfig(max_failures=settings.max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                    callbacks=[TrialStatusCallback(ref), updater,
                               summary_mod.ProgressPrinter(settings.num_samples * settings.seeds, settings.metrics,
                                                           searched)],
                    verbose=0,  # progress comes from ProgressPrinter, the answer from the closing table
                ),
            )
        # SIGTERM ends the sweep like Ctrl-C: Tune stops the trials and saves its state.
        previous_term = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
        try:
            results = tuner.fit()
        except KeyboardInterrupt:  # a second Ctrl-C: Tune gave up its graceful stop
            results = None
        finally:
            signal.signal(signal.SIGTERM, previous_term)
        trials = tune_trials(experiment_path)
        statuses = reconcile_statuses(trials, ref)
        interrupted = len(statuses) < settings.num_samples * settings.seeds or \
            bool({INTERRUPTED, NOT_STARTED} & set(statuses.values()))
        summary = _summary(settings, results, searched, ref.parent_run_id) if results is not None else \
            {"parent_run_id": ref.parent_run_id}
        summary["name"] = settings.name
        summary["statuses"] = {s: list(statuses.values()).count(s) for s in sorted(set(statuses.values()))}
        board = summary_mod.publish(mlflow_client, ref, trials, settings.metrics, settings.modes, searched,
                                    settings.optuna_storage)
        experiment_url, run_url = summary_mod.ui_urls(uri, ref.experiment_id, ref.parent_run_id)
        summary["where"] = {
            "Tune state": experiment_path,
            "MLflow UI": tracking.ui_command(uri),
            "experiment": experiment_url,
            "parent run": run_url,
            "Optuna dashboard": summary_mod.dashboard_command(settings.optuna_storage),
            "report": f"python -m analysis collect --tracking-uri {uri} --sweep {settings.name} --tune-dir "
                      f"{experiment_path} --out tables && python -m analysis report --tables tables --sweep {settings.name}",
            "full summary": f"{experiment_path}/{summary_mod.SUMMARY_FILE}",
        }
        write_storage_json(storage, settings.name, summary_mod.SUMMARY_FILE,
                           {**summary, "leaderboard": board.to_dict(orient="records") if not board.empty else []})
        if interrupted:
            # Reopened by --resume (the parent) or by the trial that trains on (its child run).
            mlflow_client.set_terminated(ref.parent_run_id, "KILLED")
            kill_open_child_runs(mlflow_client, ref, trials)
        else:
            tracking.finish_run(mlflow_client, ref.parent_run_id)
        print("\n" + summary_mod.closing_text(summary, board, settings.metrics, searched))
        if interrupted:
            print(f"the sweep is incomplete: continue it with\n  {resume_command(settings, storage)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        return 0
    finally:
        if started_ray:
            ray.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
    Returns:
        The process exit code.
    """
    from infogan.train import parse_args

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
            saved = read_storage_json(settings.storage_path, settings.name, "sweep_config.json")
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
    finally:
        if temp_storage:
            shutil.rmtree(temp_storage, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
