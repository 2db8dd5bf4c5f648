"""`analysis codes`: checkpoints of a real smoke sweep → Q's codes on the same real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import compare
from analysis import schema as S
from analysis import trial_codes as K
from tests.analysis.conftest import SMOKE_IMAGES, SMOKE_SWEEP, SmokeSweep, Store


def test_mixed_datasets_are_refused() -> None:
    t = pd.DataFrame({"trial_id": ["a", "b", "c"], "data.name": ["dsprites", "digits", "dsprites"],
                      "model.image_size": [32, 28, 32], "model.channels": [1, 1, 1]})
    with pytest.raises(ValueError, match=r"different images: data.name: digits \[b\], dsprites \[a, c\]; "
                                         r"model.image_size: 28 \[b\], 32 \[a, c\]\."):
        K.check_same_data(t)
    K.check_same_data(t[t["data.name"] == "dsprites"])  # one dataset: fine


def test_write_codes_round_trip_leaves_no_temp_file(tmp_path: Path) -> None:
    codes = {"b": np.ones((4, 2), np.float32), "a": np.arange(12, dtype=np.float32).reshape(4, 3)}
    path = K.write_codes(codes, tmp_path / "s" / S.CODES_FILE)
    with np.load(path) as f:
        assert sorted(f.files) == ["a", "b"] and np.array_equal(f["a"], codes["a"])
    assert [p.name for p in path.parent.iterdir()] == [S.CODES_FILE]


@pytest.mark.slow
def test_trials_without_checkpoints_are_named_with_the_reason(mlflow_store: Store, tmp_path: Path) -> None:
    from analysis.collect import collect

    # The synthetic sweep uploads no checkpoints, and one of its trials is known only to Tune.
    collect(mlflow_store.uri, sweep="demo", tune_dir=mlflow_store.tune_dir, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="no trial of sweep 'demo' has a checkpoint") as err:
        K.collect_codes(mlflow_store.uri, tmp_path, "demo", progress=False)
    assert "tune_only: no MLflow run" in str(err.value)
    assert "t00000: no checkpoint/checkpoint.pt artifact" in str(err.value)
    with pytest.raises(FileNotFoundError, match="analysis collect"):
        K.collect_codes(mlflow_store.uri, tmp_path, "never_collected", progress=False)


@pytest.mark.integration
@pytest.mark.slow
def test_codes_of_a_real_smoke_sweep(smoke_sweep: SmokeSweep, tmp_path: Path) -> None:
    trials = S.read_trials(smoke_sweep.tables).set_index("trial_id")
    path = S.sweep_dir(smoke_sweep.tables, SMOKE_SWEEP) / S.CODES_FILE  # written by the fixture's CLI call
    with np.load(path) as f:
        codes = {k: f[k] for k in f.files}
    assert set(codes) == set(trials.index[trials["status"] == "finished"]) and len(codes) >= 2
    for tid, arr in codes.items():
        # One column per continuous code, one per categorical code (its argmax).
        n_cat = len([c for c in trials.loc[tid, "codes.categorical"].split(",") if c])
        assert arr.shape == (SMOKE_IMAGES, trials.loc[tid, "codes.n_continuous"] + n_cat), tid
        assert arr.dtype == np.float32 and np.isfinite(arr).all()
        assert arr[:, 0].std() > 0  # Q responds to the images
    # Same images, same weights: the same codes again.
    again = K.collect_codes(smoke_sweep.uri, smoke_sweep.tables, SMOKE_SWEEP, n_images=SMOKE_IMAGES,
                            out=tmp_path / "again.npz", progress=False)
    assert not again.skipped and all(np.array_equal(again.codes[t], codes[t]) for t in codes)
    cent = compare.model_centrality(codes)
    assert cent.selected in codes and len(cent.scores) == len(codes)
    assert cent.scores["centrality"].between(0, 1).all()
    report = compare.selection_report(trials.reset_index(), cent.selected, ["eval/mig", "eval/fid"])
    assert report["selected_rank"].notna().all()


@pytest.mark.integration
@pytest.mark.slow
def test_report_has_the_model_centrality_pick(smoke_sweep: SmokeSweep, tmp_path: Path) -> None:
    from analysis.report import write_report

    finished = set(S.read_trials(smoke_sweep.tables).query("status == 'finished'")["trial_id"])
    text = write_report(smoke_sweep.tables, tmp_path / "rep", sweep=SMOKE_SWEEP).read_text()
    section = text.split("## Unsupervised model selection (ModelCentrality)")[1].split("\n## ")[0]
    picked = section.split("(chosen without labels): `")[1].split("`")[0]
    assert picked in finished
    assert "| final/eval/mig |" in section and "_Skipped" not in section


def test_codes_never_creates_a_store_and_names_the_wrong_one(mlflow_store: Store, tmp_path: Path) -> None:
    from analysis.collect import collect
    from analysis.synthetic import log_synthetic_sweep

    collect(mlflow_store.uri, sweep="demo", tune_dir=mlflow_store.tune_dir, out_dir=tmp_path, progress=False)
    missing = tmp_path / "elsewhere" / "mlflow.db"
    with pytest.raises(FileNotFoundError, match="no MLflow store at"):
        K.collect_codes(f"sqlite:///{missing}", tmp_path, "demo", progress=False)
    assert not missing.exists() and not missing.parent.exists()
    other = tmp_path / "other.db"
    log_synthetic_sweep(f"sqlite:///{other}", "unrelated", steps=5, eval_every=5)
    with pytest.raises(ValueError, match="none of sweep 'demo''s runs is in the MLflow store"):
        K.collect_codes(f"sqlite:///{other}", tmp_path, "demo", progress=False)
