"""The analysis notebooks run top to bottom on the tables of a real smoke sweep."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from analysis import schema as S
from tests.analysis.conftest import SMOKE_SWEEP, SmokeSweep

NOTEBOOKS = Path(__file__).resolve().parents[2] / "analysis" / "notebooks"
OTHER_NET = "inception@ffff"


def run_notebook(name: str, tables: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list, list]:
    """Execute a notebook against ``tables``; returns (its text output, error outputs, PNG outputs)."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("INFOGAN_TABLES", str(tables))
    monkeypatch.setenv("INFOGAN_SWEEP", SMOKE_SWEEP)
    monkeypatch.delenv("INFOGAN_CODES", raising=False)  # the notebook must find <tables>/<sweep>/codes.npz
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/markdown", o.get("data", {}).get("text/plain", "")))
        for o in outputs
    )
    errors = [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    return text, errors, images


@pytest.mark.integration
@pytest.mark.slow
def test_deep_dive_runs_on_the_smoke_sweep(smoke_sweep: SmokeSweep, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    trial_ids = set(S.read_trials(smoke_sweep.tables)["trial_id"])
    text, errors, images = run_notebook("sweep_deep_dive.ipynb", smoke_sweep.tables, tmp_path, monkeypatch)
    assert not errors, errors
    assert len(images) >= 3, "expected the Pareto front, the λ scatter and the learning curves"
    central = re.findall(r"most central model: (\S+)", text)
    assert len(central) == 1 and central[0] in trial_ids, (central, trial_ids)
    assert f"codes of {len(trial_ids)} models" in text  # every finished smoke trial has a checkpoint
    assert not [t for t in text.splitlines() if "skipped" in t or "No codes file" in t]


@pytest.fixture
def two_networks(smoke_sweep: SmokeSweep, tmp_path: Path) -> Path:
    """The smoke sweep's tables plus a synthetic sweep whose FIDs come from another network.

    The synthetic sweep is here only because one smoke sweep has one FID feature network, and the
    compare notebook must show that it keeps FIDs of different networks apart.
    """
    from analysis.collect import collect
    from analysis.synthetic import log_synthetic_sweep

    tables = tmp_path / "tables"
    shutil.copytree(S.sweep_dir(smoke_sweep.tables, SMOKE_SWEEP), S.sweep_dir(tables, SMOKE_SWEEP))
    log_synthetic_sweep(smoke_sweep.uri, "other_net", lambdas=(0.1, 1.0), seeds=(0,), steps=6, eval_every=3,
                        fid_feature_net=OTHER_NET)
    collect(smoke_sweep.uri, sweep="other_net", out_dir=tables, progress=False)
    return tables


@pytest.mark.integration
@pytest.mark.slow
def test_compare_runs_and_keeps_fid_networks_apart(smoke_sweep: SmokeSweep, two_networks: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    smoke = S.read_trials(smoke_sweep.tables)
    smoke_nets = smoke["fid_feature_net"].dropna().unique().tolist()
    assert len(smoke_nets) == 1 and smoke_nets[0] != OTHER_NET
    text, errors, images = run_notebook("compare_sweeps.ipynb", two_networks, tmp_path, monkeypatch)
    assert not errors, errors
    # One Pareto section (and figure) per FID feature network, never one front across both.
    assert f"FID feature network `{smoke_nets[0]}`" in text and f"FID feature network `{OTHER_NET}`" in text
    assert len(images) >= 2
    assert all(tid in text for tid in smoke["trial_id"])  # the smoke trials are on the leaderboard
    assert not [t for t in text.splitlines() if "skipped" in t]
