"""Figures from tables only: each plot draws, saves as PNG and SVG, and refuses mixed FIDs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from analysis import plots


@pytest.fixture
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    rows, curves = [], []
    for i, (lam, seed) in enumerate([(lam, s) for lam in (0.01, 0.1, 1.0) for s in (0, 1, 2)]):
        tid = f"t{i}"
        rows.append({"sweep": "s", "trial_id": tid, "status": "finished", "seed": seed, "config_id": str(lam),
                     "fid_feature_net": "lenet@1", "loss.lambda_cont": lam,
                     "final/eval/mig": 0.3 + 0.1 * np.log10(lam) + rng.normal(0, 0.02),
                     "final/eval/fid": 20 + 10 * lam + rng.normal(0, 1), "final/eval/sap": rng.uniform()})
        for step in range(1, 6):
            curves.append({"sweep": "s", "trial_id": tid, "metric": "eval/mig", "step": step, "value": step * lam})
            curves.append({"sweep": "s", "trial_id": tid, "metric": "train/loss_d", "step": step, "value": 1 / step})
    return pd.DataFrame(rows), pd.DataFrame(curves)


def test_every_plot_saves_png_and_svg(tables, tmp_path: Path) -> None:
    trials, curves = tables
    figs = {
        "scatter": plots.param_scatter(trials, "loss.lambda_cont", "eval/mig"),
        "pareto": plots.pareto(trials),
        "heatmap": plots.correlation_heatmap(trials),
        "curves": plots.learning_curves(curves, ["eval/mig", "train/loss_d", "eval/absent"], trials=trials),
    }
    for name, fig in figs.items():
        assert isinstance(fig, Figure)
        png = plots.save(fig, tmp_path / f"{name}.png")
        svg = plots.save(fig, tmp_path / f"{name}.svg")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in svg.read_bytes()[:2000]
    assert len(figs["curves"].axes) >= 2
    assert not list(tmp_path.glob(".*"))  # atomic writes leave no temp files


def test_svg_is_reproducible(tables, tmp_path: Path) -> None:
    trials, _ = tables
    a = plots.save(plots.pareto(trials), tmp_path / "a.svg").read_bytes()
    b = plots.save(plots.pareto(trials), tmp_path / "b.svg").read_bytes()
    assert a == b


def test_plots_refuse_mixed_fid_networks(tables) -> None:
    trials, curves = tables
    trials = trials.assign(fid_feature_net=["lenet@1"] * 8 + ["inception@2"])
    with pytest.raises(ValueError, match="different feature networks"):
        plots.pareto(trials)
    with pytest.raises(ValueError, match="different feature networks"):
        plots.correlation_heatmap(trials)
    plots.correlation_heatmap(trials, ["eval/mig", "eval/sap"])  # no FID: fine


def test_learning_curves_need_a_known_metric(tables) -> None:
    _, curves = tables
    with pytest.raises(ValueError, match="none of"):
        plots.learning_curves(curves, ["eval/absent"])


def test_heatmap_defaults_to_quality_metrics(tables) -> None:
    trials, _ = tables
    trials = trials.assign(**{"final/eval/seconds": np.arange(len(trials), dtype=float), "final/train/loss_d": 1.0})
    labels = [t.get_text() for t in plots.correlation_heatmap(trials).axes[0].get_xticklabels()]
    assert labels == ["fid", "mig", "sap"]


def test_learning_curves_refuse_fids_of_two_networks_from_the_curves_alone(tables) -> None:
    _, curves = tables
    fid = curves[curves["metric"] == "eval/mig"].assign(metric="eval/fid")
    fid = fid.assign(fid_feature_net=["lenet@1" if t != "t8" else "inception@2" for t in fid["trial_id"]])
    mixed = pd.concat([curves.assign(fid_feature_net=None), fid], ignore_index=True)
    with pytest.raises(ValueError, match="2 feature networks"):
        plots.learning_curves(mixed, ["eval/fid"])  # no trials table needed to notice
    plots.learning_curves(mixed[mixed["trial_id"] != "t8"], ["eval/fid"])
