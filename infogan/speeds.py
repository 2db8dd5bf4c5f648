"""Training speeds measured on real hardware, the wall times derived from them, and the paths
chosen from them.

Each figure is one that somebody saw, with where and how it was measured. The ``paper`` preset's
and the sweep budgets' help texts derive their wall times from here; ``train.step_mode=auto``
(``fastest_step_mode``) and the sweep's packing of trials into one step (``members_to_pack``) choose
from ``PATHS``, so a new measurement (say ``benchmarks/gpu_speed.py`` on a GPU) changes them all by
adding a line. A device kind with no measurement trains one member per step on the eager path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from infogan.config import Config


@dataclass(frozen=True)
class Speed:
    """Training steps per second of one model, measured with ``processes`` models sharing the device."""

    device: str
    recipe: str
    step_mode: str
    steps_per_second: float
    processes: int
    source: str


# Issue 15 (2026-12, the landed loop on one NVIDIA H200, `python -m infogan.train --preset ...`).
# Each eight-process figure is a mean over the processes of 5 dsprites + 3 mnist runs at once.
H200_DSPRITES_ALONE = Speed("one NVIDIA H200", "dsprites", "eager", 29.3, 1,
                            "issue 15: python -m infogan.train --preset dsprites, alone on the GPU")
H200_EIGHT_PROCESSES = Speed("one NVIDIA H200", "dsprites", "eager", 20.0, 8,
                             "issue 15: 5 dsprites + 3 mnist processes on the GPU, about 20 steps/s each")


def training_seconds(steps: int, speed: Speed, models: int = 1) -> float:
    """Seconds to train ``models`` models of ``steps`` steps each, ``speed.processes`` at a time.

    Training only: evaluations, start-up and checkpoints come on top.
    """
    if steps < 0 or models < 1:
        raise ValueError(f"steps must be >= 0 and models >= 1, got {steps} and {models}")
    waves = -(-models // speed.processes)  # ceil: the last wave may be partly empty
    return waves * steps / speed.steps_per_second


def format_duration(seconds: float) -> str:
    """``'42 s'``, ``'28 min'``, ``'3.1 h'`` or ``'2.5 days'``: one rounded unit a reader takes in."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def describe(steps: int, speed: Speed, models: int = 1) -> str:
    """How long training takes at a measured speed, saying the speed and where it was measured."""
    at = f"the {speed.step_mode} loop's measured {speed.steps_per_second:g} steps/s"
    if speed.processes > 1:
        at += f" each, {speed.processes} at a time"
    return f"about {format_duration(training_seconds(steps, speed, models))} of training on {speed.device} at {at}"


@dataclass(frozen=True)
class PathSpeed:
    """The training speed of one path for one model on one kind of device, with its one-off cost.

    Attributes:
        kind: ``"cpu"``, or a CUDA device's name as ``torch.cuda.get_device_name`` gives it.
        model: ``model_key`` of the measured config (architecture, image size, width, batch).
        step_mode: ``eager``, ``compiled`` or ``graph``.
        members: K, the members trained by one step.
        model_steps_per_second: K x iterations per second (one process alone on the device).
        compile_seconds: what the path costs before its first step, from a cold compile cache
            (0 for eager).
        source: where, how and by whom it was measured.
    """

    kind: str
    model: str
    step_mode: str
    members: int
    model_steps_per_second: float
    compile_seconds: float
    source: str


def model_key(cfg: Config) -> str:
    """What a path's speed depends on besides the device: ``"conv-32 w1 b64"``."""
    m = cfg.model
    return f"{m.resolved_arch}-{m.image_size} w{m.width:g} b{cfg.train.batch_size}"


def cpu_name() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it ("CPU" where it does not)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"


def device_kind(device: torch.device) -> str:
    """The kind of device a measurement holds for: ``"cpu (<model name>)"`` (CPUs of one model
    share their kernels' speeds; an AVX2 EPYC and an AMX Xeon do not) or the CUDA device's name."""
    if device.type == "cuda":
        import torch

        return torch.cuda.get_device_name(device)
    return f"{device.type} ({cpu_name()})" if device.type == "cpu" else device.type


