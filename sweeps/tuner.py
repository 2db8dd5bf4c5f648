"""Running a sweep: the searcher (Optuna inside Tune, with its study in a database), the
scheduler (ASHA clocked by training work), the Tuner (or its restore), the parent MLflow run,
reconciling trial statuses at the end, and the files kept beside Tune's state.

The search space lives in ``sweeps.spaces``, the Optuna sampler in ``sweeps.samplers``, the trial
in ``sweeps.trainable``, the record in ``sweeps.record`` / ``sweeps.tracking``, which trials are best
in ``sweeps.ranking``, the parent run's leaderboard and the closing table in ``sweeps.summary``, the
pre-flight checks in ``sweeps.checks`` and the command line in
``sweeps.cli``.
"""

from __future__ import annotations

import math
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from infogan.config import flat_value
from sweeps import ranking, record, spaces, tracking
from sweeps.checks import check_address, check_sweep, local_store_on_cluster, unplaceable
from sweeps.samplers import make_sampler
from sweeps.settings import EXIT_ALL_FAILED, EXIT_INTERRUPTED, SweepSettings, default_grace_period
from sweeps.storage import read_storage_json, write_storage_json

# ----------------------------------------------------------------------------------------------
# Tune


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

    if settings.scheduler == "fifo":
        return FIFOScheduler()
    per_step = space.sample_config().train.images_per_step
    # max_t past every trial's budget: trials end at train.steps by themselves, so ASHA's max_t
    # stop never fires (a rung may still fall on the last step: the trainable reports that one last).
    max_t = (settings.steps + 1) * space.max_images_per_step()
    return ASHAScheduler(time_attr=record.WORK, metric=settings.metrics[0], mode=settings.modes[0], max_t=max_t,
                         grace_period=grace_steps(settings, space) * per_step, reduction_factor=settings.reduction_factor)


def grace_steps(settings: SweepSettings, space: spaces.SearchSpace) -> int:
    """ASHA's first rung in training steps: ``--grace-period``, else ``default_grace_period``,
    moved to the report step at or after it."""
    eval_every = space.sample_config().train.eval_every
    grace = settings.grace_period or max(eval_every, default_grace_period(settings.steps))
    # Trials report every eval_every steps: a rung between two reports would compare trials at
    # the next report instead, so rungs sit on report steps (exactly so when every trial does the
    # same work per step; otherwise each is compared at its first report past the rung).
    return min(math.ceil(grace / eval_every) * eval_every, settings.steps)


def measure_rungs(settings: SweepSettings, space: spaces.SearchSpace, mlflow_client: Any) -> tuple[Any, list[int], int]:
    """How each report step ranks the final objective over every finished trial of this budget in
    the store (``sweeps.rungs``). Returns the correlations, this sweep's ASHA rungs (none without
    ASHA) and how many sweeps the trials came from."""
    from sweeps import rungs

    sample = space.sample_config().to_flat()
    curves = rungs.store_curves(mlflow_client, settings.metrics[0], {k: sample[k] for k in rungs.BUDGET_KEYS})
    correlations = rungs.rung_correlations(curves, settings.steps)
    asha = rungs.asha_rungs(grace_steps(settings, space), settings.reduction_factor, settings.steps) \
        if settings.scheduler == "asha" else []
    return correlations, asha, int(curves["sweep"].nunique()) if not curves.empty else 0


