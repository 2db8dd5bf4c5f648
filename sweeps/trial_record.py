"""What a trial records of its training: each evaluation to its MLflow run and to Tune, and the run's
closing record.

Written once for both ways a trial trains: in its own process (``sweeps.trainable``) and as a
member of a worker's step (``sweeps.ensemble_trials``), which both import it.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ray.tune

from infogan.atomic import write_json
from infogan.config import Config
from infogan.loop import EvalReport, TrainResult
from sweeps import record, tracking


def worst_value(mode: str) -> float:
    """The value a diverged trial reports for an objective it never measured."""
    return -math.inf if mode == "max" else math.inf


def tune_result(metrics: Mapping[str, float], step: int, objectives: Sequence[tuple[str, str]],
                diverged: bool) -> dict[str, float]:
    """The dict reported to Tune for one evaluation.

    Args:
        metrics: the EvalReport's metrics.
        step: the training step.
        objectives: the sweep's ``(metric, mode)`` pairs.
        diverged: whether the run diverged (the last report of a diverged run).
    Returns:
        The metrics plus ``step`` and ``train/diverged``; a diverged run's missing or non-finite
        objectives become the worst value, so searchers and schedulers rank it last.
    Raises:
        KeyError: an objective metric is missing from a healthy run's evaluation (a wrong
            ``--metric``): the message lists the metrics that exist.
    """
    out = {k: float(v) for k, v in metrics.items()}
    out[record.STEP] = step
    out[record.METRIC_DIVERGED] = 1.0 if diverged else 0.0
    for metric, mode in objectives:
        value = out.get(metric)
        if diverged and (value is None or not math.isfinite(value)):
            out[metric] = worst_value(mode)
        elif value is None:
            raise KeyError(
                f"the sweep's metric {metric!r} is not among this run's evaluation metrics "
                f"({', '.join(sorted(metrics))}); choose one of them with --metric"
            )
    return out


KEEP_LOCAL_CHECKPOINTS = 2  # as Tune's CheckpointConfig(num_to_keep=2) keeps its copies


def prune_local_checkpoints(current: Path, keep: int = KEEP_LOCAL_CHECKPOINTS) -> None:
    """Delete the loop's local checkpoint directories older than the last ``keep`` reported ones.

    The one just reported may still be being copied by Tune (its persistence can lag the report),
    so it and its predecessor stay: only checkpoints Tune finished with long ago are removed,
    and the local copies never outnumber Tune's own.
    """
    reported = sorted(p for p in current.parent.glob("step_*") if p.is_dir() and p.name <= current.name)
    for old in reported[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _log_files(mlflow_client: Any, run_id: str, run_dir: Path, names: Sequence[str], artifact_path: str | None) -> None:
    for name in names:
        path = run_dir / name
        if path.is_file():
            mlflow_client.log_artifact(run_id, str(path), artifact_path)


def _log_step_image(mlflow_client: Any, run_id: str, path: Path, step: int) -> None:
    """The traversal of this evaluation as a step image: the run page's Images tab slides through them."""
    if not path.is_file():
        return
    from PIL import Image

    with Image.open(path) as image:
        mlflow_client.log_image(run_id, image.convert("RGB"), key=record.IMAGE_KEY_TRAVERSAL, step=step)


def record_evaluation(mlflow_client: Any, run_id: str, run_dir: Path, report: EvalReport,
                      objectives: Sequence[tuple[str, str]]) -> dict[str, float]:
    """Log one evaluation of the loop writing ``run_dir`` to the trial's MLflow run (the loss rows
    since the last report, the metrics, tags, figures) and mark its checkpoint with the run id.

    Returns:
        The result to report to Tune (``tune_result``).
    """
    diverged = record.METRIC_DIVERGED_STEP in report.metrics
    result = tune_result(report.metrics, report.step, objectives, diverged)
    # One batch: the loss curve since the last report (every train.log_every steps), then this step.
    tracking.log_metric_rows(mlflow_client, run_id, [
        *report.losses,
        {**report.metrics, record.METRIC_DIVERGED: result[record.METRIC_DIVERGED], "step": report.step},
    ])
    for key, value in report.tags.items():  # e.g. which network the FID was measured with
        mlflow_client.set_tag(run_id, record.TAG_PREFIX + key, value)
    figures = run_dir / "figures"
    _log_files(mlflow_client, run_id, figures, record.FIGURES, record.ARTIFACT_FIGURES_DIR)
    _log_step_image(mlflow_client, run_id, figures / "traversal.png", report.step)
    if report.checkpoint is not None:
        # The child run id travels inside the checkpoint, so a retry on another node finds it.
        write_json(report.checkpoint / record.CHILD_FILE, {"run_id": run_id, "step": report.step})
    return result


def is_last_report(result: Mapping[str, float], step: int, cfg: Config) -> bool:
    """Whether a result is the run's last (diverged, or at its last step): held back until the
    run's MLflow record is complete (``record_ending``), since Tune may stop the trial at it."""
    return bool(result[record.METRIC_DIVERGED]) or step >= cfg.train.steps


def report_to_tune(result: dict[str, float], checkpoint: Path | None) -> None:
    """Hand one evaluation (and the checkpoint written at its step, if any) to Tune; the older
    local checkpoints beside it are pruned (``prune_local_checkpoints``)."""
    if checkpoint is None:
        ray.tune.report(result)
        return
    ray.tune.report(result, checkpoint=ray.tune.Checkpoint.from_directory(str(checkpoint)))
    prune_local_checkpoints(checkpoint)


def record_ending(mlflow_client: Any, run_id: str, run_dir: Path, result: TrainResult, wall: float) -> None:
    """Log the run's closing record (wall time, throughput, config, final checkpoint) and its status."""
    tracking.log_metrics(mlflow_client, run_id, {
        record.METRIC_WALL_SECONDS: wall, record.METRIC_IMAGES_PER_SECOND: result.images_per_second,
    }, result.step)
    _log_files(mlflow_client, run_id, run_dir, (record.ARTIFACT_CONFIG, record.ARTIFACT_METRICS), None)
    if result.checkpoint is not None and result.status == "finished":
        _log_files(mlflow_client, run_id, result.checkpoint, ("checkpoint.pt",), record.ARTIFACT_CHECKPOINT_DIR)
    status = record.STATUS_DIVERGED if result.status == "diverged" else record.STATUS_FINISHED
    if result.message:
        mlflow_client.set_tag(run_id, record.TAG_ERROR, result.message[:4000])
    tracking.finish_run(mlflow_client, run_id, status)