# Measured with benchmarks/gpu_speed.py (--device cpu on CPUs): one process alone on the device, two
# threads on the 2-core CPUs. Every line names its machine; compile times are from a cold cache.
_EPYC = "cpu (AMD EPYC)"
_EPYC_RUN = ("issue 23, 2026-12-06, the 2-core AMD EPYC (AVX-512) of the project's machines, torch 2.14.1, 2 threads, "
             "other jobs paused: python benchmarks/gpu_speed.py --device cpu --recipes dsprites-32,dsprites,mnist "
             "--paths eager,compiled --members 1 --no-cr --pack '' --skip-equality --seconds 10 --threads 2")
_EPYC_PACK = ("issue 23, 2026-12-06, same machine: python benchmarks/gpu_speed.py --device cpu --recipes dsprites-32 "
              "--paths eager --members 1,8 --no-cr --pack '' --skip-equality --seconds 10 --threads 2")
PATHS: tuple[PathSpeed, ...] = (
    PathSpeed(_EPYC, "conv-32 w1 b64", "eager", 1, 12.1, 0.0, _EPYC_RUN),
    PathSpeed(_EPYC, "conv-32 w1 b64", "compiled", 1, 11.9, 39.9, _EPYC_RUN),
    PathSpeed(_EPYC, "conv-64 w1 b64", "eager", 1, 4.4, 0.0, _EPYC_RUN),
    PathSpeed(_EPYC, "conv-64 w1 b64", "compiled", 1, 5.2, 19.5, _EPYC_RUN),
    PathSpeed(_EPYC, "mnist-28 w1 b128", "eager", 1, 3.3, 0.0, _EPYC_RUN),
    PathSpeed(_EPYC, "mnist-28 w1 b128", "compiled", 1, 3.2, 26.2, _EPYC_RUN),
    PathSpeed(_EPYC, "conv-32 w1 b64", "eager", 1, 14.4, 0.0, _EPYC_PACK),
    PathSpeed(_EPYC, "conv-32 w1 b64", "eager", 8, 10.5, 0.0, _EPYC_PACK),
)


def _measured(kind: str, cfg: Config, members: int, table: Sequence[PathSpeed]) -> list[PathSpeed]:
    key = model_key(cfg)
    return [p for p in table if p.kind == kind and p.model == key and p.members == members]


def fastest_step_mode(kind: str, cfg: Config, members: int = 1, table: Sequence[PathSpeed] | None = None) -> str:
    """The path that trains ``cfg``'s planned steps soonest on ``kind``, from the measured speeds:
    a compiled or captured path only where its measured gain repays its measured compile time
    within ``train.steps``; ``eager`` where nothing was measured."""
    cpu = kind == "cpu" or kind.startswith("cpu (")  # device_kind's names of a CPU
    candidates = [p for p in _measured(kind, cfg, members, PATHS if table is None else table)
                  if p.step_mode != "graph" or not cpu]
    if not candidates:
        return "eager"
    work = cfg.train.steps * members
    return min(candidates, key=lambda p: p.compile_seconds + work / p.model_steps_per_second).step_mode


def members_to_pack(kind: str, cfg: Config, most: int, table: Sequence[PathSpeed] | None = None) -> int:
    """How many trials of ``cfg``'s shapes to train as the members of one step on ``kind`` (at most
    ``most``): the K whose best measured path trains the most model-steps per second, where it was
    measured faster than one member alone; 1 where packing was never measured faster."""
    best: dict[int, float] = {}
    for p in PATHS if table is None else table:
        if p.kind == kind and p.model == model_key(cfg) and p.members <= most:
            best[p.members] = max(best.get(p.members, 0.0), p.model_steps_per_second)
    if 1 not in best:
        return 1
    k = max(best, key=lambda m: best[m])
    return k if best[k] > best[1] else 1


# cuDNN's autotuner (``torch.backends.cudnn.benchmark``) on the device kinds where it was measured
# faster for these steps (benchmarks/gpu_speed.py prints the eager path with and without it). Off
# elsewhere: its choice of kernels may differ between runs, and a run should repeat to the bit.
CUDNN_BENCHMARK_FASTER: frozenset[str] = frozenset()
