"""Shared fixtures: tiny CPU configs so every training test runs in seconds."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from infogan.config import Config
from tests.signals import python_sigint

# Two cores and several test processes: one intra-op thread avoids oversubscription stalls.
torch.set_num_threads(1)
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

TINY = {
    "data.name": "digits", "model.image_size": 28, "model.width": 0.125,
    "codes.noise_dim": 4, "codes.categorical": (10,), "codes.n_continuous": 2,
    # The official InfoGAN MNIST networks: batch norm in D/Q, one G step per D step.
    "model.d_norm": "batch", "model.leak": 0.1, "train.g_steps": 1,
    "train.steps": 6, "train.batch_size": 8, "train.device": "cpu", "train.precision": "fp32",
    "train.eval_every": 3, "train.checkpoint_every": 3, "train.log_every": 1, "data.eval_size": 64,
    "eval.intermediate": "categorical,mig", "eval.final": "categorical,mig,dci,sap,modularity,factor_vae,beta_vae",
}


# What the project's commands write into the working directory by default (.gitignore lists them).
_DEFAULT_OUTPUTS = ("runs", "mlruns", "mlflow.db", "mlflow.db.lock", "mlartifacts", "optuna.db", "tables", "reports", "out")


@pytest.fixture(autouse=True, scope="session")
def _tests_write_nothing_into_the_checkout(request: pytest.FixtureRequest):
    """A test writes under its tmp_path: stores, artifacts and tables left in the checkout (an
    MLflow experiment created without an artifact location puts them in ./mlruns) fail the run."""
    root = request.config.rootpath
    before = {name for name in _DEFAULT_OUTPUTS if (root / name).exists()}
    yield
    left = sorted({name for name in _DEFAULT_OUTPUTS if (root / name).exists()} - before)
    assert not left, f"the tests left {', '.join(left)} in {root}"


@pytest.fixture(autouse=True)
def _sigint_handler_is_pythons():
    """Each test starts with Python's own SIGINT handler and gives back the one it found.

    infogan.interrupt takes Ctrl-C over only from Python's handler. A test run in the background
    (``nohup … &``, some CI runners) starts with SIGINT ignored, and Ray Tune installs a handler of
    its own and leaves it behind when a test runs a Tuner in this process: either way a training
    run would not own Ctrl-C (tests/signals.py)."""
    handler = signal.getsignal(signal.SIGINT)
    python_sigint()
    yield
    signal.signal(signal.SIGINT, handler)


@pytest.fixture
def tiny_cfg() -> Config:
    """A digits config that trains a few steps of a 1/8-width model."""
    return Config.from_flat(TINY)
