"""The run record: what a sweep writes to MLflow and Tune, and how it is read back. One place.

Owns the vocabulary (tag, param, metric and artifact names; roles; trial statuses), how a config
value is written as MLflow param text and read back, how a trial's status is decided (by the
driver from Tune's view, by ``analysis collect`` from whatever evidence survived), and which
config keys make two trials "the same config" (``config_id``). ``sweeps.tracking`` and
``sweeps.trainable`` write through it; ``analysis`` and ``analysis.synthetic`` read and write
through it. It imports nothing but the standard library at load time (``infogan.config`` only
inside the functions that type values), so reading tables stays pandas + pyarrow.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from infogan.metric_catalogue import EVAL_PREFIX  # standard library only, like this module
from infogan.metric_names import DIVERGED_STEP, IMAGES
from infogan.metric_names import PREFIX as TRAIN_PREFIX

# ---- tags
TAG_PARENT_RUN_ID = "mlflow.parentRunId"
TAG_RUN_NAME = "mlflow.runName"
TAG_NOTE = "mlflow.note.content"  # the run page's description (Markdown)
TAG_PREFIX = "infogan."  # + a key of EvalReport.tags, e.g. infogan.fid_feature_net
TAG_ROLE = TAG_PREFIX + "role"
TAG_SWEEP = TAG_PREFIX + "sweep"
TAG_GIT_COMMIT = TAG_PREFIX + "git_commit"
TAG_VERSION_PREFIX = TAG_PREFIX + "version."
TAG_TRIAL_ID = TAG_PREFIX + "trial_id"
TAG_STATUS = TAG_PREFIX + "status"
TAG_ERROR = TAG_PREFIX + "error"
TAG_FID_FEATURE_NET = TAG_PREFIX + "fid_feature_net"
TAG_BEST_TRIAL_ID = TAG_PREFIX + "best_trial_id"
# --ensemble K: the worker that trained the trial with others in one step ("<sweep>/<n>"), and the
# trial ids of its members (comma-separated, the trial's own included).
TAG_ENSEMBLE_WORKER = TAG_PREFIX + "ensemble_worker"
TAG_ENSEMBLE_MEMBERS = TAG_PREFIX + "ensemble_members"
ROLE_PARENT = "parent"
ROLE_TRIAL = "trial"
# The stage a trial belongs to: the search (one seed per sampled config, ASHA may stop it), or the
# confirmation that re-trains the chosen configs with fresh seeds at the full budget.
TAG_STAGE = TAG_PREFIX + "stage"
STAGE_SEARCH = "search"
STAGE_CONFIRM = "confirm"
STAGES = (STAGE_SEARCH, STAGE_CONFIRM)
# A confirmation trial's candidate: "recipe" (the recipe's own config) or "top1", "top2", ... in
# the order the search ranked them (which search trials ran it: the plan, CONFIRM_PLAN_FILE).
TAG_CANDIDATE = TAG_PREFIX + "candidate"
CANDIDATE_RECIPE = "recipe"
# The parent run's answer in one line (its full form: the description and sweep/answer.md).
TAG_ANSWER = TAG_PREFIX + "answer"

# ---- statuses: ours, and the MLflow run status each ends with
STATUS_RUNNING = "running"
STATUS_FINISHED = "finished"
STATUS_STOPPED_EARLY = "stopped_early"
STATUS_DIVERGED = "diverged"
STATUS_FAILED = "failed"
STATUSES = (STATUS_RUNNING, STATUS_FINISHED, STATUS_STOPPED_EARLY, STATUS_DIVERGED, STATUS_FAILED)
MLFLOW_STATUS = {
    STATUS_FINISHED: "FINISHED", STATUS_STOPPED_EARLY: "FINISHED", STATUS_DIVERGED: "FINISHED",
    STATUS_FAILED: "FAILED",
}

# ---- params and metrics
SWEEP_PARAM_PREFIX = "sweep."
STEP = "step"  # the training step, reported to Tune with every result
WORK = IMAGES  # training work in images (infogan.metric_names.IMAGES says what it counts); ASHA's clock
METRIC_WALL_SECONDS = "time/wall_seconds"
METRIC_IMAGES_PER_SECOND = "time/images_per_second"
METRIC_DIVERGED = "train/diverged"  # 1.0 on a diverged trial's last report, else 0.0 (reported to Tune too)
METRIC_DIVERGED_STEP = DIVERGED_STEP  # set by infogan.train on divergence
METRIC_PREFIXES = (EVAL_PREFIX, TRAIN_PREFIX, "time/")  # metric families that become table columns

# ---- artifacts of a child run, and files beside Tune's state
ARTIFACT_SEARCH_SPACE = "search_space.json"
ARTIFACT_SWEEP_CONFIG = "sweep_config.json"
ARTIFACT_FIGURES_DIR = "figures"  # figures/samples.png, figures/traversal.png
ARTIFACT_CHECKPOINT_DIR = "checkpoint"  # checkpoint/checkpoint.pt
ARTIFACT_CONFIG = "config.json"
ARTIFACT_METRICS = "metrics.json"
FIGURES = ("samples.png", "traversal.png")
IMAGE_KEY_TRAVERSAL = "traversal"  # step images (one per evaluation) under the run's images/
ARTIFACTS = {  # the trials table's artifact columns -> paths inside a child run
    "artifact/samples": f"{ARTIFACT_FIGURES_DIR}/samples.png",
    "artifact/traversal": f"{ARTIFACT_FIGURES_DIR}/traversal.png",
    "artifact/checkpoint": f"{ARTIFACT_CHECKPOINT_DIR}/checkpoint.pt",
    "artifact/config": ARTIFACT_CONFIG,
    "artifact/metrics": ARTIFACT_METRICS,
}
PARENT_FILE = "mlflow_parent.json"  # in the Tune experiment directory
CONFIRM_PLAN_FILE = "confirm_plan.json"  # beside it: the configs and seeds the confirmation trains
CONFIRM_EXPERIMENT = "confirm"  # the confirmation's Tune experiment: <storage>/<sweep>/confirm/
CHILD_FILE = "mlflow_run.json"  # in every checkpoint directory a trial reports


# --------------------------------------------------------------------------------------------
# Values


def value_from_param(key: str, text: Any) -> Any:
    """A config value back from its param text (or a Tune config value), typed as ``Config``
    types it (code tuples as their param text, ``"10,3"``); None when absent or when it does not
    parse (the raw text stays visible in MLflow, and the column type stays honest)."""
    from infogan.config import flat_value, value_kind  # not at import: reading tables stays light

    if text is None:
        return None
    if isinstance(text, str) and value_kind(key) != "string" and text.strip().lower() in ("", "none", "null"):
        return None
    if value_kind(key) == "int" and isinstance(text, (str, float)):  # "12.0" from a float-typed source
        try:
            number = float(text)
            text = int(number) if number.is_integer() else text
        except ValueError:
            pass
    try:
        return flat_value(key, text)
    except ValueError:
        return None


def config_id(config: Mapping[str, Any]) -> str:
    """A short stable hash of the semantic part of a config: trials sharing it differ only in
    ``infogan.config.NON_SEMANTIC_KEYS`` (seed, machine, numerics, bookkeeping).

    Args:
        config: dotted key -> typed value (None where unknown).
    Returns:
        12 hex characters.
    """
    from infogan.config import NON_SEMANTIC_KEYS

    semantic = {k: config[k] for k in sorted(config) if k not in NON_SEMANTIC_KEYS}
    blob = json.dumps(semantic, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:12]


# --------------------------------------------------------------------------------------------
# Statuses


TUNE_ENDED = ("TERMINATED", "ERROR")  # Tune's statuses of a trial that will not run again


def trial_status(tune_status: str, last_result: Mapping[str, Any] | None, steps: int | None) -> str:
    """The driver's verdict on a trial Tune has ended.

    Args:
        tune_status: Tune's status (``TERMINATED``, ``ERROR``, ...).
        last_result: the trial's last reported result.
        steps: the trial's configured ``train.steps``.
    Returns:
        ``failed``, ``diverged``, ``stopped_early`` (ended before its last step without
        diverging: the scheduler stopped it) or ``finished``.
    """
    last_result = last_result or {}
    if tune_status == "ERROR":
        return STATUS_FAILED
    if last_result.get(METRIC_DIVERGED) == 1.0:
        return STATUS_DIVERGED
    if steps is not None and int(last_result.get(STEP, 0)) < steps:
        return STATUS_STOPPED_EARLY
    return STATUS_FINISHED


def keeps_own_status(own: str | None, decided: str, run_ended: bool) -> bool:
    """Whether a child run's own status tag stands against the driver's ``decided`` one.

    A trial that ran its loop to the end tags itself finished/diverged; only a trial killed by
    the scheduler can be stopped early, so the trial's own verdict wins over the driver's guess
    from Tune's last result (which can lag behind the trial's final report). A run already
    tagged with the decided status and ended keeps its own end time.
    """
    if decided == STATUS_STOPPED_EARLY and own in (STATUS_FINISHED, STATUS_DIVERGED) and run_ended:
        return True
    return own == decided and run_ended


def recorded_status(tag: str | None, mlflow_status: str | None, tune_errored: bool | None, diverged: bool,
                    steps_done: int | None, cfg_steps: int | None) -> str:
    """One status per trial from what its records hold (``analysis collect``): the sweep's own
    tag first, then Tune's and MLflow's evidence.

    Args:
        tag: the child run's status tag, if any.
        mlflow_status: the run's MLflow status, if it has a run.
        tune_errored: whether Tune's folder holds an error for it (None: no Tune record).
        diverged: whether its metrics say it diverged.
        steps_done: the last step it logged; cfg_steps: its configured budget.
    """
    if tag in STATUSES and tag != STATUS_RUNNING:
        # The trial's own verdict wins over Tune's error.txt: Ray keeps that file after a retry
        # that went on to finish (the retry reopens the run and tags it again).
        return tag
    if tune_errored:
        return STATUS_FAILED  # no verdict (or still "running"): the process died without settling it
    if mlflow_status == "FAILED":
        return STATUS_FAILED
    if diverged:
        return STATUS_DIVERGED
    # Collected mid-sweep, a live trial is running; a run whose driver died before settling it
    # also stays "running": Tune's folder cannot tell the two apart, so neither do we.
    if tag == STATUS_RUNNING or mlflow_status == "RUNNING":
        return STATUS_RUNNING
    if steps_done is not None and cfg_steps is not None and steps_done >= cfg_steps:
        return STATUS_FINISHED
    if mlflow_status == "FINISHED" and tune_errored is None and tag is None:
        return STATUS_FINISHED
    if mlflow_status == "KILLED" or tune_errored is not None:
        return STATUS_STOPPED_EARLY
    return tag or STATUS_RUNNING
