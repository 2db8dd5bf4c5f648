"""The training loop: ``train(cfg)`` for one run, ``train_members(cfgs)`` for K runs trained together.

``train_members`` trains K configs as the members of one ``infogan.step.InfoGANStep`` (one member:
a plain run), and each member is the run ``train(cfg)`` makes of its config: every step draws its
real batch and latents from its own generator; the loop owns the rest, per member: the budget,
the loss log and its divergence checks, checkpoints, evaluations and ``on_eval`` reports, the run
directory and the closing record (``_Run``: one member's bookkeeping). A member leaves when its
budget is spent, when it diverges (its NaNs never reach the others: nothing mixes two members) or
when ``on_eval`` answers False (a scheduler stopped it); the others train on. ``train(cfg)`` is
the one-member case.

Ctrl-C stops the loop between two steps (``infogan.interrupt``): every member still training is
checkpointed at the last completed step and records ``interrupted``, and the KeyboardInterrupt is
re-raised (the CLI prints each run's resume command). Loss values leave the device once per
``log_every`` steps.

How a step runs (``train.step_mode``): ``eager``; ``compiled`` (``InfoGANStep.compile``; on a GPU
with a CUDA graph per compiled function); ``graph`` (CUDA only: the whole K-member iteration, the
draws included, one CUDA graph replay, captured again when a member leaves). ``auto`` picks from
the speeds measured on the device kind (``infogan.speeds``): eager wherever nothing was measured.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from infogan import checkpoint as ckpt
from infogan import codes as latent_codes
from infogan import metric_names as names
from infogan import speeds
from infogan.config import Config, resume_conflicts
from infogan.data import GROUND_TRUTH_DATASETS, load_dataset
from infogan.interrupt import Interrupted, StepBoundary
from infogan.metrics.suite import Evaluator, metric_names
from infogan.monitor import DivergedError, LossLog, check_finite_weights
from infogan.run_writer import RunWriter
from infogan.step import LOSS_NAMES, InfoGANStep


@dataclass
class EvalReport:
    """What ``on_eval`` receives every ``eval_every`` steps and at the end."""

    step: int
    metrics: dict[str, float]
    checkpoint: Path | None  # directory holding checkpoint.pt written at this step, if any
    tags: dict[str, str] = field(default_factory=dict)  # e.g. {"fid_feature_net": "lenet-digits28@…"}
    # The training losses logged (every train.log_every steps) since the previous report, before
    # this step: ``{"step": s, "train/loss_d": ..., ...}`` rows, for finer loss curves than the
    # evaluations give. This step's own losses are in ``metrics``.
    losses: list[dict[str, float]] = field(default_factory=list)


@dataclass
class TrainResult:
    """How a run ended."""

    status: str  # "finished" | "diverged" | "stopped" (on_eval answered False)
    step: int  # last completed step
    metrics: dict[str, float]  # the last evaluation (with the last training losses)
    history: list[dict[str, float]] = field(default_factory=list)  # per log step: losses
    run_dir: Path | None = None
    checkpoint: Path | None = None  # the last good checkpoint directory
    message: str = ""
    # Real images drawn per second of training (evaluations and checkpoint writes excluded):
    # steps trained x train.batch_size / seconds, i.e. steps per second x batch size. Not the rate of
    # ``train/images`` (metric_names.IMAGES), whose work per step is 1 + train.g_steps batches.
    images_per_second: float = 0.0
    step_mode: str = ""  # the path the steps ran on (train.step_mode, ``auto`` resolved)
    members: int = 1  # how many members the step trained when this run started


# on_eval(member index in cfgs, report) -> whether the member trains on (False: a scheduler stopped
# it; None counts as True).
MemberReport = Callable[[int, EvalReport], "bool | None"]
# on_end(member index in cfgs, result): the member has left, its run directory is complete.
MemberEnd = Callable[[int, TrainResult], None]


def resolve_device(choice: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("invalid config value train.device='cuda': no CUDA device is available; use 'auto' or 'cpu'")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def resolve_precision(choice: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32.

    ``auto`` is bf16 on GPUs that have it (else fp16 with a GradScaler) and fp32 on CPUs. CPU bf16
    autocast is faster only on CPUs with bf16 matrix units (AMX / AVX512-BF16); the issue asks for
    it as the default there only if training quality holds, which no machine here could measure
    (their AVX2 CPUs emulate bf16 matmuls more than 100x slower than fp32), so it stays opt-in:
    ``train.precision=bf16``.
    """
    if choice == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None
    if choice == "fp16" and device.type == "cpu":
        # CPUs have no fp16 matrix units: autocast emulates it, about 4.5x slower than fp32 here.
        raise ValueError("invalid config value train.precision='fp16' on a CPU: fp16 is emulated there "
                         "(several times slower than fp32); use 'fp32' (or 'bf16' on CPUs with bf16 units)")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[choice]


