"""Synthetic sweeps logged to MLflow by the record contract, for tests, benchmarks and demos.

Owns ``log_synthetic_sweep``: a parent run and one child run per trial with every config key as
a param (written by ``infogan.config.value_text``, as the sweep writes them), the contract's tags, and metric curves whose final values depend on λ and the seed in a
known way (MIG rises with ``loss.lambda_cont`` up to a point, FID rises with it), so analyses of the
collected tables have something real to find. Logging uses ``MlflowClient.log_batch`` (one call per
1,000 metric points) because per-point ``log_metric`` calls would dominate a 1,000-trial benchmark.
It never trains anything.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis import schema as S
from infogan import metric_catalogue as catalogue
from infogan.config import Config, value_text
from infogan.loop import is_evaluation_step
from sweeps import record, tracking
from sweeps.spaces import Param as SpaceParam
from sweeps.spaces import SearchSpace

DEFAULT_LAMBDAS = (0.01, 0.05, 0.2, 1.0)
_BATCH = 1000  # MLflow's per-call limit on metrics in log_batch


@dataclass(frozen=True)
class SyntheticSweep:
    """What was logged: ids to find it again."""

    name: str
    experiment_id: str
    parent_run_id: str
    run_ids: tuple[str, ...]
    trial_ids: tuple[str, ...]


def log_synthetic_sweep(
    tracking_uri: str,
    name: str = "synthetic",
    *,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    seeds: Sequence[int] = (0, 1),
    n_trials: int | None = None,
    steps: int = 20,
    eval_every: int = 5,
    train_metrics: Sequence[str] = ("train/loss_d", "train/loss_g", "train/l_info_cont"),
    eval_metrics: Sequence[str] = catalogue.ANSWER,
    fid_feature_net: str | None = "lenet_dsprites@abc123",
    statuses: Sequence[str] | None = None,
    tune_dir: str | Path | None = None,
    rng_seed: int = 0,
    progress: bool = False,
) -> SyntheticSweep:
    """Log a sweep of fake trials (λ × seeds, or ``n_trials`` cycling through them).

    Args:
        tracking_uri: MLflow tracking URI (e.g. ``sqlite:///…/mlflow.db``).
        name: sweep and experiment name.
        lambdas: values of ``loss.lambda_cont``.
        seeds: values of ``train.seed``.
        n_trials: number of trials; default ``len(lambdas) * len(seeds)``.
        steps: training steps per trial; train metrics are logged at every step.
        eval_every: eval metrics are logged every this many steps (and at the last).
        train_metrics: ``train/*`` keys to log.
        eval_metrics: ``eval/*`` keys to log.
        fid_feature_net: value of the FID feature-net tag (None: no tag).
        statuses: per-trial ``infogan.status`` values (cycled); default all "finished".
        tune_dir: if given, also write a Tune-like experiment directory with ``result.json`` per
            trial, plus one extra trial that exists only there (failed before MLflow knew of it).
        rng_seed: seed for the noise in the curves.
        progress: show a tqdm bar.

    Returns:
        The ids of what was logged.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param
    from tqdm.auto import tqdm

    client = MlflowClient(tracking_uri)
    exp_id = tracking.get_or_create_experiment(client, name, tracking_uri)  # artifacts beside the store, not in the cwd
    rng = np.random.default_rng(rng_seed)
    t0 = 1_700_000_000_000  # fixed epoch ms so repeated logs of the same sweep look alike

    parent = client.create_run(
        exp_id,
        start_time=t0,
        tags={record.TAG_ROLE: record.ROLE_PARENT, record.TAG_SWEEP: name, record.TAG_GIT_COMMIT: "0" * 40, record.TAG_VERSION_PREFIX + "numpy": np.__version__},
        run_name=f"{name}-parent",
    )
    pid = parent.info.run_id
    client.log_batch(pid, params=[Param("sweep.metric", catalogue.DEFAULT_METRIC),
                              Param("sweep.mode", catalogue.direction(catalogue.DEFAULT_METRIC)), Param("sweep.dataset", "dsprites")])
    # The space a sweep of these λs would have searched, logged as the sweep logs it.
    space = SearchSpace(params={"loss.lambda_cont": SpaceParam(low=min(lambdas), high=max(lambdas), log=True)})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / record.ARTIFACT_SEARCH_SPACE
        path.write_text(json.dumps(space.to_json()))
        client.log_artifact(pid, str(path))

    combos = [(lam, seed) for lam in lambdas for seed in seeds]
    n = n_trials if n_trials is not None else len(combos)
    statuses = list(statuses or ["finished"])
    run_ids, trial_ids = [], []
    base = Config().to_flat()
    tune_root = Path(tune_dir) if tune_dir is not None else None
    for i in tqdm(range(n), desc="logging trials", disable=not progress):
        lam, seed = combos[i % len(combos)]
        flat = {**base, "loss.lambda_cont": lam, "train.seed": seed, "train.steps": steps, "train.eval_every": eval_every, "codes.categorical": [3]}
        tid = f"t{i:05d}"
        status = statuses[i % len(statuses)]
        run_steps = steps if status in ("finished", "diverged", "failed") else max(1, steps // 2)
        tags = {
            record.TAG_PARENT_RUN_ID: pid, record.TAG_ROLE: record.ROLE_TRIAL, record.TAG_SWEEP: name,
            record.TAG_TRIAL_ID: tid, record.TAG_STATUS: status,
        }
        if fid_feature_net is not None:
            tags[record.TAG_FID_FEATURE_NET] = fid_feature_net
        start = t0 + i * 1000
        run = client.create_run(exp_id, start_time=start, tags=tags, run_name=tid)
        rid = run.info.run_id
        client.log_batch(rid, params=[Param(k, value_text(v)) for k, v in flat.items()])

        # Known shape: MIG peaks near λ = 0.2, FID grows with λ, seeds shift both a little.
        seed_shift = 0.03 * (seed - np.mean(seeds))
        mig_final = 0.5 - 0.08 * (math.log10(lam) + 0.7) ** 2 + seed_shift
        fid_final = 20.0 + 15.0 * lam + 10 * seed_shift
        points: list[Any] = []
        tune_rows = []
        for step in range(1, run_steps + 1):
            frac = step / steps
            ts = start + step * 10
            for k in train_metrics:
                points.append(Metric(k, float(1.0 / frac + rng.normal(0, 0.01)), ts, step))
            if is_evaluation_step(step, run_steps, eval_every):
                row: dict[str, Any] = {}
                for k in eval_metrics:
                    if k == S.METRIC_FID:
                        v = fid_final * (1 + 2 * (1 - frac)) + rng.normal(0, 0.1)
                    elif k == catalogue.DEFAULT_METRIC:
                        v = mig_final * frac
                    else:
                        v = min(1.0, 0.5 + 0.4 * frac + seed_shift)
                    points.append(Metric(k, float(v), ts, step))
                    row[k] = float(v)
                tune_rows.append({"trial_id": tid, "training_iteration": len(tune_rows) + 1, "step": step, "time_total_s": step * 0.5, "timestamp": ts // 1000, **row, "config": {k: v for k, v in flat.items()}})
        if status == "diverged":
            points.append(Metric(record.METRIC_DIVERGED_STEP, float(run_steps), start + run_steps * 10, run_steps))
            # The losses of a diverged run end in NaN (MLflow stores it as a flag, not a value).
            points.append(Metric(train_metrics[0], float("nan"), start + run_steps * 10 + 1, run_steps))
        points.append(Metric(record.METRIC_WALL_SECONDS, run_steps * 0.5, start + run_steps * 10 + 1, run_steps))
        for j in range(0, len(points), _BATCH):
            client.log_batch(rid, metrics=points[j : j + _BATCH])
        mlflow_status = record.MLFLOW_STATUS.get(status, "RUNNING")
        if mlflow_status != "RUNNING":
            client.set_terminated(rid, mlflow_status, end_time=start + run_steps * 10 + 500)
        if tune_root is not None:
            _write_tune_trial(tune_root / f"trainable_{tid}", tune_rows, errored=status == "failed")
        run_ids.append(rid)
        trial_ids.append(tid)
    if tune_root is not None:
        # A trial that crashed before it could open its MLflow run: Tune alone knows it.
        lam, seed = combos[0]
        flat = {**base, "loss.lambda_cont": lam, "train.seed": seed + 100, "train.steps": steps}
        _write_tune_trial(tune_root / "trainable_tune_only", [{"trial_id": "tune_only", "training_iteration": 1, "step": 1, "time_total_s": 1.5, "timestamp": t0 // 1000, catalogue.DEFAULT_METRIC: 0.01, "config": flat}], errored=True)
    client.set_terminated(pid, "FINISHED", end_time=t0 + n * 1000 + 1000)
    return SyntheticSweep(name, exp_id, pid, tuple(run_ids), tuple(trial_ids))


def _write_tune_trial(folder: Path, rows: list[dict[str, Any]], errored: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if errored:
        (folder / "error.txt").write_text("RuntimeError: synthetic failure\n")


def synthetic_codes(trial_ids: Sequence[str], n_images: int = 500, n_codes: int = 3, central: int = 0, rng_seed: int = 0) -> dict[str, np.ndarray]:
    """Fake codes of several models on the same images: most models share one representation.

    Models are a monotone transform + a permutation of a shared representation with noise whose
    size grows with the distance from ``central``, so ModelCentrality has a known answer.

    Args:
        trial_ids: model ids.
        n_images: images N.
        n_codes: codes D per model.
        central: index of the model with the least noise.
        rng_seed: seed.

    Returns:
        model id → (N, D) codes.
    """
    rng = np.random.default_rng(rng_seed)
    truth = rng.uniform(-1, 1, size=(n_images, n_codes))
    out = {}
    for i, tid in enumerate(trial_ids):
        noise = 0.05 + 0.4 * abs(i - central) / max(1, len(trial_ids) - 1)
        codes = np.tanh(1.5 * truth + rng.normal(0, noise, size=truth.shape))
        out[tid] = codes[:, rng.permutation(n_codes)]
    return out


# --------------------------------------------------------------------------------------------
# Simulated confirmations: how often the answer says what is true


# The seed spread of final metrics the project measured: the pooled standard deviation over the
# eight cells (3 seeds each) of the λ study, docs/results/lambda_study.md (2,500 steps at 32 px),
# and the means around which its cells lay.
MEASURED_SEED_SD = {"eval/mig": 0.0235, "eval/factor_vae": 0.069, "eval/fid": 69.0}
MEASURED_MEAN = {"eval/mig": 0.068, "eval/factor_vae": 0.53, "eval/fid": 138.0}


@dataclass(frozen=True)
class SimulatedRates:
    """How often simulated confirmations' answers said what: shares of ``sweeps``."""

    sweeps: int
    not_separable: float  # no config separable from the recipe on any metric
    found_better: float  # "top1 is better than the recipe on <metric>"
    false_claims: float  # any other separable difference (none is true)


def simulate_answers(sweeps: int = 200, *, configs: int = 2, seeds: int = 3, margin_sd: float = 0.0,
                     metric: str = catalogue.DEFAULT_METRIC, sd: Mapping[str, float] | None = None,
                     rng_seed: int = 0) -> SimulatedRates:
    """Confirmations drawn at a known truth, each answered by ``sweeps.answer.compute_answer``.

    Every config's seeds are normal around the same means with the measured seed spread
    (``MEASURED_SEED_SD``, independent metrics), except that ``top1`` is better than the recipe
    on ``metric`` by ``margin_sd`` of that metric's spread (in its better direction).

    Args:
        sweeps: simulated confirmations.
        configs: confirmed configs besides the recipe.
        seeds: seeds per config.
        margin_sd: ``top1``'s true advantage on ``metric``, in seed standard deviations.
        metric: the metric ``top1`` is better on.
        sd: each metric's seed spread (default ``MEASURED_SEED_SD``).
        rng_seed: the simulation's seed.
    Returns:
        The shares of the simulated answers that found nothing, found ``top1`` better on
        ``metric``, or claimed anything else.
    """
    import pandas as pd

    from sweeps.answer import better, compute_answer

    spread = dict(sd or MEASURED_SEED_SD)
    metrics = list(spread)
    rng = np.random.default_rng(rng_seed)
    names = [record.CANDIDATE_RECIPE, *(f"top{i + 1}" for i in range(configs))]
    sign = 1.0 if catalogue.direction(metric) == catalogue.MAX else -1.0
    nothing = found = false = 0
    for _ in range(sweeps):
        rows = []
        for name in names:
            shift = {m: (sign * margin_sd * spread[m] if (name == "top1" and m == metric) else 0.0) for m in metrics}
            for seed in range(seeds):
                rows.append({"candidate": name, "status": record.STATUS_FINISHED, "seed": seed,
                             **{m: MEASURED_MEAN.get(m, 0.0) + shift[m] + rng.normal(0.0, spread[m]) for m in metrics}})
        answer = compute_answer(pd.DataFrame(rows), metrics, {n: n for n in names})
        claims = answer.separable()
        nothing += not claims
        hit = any(c.group == "top1" and m == metric and better(m, c.difference) for c, m, _ in claims)
        found += hit
        false += any(not (c.group == "top1" and m == metric and better(m, c.difference)) for c, m, _ in claims)
    return SimulatedRates(sweeps, nothing / sweeps, found / sweeps, false / sweeps)
