"""``--ensemble K``: K trials of a sweep trained in one worker, by one ensemble step, each still
its own Tune trial.

A GPU running one InfoGAN step at a time is launch-bound (issue 15), so a worker stacks K trials
into one ``infogan.loop.train_members`` (K-times larger kernels, each member its own
run). Tune and ASHA keep seeing K ordinary trials:

- Each trial (``run_trial`` with an ``EnsembleSettings``) asks for almost nothing
  (``TRIAL_RESOURCES``): it opens its MLflow child run, then asks the sweep's ``Registry`` (a
  named actor the driver starts) for a place in the open ``Worker``, and relays what the worker
  sends: each evaluation's result, and its checkpoint's files, to ``ray.tune.report``.
- A ``Worker`` is an actor holding a trial's CPUs and GPUs (``--cpus-per-trial``,
  ``--gpus-per-trial``). It starts training once K trials have joined, or ``wait_s`` after the
  first joined (then with fewer), and logs each member's evaluations, figures and closing record
  to that member's MLflow run itself (the files are on its node).
- At each evaluation the worker waits for the member's trial to report: ``tune.report`` returns
  when Tune lets the trial go on, and raises ``SystemExit`` when the scheduler stopped it; the
  trial then tells the worker, which drops the member (``InfoGANStep.drop``) and trains the
  others on. The driver tells the worker too when a trial ends any other way
  (``leave``: an error, a lost node), so no member waits for a trial that is gone.
- A trial with a checkpoint (a retry, ``--resume``) resumes alone in a worker of its own: members
  train in step, and a resumed trial is at its own step.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from infogan.config import Config
from infogan.loop import EvalReport, TrainResult, train_members
from infogan.run_writer import checkpoint_dir
from sweeps import record, tracking
from sweeps.trial_record import (
    is_last_report,
    prune_local_checkpoints,
    record_ending,
    record_evaluation,
    report_to_tune,
)

__all__ = ["TRIAL_RESOURCES", "EnsembleSettings", "leave", "start_registry", "stop_registry", "train_in_worker"]

# A member trial only relays results: its worker holds the compute. (Tune refuses a trial of no
# resources; a worker of K members asks for its --cpus-per-trial less the K trials' share, so a
# worker and its trials take what one ordinary trial takes.)
TRIAL_RESOURCES = {"cpu": 0.001}


def default_wait_s() -> float:
    """How long an open worker waits for more members after its first before it trains with
    fewer: ``$INFOGAN_ENSEMBLE_WAIT_S``, else 20 s (Tune starts a sweep's trials within seconds)."""
    return float(os.environ.get("INFOGAN_ENSEMBLE_WAIT_S", "20"))


@dataclass(frozen=True)
class EnsembleSettings:
    """How a sweep packs its trials (``--ensemble K``).

    Attributes:
        size: K, the members of one worker.
        cpus: CPUs of one worker (a trial's ``--cpus-per-trial``).
        gpus: GPUs of one worker (a trial's ``--gpus-per-trial``).
        wait_s: how long an open worker waits for K members after its first.
    """

    size: int
    cpus: float
    gpus: float
    wait_s: float = field(default_factory=default_wait_s)


def registry_name(sweep: str) -> str:
    return f"infogan-ensembles-{sweep}"


def start_registry(sweep: str, settings: Any, ensemble: EnsembleSettings) -> None:
    """Start the sweep's registry (the driver does, before the fit; ``stop_registry`` after); one
    left by a crashed driver of the same sweep is ended first.

    Args:
        sweep: the sweep's name.
        settings: the trials' ``sweeps.trainable.TrialSettings`` (where to log, the objectives).
        ensemble: how to pack the trials.
    """
    stop_registry(sweep)
    # Detached: trials look it up by name while the driver's fit() runs; stop_registry ends it.
    ray.remote(Registry).options(name=registry_name(sweep), lifetime="detached", num_cpus=0).remote(
        sweep, settings, ensemble)


def stop_registry(sweep: str) -> None:
    """End the sweep's registry and its workers (no error if there is none)."""
    with contextlib.suppress(ValueError):  # none running
        ray.kill(ray.get_actor(registry_name(sweep)))


def leave(sweep: str, trial_id: str) -> None:
    """Tell the worker of ``trial_id`` (if any) that the trial ended: it stops waiting for it."""
    if not ray.is_initialized():
        return
    with contextlib.suppress(ValueError):  # no registry: not an ensemble sweep, or it has ended
        ray.get_actor(registry_name(sweep)).leave.remote(trial_id)


class Registry:
    """Places each trial in the open worker, opening a new one when it is full or training."""

    def __init__(self, sweep: str, settings: Any, ensemble: EnsembleSettings):
        self.sweep, self.settings, self.ensemble = sweep, settings, ensemble
        self.session, self.opened = uuid.uuid4().hex[:6], 0  # worker ids unique across --resume
        self.open: Any = None
        self.where: dict[str, Any] = {}  # trial id -> its worker

    def _new_worker(self, size: int) -> Any:
        self.opened += 1
        worker_id = f"{self.sweep}/{self.session}-{self.opened}"
        cpus = max(0.0, self.ensemble.cpus - size * TRIAL_RESOURCES["cpu"])
        return ray.remote(Worker).options(num_cpus=cpus, num_gpus=self.ensemble.gpus,
                                          max_concurrency=size + 4).remote(
            worker_id, size, self.ensemble.wait_s, self.settings)

    def place(self, trial_id: str, config: dict[str, Any], run_id: str,
              resume: dict[str, bytes] | None) -> tuple[Any, int]:
        """The worker that trains the trial, and the trial's index in it."""
        if resume is not None:  # at its own step: alone
            worker = self._new_worker(1)
            index = ray.get(worker.join.remote(trial_id, config, run_id, resume))
        else:
            index = None
            while index is None:
                if self.open is None:
                    self.open = self._new_worker(self.ensemble.size)
                worker = self.open
                index = ray.get(worker.join.remote(trial_id, config, run_id, None))
                if index is None:  # full or training: the next trial opens a new one
                    self.open = None
        self.where[trial_id] = worker
        return worker, index

    def leave(self, trial_id: str) -> None:
        """The driver saw the trial end: its worker stops waiting for it, and a worker whose
        trials have all ended is ended (its CPUs and GPUs go to the next worker)."""
        worker = self.where.pop(trial_id, None)
        if worker is None:
            return
        worker.leave.remote(trial_id)
        if worker is not self.open and all(w is not worker for w in self.where.values()):
            ray.kill(worker)


@dataclass
class _Slot:
    """One member of a worker, as its trial and the loop see it."""

    trial_id: str
    config: dict[str, Any]
    run_id: str
    resume: dict[str, bytes] | None
    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="infogan-member-")))
    outbox: list[tuple[dict[str, float], dict[str, bytes] | None]] = field(default_factory=list)
    answer: bool | None = None
    final: tuple[dict[str, float], dict[str, bytes] | None] | None = None
    left: bool = False
    done: bool = False


