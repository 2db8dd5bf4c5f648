"""MLflow tracking for sweeps: the tag/param/artifact contract, the tracking URI, parent and child runs.

The contract's names and rules live in ``sweeps.record`` (which the analysis package reads
through too); this module talks to MLflow with them:
one experiment per sweep name; one parent run per sweep (reused on ``--resume``; its id is kept in
``<storage>/<name>/mlflow_parent.json``); one child run per Tune trial, found again after a retry
through the tag ``infogan.trial_id`` (and ``mlflow_run.json`` inside every reported checkpoint).

Everything uses the plain ``MlflowClient`` with explicit run ids, never the fluent API's global
"active run", because trials of one sweep may share a worker process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from infogan.config import value_text
from sweeps import record

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

VERSIONED_PACKAGES = ("torch", "ray", "optuna", "mlflow", "infogan-sweeps")
logger = logging.getLogger(__name__)


# How long a trial waits out a tracking outage (beyond MLflow's own retries) before it fails.
OUTAGE_PATIENCE_S = float(os.environ.get("INFOGAN_TRACKING_OUTAGE_S", "900"))
_TRANSIENT = ("max retries exceeded", "connection", "timed out", "timeout", "temporarily unavailable",
              "database is locked", "502", "503", "504", "bad gateway", "service unavailable")


def is_transient(err: BaseException) -> bool:
    """Whether a tracking error looks like an outage (worth waiting out) rather than a refusal."""
    if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return False  # a local file problem does not go away by waiting
    if isinstance(err, (ConnectionError, TimeoutError, OSError)):  # requests' errors are OSErrors too
        return True
    text = f"{type(err).__name__}: {err}".lower()
    return any(marker in text for marker in _TRANSIENT)


class ResilientClient:
    """An ``MlflowClient`` whose calls wait out tracking outages.

    A call failing with a transient error (``is_transient``) is retried with backoff for up to
    ``patience`` seconds; the outage is logged once when it starts and once when it ends, so a
    trial's log says how long its records were delayed. Other errors (a refused request, a
    missing run) are raised at once.
    """

    def __init__(self, mlflow_client: Any, patience: float = OUTAGE_PATIENCE_S, what: str = "MLflow"):
        self._client, self._patience, self._what = mlflow_client, patience, what
        self._down_since: float | None = None

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            delay = 1.0
            while True:
                try:
                    result = method(*args, **kwargs)
                except Exception as err:
                    if not is_transient(err):
                        raise
                    now = time.monotonic()
                    if self._down_since is None:
                        self._down_since = now
                        logger.warning("%s unreachable (%s: %s); retrying for up to %.0f s", self._what, name,
                                       str(err)[:300], self._patience)
                    if now - self._down_since > self._patience:
                        raise
                    time.sleep(delay)
                    delay = min(2 * delay, 30.0)
                    continue
                if self._down_since is not None:
                    logger.warning("%s reachable again after %.0f s", self._what, time.monotonic() - self._down_since)
                    self._down_since = None
                return result

        return call


class TrackingUnavailableError(RuntimeError):
    """The tracking server or store cannot be used; raised before any trial starts."""


# --------------------------------------------------------------------------------------------
# URIs


def resolve_tracking_uri(cli_value: str | None = None, env: Mapping[str, str] | None = None,
                         cwd: str | Path | None = None) -> str:
    """``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlflow.db``.

    Relative sqlite paths are made absolute, since Tune runs trials in their own directories.

    Args:
        cli_value: the ``--tracking-uri`` flag, if given.
        env: the environment to read (default ``os.environ``).
        cwd: the directory relative paths refer to (default the current one).
    Returns:
        An absolute tracking URI.
    """
    env = os.environ if env is None else env
    cwd = Path(cwd or os.getcwd())
    uri = cli_value or env.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = uri[len("sqlite:///"):]
        if path and path != ":memory:" and not path.startswith("/"):
            return f"sqlite:///{(cwd / path).resolve()}"
    elif parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme == "file" else uri)
        return (path if path.is_absolute() else (cwd / path).resolve()).as_uri()
    return uri


def default_artifact_location(tracking_uri: str) -> str | None:
    """Where a new experiment's artifacts go for a local sqlite store: ``mlartifacts`` beside the db.

    MLflow's own default is relative to the process's cwd, which differs per trial; servers
    (http) decide the location themselves, so None there.
    """
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///"):])
        return (db.parent / "mlartifacts").as_uri()
    return None


def ui_command(tracking_uri: str) -> str:
    """The command that shows this store in a browser."""
    if urlparse(tracking_uri).scheme in ("http", "https"):
        return f"open {tracking_uri} in a browser"
    location = default_artifact_location(tracking_uri)
    extra = f" --default-artifact-root {location}" if location else ""
    return f"mlflow ui --backend-store-uri {tracking_uri}{extra} --workers 1"


def check_tracking(tracking_uri: str, timeout: float = 5.0) -> None:
    """Fail fast, with one clear message, when the tracking store cannot be used.

    Args:
        tracking_uri: an absolute tracking URI.
        timeout: seconds to wait for an http(s) server.
    Raises:
        TrackingUnavailableError: the server does not answer its health check, or the sqlite file's
            directory is not writable, or the store (a server included) rejects a cheap query.
    """
    parsed = urlparse(tracking_uri)
    if parsed.scheme in ("http", "https"):
        url = tracking_uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - user's own URI
                if response.status != 200:
                    raise TrackingUnavailableError(f"MLflow tracking server {tracking_uri} answered {response.status} on /health")
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            raise TrackingUnavailableError(
                f"MLflow tracking server {tracking_uri} is unreachable ({err}); start it, fix --tracking-uri / "
                "MLFLOW_TRACKING_URI, or drop both to use the local store sqlite:///mlflow.db"
            ) from None
        # /health answers even where the API refuses this client (a Host header outside the
        # server's --allowed-hosts, missing credentials): the query below catches those too.
    elif parsed.scheme == "sqlite":
        db = Path(tracking_uri[len("sqlite:///"):])
        directory = db.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            ok = os.access(directory, os.W_OK) and (not db.exists() or os.access(db, os.W_OK))
        except OSError:
            ok = False
        if not ok:
            raise TrackingUnavailableError(f"MLflow store {tracking_uri}: {db} is not writable; choose another --tracking-uri")
        return
    elif parsed.scheme == "file":
        return
    # Servers, databases and other schemes: one cheap query, without MLflow's long retry loop.
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(math.ceil(timeout)))
    try:
        client(tracking_uri).search_experiments(max_results=1)
    except Exception as err:  # any driver/network error means the same thing to the user
        raise TrackingUnavailableError(f"MLflow tracking store {tracking_uri} is unusable: {err}") from None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def initialise_store(tracking_uri: str, timeout: float = 300.0) -> None:
    """Create a new local store's tables, one process at a time.

    MLflow creates a sqlite store's tables on first use without a lock: two sweeps starting
    together on a new store race (``table ... already exists``). A file lock beside the database
    serialises that first use; later ones find the tables there.
    """
    if not tracking_uri.startswith("sqlite:///"):
        return
    from filelock import FileLock

    db = Path(tracking_uri[len("sqlite:///"):])
    with FileLock(str(db) + ".lock", timeout=timeout):
        client(tracking_uri).search_experiments(max_results=1)


_BARS_VARIABLE = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"  # MLflow reads it at each download


@contextlib.contextmanager
def no_download_bars() -> Iterator[None]:
    """Within the block, MLflow's artifact downloads print no tqdm bar on stderr (a bar per small
    file is noise beside the caller's own progress and error lines); the variable is restored after."""
    before = os.environ.get(_BARS_VARIABLE)
    os.environ[_BARS_VARIABLE] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(_BARS_VARIABLE, None)
        else:
            os.environ[_BARS_VARIABLE] = before