def _summary(settings: SweepSettings, results: Any, searched: Sequence[str], parent_run_id: str) -> dict[str, Any]:
    """The closing summary's counts and answer from Tune's results: the best trial with its metrics
    and searched values (one objective), or the Pareto front (several)."""
    import pandas as pd

    frame: pd.DataFrame = results.get_dataframe()
    out: dict[str, Any] = {"trials": len(results), "errors": results.num_errors, "parent_run_id": parent_run_id}
    present = [m for m in settings.metrics if m in frame.columns]
    if len(present) != len(settings.metrics) or frame.empty:
        return out
    if settings.multi_objective:
        front = ranking.non_dominated(ranking.finite_rows(frame, settings.metrics[0]), settings.metrics, settings.modes)
        out["pareto_front"] = [{"trial_id": front.iloc[i]["trial_id"], **{m: front.iloc[i][m] for m in settings.metrics}}
                               for i in range(len(front))]
        return out
    best = ranking.best_row(frame, settings.metrics[0], ascending=settings.modes[0] == "min")
    if best is None:
        return out
    config = {k.removeprefix("config/"): best[k] for k in frame.columns if k.startswith("config/")}
    out["best"] = {
        "trial_id": best["trial_id"], "step": int(best.get("step", 0)),
        "metrics": {k: float(best[k]) for k in frame.columns
                    if k.startswith(("eval/", "train/")) and isinstance(best[k], (int, float)) and math.isfinite(best[k])},
        # Tune's frame holds some values as text ("6"): typed again through the config.
        "config": {k: flat_value(k, v) for k, v in config.items() if k in searched},
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
    from sweeps.trainable import ended_status

    mlflow_client = tracking.client(ref.tracking_uri)
    statuses: dict[str, str] = {}
    for trial in trials:
        status = ended_status(trial)
        if status is None:
            statuses[trial.trial_id] = INTERRUPTED if trial.last_result else NOT_STARTED
            continue
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
        if trial.status in record.TUNE_ENDED:
            continue
        run_id = tracking.find_child_run(mlflow_client, ref, trial.trial_id)
        if run_id is not None and mlflow_client.get_run(run_id).info.status == "RUNNING":
            mlflow_client.set_terminated(run_id, "KILLED")


def resume_command(settings: SweepSettings, storage: str) -> str:
    """The exact command that continues this sweep (its settings and space are saved with it)."""
    parts = ["python sweeps/lambda_search.py", "--resume", "--name", settings.name, "--storage-path", storage]
    if settings.address:
        parts += ["--address", settings.address]
    return " ".join(parts)


def free_sweep_name(settings: SweepSettings, storage: str) -> str:
    """``settings.name``, or the first of ``<name>_2``, ``<name>_3``, ... that no earlier sweep holds.

    A name is held by a sweep's Tune folder in ``storage`` (its state or its parent-run file) or by
    an Optuna study of that name in the sweep's Optuna storage (``--optuna-storage``, else the
    default one beside the tracking store: it outlives a smoke test's temporary Tune folder).
    """
    from ray import tune

    from sweeps import summary as summary_mod

    def held(name: str) -> bool:
        if tune.Tuner.can_restore(f"{storage.rstrip('/')}/{name}") or \
                read_storage_json(storage, name, record.PARENT_FILE) is not None:
            return True
        optuna_storage = settings.optuna_storage or \
            summary_mod.default_optuna_storage(settings.tracking_uri, storage, name)
        return summary_mod.load_study(optuna_storage, name) is not None

    name, number = settings.name, 1
    while held(name):
        number += 1
        name = f"{settings.name}_{number}"
    return name


class _RefusedError(Exception):
    """A sweep that cannot start here (tracking store, Ray address, resources, nothing to resume):
    ``run_sweep`` prints the message and exits 2."""


def run_sweep(settings: SweepSettings, space: spaces.SearchSpace, resume: bool = False) -> int:
    """Check, build the Tuner (or restore it), fit it and summarise the sweep.

    Args:
        settings: the sweep's settings (on resume, those saved with the sweep).
        space: the validated search space.
        resume: continue ``<storage>/<name>`` with ``Tuner.restore``.
    Returns:
        The exit code: 0 done, 1 every trial failed, 2 a usage/tracking error, 130 interrupted
        (resume it later).
    Raises:
        SweepCheckError: settings and space that cannot make a sweep (``checks.check_sweep``).
    """
    check_sweep(settings, space)  # raises SweepCheckError before anything starts
    import ray

    started_ray = not ray.is_initialized()
    try:
        storage = _prepare(settings, start_ray=started_ray)
        ref = _open_sweep(settings, space, storage, resume)
        tuner = _build_tuner(settings, space, ref, storage, resume)
        with tracking.no_download_bars():  # the parent run's refresh downloads the best traversal after each trial
            results = _fit(tuner)
            plan = _confirm(settings, space, ref, storage, results)
            return _summarise(settings, space, ref, storage, results, plan)
    except _RefusedError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if settings.ensemble > 1 and ray.is_initialized():
            from sweeps.ensemble_trials import stop_registry

            stop_registry(settings.name)
        if started_ray and ray.is_initialized():
            ray.shutdown()


def _experiment_path(storage: str, name: str) -> str:
    return f"{storage.rstrip('/')}/{name}"


def _prepare(settings: SweepSettings, start_ray: bool) -> str:
    """The pre-flight: the tracking store answers (before Ray starts or any trial runs), Ray is up,
    the cluster can place a trial and can reach the store. Returns the storage root (absolute
    when local).

    Raises:
        _RefusedError: any of them fails.
    """
    import ray

    try:
        tracking.check_tracking(settings.tracking_uri)
    except tracking.TrackingUnavailableError as err:
        raise _RefusedError(str(err)) from None
    storage = settings.storage_path
    if not storage.startswith(("s3://", "gs://", "abfs://", "hdfs://")):
        storage = str(Path(storage).resolve())
    if start_ray:
        # "local" starts a fresh Ray; None would silently join any cluster already running on this
        # machine (ray start, another test), which --address auto makes explicit instead. A driver
        # that `ray job submit` started gets the cluster's address in RAY_ADDRESS.
        address = settings.address or os.environ.get("RAY_ADDRESS") or "local"
        try:
            check_address(address)
        except ValueError as err:
            raise _RefusedError(str(err)) from None
        ray.init(address=address, include_dashboard=False, logging_level="WARNING")
    # A request the cluster can never place, found before the tracking store is touched.
    problem = None if settings.wait_for_resources else unplaceable(settings, ray.cluster_resources())
    if problem:
        raise _RefusedError(problem)
    tracking.initialise_store(settings.tracking_uri)  # serialised: two sweeps may start together on a new store
    hosts = {node["NodeManagerAddress"] for node in ray.nodes() if node.get("Alive")}
    problem = local_store_on_cluster(settings.tracking_uri, hosts,
                                     joined=bool(settings.address or os.environ.get("RAY_ADDRESS")))
    if problem and len(hosts) > 1:
        raise _RefusedError(problem)
    if problem:
        print(f"warning: {problem}", file=sys.stderr)
    return storage


def _open_sweep(settings: SweepSettings, space: spaces.SearchSpace, storage: str, resume: bool) -> tracking.SweepRef:
    """The sweep's parent MLflow run: reopened on resume; else started under a free name (the same
    command run twice starts a second sweep and says so), with the files kept beside Tune's state.

    Raises:
        _RefusedError: ``resume`` and there is no sweep to resume.
    """
    from ray import tune

    from sweeps import summary as summary_mod

    uri = settings.tracking_uri
    mlflow_client = tracking.client(uri)
    if resume:
        parent = read_storage_json(storage, settings.name, record.PARENT_FILE)
        experiment_path = _experiment_path(storage, settings.name)
        if parent is None or not tune.Tuner.can_restore(experiment_path):
            raise _RefusedError(f"no sweep to resume at {experiment_path}")
        ref = tracking.SweepRef(uri, parent["experiment_id"], parent["run_id"], settings.name)
        tracking.reopen_run(mlflow_client, ref.parent_run_id)
        return ref
    name = free_sweep_name(settings, storage)
    if name != settings.name:
        print(f"sweep {settings.name!r} already exists (continue it with --resume --name {settings.name}): "
              f"this sweep is {name!r}")
        settings.name = name
    if not settings.optuna_storage:
        settings.optuna_storage = summary_mod.default_optuna_storage(uri, storage, settings.name) or ""
    experiment_id = tracking.get_or_create_experiment(mlflow_client, settings.name, uri)
    sweep_config = {"settings": asdict(settings), "space": space.to_json()}
    run_id = tracking.start_parent_run(mlflow_client, experiment_id, settings.name, settings.params(),
                                       space.to_json(), sweep_config)
    write_storage_json(storage, settings.name, record.PARENT_FILE,
                       {"run_id": run_id, "experiment_id": experiment_id, "tracking_uri": uri})
    write_storage_json(storage, settings.name, record.ARTIFACT_SWEEP_CONFIG, sweep_config)
    return tracking.SweepRef(uri, experiment_id, run_id, settings.name)


def _build_tuner(settings: SweepSettings, space: spaces.SearchSpace, ref: tracking.SweepRef, storage: str,
                 resume: bool) -> Any:
    """The Tuner: the trainable with its resources, the searcher and scheduler, the callbacks
    (trial statuses, the parent run's leaderboard, progress lines); ``Tuner.restore`` on resume."""
    from ray import tune

    from sweeps import summary as summary_mod
    from sweeps.trainable import TrialStatusCallback, trial_dirname

    # Tune warns whenever checkpoints come faster than its state snapshots; expected with short trials.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    trainable = make_sweep_trainable(settings, ref, record.STAGE_SEARCH)
    if settings.ensemble > 1:  # the trials of both stages find their workers through it (sweeps.ensemble_trials)
        from sweeps import ensemble_trials
        from sweeps.trainable import TrialSettings

        ensemble_trials.start_registry(settings.name, TrialSettings(ref=ref, objectives=_objectives(settings)),
                                       ensemble_trials.EnsembleSettings(settings.ensemble, settings.cpus_per_trial,
                                                                        settings.gpus_per_trial))
    if resume:
        # Errored trials are retried too: a trial that failed on a tracking outage or a lost
        # node trains on from its last checkpoint.
        return tune.Tuner.restore(_experiment_path(storage, settings.name), trainable,
                                  resume_unfinished=True, resume_errored=True)
    searched = list(space.params)
    updater = summary_mod.ParentRunUpdater(ref, settings.metrics, settings.modes, searched, settings.optuna_storage)
    return tune.Tuner(
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
                       summary_mod.ProgressPrinter(settings.num_samples * settings.seeds, settings.metrics, searched)],
            verbose=0,  # progress comes from ProgressPrinter, the answer from the closing table
        ),
    )