class Worker:
    """K members trained by one ``train_members`` in a thread; one method call per trial waits
    (a threaded actor: ``max_concurrency`` above K)."""

    def __init__(self, worker_id: str, size: int, wait_s: float, settings: Any):
        self.worker_id, self.size, self.wait_s, self.settings = worker_id, size, wait_s, settings
        self.slots: list[_Slot] = []
        self.state = "open"  # -> "training" -> "ended"
        self.error = ""
        self.cond = threading.Condition()
        threading.Thread(target=self._run, name="ensemble", daemon=True).start()

    # -- what trials and the registry call

    def join(self, trial_id: str, config: dict[str, Any], run_id: str, resume: dict[str, bytes] | None) -> int | None:
        """The trial's index, or None when this worker is full or already training."""
        with self.cond:
            if self.state != "open" or len(self.slots) >= self.size:
                return None
            self.slots.append(_Slot(trial_id, config, run_id, resume))
            self.cond.notify_all()
            return len(self.slots) - 1

    def next_report(self, index: int) -> tuple[dict[str, float], dict[str, bytes] | None] | None:
        """The member's next result for Tune (with its checkpoint's files), or None once it ended.

        Raises:
            RuntimeError: the worker's training failed (every member's trial fails with it).
        """
        slot = self.slots[index]
        with self.cond:
            self.cond.wait_for(lambda: slot.outbox or slot.done or self.error)
            if slot.outbox:
                return slot.outbox.pop(0)
            if self.error:
                raise RuntimeError(f"ensemble worker {self.worker_id} failed: {self.error}")
            return None

    def answer(self, index: int, keep: bool) -> None:
        """The trial's word after reporting: Tune let it go on (True) or stopped it (False)."""
        with self.cond:
            self.slots[index].answer = keep
            self.cond.notify_all()

    def leave(self, trial_id: str) -> None:
        """The trial ended (stopped, failed, its node lost): its member trains no further."""
        with self.cond:
            for slot in self.slots:
                if slot.trial_id == trial_id:
                    slot.left = True
            self.cond.notify_all()

    # -- the training thread

    def _run(self) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.slots)
            first = time.monotonic()
            self.cond.wait_for(lambda: len(self.slots) >= self.size, timeout=max(0.0, first + self.wait_s - time.monotonic()))
            self.state = "training"
            slots = list(self.slots)
        try:
            client = tracking.ResilientClient(tracking.client(self.settings.ref.tracking_uri),
                                              what=f"MLflow (ensemble worker {self.worker_id})")
            members = ",".join(s.trial_id for s in slots)
            for slot in slots:
                client.set_tag(slot.run_id, record.TAG_ENSEMBLE_WORKER, self.worker_id)
                client.set_tag(slot.run_id, record.TAG_ENSEMBLE_MEMBERS, members)
            cfgs = [Config.from_flat(s.config) for s in slots]
            resume = [_unpack(s.resume, s.run_dir / "resume") for s in slots] if slots[0].resume is not None else None
            start = time.perf_counter()

            def on_eval(k: int, report: EvalReport) -> bool:
                return self._on_eval(client, slots[k], cfgs[k], report)

            def on_end(k: int, result: TrainResult) -> None:
                self._on_end(client, slots[k], result, time.perf_counter() - start)

            train_members(cfgs, [s.run_dir for s in slots], on_eval, resume=resume, on_end=on_end)
        except BaseException:  # every member's trial fails with the worker (Tune retries each alone)
            with self.cond:
                self.error = traceback.format_exc(limit=8)
                self.cond.notify_all()
        finally:
            with self.cond:
                self.state = "ended"
                for slot in slots:
                    shutil.rmtree(slot.run_dir, ignore_errors=True)

    def _on_eval(self, client: Any, slot: _Slot, cfg: Config, report: EvalReport) -> bool:
        if slot.left:
            return False
        result = record_evaluation(client, slot.run_id, slot.run_dir, report, self.settings.objectives)
        files = _pack(report.checkpoint) if report.checkpoint is not None else None
        if report.checkpoint is not None:
            prune_local_checkpoints(report.checkpoint)
        if is_last_report(result, report.step, cfg):
            slot.final = (result, files)  # sent once the run's MLflow record is complete (_on_end)
            return True
        with self.cond:
            slot.answer = None
            slot.outbox.append((result, files))
            self.cond.notify_all()
            self.cond.wait_for(lambda: slot.answer is not None or slot.left)
            return bool(slot.answer) and not slot.left

    def _on_end(self, client: Any, slot: _Slot, result: TrainResult, wall: float) -> None:
        if result.status in ("finished", "diverged"):  # a stopped member's status is the driver's to set
            record_ending(client, slot.run_id, slot.run_dir, result, wall)
        with self.cond:
            if slot.final is not None and not slot.left:
                slot.outbox.append(slot.final)
            slot.done = True
            self.cond.notify_all()