def client(tracking_uri: str) -> MlflowClient:
    """An ``MlflowClient`` bound to ``tracking_uri`` (imports MLflow lazily)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


# --------------------------------------------------------------------------------------------
# Parent runs


def git_commit(repo: Path | None = None) -> str:
    """The HEAD commit of the checkout holding this package, or ``"unknown"``."""
    repo = repo or Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a sweep's results depend on."""
    out = {}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def get_or_create_experiment(mlflow_client: MlflowClient, name: str, tracking_uri: str) -> str:
    """The id of experiment ``name``, created (with an absolute artifact location) if missing."""
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            mlflow_client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    return mlflow_client.create_experiment(name, artifact_location=default_artifact_location(tracking_uri))


def start_parent_run(mlflow_client: MlflowClient, experiment_id: str, sweep: str, params: Mapping[str, Any],
                     search_space: Mapping[str, Any], sweep_config: Mapping[str, Any]) -> str:
    """Create the sweep's parent run with its tags, ``sweep.*`` params and JSON artifacts.

    Returns:
        The new run's id.
    """
    tags = {record.TAG_ROLE: record.ROLE_PARENT, record.TAG_SWEEP: sweep, record.TAG_GIT_COMMIT: git_commit(),
            record.TAG_RUN_NAME: sweep}
    tags.update({record.TAG_VERSION_PREFIX + k: v for k, v in package_versions().items()})
    run = mlflow_client.create_run(experiment_id, tags=tags, run_name=sweep)
    run_id = run.info.run_id
    log_params(mlflow_client, run_id, {record.SWEEP_PARAM_PREFIX + k: v for k, v in params.items()})
    with tempfile.TemporaryDirectory() as tmp:
        for name, payload in ((record.ARTIFACT_SEARCH_SPACE, search_space),
                              (record.ARTIFACT_SWEEP_CONFIG, sweep_config)):
            path = Path(tmp) / name
            path.write_text(json.dumps(payload, indent=2, default=str))  # the space's order is its knobs' order
            mlflow_client.log_artifact(run_id, str(path))
    return run_id