def _objectives(settings: SweepSettings) -> tuple[tuple[str, str], ...]:
    return tuple(zip(settings.metrics, settings.modes, strict=True))


def make_sweep_trainable(settings: SweepSettings, ref: tracking.SweepRef, stage: str,
                         candidates: tuple[tuple[str, str], ...] = ()) -> Any:
    """The trainable of one stage of the sweep (``record.STAGES``), with the sweep's resources and
    placement (``--ensemble``): the search and the confirmation train their trials alike."""
    from sweeps.trainable import TrialSettings, make_trainable

    trial_settings = TrialSettings(ref=ref, objectives=_objectives(settings), stage=stage, candidates=candidates)
    return make_trainable(trial_settings, settings.cpus_per_trial, settings.gpus_per_trial, settings.ensemble > 1)


def _fit(tuner: Any) -> Any:
    """``tuner.fit()``, with SIGTERM ending the sweep like Ctrl-C (Tune stops the trials and saves
    its state). Returns Tune's results, or None after a second Ctrl-C (Tune gave up its graceful
    stop). Tune's fit() installs its own SIGINT handler and leaves it behind: the caller's is put
    back."""
    previous_int = signal.getsignal(signal.SIGINT)
    previous_term = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    try:
        return tuner.fit()
    except KeyboardInterrupt:
        return None
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


