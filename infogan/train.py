"""The training loop: ``train(cfg, run_dir, on_eval, resume) -> TrainResult``, and ``main()``.

Each step draws one real batch, one latent batch (and, for InfoGAN-CR, one batch of contrastive
pairs) from the loop's generator and hands them to ``infogan.step.InfoGANStep``, which owns the
networks, the optimisers and the update (CR step, D step, ``train.g_steps`` G steps). The loop
owns the rest: the budget, the loss log and its divergence checks, checkpoints, evaluations
and the run directory. Loss values leave the device once per ``log_every`` steps.
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
from infogan import cli
from infogan import codes as latent_codes
from infogan import metric_names as names
from infogan.config import Config, resume_conflicts
from infogan.data import GROUND_TRUTH_DATASETS, load_dataset
from infogan.interrupt import Interrupted, StepBoundary
from infogan.metrics.suite import Evaluator, metric_names
from infogan.monitor import DivergedError, LossLog, check_finite_weights
from infogan.run_writer import RunWriter
from infogan.sampling import IterationSampler, loop_generator
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

    status: str  # "finished" | "diverged"
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


# What train.step_mode=auto runs on each kind of device (benchmarks/gpu_speed.py; docs/results).
# CPU: eager. Compiled measured 1.17x eager on dsprites-32 but 0.91x on the MNIST recipe, after
# 23-29 s of compilation a short sweep trial does not earn back. CUDA: eager until the captured
# path's speed and equality are measured on a GPU (not yet: no GPU was lent to the sessions that
# built it).
FASTEST_STEP_MODE = {"cpu": "eager", "cuda": "eager"}


def resolve_step_mode(choice: str, device: torch.device, amp_dtype: torch.dtype | None) -> str:
    """``auto`` -> ``FASTEST_STEP_MODE`` for the device; a path the device cannot run is an error."""
    if choice == "auto":
        return FASTEST_STEP_MODE.get(device.type, "eager")
    if choice == "graph" and device.type != "cuda":
        raise ValueError(f"invalid config value train.step_mode='graph' on a {device.type.upper()}: a CUDA graph "
                         "needs a GPU; use 'compiled' or 'eager'")
    if choice == "graph" and amp_dtype == torch.float16:
        raise ValueError("invalid config value train.step_mode='graph' with train.precision='fp16': fp16's loss "
                         "scaler checks for inf on the host every step; use 'bf16' or 'fp32'")
    return choice


def make_iteration(mode: str, updater: InfoGANStep, sampler: IterationSampler) -> Callable[[bool], torch.Tensor]:
    """One training iteration on the path ``mode`` (resolved): a function of whether InfoGAN-CR's
    phase has started, returning the iteration's losses on the device."""
    cuda = sampler.generator.device.type == "cuda"
    if mode != "eager":
        # On a GPU the compiled path puts each compiled function in a CUDA graph; the captured
        # path compiles plainly and captures the whole iteration itself.
        updater.compile(mode="reduce-overhead" if mode == "compiled" and cuda else None)
    if mode == "graph":
        from infogan.capture import CapturedIteration

        return CapturedIteration(updater, sampler)

    def iteration(cr: bool) -> torch.Tensor:
        draw = sampler(cr)
        return updater(draw.real, draw.latent, draw.pair, draw.g_latents)

    return iteration


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