def resolve_step_mode(cfg: Config, device: torch.device, amp_dtype: torch.dtype | None, members: int = 1) -> str:
    """The path ``train.step_mode`` names; ``auto`` -> the fastest measured on this device kind for
    this model over the run's planned steps (``speeds.fastest_step_mode``); a path the device
    cannot run is an error."""
    choice = cfg.train.step_mode
    if choice == "auto":
        return speeds.fastest_step_mode(speeds.device_kind(device), cfg, members)
    if choice == "graph" and device.type != "cuda":
        raise ValueError(f"invalid config value train.step_mode='graph' on a {device.type.upper()}: a CUDA graph "
                         "needs a GPU; use 'compiled' or 'eager'")
    if choice == "graph" and amp_dtype == torch.float16:
        raise ValueError("invalid config value train.step_mode='graph' with train.precision='fp16': fp16's loss "
                         "scaler checks for inf on the host every step; use 'bf16' or 'fp32'")
    return choice


def configure_device(cfg: Config, device: torch.device) -> None:
    """Process-wide numerics the run asks for: its threads, flushing denormals, and on CUDA TF32
    (``train.tf32``) and cuDNN's autotuner where it was measured faster (``speeds``)."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    # Denormal floats (gradients of ~1e-40 reaching the large FC layers) make x86 CPU arithmetic
    # several times slower (measured: a weight-gradient matmul 154 ms -> 36 ms); flushing them
    # to zero changes no result that matters and is what GPUs do by default.
    torch.set_flush_denormal(True)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.train.tf32
        torch.backends.cudnn.allow_tf32 = cfg.train.tf32
        torch.backends.cudnn.benchmark = speeds.device_kind(device) in speeds.CUDNN_BENCHMARK_FASTER


def make_iteration(mode: str, step: InfoGANStep) -> Callable[[bool], torch.Tensor]:
    """One training iteration of ``step``'s members on the path ``mode`` (resolved): a function of
    whether InfoGAN-CR's phase has started, returning the members' losses (K, n) on the device."""
    cuda = step.device.type == "cuda"
    if mode != "eager":
        # On a GPU the compiled path puts each compiled function in a CUDA graph; the captured
        # path compiles plainly and captures the whole iteration itself.
        step.compile(mode="reduce-overhead" if mode == "compiled" and cuda else None)
    if mode == "graph":
        from infogan.capture import CapturedIteration

        return CapturedIteration(step)
    return step.iteration


def is_evaluation_step(step: int, steps: int, every: int, log: bool = False, also: Collection[int] = ()) -> bool:
    """The loop's rule for when it evaluates (and reports), and checkpoints: every ``every`` steps
    (with ``log``, at ``every`` x 1, 2, 4, 8, ...), at the last step and at the steps in ``also``."""
    if step == steps or step in also:
        return True
    if log:
        multiple, rest = divmod(step, every)
        return rest == 0 and multiple & (multiple - 1) == 0
    return step % every == 0


def evaluation_steps(steps: int, every: int, log: bool = False, also: Collection[int] = ()) -> list[int]:
    """Every step at which a run of ``steps`` steps evaluates (``is_evaluation_step``)."""
    candidates = {*range(every, steps + 1, every), steps, *(s for s in also if 0 < s <= steps)}
    return sorted(s for s in candidates if is_evaluation_step(s, steps, every, log, also))


def full_evaluation_steps(cfg: Config) -> tuple[int, ...]:
    """Where the loop evaluates the full suite (``eval.final``): the last step and, with InfoGAN-CR
    switched on during the run, the step before its first CR step (the plain-InfoGAN end: one run
    gives both rows of InfoGAN-CR's table). They are also evaluation and checkpoint steps."""
    cr_start = cfg.loss.cr_start
    switch = (cr_start,) if cfg.loss.lambda_cr > 0 and 0 < cr_start < cfg.train.steps else ()
    return (*switch, cfg.train.steps)


def run_evaluation_steps(cfg: Config) -> list[int]:
    """Every step at which a run with config ``cfg`` evaluates, from step 1."""
    tc = cfg.train
    return evaluation_steps(tc.steps, tc.eval_every, tc.eval_schedule == "log", full_evaluation_steps(cfg))


def reported_metrics(cfg: Config) -> frozenset[str]:
    """The metric names every evaluation report of a run with ``cfg`` carries (``on_eval``'s
    ``EvalReport.metrics``, a sweep's Tune results): the losses of every step, the code priors'
    entropies, ``train/images`` and the ``eval/`` metrics of both evaluation stages it reaches.
    InfoGAN-CR's losses are left out: they exist only from ``loss.cr_start`` on."""
    train = {*map(names.train_metric, (*LOSS_NAMES, *names.LOSS_LOG_COLUMNS)), names.H_CAT, names.H_CONT, names.IMAGES}
    ground_truth = cfg.data.name in GROUND_TRUTH_DATASETS
    full = set(full_evaluation_steps(cfg))
    evaluated = metric_names(cfg, True, ground_truth)
    if any(step not in full for step in run_evaluation_steps(cfg)):
        evaluated &= metric_names(cfg, False, ground_truth)
    return frozenset({*train, *evaluated})


def check_resume(saved: dict[str, Any], cfg: Config, step: int) -> None:
    """Refuse to resume a checkpoint (made with ``saved``, at ``step``) under a config that changes
    what its run computes (``infogan.config.resume_conflicts``)."""
    current = cfg.to_flat()
    changed = resume_conflicts(saved, current, step)
    if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        raise ValueError(f"cannot resume: the checkpoint was made with another config ({diffs}); only the "
                         "budget, intervals, threads, data folder and evaluation settings (eval.*) may change, "
                         "and InfoGAN-CR's keys (loss.lambda_cr, loss.cr_start, optim.lr_cr) before its "
                         f"phase starts (the checkpoint is at step {step})")


@dataclass
class _Run:
    """One member's run: what the loop keeps for it besides its share of the step."""

    index: int  # position in the configs given to train_members
    cfg: Config
    writer: RunWriter
    log: LossLog
    evaluator: Evaluator
    start: int
    step_mode: str  # the path the step runs on
    members: int  # the step's members when the run started
    step: int = 0
    status: str = "finished"
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    train_seconds: float = 0.0  # the step's training time while the member was in it

    @property
    def full_steps(self) -> tuple[int, ...]:
        return full_evaluation_steps(self.cfg)

    def tags(self) -> dict[str, str]:
        fid = self.evaluator.feature_net_id
        return {"fid_feature_net": fid} if fid else {}

    def is_checkpoint(self, step: int) -> bool:
        return is_evaluation_step(step, self.cfg.train.steps, self.cfg.train.checkpoint_every, also=self.full_steps)

    def after_step(self, step: InfoGANStep, position: int, at: int, on_eval: MemberReport | None) -> tuple[bool, float]:
        """The member's logging, checkpoint and evaluation after step ``at``.

        Args:
            step: the training step holding the member.
            position: the member's position in ``step`` now.
            at: the step just completed.
            on_eval: the caller's report.
        Returns:
            Whether it trains on, and the seconds spent writing its checkpoint and evaluating (not
            training: the loss log's flush waits for the device to finish the queued steps, which is).
        """
        tc = self.cfg.train
        self.step = at
        is_eval = is_evaluation_step(at, tc.steps, tc.eval_every, tc.eval_schedule == "log", self.full_steps)
        is_ckpt = self.is_checkpoint(at)
        try:
            if at % tc.log_every == 0 or is_eval or is_ckpt:
                self.log.flush(at)
            if is_eval or is_ckpt:
                check_finite_weights(step.member_weights(position), at)  # never checkpoint or evaluate NaN weights
        except DivergedError as err:
            self.diverged(err, on_eval)
            return False, 0.0
        t_side = time.perf_counter()
        ckpt_dir = self.writer.checkpoint(at, step.member_checkpoint(position, at)) if is_ckpt else None
        self.checkpoint = ckpt_dir or self.checkpoint
        keep = True
        if is_eval:
            entropy = self.log.entropies
            metrics = {**self.log.last(), names.H_CAT: entropy["h_cat"], names.H_CONT: entropy["h_cont"],
                       names.IMAGES: float(at * tc.images_per_step)}
            g, d = step.member_networks(position)
            metrics.update(self.evaluator(g, d, final=at in self.full_steps))
            self.writer.evaluation(at, metrics, self.tags(), g, step.device)
            self.metrics = metrics
            if on_eval is not None:
                keep = on_eval(self.index, EvalReport(at, dict(metrics), ckpt_dir, self.tags(),
                                                      self.log.rows_since_report(at))) is not False
        side = time.perf_counter() - t_side
        if at >= tc.steps:
            return False, side
        if not keep:
            self.status = "stopped"
        return keep, side

    def diverged(self, err: DivergedError, on_eval: MemberReport | None) -> None:
        """The member blew up at ``err.step``: its last report, with the step it diverged at."""
        images = float(err.step * self.cfg.train.images_per_step)
        self.status, self.message, self.step = "diverged", str(err), err.step
        self.metrics = {**self.metrics, names.DIVERGED_STEP: float(err.step), names.IMAGES: images}
        if on_eval is not None:
            on_eval(self.index, EvalReport(err.step, dict(self.metrics), None, self.tags(),
                                           self.log.rows_since_report(err.step)))

    def interrupted(self, step: InfoGANStep, position: int, completed: int) -> None:
        """Ctrl-C after step ``completed``: the member's checkpoint of it (unless the loop wrote
        one there, or the weights are not finite; also at the starting step, so the run directory
        holds a checkpoint with this run's config to resume from) and its status."""
        self.step = completed
        self.status, self.message = "interrupted", "interrupted (KeyboardInterrupt)"
        if completed == self.cfg.train.steps:
            self.status = "finished"
        if completed > self.start and self.is_checkpoint(completed):
            return
        try:
            check_finite_weights(step.member_weights(position), completed)
        except DivergedError:
            return
        self.checkpoint = self.writer.checkpoint(completed, step.member_checkpoint(position, completed)) or self.checkpoint

    def ending(self) -> TrainResult:
        """The member's ``metrics.json`` and ``TrainResult``; its speed is over the step's training
        time while it was a member (every member's evaluations and checkpoints excluded)."""
        seconds = self.train_seconds
        ips = (self.step - self.start) * self.cfg.train.batch_size / seconds if seconds > 0 else 0.0
        self.writer.ending({
            "status": self.status, "step": self.step, "message": self.message, "images_per_second": ips,
            "start_step": self.start, "train_seconds": seconds, "step_mode": self.step_mode, "members": self.members,
            "checkpoint": str(self.checkpoint) if self.checkpoint else None, "metrics": self.metrics,
            "tags": self.tags(),
        })
        return TrainResult(self.status, self.step, self.metrics, self.log.history, self.writer.path, self.checkpoint,
                           self.message, ips, self.step_mode, self.members)


def train(
    cfg: Config,
    run_dir: str | os.PathLike[str] | None = None,
    on_eval: Callable[[EvalReport], None] | None = None,
    resume: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train an InfoGAN: ``train_members`` with one member.

    Args:
        cfg: the validated experiment config.
        run_dir: where checkpoints, figures, ``config.json``, ``eval.jsonl`` and ``metrics.json``
            go; None writes nothing (checkpoints included).
        on_eval: called with an ``EvalReport`` every ``train.eval_every`` steps and at the end.
        resume: a checkpoint file or directory to continue from; the run then reproduces the
            losses of an uninterrupted run.
        progress: show a tqdm progress bar with the losses.
    Returns:
        A ``TrainResult``; a NaN/inf loss (or NaN/inf weights, checked before every checkpoint
        and evaluation) ends the run with status ``diverged`` and keeps the last good checkpoint.
    Raises:
        KeyboardInterrupt: Ctrl-C (``infogan.interrupt``): the loop stops after the step in
            progress, checkpoints it and records ``metrics.json`` with status ``interrupted``;
            a second Ctrl-C stops at once and keeps the last checkpoint written.
    """
    report = None if on_eval is None else (lambda _, r: on_eval(r))
    return train_members([cfg], [run_dir], report, None if resume is None else [resume], progress=progress)[0]


def train_members(
    cfgs: Sequence[Config],
    run_dirs: Sequence[str | os.PathLike[str] | None],
    on_eval: MemberReport | None = None,
    resume: Sequence[str | os.PathLike[str] | None] | None = None,
    on_end: MemberEnd | None = None,
    progress: bool = False,
) -> list[TrainResult]:
    """Train K configs as the members of one step, each as the run ``train(cfg, run_dir)`` makes.

    Args:
        cfgs: the members' configs (``infogan.step.check_members``: they may differ in seeds, code
            weights, learning rates, betas, budgets, intervals and evaluation settings).
        run_dirs: one run directory per member (None writes nothing for that member).
        on_eval: called with (member index, ``EvalReport``) at each of the member's evaluations
            and its end; returning False stops the member there (as a scheduler's stop).
        resume: one checkpoint (or None) per member; every given checkpoint must be at the same
            step, and then every member resumes (a member without one cannot join mid-run).
        on_end: called with (member index, ``TrainResult``) as each member leaves, its
            ``metrics.json`` written (the others may train on for a long time).
        progress: show a tqdm progress bar (the first member's losses, and how many train).
    Returns:
        One ``TrainResult`` per member, in the order of ``cfgs`` (status ``finished``,
        ``diverged`` or ``stopped``).
    Raises:
        KeyboardInterrupt: Ctrl-C, as ``train`` (every member still training records it).
    """
    if len(run_dirs) != len(cfgs):
        raise ValueError(f"got {len(run_dirs)} run directories for {len(cfgs)} member configs")
    cfg = cfgs[0]
    device = resolve_device(cfg.train.device)
    amp_dtype = resolve_precision(cfg.train.precision, device)
    configure_device(cfg, device)
    dataset = load_dataset(cfg, device)
    expected = (cfg.model.channels, cfg.model.image_size, cfg.model.image_size)
    if tuple(dataset.image_shape) != expected:
        raise ValueError(f"dataset {cfg.data.name!r} gives images {dataset.image_shape}, model expects {expected}")
    step_mode = resolve_step_mode(cfg, device, amp_dtype, len(cfgs))
    step = InfoGANStep(cfgs, dataset, device, amp_dtype)
    start = _restore(step, cfgs, resume) if resume is not None else 0
    iteration = make_iteration(step_mode, step)

    runs = []
    for i, (member_cfg, run_dir) in enumerate(zip(cfgs, run_dirs, strict=True)):
        log = LossLog(step.loss_names, len(LOSS_NAMES), latent_codes.entropies(member_cfg.codes),
                      member_cfg.train.max_loss)
        runs.append(_Run(i, member_cfg, RunWriter(run_dir, member_cfg), log, Evaluator(member_cfg, dataset, device),
                         start, step_mode, len(cfgs), step=start))
        runs[-1].writer.config()
    active = list(runs)  # in the step's member order
    results: list[TrainResult | None] = [None] * len(runs)

    def leave(run: _Run, elapsed: float) -> None:
        run.train_seconds = elapsed
        results[run.index] = run.ending()
        if on_end is not None:
            on_end(run.index, results[run.index])  # type: ignore[arg-type]

    bar = _progress_bar(max(c.train.steps for c in cfgs), start) if progress else None
    step.train()
    boundary = StepBoundary().install()  # Ctrl-C ends the loop between two steps, not inside one
    t0, overhead, at = time.perf_counter(), 0.0, start
    try:
        for at in boundary.steps(range(start + 1, max(c.train.steps for c in cfgs) + 1)):
            losses = iteration(step.cr_active(at))  # (K active, n_losses), on the device
            leaving = []
            for position, run in enumerate(active):
                run.log.append(losses[position])
                keep, side = run.after_step(step, position, at, on_eval)
                overhead += side
                if not keep:
                    leaving.append(position)
            for position in reversed(leaving):  # the last member is never dropped: the loop just ends
                run = active.pop(position)
                if active:
                    step.drop(position)
                leave(run, time.perf_counter() - t0 - overhead)
            if bar is not None:
                _show(bar, active)
            if not active:
                break
        if boundary.requested:  # Ctrl-C during the last step's evaluation: the runs are complete
            raise Interrupted
    except KeyboardInterrupt as err:  # re-raised once every run directory records it
        elapsed = time.perf_counter() - t0 - overhead
        for position, run in enumerate(active):
            if isinstance(err, Interrupted):  # between two steps: memory holds the last completed step
                run.interrupted(step, position, at)
            else:
                run.status, run.message = "interrupted", "interrupted (KeyboardInterrupt)"
            leave(run, elapsed)
        raise
    finally:
        boundary.restore()
        if bar is not None:
            bar.close()
    return [r for r in results if r is not None]


def _restore(step: InfoGANStep, cfgs: Sequence[Config], resume: Sequence[str | os.PathLike[str] | None]) -> int:
    """Load every member's checkpoint (all at one step) into the step; returns that step."""
    if len(resume) != len(cfgs):
        raise ValueError(f"got {len(resume)} checkpoints to resume for {len(cfgs)} member configs")
    if any(path is None for path in resume):
        if all(path is None for path in resume):
            return 0
        raise ValueError("cannot resume some members and start the others: they train in step")
    states = [ckpt.load(path) for path in resume]  # type: ignore[arg-type]
    steps = sorted({s.step for s in states})
    if len(steps) > 1:
        raise ValueError(f"cannot resume members from checkpoints at different steps ({steps}): they train in step")
    for k, (state, cfg) in enumerate(zip(states, cfgs, strict=True)):
        check_resume(state.config, cfg, state.step)
        step.load_member(k, state.__dict__)
        step.restore_generator(k, state.loop_rng, state.step)
        step.torch_rng[k] = state.torch_rng
    if step.device.type == "cuda" and states[0].cuda_rng:
        torch.cuda.set_rng_state_all(states[0].cuda_rng)
    torch.set_rng_state(states[0].torch_rng)
    return steps[0]


def _progress_bar(total: int, initial: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="infogan", unit="step", dynamic_ncols=True)


def _show(bar: Any, active: list[_Run]) -> None:
    """One step on the bar; at a log step, the first member's losses (and how many members train)."""
    bar.update(1)
    if not active or not active[0].log.history or active[0].log.history[-1]["step"] != active[0].step:
        return
    row = active[0].log.history[-1]
    shown = {k: f"{row[k]:.3f}" for k in ("loss_d", "loss_g", "l_info_cat", "l_info_cont")}
    bar.set_postfix({**shown, **({"members": len(active)} if len(active) > 1 else {})})