def _search_complete(settings: SweepSettings, trials: Sequence[Any]) -> bool:
    return len(trials) >= settings.num_samples * settings.seeds and \
        all(t.status in record.TUNE_ENDED for t in trials)


def _confirm(settings: SweepSettings, space: spaces.SearchSpace, ref: tracking.SweepRef, storage: str,
             results: Any) -> Any:
    """The confirmation stage after a complete search (``sweeps.confirm``): its plan (kept beside
    Tune's state, or the one a resumed sweep kept) and its trials. Returns the plan, or None when
    there is nothing to confirm (switched off, an incomplete search, no finished search trial)."""
    from sweeps import confirm

    if results is None or settings.confirm <= 0:
        return None
    trials = tune_trials(_experiment_path(storage, settings.name))
    if not _search_complete(settings, trials):
        return None  # --resume finishes the search, then confirms
    plan = confirm.load_or_make_plan(settings, space, storage, trials)
    if plan is None:
        print("confirmation: no search trial finished or was stopped early: nothing to confirm", flush=True)
        return None
    print(f"confirmation: {len(plan.candidates)} configs x {len(plan.seeds)} fresh seeds "
          f"({', '.join(str(s) for s in plan.seeds)}), {plan.steps:,} steps each, no early stopping:", flush=True)
    for c in plan.candidates:
        score = ", ".join(f"{m} {v:.4g}" for m, v in c.search_scores.items())
        at = f" at step {c.search_step:,}" if c.search_step < plan.steps else ""
        print(f"  {c.name}: {c.description}" + (f" (search: {score}{at} over {len(c.source_trials)} trial"
                                                 f"{'s' * (len(c.source_trials) != 1)})" if score else ""), flush=True)
    _fit(_confirmation_tuner(settings, plan, ref, storage, list(space.params)))
    return plan