def _pack(directory: Path) -> dict[str, bytes]:
    """A checkpoint directory's files, to send to the trial (which may run on another node)."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def _unpack(files: Mapping[str, bytes], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


def train_in_worker(cfg: Config, checkpoint: Path | None, run_id: str, trial_id: str, settings: Any) -> None:
    """A member trial's side: take a place in a worker and report what it sends to Tune.

    Args:
        cfg: the trial's validated config.
        checkpoint: the checkpoint directory Tune restored the trial from (it then resumes alone).
        run_id: the trial's MLflow child run.
        trial_id: Tune's trial id.
        settings: the trials' ``TrialSettings``.
    """
    registry = ray.get_actor(registry_name(settings.ref.sweep))
    resume = _pack(checkpoint) if checkpoint is not None else None
    worker, index = ray.get(registry.place.remote(trial_id, cfg.to_flat(), run_id, resume))
    # The checkpoints' files land here as step_* folders (Tune's copy can lag its report, so
    # report_to_tune keeps the last two); nothing here outlives the trial.
    local = Path(tempfile.mkdtemp(prefix=f"infogan-trial-{trial_id}-"))
    try:
        while (item := ray.get(worker.next_report.remote(index))) is not None:
            result, files = item
            folder = _unpack(files, checkpoint_dir(local, int(result[record.STEP]))) if files is not None else None
            report_to_tune(result, folder)
            worker.answer.remote(index, True)
    except BaseException:  # SystemExit: the scheduler stopped the trial; else it failed
        with contextlib.suppress(Exception):  # a worker that is gone has nothing to drop
            ray.get(worker.leave.remote(trial_id), timeout=30)
        raise
    finally:
        shutil.rmtree(local, ignore_errors=True)