def reopen_run(mlflow_client: MlflowClient, run_id: str) -> None:
    """Mark a run RUNNING again (a resumed sweep or a retried trial)."""
    mlflow_client.update_run(run_id, status="RUNNING")


def finish_run(mlflow_client: MlflowClient, run_id: str, status: str | None = None) -> None:
    """End a run; for child runs also set ``infogan.status`` (one of ``STATUSES``)."""
    if status is not None:
        mlflow_client.set_tag(run_id, record.TAG_STATUS, status)
    mlflow_client.set_terminated(run_id, record.MLFLOW_STATUS.get(status or record.STATUS_FINISHED, "FINISHED"))


def settle_child_run(mlflow_client: MlflowClient, run_id: str, status: str) -> None:
    """Driver side: record a trial's final status unless the trial already did.

    Leaves a run alone whose tag already says ``status`` and which has ended, so its end time
    stays the trial's own (the driver learns of the end later). A trial that ran its loop to the
    end tags itself finished/diverged; only a trial killed by the scheduler can be stopped early,
    so the trial's own verdict wins over the driver's guess from Tune's last result, which can
    lag behind the trial's final report.
    """
    run = mlflow_client.get_run(run_id)
    own = run.data.tags.get(record.TAG_STATUS)
    if not record.keeps_own_status(own, status, run_ended=run.info.status != "RUNNING"):
        finish_run(mlflow_client, run_id, status)


# --------------------------------------------------------------------------------------------
# Params and metrics


def log_params(mlflow_client: MlflowClient, run_id: str, params: Mapping[str, Any]) -> None:
    """Log params in batches (MLflow caps a batch at 100 params)."""
    from mlflow.entities import Param

    items = [Param(k, value_text(v)) for k, v in params.items()]
    for start in range(0, len(items), 100):
        mlflow_client.log_batch(run_id, params=items[start:start + 100])


def log_metrics(mlflow_client: MlflowClient, run_id: str, metrics: Mapping[str, float], step: int) -> None:
    """Log every numeric metric at ``step`` in one batch."""
    log_metric_rows(mlflow_client, run_id, [{**metrics, "step": step}])


