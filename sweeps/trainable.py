"""The Tune side of one trial: the function trainable around ``infogan.train`` and the driver's
status callback.

A trial's config is a flat dotted-key dict (``Config.from_flat``). Every evaluation is reported to
Tune with ``ray.tune.report(metrics, checkpoint=...)`` (a checkpoint whenever the loop wrote one at
that step) and logged to the trial's MLflow child run. A retried trial resumes from
``ray.tune.get_checkpoint()`` and finds its child run again, so it keeps logging into the same run.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray.tune
import torch

from infogan.config import Config, upgrade_saved
from infogan.loop import EvalReport, train
from sweeps import record, tracking
from sweeps.tracking import SweepRef
from sweeps.trial_record import is_last_report, record_ending, record_evaluation, report_to_tune


class TrialConfigError(ValueError):
    """A trial's config is invalid: this trial fails, the sweep goes on."""


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of a sweep shares, passed explicitly (``tune.with_parameters``).

    Attributes:
        ref: where the sweep lives in MLflow (URI, experiment, parent run).
        objectives: ``((metric, mode), ...)``; a diverged trial reports the worst value for each.
        stage: ``search`` or ``confirm`` (``record.STAGES``), tagged on every trial's run.
        candidates: ``(config_id, name)`` of the confirmation's configs (``sweeps.confirm``): a
            trial's run is tagged with the name of its config.
    """

    ref: SweepRef
    objectives: tuple[tuple[str, str], ...]
    stage: str = record.STAGE_SEARCH
    candidates: tuple[tuple[str, str], ...] = ()


def with_repeat_seed(config: Mapping[str, Any]) -> dict[str, Any]:
    """A trial config with Tune's ``Repeater`` index (``--seeds N``) turned into its training seed.

    The N repeats of one sampled config get ``train.seed`` = the config's seed + 0 .. N-1 and are
    otherwise identical, so the analysis groups them by config id and reports their spread.
    """
    from ray.tune.search.repeater import TRIAL_INDEX

    out = dict(config)
    index = out.pop(TRIAL_INDEX, None)
    if index is not None:
        out["train.seed"] = int(out.get("train.seed", Config().train.seed)) + int(index)
    return out


def run_trial(config: dict[str, Any], settings: TrialSettings, ensemble: bool = False) -> None:
    """Train one configuration inside Tune, reporting to Tune and MLflow.

    Args:
        config: flat dotted config keys (the search space's suggestions and fixed values).
        settings: the sweep's shared settings.
        ensemble: train in an ensemble worker with other trials (``sweeps.ensemble_trials``)
            instead of in this process.
    Raises:
        TrialConfigError: the config is invalid (the trial errors; the sweep continues).
    """
    context = ray.tune.get_context()
    trial_id, trial_name = context.get_trial_id(), context.get_trial_name()
    config = with_repeat_seed(config)
    # The loop's working folder (checkpoints, figures, logs) is a temporary one outside the trial
    # folder Tune copies to its storage with every experiment snapshot: the loop prunes its old
    # checkpoints while Tune copies, and each collision failed a snapshot ("Saving experiment
    # state ... failed", FileNotFoundError), the state --resume needs. Nothing in it outlives the
    # trial: checkpoints reach Tune through tune.report, figures and records MLflow.
    run_dir = Path(tempfile.mkdtemp(prefix=f"infogan-trial-{trial_id}-"))
    try:
        _run_trial(config, settings, trial_id, trial_name, run_dir, ensemble)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _run_trial(config: dict[str, Any], settings: TrialSettings, trial_id: str, trial_name: str, run_dir: Path,
               ensemble: bool) -> None:
    """``run_trial``'s work, with the loop writing to ``run_dir``."""
    # Every MLflow call of the trial waits out a tracking outage (logged when it starts and ends).
    mlflow_client = tracking.ResilientClient(tracking.client(settings.ref.tracking_uri), what=f"MLflow (trial {trial_id})")

    checkpoint = ray.tune.get_checkpoint()
    known_run_id = None
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            saved = tracking.read_json(Path(directory) / record.CHILD_FILE) or {}
            known_run_id = saved.get("run_id")
    run_id: str | None = None
    try:
        # Opening the run is part of the trial's MLflow conversation, inside its error handling.
        run_id = tracking.open_child_run(mlflow_client, settings.ref, trial_id, trial_name, known_run_id)
        try:
            cfg = Config.from_flat(upgrade_saved(config))  # a sweep resumed from an older version
        except ValueError as err:
            raise TrialConfigError(f"trial {trial_id} has an invalid config: {err}") from None
        tracking.log_params(mlflow_client, run_id, cfg.to_flat())
        tracking.tag_stage(mlflow_client, run_id, settings.stage, dict(settings.candidates), cfg.to_flat())
        if ensemble:
            from sweeps.ensemble_trials import train_in_worker

            if checkpoint is None:
                train_in_worker(cfg, None, run_id, trial_id, settings)
            else:
                with checkpoint.as_directory() as directory:
                    train_in_worker(cfg, Path(directory), run_id, trial_id, settings)
            return
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if checkpoint is None:
            _train(cfg, run_dir, None, mlflow_client, run_id, settings)
        else:
            with checkpoint.as_directory() as directory:
                _train(cfg, run_dir, Path(directory), mlflow_client, run_id, settings)
    except Exception as err:
        # Mark the run failed before Tune retries or gives up; a retry reopens it as running.
        # (A scheduler's stop arrives as SystemExit from ray.tune.report: not a failure; the
        # driver's TrialStatusCallback records it as stopped_early.)
        if run_id is not None:
            try:
                quick = tracking.ResilientClient(tracking.client(settings.ref.tracking_uri), patience=30.0)
                quick.set_tag(run_id, record.TAG_ERROR, f"{type(err).__name__}: {err}"[:4000])
                tracking.finish_run(quick, run_id, record.STATUS_FAILED)
            except Exception:  # the original error matters more than a tracking hiccup
                pass
        raise


def _train(cfg: Config, run_dir: Path, resume: Path | None, mlflow_client: Any, run_id: str,
           settings: TrialSettings) -> None:
    """Run the loop, reporting every evaluation; the final report goes to Tune last of all.

    A scheduler may stop a trial at any report, including the final one (an ASHA rung can fall on
    the last step): the trial's MLflow record (final checkpoint, wall time, status) is therefore
    complete before Tune hears the final result, so nothing is lost whatever Tune decides.
    """
    final: list[tuple[dict[str, float], Path | None]] = []  # the held-back final report

    def on_eval(report: EvalReport) -> None:
        result = record_evaluation(mlflow_client, run_id, run_dir, report, settings.objectives)
        if is_last_report(result, report.step, cfg):
            final.append((result, report.checkpoint))
            return
        report_to_tune(result, report.checkpoint)

    start = time.perf_counter()
    result = train(cfg, run_dir=run_dir, on_eval=on_eval, resume=resume)
    record_ending(mlflow_client, run_id, run_dir, result, time.perf_counter() - start)
    if final:  # absent when a retry resumed from the last step's checkpoint: nothing left to train
        report_to_tune(*final[-1])


def make_trainable(settings: TrialSettings, cpus: float = 1.0, gpus: float = 0.0,
                   ensemble: bool = False) -> Callable[..., Any]:
    """The trainable Tune runs: ``run_trial`` with the sweep's settings and per-trial resources.

    Args:
        settings: shared by every trial.
        cpus: CPUs per trial.
        gpus: GPUs per trial; fractions (0.5) pack several trials on one GPU (no memory isolation).
        ensemble: the trials train in ensemble workers, which hold ``cpus`` and ``gpus`` each; a
            trial itself then asks for ``ensemble_trials.TRIAL_RESOURCES``.
    """
    trainable = ray.tune.with_parameters(run_trial, settings=settings, ensemble=ensemble)
    if ensemble:
        from sweeps.ensemble_trials import TRIAL_RESOURCES

        return ray.tune.with_resources(trainable, TRIAL_RESOURCES)
    return ray.tune.with_resources(trainable, {"cpu": cpus, "gpu": gpus})


# --------------------------------------------------------------------------------------------
# Driver side


def trial_steps(config: Mapping[str, Any]) -> int:
    """The training budget (``train.steps``) of a trial's flat config."""
    return int(config.get("train.steps", Config().train.steps))


def ended_status(trial: Any) -> str | None:
    """The driver's verdict on a Tune trial (``record.trial_status``); None while Tune may still run
    it (only ``record.TUNE_ENDED`` trials have ended)."""
    if trial.status not in record.TUNE_ENDED:
        return None
    return record.trial_status(trial.status, trial.last_result, trial_steps(trial.config))


def trial_dirname(trial: Any) -> str:
    """Short trial directory names (Tune's default embeds every config value)."""
    return f"trial_{trial.trial_id}"


def _leave_ensemble(sweep: str, trial: Any) -> None:
    """An ensemble worker training the trial stops waiting for it (``--ensemble``; else nothing)."""
    from sweeps.ensemble_trials import leave

    leave(sweep, trial.trial_id)


class TrialStatusCallback(ray.tune.Callback):
    """Sets each child run's final ``infogan.status`` from the driver.

    The trainable cannot see that ASHA stopped it, nor that its node died, so the driver records
    ``stopped_early`` and ``failed`` here. Picklable (Tune saves callbacks with the experiment).
    """

    def __init__(self, ref: SweepRef):
        self.ref = ref
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"ref": self.ref, "_client": None}

    def _mark(self, trial: Any) -> None:
        if self._client is None:
            self._client = tracking.ResilientClient(tracking.client(self.ref.tracking_uri), what="MLflow (driver)")
        run_id = tracking.find_child_run(self._client, self.ref, trial.trial_id)
        if run_id is None:
            return
        status = record.trial_status(trial.status if trial.status == "ERROR" else "TERMINATED", trial.last_result,
                              trial_steps(trial.config))
        tracking.settle_child_run(self._client, run_id, status)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        _leave_ensemble(self.ref.sweep, trial)
        self._mark(trial)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        _leave_ensemble(self.ref.sweep, trial)
        if self._client is None:
            self._client = tracking.ResilientClient(tracking.client(self.ref.tracking_uri), what="MLflow (driver)")
        run_id = tracking.find_child_run(self._client, self.ref, trial.trial_id)
        if run_id is not None:
            tracking.finish_run(self._client, run_id, record.STATUS_FAILED)
