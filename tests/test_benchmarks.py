"""The benchmarks still run (CPU-sized): they print figures, which tests never assert."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_speed_runs_on_a_cpu(tmp_path: Path) -> None:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_speed.py"), "--device", "cpu", "--tiny", "--recipes",
           "dsprites-32", "--paths", "eager", "--pack", "1,2", "--seconds", "0.5", "--warmup", "1", "--profile"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "matmul peak: fp32" in out
    assert "dsprites-32    eager     K=1" in out and "model-steps/s" in out and "dispatches/it" in out
    assert "dsprites-32+cr eager     K=1" in out  # InfoGAN-CR's phase
    assert "pack K=1:" in out and "pack K=2:" in out and "failed" not in out
    assert "profile:" in out and "host operators" in out and "conv" in out


@pytest.mark.slow
def test_the_quick_gpu_check_runs_on_a_cpu_within_its_budget(tmp_path: Path) -> None:
    # The first GPU session's command, CPU-sized: every path at several K, the CR phase, the
    # equality line; what the budget leaves out is said, not dropped silently.
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_speed.py"), "--quick", "--device", "cpu", "--tiny",
           "--recipes", "dsprites-32", "--paths", "eager", "--members", "1,2", "--budget", "120"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for text in ("dsprites-32    eager     K=1", "dsprites-32    eager     K=2", "dsprites-32+cr eager     K=1",
                 "peak memory", "equality"):
        assert text in out, (text, out[-2000:])
    assert "pack K=" not in out and "done in" in out


@pytest.mark.slow
def test_ensemble_speed_runs_on_a_cpu(tmp_path: Path) -> None:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "ensemble_speed.py"), "--device", "cpu", "--tiny", "--recipes",
           "dsprites-32", "--ensemble", "1,2", "--seconds", "0.5", "--rounds", "1", "--warmup", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("dsprites-32")]
    assert len(lines) == 2 and all("dispatches/iteration" in ln and "model-steps/s" in ln for ln in lines)