def log_metric_rows(mlflow_client: MlflowClient, run_id: str, rows: Sequence[Mapping[str, float]]) -> None:
    """Log rows of ``{"step": s, metric: value, ...}`` (numeric values only) in as few batches as possible."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, int(row["step"])) for row in rows for k, v in row.items()
             if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)]
    for start in range(0, len(items), 1000):
        mlflow_client.log_batch(run_id, metrics=items[start:start + 1000])


# --------------------------------------------------------------------------------------------
# Child runs


@dataclass(frozen=True)
class SweepRef:
    """What a trial needs to find its sweep in MLflow; passed to trials explicitly."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    sweep: str


def find_child_run(mlflow_client: MlflowClient, ref: SweepRef, trial_id: str) -> str | None:
    """The child run of ``trial_id`` in this sweep, if one was created already."""
    runs = mlflow_client.search_runs(
        [ref.experiment_id],
        filter_string=f"tags.`{record.TAG_TRIAL_ID}` = '{trial_id}' and "
                      f"tags.`{record.TAG_PARENT_RUN_ID}` = '{ref.parent_run_id}'",
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


SEARCH_PAGE = 1000  # runs per search_runs page: within every store's limit


def search_all(mlflow_client: Any, experiment_ids: list[str], filter_string: str) -> list[Any]:
    """Every run matching a filter, across pages (one search is capped by the store)."""
    runs: list[Any] = []
    token = None
    while True:
        page = mlflow_client.search_runs(experiment_ids, filter_string=filter_string, max_results=SEARCH_PAGE,
                                         page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def child_runs(mlflow_client: MlflowClient, ref: SweepRef) -> list[Any]:
    """Every child run of the sweep's parent run."""
    return search_all(mlflow_client, [ref.experiment_id], f"tags.`{record.TAG_PARENT_RUN_ID}` = '{ref.parent_run_id}'")


def open_child_run(mlflow_client: MlflowClient, ref: SweepRef, trial_id: str, trial_name: str,
                   known_run_id: str | None = None) -> str:
    """The trial's child run: the known one (from a checkpoint), one found by tag, or a new one.

    A reused run is set back to RUNNING with ``infogan.status=running``.

    Returns:
        The child run's id.
    """
    run_id = known_run_id or find_child_run(mlflow_client, ref, trial_id)
    if run_id is None:
        tags = {record.TAG_PARENT_RUN_ID: ref.parent_run_id, record.TAG_ROLE: record.ROLE_TRIAL,
                record.TAG_SWEEP: ref.sweep, record.TAG_TRIAL_ID: trial_id, record.TAG_STATUS: record.STATUS_RUNNING,
                record.TAG_NOTE: f"Trial `{trial_id}` of sweep **{ref.sweep}**; its leaderboard and plots are on "
                                 f"the parent run [{ref.parent_run_id}]"
                                 f"(#/experiments/{ref.experiment_id}/runs/{ref.parent_run_id}). "
                                 "The Images tab steps through the traversal at every evaluation."}
        return mlflow_client.create_run(ref.experiment_id, tags=tags, run_name=trial_name).info.run_id
    reopen_run(mlflow_client, run_id)
    mlflow_client.set_tag(run_id, record.TAG_STATUS, record.STATUS_RUNNING)
    return run_id


def tag_stage(mlflow_client: MlflowClient, run_id: str, stage: str, candidates: Mapping[str, str],
              config: Mapping[str, Any]) -> None:
    """Tag a trial's run with its stage and, in the confirmation, its candidate's name (found by
    the config's ``record.config_id`` among ``candidates``: config id -> name)."""
    tags = {record.TAG_STAGE: stage}
    name = candidates.get(record.config_id(config))
    if name is not None:
        tags[record.TAG_CANDIDATE] = name
    for key, value in tags.items():
        mlflow_client.set_tag(run_id, key, value)


def read_json(path: Path) -> dict[str, Any] | None:
    """A small JSON file, or None if it is missing or torn."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


