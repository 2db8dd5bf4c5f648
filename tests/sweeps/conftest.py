"""Fixtures for the sweep tests: MLflow stores, a real ``mlflow server``, helpers to read runs back."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.signals import default_sigint

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "sweeps" / "lambda_search.py"


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a sweep subprocess: no GPUs, one thread, no inherited tracking URI."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update({"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
                "RAY_AUTH_MODE": "disabled", "RAY_DEDUP_LOGS": "0"})
    return env


def interrupt_sweep(argv: list[str], tmp_path: Path, ready: Callable[[], object], interrupt: Callable[[Any], None],
                    timeout: float = 120.0, what: str = "the sweep never got there") -> tuple[int, str]:
    """Run the sweep script with ``argv`` in its own session, wait (at most 300 s) until ``ready()``
    holds, ``interrupt`` it (signal the process or its group) and wait for it to end.

    Returns:
        (exit code, everything it printed).
    """
    log_path = tmp_path / "first.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, str(SCRIPT), *argv], stdout=log, stderr=subprocess.STDOUT,
                                env=subprocess_env(tmp_path), cwd=tmp_path, start_new_session=True,
                                preexec_fn=default_sigint)  # pressed Ctrl-C even when the tests run in the background
        try:
            deadline = time.monotonic() + 300
            while not ready():
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, what
                time.sleep(1)
            interrupt(proc)
            code = proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return code, log_path.read_text()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` (sqlite backend, one worker) on a free local port; yields its URI."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed in the finalizer
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(uri + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not become healthy:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
