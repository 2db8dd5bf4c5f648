"""Fixtures of the analysis tests: a small synthetic sweep in a real local MLflow store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from analysis.synthetic import SyntheticSweep, log_synthetic_sweep

# Trial statuses cycled over the 8 synthetic trials: every branch of the contract appears.
STATUSES = ["finished", "finished", "stopped_early", "diverged", "finished", "failed", "finished", "finished"]


@dataclass(frozen=True)
class Store:
    """A file-based SQLite MLflow store holding one synthetic sweep (and its Tune folder)."""

    uri: str
    root: Path
    sweep: SyntheticSweep
    tune_dir: Path


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Log the sweep once per session: MLflow's SQLite setup alone takes seconds."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tune_dir = root / "ray_results" / "demo"
    sweep = log_synthetic_sweep(uri, "demo", statuses=STATUSES, tune_dir=tune_dir, steps=20, eval_every=5)
    return Store(uri, root, sweep, tune_dir)
