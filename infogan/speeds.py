"""Training speeds measured on real hardware, and the wall times derived from them.

Each figure is one that somebody saw, with where and how it was measured; the ``paper`` preset's
and the sweep budgets' help texts derive their wall times from here, so a new measurement (say
``benchmarks/gpu_speed.py`` on a GPU) changes them all by changing one line.
"""

from __future__ import annotations

from dataclasses import dataclass


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