def train(
    cfg: Config,
    run_dir: str | os.PathLike[str] | None = None,
    on_eval: Callable[[EvalReport], None] | None = None,
    resume: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train an InfoGAN.

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
    tc = cfg.train
    device = resolve_device(tc.device)
    amp_dtype = resolve_precision(tc.precision, device)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    # Denormal floats (gradients of ~1e-40 reaching the large FC layers) make x86 CPU arithmetic
    # several times slower (measured: a weight-gradient matmul 154 ms -> 36 ms); flushing them
    # to zero changes no result that matters and is what GPUs do by default. Process-wide.
    torch.set_flush_denormal(True)
    writer = RunWriter(run_dir, cfg)

    torch.manual_seed(tc.seed)
    dataset = load_dataset(cfg, device)
    expected = (cfg.model.channels, cfg.model.image_size, cfg.model.image_size)
    if tuple(dataset.image_shape) != expected:
        raise ValueError(f"dataset {cfg.data.name!r} gives images {dataset.image_shape}, model expects {expected}")
    step_mode = resolve_step_mode(tc.step_mode, device, amp_dtype)
    updater = InfoGANStep(cfg, device, amp_dtype)
    loop_rng = loop_generator(tc.seed, device)
    start = _restore(resume, cfg, updater, loop_rng, device) if resume is not None else 0
    iteration = make_iteration(step_mode, updater, IterationSampler(cfg, dataset, loop_rng))

    full_steps, log_schedule = full_evaluation_steps(cfg), tc.eval_schedule == "log"
    entropy = latent_codes.entropies(cfg.codes)
    log = LossLog(updater.loss_names, len(LOSS_NAMES), entropy, tc.max_loss)
    evaluator = Evaluator(cfg, dataset, device)
    writer.config()

    def tags() -> dict[str, str]:
        return {"fid_feature_net": evaluator.feature_net_id} if evaluator.feature_net_id else {}

    def evaluate(step: int, checkpoint_dir: Path | None) -> dict[str, float]:
        metrics = {**log.last(), names.H_CAT: entropy["h_cat"], names.H_CONT: entropy["h_cont"],
                   names.IMAGES: float(step * tc.images_per_step)}
        metrics.update(evaluator(updater.g, updater.d, final=step in full_steps))
        writer.evaluation(step, metrics, tags(), updater.g, device)
        if on_eval is not None:
            on_eval(EvalReport(step, dict(metrics), checkpoint_dir, tags(), log.rows_since_report(step)))
        return metrics

    bar = _progress_bar(tc.steps, start) if progress else None
    updater.train()
    last_metrics: dict[str, float] = {}
    last_ckpt: Path | None = None
    status, message = "finished", ""
    interrupted: KeyboardInterrupt | None = None
    boundary = StepBoundary().install()  # Ctrl-C ends the loop between two steps, not inside one
    t0, step = time.perf_counter(), start
    overhead = 0.0  # seconds spent evaluating and writing checkpoints: not training
    try:
        for step in boundary.steps(range(start + 1, tc.steps + 1)):
            log.append(iteration(updater.cr_active(step)))
            is_eval = is_evaluation_step(step, tc.steps, tc.eval_every, log_schedule, full_steps)
            is_ckpt = is_evaluation_step(step, tc.steps, tc.checkpoint_every, also=full_steps)
            if step % tc.log_every == 0 or is_eval or is_ckpt:
                row = log.flush(step)
                if bar is not None:
                    bar.set_postfix({k: f"{row[k]:.3f}" for k in ("loss_d", "loss_g", "l_info_cat", "l_info_cont")})
            if is_ckpt or is_eval:
                check_finite_weights(updater.weights(), step)  # never checkpoint or evaluate NaN weights
            t_side = time.perf_counter()
            ckpt_dir = writer.checkpoint(step, _state(step, cfg, updater, loop_rng, device)) if is_ckpt else None
            last_ckpt = ckpt_dir or last_ckpt
            if is_eval:
                last_metrics = evaluate(step, ckpt_dir)
            overhead += time.perf_counter() - t_side
            if bar is not None:
                bar.update(1)
    except DivergedError as err:
        status, message, step = "diverged", str(err), err.step
        last_metrics = {**last_metrics, names.DIVERGED_STEP: float(err.step),
                        names.IMAGES: float(err.step * tc.images_per_step)}
        if on_eval is not None:
            on_eval(EvalReport(err.step, dict(last_metrics), None, tags(), log.rows_since_report(err.step)))
    except KeyboardInterrupt as err:  # re-raised once the run directory records it
        status, message, interrupted = "interrupted", "interrupted (KeyboardInterrupt)", err
        if isinstance(err, Interrupted):  # between two steps: memory holds the last completed step
            last_ckpt = _checkpoint_on_interrupt(writer, step, start, cfg, updater, loop_rng, device) or last_ckpt
            status = "finished" if step == tc.steps else status
    finally:
        boundary.restore()
        if bar is not None:
            bar.close()
    train_seconds = time.perf_counter() - t0 - overhead
    ips = (step - start) * tc.batch_size / train_seconds if train_seconds > 0 else 0.0  # TrainResult says why
    writer.ending({
        "status": status, "step": step, "message": message, "images_per_second": ips,
        "start_step": start, "train_seconds": train_seconds,
        "checkpoint": str(last_ckpt) if last_ckpt else None, "metrics": last_metrics, "tags": tags(),
    })
    if interrupted is not None:
        raise interrupted
    return TrainResult(status, step, last_metrics, log.history, writer.path, last_ckpt, message, ips)


def _checkpoint_on_interrupt(writer: RunWriter, step: int, start: int, cfg: Config, updater: InfoGANStep,
                             loop_rng: torch.Generator, device: torch.device) -> Path | None:
    """The checkpoint of ``step``, the last completed one, when Ctrl-C stopped the loop after it.

    Written also at the starting step, so the run directory holds a checkpoint with this run's
    config (its budget) to resume from; None where the loop wrote this step's already or the
    weights are not finite.
    """
    if step > start and is_evaluation_step(step, cfg.train.steps, cfg.train.checkpoint_every,
                                           also=full_evaluation_steps(cfg)):
        return None
    try:
        check_finite_weights(updater.weights(), step)
    except DivergedError:
        return None
    return writer.checkpoint(step, _state(step, cfg, updater, loop_rng, device))


def _restore(resume: str | os.PathLike[str], cfg: Config, updater: InfoGANStep, loop_rng: torch.Generator,
             device: torch.device) -> int:
    """Load a checkpoint into the networks, optimisers and RNGs; returns its step."""
    state = ckpt.load(resume)
    check_resume(state.config, cfg, state.step)
    updater.load_state_dict(state.__dict__)
    loop_rng.set_state(state.loop_rng)
    torch.set_rng_state(state.torch_rng)
    if device.type == "cuda" and state.cuda_rng:
        torch.cuda.set_rng_state_all(state.cuda_rng)
    return state.step


def _state(step: int, cfg: Config, updater: InfoGANStep, loop_rng: torch.Generator,
           device: torch.device) -> ckpt.TrainingState:
    """Everything a checkpoint holds: weights, optimisers, step, config, RNG states."""
    return ckpt.TrainingState(
        step=step, config=cfg.to_flat(), **updater.state_dict(),
        loop_rng=loop_rng.get_state(), torch_rng=torch.get_rng_state(),
        cuda_rng=torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
    )


def _progress_bar(total: int, initial: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="infogan", unit="step", dynamic_ncols=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infogan.train``: the flags of ``infogan.cli.train_parser``; every expected failure
    is one line and exit 2, a diverged run exits 1, Ctrl-C 130 (``infogan.cli.run_training``)."""
    return cli.run_training(cli.parse_args(cli.train_parser(), argv), train)


if __name__ == "__main__":
    raise SystemExit(main())
