"""Fixtures of the analysis tests: a synthetic sweep in a real local MLflow store, and a real
smoke sweep (Ray Tune + training + MLflow) collected into tables with its models' codes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from analysis.synthetic import SyntheticSweep, log_synthetic_sweep

# Trial statuses cycled over the 8 synthetic trials: every branch of the contract appears.
STATUSES = ["finished", "finished", "stopped_early", "diverged", "finished", "failed", "finished", "finished"]
SMOKE_SWEEP = "smoke_nb"
SMOKE_TRIALS = 3
SMOKE_IMAGES = 400  # real images per model in the smoke sweep's codes.npz


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


@dataclass(frozen=True)
class SmokeSweep:
    """A real smoke sweep's MLflow store, Tune folder and collected tables (with codes.npz)."""

    uri: str
    root: Path
    tune_dir: Path
    tables: Path


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory: pytest.TempPathFactory) -> SmokeSweep:
    """Run ``lambda_search --smoke-test`` in-process (three tiny dSprites trials, ~2 min on two
    cores), then the analysis CLI's ``collect`` (with Tune's folder) and ``codes`` steps on it.

    Everything after the sweep goes through ``analysis.__main__.main``, as a user would.
    """
    from analysis.__main__ import main as analysis_main
    from sweeps import lambda_search

    root = tmp_path_factory.mktemp("smoke")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tune_dir = root / "tune" / SMOKE_SWEEP
    tables = root / "tables"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        code = lambda_search.main([
            "--smoke-test", "--num-samples", str(SMOKE_TRIALS), "--scheduler", "fifo", "--name", SMOKE_SWEEP,
            "--storage-path", str(root / "tune"), "--tracking-uri", uri,
        ])
        assert code == 0, "the smoke sweep failed"
        assert analysis_main(["collect", "--tracking-uri", uri, "--sweep", SMOKE_SWEEP, "--tune-dir", str(tune_dir),
                              "--out", str(tables), "--no-progress"]) == 0
        assert analysis_main(["codes", "--tracking-uri", uri, "--tables", str(tables), "--sweep", SMOKE_SWEEP,
                              "--n-images", str(SMOKE_IMAGES), "--no-progress"]) == 0
    return SmokeSweep(uri, root, tune_dir, tables)
