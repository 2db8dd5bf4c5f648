"""The analysis notebooks run top to bottom on tables collected from a (synthetic) sweep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "analysis" / "notebooks"


@pytest.fixture(scope="module")
def tables(mlflow_store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from analysis.collect import collect
    from analysis.synthetic import log_synthetic_sweep, synthetic_codes

    out = tmp_path_factory.mktemp("tables")
    collect(mlflow_store.uri, sweep="demo", tune_dir=mlflow_store.tune_dir, out_dir=out, progress=False)
    # A second sweep with another FID network: the notebooks must keep the FIDs apart.
    log_synthetic_sweep(mlflow_store.uri, "other_net", lambdas=(0.1, 1.0), seeds=(0,), steps=6, eval_every=3,
                        fid_feature_net="inception@ffff")
    collect(mlflow_store.uri, sweep="other_net", out_dir=out, progress=False)
    codes = synthetic_codes(list(mlflow_store.sweep.trial_ids), n_images=300, central=4)
    np.savez(out / "codes.npz", **codes)
    return out


@pytest.mark.integration
@pytest.mark.parametrize("name", ["compare_sweeps.ipynb", "sweep_deep_dive.ipynb"])
def test_notebook_runs(name: str, tables: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("INFOGAN_TABLES", str(tables))
    monkeypatch.setenv("INFOGAN_SWEEP", "demo")
    monkeypatch.setenv("INFOGAN_CODES", str(tables / "codes.npz"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/markdown", o.get("data", {}).get("text/plain", "")))
        for o in outputs
    )
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, "the notebook drew no figure"
    skipped = [t for t in text.splitlines() if "skipped" in t]
    if name == "sweep_deep_dive.ipynb":
        assert "most central model" in text
        assert "t00004" in text  # the synthetic codes make trial 4 the consensus model
        assert not skipped, skipped
    else:
        # One Pareto section per FID feature network, never one front across both.
        assert "FID feature network `inception@ffff`" in text and "FID feature network `lenet_dsprites@abc123`" in text
        assert not skipped, skipped