def _summarise(settings: SweepSettings, space: spaces.SearchSpace, ref: tracking.SweepRef, storage: str,
               results: Any, plan: Any) -> int:
    """After the fits: every trial's final status on its run, the answer and the leaderboard on
    the parent run, the summary file, the parent run ended (KILLED when the sweep is incomplete),
    the closing text. Returns the exit code."""
    from sweeps import answer as answer_mod
    from sweeps import confirm
    from sweeps import summary as summary_mod

    uri, searched = settings.tracking_uri, list(space.params)
    experiment_path = _experiment_path(storage, settings.name)
    mlflow_client = tracking.client(uri)
    trials = tune_trials(experiment_path)
    statuses = reconcile_statuses(trials, ref)
    interrupted = len(statuses) < settings.num_samples * settings.seeds or \
        bool({INTERRUPTED, NOT_STARTED} & set(statuses.values()))
    confirm_trials: list[Any] = []
    confirm_statuses: dict[str, str] = {}
    if plan is None and settings.confirm > 0 and not interrupted and \
            read_storage_json(storage, settings.name, record.CONFIRM_PLAN_FILE) is not None:
        plan = confirm.Plan.from_json(read_storage_json(storage, settings.name, record.CONFIRM_PLAN_FILE) or {})
    if plan is not None:
        path = confirm.experiment_path(storage, settings.name)
        from ray import tune

        confirm_trials = tune_trials(path) if tune.Tuner.can_restore(path) else []
        confirm_statuses = reconcile_statuses(confirm_trials, ref)
        interrupted = interrupted or len(confirm_statuses) < len(plan.trial_configs()) or \
            bool({INTERRUPTED, NOT_STARTED} & set(confirm_statuses.values()))
    summary = _summary(settings, results, searched, ref.parent_run_id) if results is not None else \
        {"parent_run_id": ref.parent_run_id}
    summary["name"] = settings.name
    summary["statuses"] = _counts(statuses)
    answer = None
    if plan is not None:
        summary["confirm_statuses"] = _counts(confirm_statuses)
        ended = sum(s not in (INTERRUPTED, NOT_STARTED) for s in confirm_statuses.values())
        planned = len(plan.trial_configs())
        notes = [f"The confirmation is incomplete ({ended} of {planned} trials ended): this is the answer so far; "
                 "--resume completes it."] if ended < planned else []
        answer = answer_mod.compute_answer(
            confirm.answer_rows(confirm_trials, plan), confirm.answer_metrics(settings.metrics),
            {c.name: c.description for c in plan.candidates}, planned={c.name: len(plan.seeds) for c in plan.candidates},
            steps=plan.steps, notes=notes)
        summary_mod.publish_answer(mlflow_client, ref, answer)
        summary["answer"] = {"verdict": answer.verdict(), "markdown": answer.markdown(), "metrics": answer.mlflow_metrics(),
                             "plan": plan.to_json()}
    board = summary_mod.publish(mlflow_client, ref, trials, settings.metrics, settings.modes, searched,
                                settings.optuna_storage)
    correlations, asha_rungs, sweeps_seen = measure_rungs(settings, space, mlflow_client)
    summary["rung_correlations"] = correlations.to_dict(orient="records")
    summary_mod.publish_rungs(mlflow_client, ref, correlations, settings.metrics[0])
    from sweeps import rungs

    rung_lines = rungs.describe(correlations, settings.metrics[0], asha_rungs, sweeps_seen)
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
        kill_open_child_runs(mlflow_client, ref, [*trials, *confirm_trials])
    else:
        tracking.finish_run(mlflow_client, ref.parent_run_id)
    print("\n" + summary_mod.closing_text(summary, board, settings.metrics, searched, answer=answer,
                                         rung_lines=rung_lines))
    if interrupted:
        print(f"the sweep is incomplete: continue it with\n  {resume_command(settings, storage)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    for stage, stage_statuses in (("search", statuses), ("confirmation", confirm_statuses)):
        if stage_statuses and set(stage_statuses.values()) == {record.STATUS_FAILED}:
            print(f"every trial of the {stage} failed: their errors are in {experiment_path}/**/error.txt and in the "
                  f"MLflow runs' {record.TAG_ERROR} tags", file=sys.stderr)
            return EXIT_ALL_FAILED
    return 0


def _counts(statuses: Mapping[str, str]) -> dict[str, int]:
    return {s: list(statuses.values()).count(s) for s in sorted(set(statuses.values()))}


def _confirmation_tuner(settings: SweepSettings, plan: Any, ref: Any, storage: str, searched: Sequence[str]) -> Any:
    """The confirmation's Tuner (restored when its experiment exists): the sweep's trainable with
    its resources and ensemble placement (``make_sweep_trainable``), the planned configs,
    no early stopping, the status, progress and answer callbacks."""
    from ray import tune

    from sweeps import confirm
    from sweeps import summary as summary_mod
    from sweeps.trainable import TrialStatusCallback, trial_dirname

    trainable = make_sweep_trainable(settings, ref, record.STAGE_CONFIRM, plan.labels())
    path = confirm.experiment_path(storage, settings.name)
    if tune.Tuner.can_restore(path):
        return tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=True)
    configs = plan.trial_configs()
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=confirm.PlannedConfigs(configs), num_samples=len(configs),
                                    max_concurrent_trials=settings.max_concurrent, trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(
            name=record.CONFIRM_EXPERIMENT, storage_path=f"{storage.rstrip('/')}/{settings.name}",
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=[TrialStatusCallback(ref), summary_mod.AnswerUpdater(ref, settings.metrics, plan),
                       summary_mod.ProgressPrinter(len(configs), settings.metrics, [*searched, "train.seed"],
                                                   stage=record.STAGE_CONFIRM)],
            verbose=0,
        ),
    )
