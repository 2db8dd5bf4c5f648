"""The training loop of an ensemble: K runs trained by one ``EnsembleStep``, each its own run.

``train_members(cfgs, run_dirs, on_eval)`` is ``infogan.train.train`` for K configs at once: every
member keeps what ``train()`` gives a run — its loss log and divergence checks, its evaluations and
``on_eval`` reports (at its own ``train.eval_every``), its checkpoints (which ``train()`` resumes as
a plain run), its run directory (``config.json``, ``eval.jsonl``, figures, ``metrics.json``) and
its ``TrainResult`` — while the iterations of all members run as one step of K-times larger
kernels. A member leaves the ensemble when its budget is spent, when it diverges (its NaNs never
reach the others: nothing mixes two members) or when ``on_eval`` answers False (a scheduler
stopped it); the others train on as before. The loop ends when no member is left.

What ``train()`` does and this loop does not: Ctrl-C between two steps (a KeyboardInterrupt ends
every member where it is; their last checkpoints stay), a progress bar, and the whole-iteration
CUDA graph (``train.step_mode=graph``); ``compiled`` compiles the ensemble's compute.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from infogan import checkpoint as ckpt
from infogan import codes as latent_codes
from infogan import metric_names as names
from infogan.config import Config
from infogan.data import load_dataset
from infogan.ensemble import EnsembleStep
from infogan.metrics.suite import Evaluator
from infogan.monitor import DivergedError, LossLog, check_finite_weights
from infogan.run_writer import RunWriter
from infogan.step import LOSS_NAMES
from infogan.train import (
    EvalReport,
    TrainResult,
    check_resume,
    full_evaluation_steps,
    is_evaluation_step,
    resolve_device,
    resolve_precision,
    resolve_step_mode,
)

__all__ = ["MemberEnd", "MemberReport", "train_members"]

# on_eval(member index in cfgs, report) -> whether the member trains on (False: a scheduler stopped it).
MemberReport = Callable[[int, EvalReport], bool]
# on_end(member index in cfgs, result): the member has left the ensemble, its run directory is complete.
MemberEnd = Callable[[int, TrainResult], None]


@dataclass
class _Member:
    """The bookkeeping of one member's run (what ``train()`` keeps in its locals)."""

    index: int  # position in the configs given to train_members
    cfg: Config
    writer: RunWriter
    log: LossLog
    evaluator: Evaluator
    full_steps: tuple[int, ...]
    start: int
    step: int = 0
    status: str = "finished"
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    train_seconds: float = 0.0  # the ensemble's training time while the member was in it

    def tags(self) -> dict[str, str]:
        fid = self.evaluator.feature_net_id
        return {"fid_feature_net": fid} if fid else {}


def train_members(
    cfgs: Sequence[Config],
    run_dirs: Sequence[str | os.PathLike[str] | None],
    on_eval: MemberReport | None = None,
    resume: Sequence[str | os.PathLike[str] | None] | None = None,
    on_end: MemberEnd | None = None,
) -> list[TrainResult]:
    """Train K configs as one ensemble, each as the run ``train(cfg, run_dir)`` would make.

    Args:
        cfgs: the members' configs (``infogan.ensemble.check_members``: they may differ in seeds,
            code weights, learning rates, betas, budgets, intervals and evaluation settings).
        run_dirs: one run directory per member (None writes nothing for that member).
        on_eval: called with (member index, ``EvalReport``) at each of the member's evaluations
            and its end; returning False stops the member there (as a scheduler's stop).
        resume: one checkpoint (or None) per member; every given checkpoint must be at the same
            step, and then every member resumes (a member without one cannot join mid-run).
        on_end: called with (member index, ``TrainResult``) as each member leaves, its
            ``metrics.json`` written (the others may train on for a long time).
    Returns:
        One ``TrainResult`` per member, in the order of ``cfgs`` (status ``finished``,
        ``diverged`` or ``stopped``).
    """
    if len(run_dirs) != len(cfgs):
        raise ValueError(f"got {len(run_dirs)} run directories for {len(cfgs)} member configs")
    tc = cfgs[0].train
    device = resolve_device(tc.device)
    amp_dtype = resolve_precision(tc.precision, device)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    torch.set_flush_denormal(True)  # as train(): denormal gradients slow x86 arithmetic several times
    step_mode = resolve_step_mode(tc.step_mode, device, amp_dtype)
    if step_mode == "graph":
        raise ValueError("invalid config value train.step_mode='graph' for an ensemble: its whole-iteration CUDA "
                         "graph is not wired to ensembles yet; use 'compiled' or 'eager'")
    torch.manual_seed(tc.seed)
    dataset = load_dataset(cfgs[0], device)
    ens = EnsembleStep(cfgs, dataset, device, amp_dtype)
    start = _restore(ens, cfgs, resume) if resume is not None else 0
    if step_mode == "compiled":
        ens.compile(mode="reduce-overhead" if device.type == "cuda" else None)

    members = []
    for i, (cfg, run_dir) in enumerate(zip(cfgs, run_dirs, strict=True)):
        log = LossLog(ens.loss_names, len(LOSS_NAMES), latent_codes.entropies(cfg.codes), cfg.train.max_loss)
        members.append(_Member(i, cfg, RunWriter(run_dir, cfg), log, Evaluator(cfg, dataset, device),
                               full_evaluation_steps(cfg), start, step=start))
        members[-1].writer.config()
    active = list(members)  # in the ensemble's member order
    results: list[TrainResult | None] = [None] * len(members)
    ens.train()
    t0, overhead, step = time.perf_counter(), 0.0, start
    while active:
        step += 1
        losses = ens.iteration(ens.cr_active(step))  # (K active, n_losses), on the device
        t_side = time.perf_counter()
        leaving = []
        for position, member in enumerate(active):
            member.step = step
            member.log.append(losses[position])
            if not _after_step(ens, position, member, step, on_eval):
                leaving.append(position)
        overhead += time.perf_counter() - t_side
        for position in reversed(leaving):  # the last member is never dropped: the loop just ends
            member = active.pop(position)
            member.train_seconds = time.perf_counter() - t0 - overhead
            if active:
                ens.drop(position)
            results[member.index] = _ending(member)
            if on_end is not None:
                on_end(member.index, results[member.index])
    return [r for r in results if r is not None]


def _after_step(ens: EnsembleStep, position: int, m: _Member, step: int, on_eval: MemberReport | None) -> bool:
    """A member's logging, checkpoint and evaluation after ``step`` (``train()``'s rules); whether
    it trains on."""
    tc = m.cfg.train
    is_eval = is_evaluation_step(step, tc.steps, tc.eval_every, tc.eval_schedule == "log", m.full_steps)
    is_ckpt = is_evaluation_step(step, tc.steps, tc.checkpoint_every, also=m.full_steps)
    try:
        if step % tc.log_every == 0 or is_eval or is_ckpt:
            m.log.flush(step)
        if not (is_eval or is_ckpt):
            return True
        single = ens.member_step(position)  # this member as its own run holds it now
        check_finite_weights(single.weights(), step)
    except DivergedError as err:
        m.status, m.message, m.step = "diverged", str(err), err.step
        m.metrics = {**m.metrics, names.DIVERGED_STEP: float(err.step), names.IMAGES: float(err.step * tc.images_per_step)}
        if on_eval is not None:
            on_eval(m.index, EvalReport(err.step, dict(m.metrics), None, m.tags(), m.log.rows_since_report(err.step)))
        return False
    ckpt_dir = m.writer.checkpoint(step, ens.member_checkpoint(position, step)) if is_ckpt else None
    m.checkpoint = ckpt_dir or m.checkpoint
    keep = True
    if is_eval:
        entropy = m.log.entropies
        metrics = {**m.log.last(), names.H_CAT: entropy["h_cat"], names.H_CONT: entropy["h_cont"],
                   names.IMAGES: float(step * tc.images_per_step)}
        metrics.update(m.evaluator(single.g, single.d, final=step in m.full_steps))
        m.writer.evaluation(step, metrics, m.tags(), single.g, ens.device)
        m.metrics = metrics
        if on_eval is not None:
            keep = on_eval(m.index, EvalReport(step, dict(metrics), ckpt_dir, m.tags(), m.log.rows_since_report(step)))
    if step >= tc.steps:
        return False
    if not keep:
        m.status = "stopped"
    return keep


def _restore(ens: EnsembleStep, cfgs: Sequence[Config], resume: Sequence[str | os.PathLike[str] | None]) -> int:
    """Load every member's checkpoint (all at one step); returns that step."""
    if len(resume) != len(cfgs):
        raise ValueError(f"got {len(resume)} checkpoints to resume for {len(cfgs)} member configs")
    if any(path is None for path in resume):
        if all(path is None for path in resume):
            return 0
        raise ValueError("cannot resume some members of an ensemble and start the others: they train in step")
    states = [ckpt.load(path) for path in resume]  # type: ignore[arg-type]
    steps = sorted({s.step for s in states})
    if len(steps) > 1:
        raise ValueError(f"cannot resume an ensemble from checkpoints at different steps ({steps}): its members "
                         "train in step")
    for k, (state, cfg) in enumerate(zip(states, cfgs, strict=True)):
        check_resume(state.config, cfg, state.step)
        ens.load_member(k, state.__dict__)
        ens.samplers[k].generator.set_state(state.loop_rng)
        ens.torch_rng[k] = state.torch_rng
    return steps[0]


def _ending(m: _Member) -> TrainResult:
    """The member's ``metrics.json`` and ``TrainResult``; its speed is over the ensemble's training
    time while it was a member (evaluations and checkpoints of every member excluded)."""
    train_seconds = m.train_seconds
    ips = (m.step - m.start) * m.cfg.train.batch_size / train_seconds if train_seconds > 0 else 0.0
    m.writer.ending({
        "status": m.status, "step": m.step, "message": m.message, "images_per_second": ips,
        "start_step": m.start, "train_seconds": train_seconds,
        "checkpoint": str(m.checkpoint) if m.checkpoint else None, "metrics": m.metrics, "tags": m.tags(),
    })
    return TrainResult(m.status, m.step, m.metrics, m.log.history, m.writer.path, m.checkpoint, m.message, ips)
