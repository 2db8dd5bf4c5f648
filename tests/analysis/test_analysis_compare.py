"""Known-answer tests of analysis.compare on hand-made trials tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import compare
from analysis.synthetic import synthetic_codes


def make_trials(**cols: list) -> pd.DataFrame:
    """A trials frame with the identity columns filled in."""
    n = len(next(iter(cols.values())))
    base = {
        "sweep": ["s"] * n,
        "trial_id": [f"t{i}" for i in range(n)],
        "status": ["finished"] * n,
        "seed": list(range(n)),
        "config_id": [f"c{i}" for i in range(n)],
        "fid_feature_net": ["lenet@1"] * n,
    }
    base.update(cols)
    return pd.DataFrame(base)


def test_pareto_front_known_answer() -> None:
    # A dominates C and H (same FID, worse MIG); B dominates D (same MIG, worse FID); E duplicates
    # B; F has the lowest FID; G has no FID.
    t = make_trials(**{
        "trial_id": ["A", "B", "C", "D", "E", "F", "G", "H"],
        "final/eval/fid": [10.0, 20.0, 15.0, 30.0, 20.0, 5.0, np.nan, 10.0],
        "final/eval/mig": [0.2, 0.5, 0.1, 0.5, 0.5, 0.05, 0.9, 0.15],
    })
    front = compare.pareto_front(t, "eval/mig", "eval/fid")
    assert front["trial_id"].tolist() == ["F", "A", "B", "E"]


def test_pareto_front_uses_best_columns_when_asked() -> None:
    t = make_trials(**{"best/eval/fid": [1.0, 2.0], "best/eval/mig": [0.1, 0.05],
                       "final/eval/fid": [2.0, 1.0], "final/eval/mig": [0.1, 0.2]})
    assert compare.pareto_front(t, "best/eval/mig", "best/eval/fid")["trial_id"].tolist() == ["t0"]
    assert compare.pareto_front(t)["trial_id"].tolist() == ["t1"]


def test_leaderboard_direction_and_ties() -> None:
    t = make_trials(**{"final/eval/mig": [0.3, 0.5, 0.5, 0.1], "final/eval/fid": [4.0, 1.0, 3.0, 2.0]})
    lb = compare.leaderboard(t, "eval/mig")
    assert lb["trial_id"].tolist() == ["t1", "t2", "t0", "t3"]
    assert lb["rank"].tolist() == [1, 1, 3, 4]
    assert compare.leaderboard(t, "eval/fid", top=2)["trial_id"].tolist() == ["t1", "t3"]
    with pytest.raises(KeyError, match="final/eval/mig"):
        compare.leaderboard(t, "eval/nonexistent")


def test_effect_levels_median_iqr_and_spearman() -> None:
    t = make_trials(**{
        "loss.lambda_cont": [0.1] * 3 + [1.0] * 4,
        "final/eval/mig": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        "seed": [0, 1, 2, 0, 1, 2, 3],
    })
    eff = compare.effect(t, "loss.lambda_cont", "eval/mig")
    tab = eff.table.set_index("level")
    assert tab.loc[0.1, "median"] == 2.0 and tab.loc[1.0, "median"] == 5.5
    assert tab.loc[0.1, "iqr"] == pytest.approx(1.0) and tab.loc[1.0, "iqr"] == pytest.approx(1.5)
    assert tab["n_seeds"].tolist() == [3, 4]
    # Spearman = Pearson of the (tie-averaged) ranks, computed here without scipy.
    xr = np.array([2, 2, 2, 5.5, 5.5, 5.5, 5.5])
    yr = np.arange(1, 8)
    assert eff.spearman_rho == pytest.approx(np.corrcoef(xr, yr)[0, 1])
    assert eff.n == 7


def test_effect_bins_many_values_on_log_scale() -> None:
    lam = np.logspace(-3, 0, 30)
    t = make_trials(**{"loss.lambda_cont": lam, "final/eval/mig": -np.log10(lam)})
    eff = compare.effect(t, "loss.lambda_cont", "eval/mig", bins=3)
    assert eff.table["n"].tolist() == [10, 10, 10]  # equal decades
    assert eff.spearman_rho == pytest.approx(-1.0)
    explicit = compare.effect(t, "loss.lambda_cont", "eval/mig", bins=[0, 0.01, 1.0])
    assert explicit.table["n"].sum() == 30


def test_effects_ranks_pairs_by_correlation() -> None:
    t = make_trials(**{"loss.lambda_cont": [1.0, 2.0, 3.0, 4.0], "optim.lr_g": [1.0, 1.0, 1.0, 1.0],
                       "final/eval/mig": [1.0, 2.0, 3.0, 4.0], "final/eval/sap": [1.0, 3.0, 2.0, 4.0]})
    out = compare.effects(t)
    assert out["metric"].tolist() == ["final/eval/mig", "final/eval/sap"]  # lr_g is constant: skipped
    assert out["spearman_rho"].iloc[0] == pytest.approx(1.0)


def test_seed_robustness_and_variance_share() -> None:
    t = make_trials(**{"config_id": ["a", "a", "b", "b", "c"], "seed": [0, 1, 0, 1, 0],
                       "final/eval/mig": [1.0, 3.0, 5.0, 7.0, 100.0]})
    sr = compare.seed_robustness(t, ["eval/mig"]).set_index("config_id")
    assert sorted(sr.index) == ["a", "b"]  # c has one seed
    assert sr.loc["a", "range"] == 2.0 and sr.loc["b", "std"] == pytest.approx(np.sqrt(2))
    # Within SS = 4, total SS = 20 (c is left out: one seed).
    assert compare.seed_variance_share(t, "eval/mig") == pytest.approx(0.2)
    knobs = t.assign(**{"loss.lambda_cr": [0.0, 0.0, 2.0, 2.0, 2.0]})
    shown = compare.seed_robustness(knobs, ["eval/mig"], knobs=("loss.lambda_cr", "absent.key"))
    assert shown["loss.lambda_cr"].tolist() == [0.0, 2.0] and "absent.key" not in shown.columns


def test_model_centrality_exact_with_a_toy_metric() -> None:
    codes = {m: np.full((5, 1), float(v)) for m, v in {"m0": 0, "m1": 1, "m3": 3, "m10": 10}.items()}

    def closeness(c: np.ndarray, f: np.ndarray) -> float:
        return -float((c.mean() - f.mean()) ** 2)

    res = compare.model_centrality(codes, closeness)
    assert res.selected == "m3"
    assert res.scores.set_index("model_id").loc["m3", "centrality"] == pytest.approx(-62 / 3)  # self excluded
    assert res.scores["model_id"].tolist() == ["m3", "m1", "m0", "m10"]
    assert res.pairwise.loc["m0", "m10"] == -100.0 and np.isnan(res.pairwise.loc["m1", "m1"])


def test_mig_like_known_answers() -> None:
    rng = np.random.default_rng(0)
    f = rng.uniform(-1, 1, size=(2000, 3))
    assert compare.mig_like(f, f) > 0.9
    assert compare.mig_like(2 * f[:, ::-1] + 1, f) > 0.9  # permuted, affine: same representation
    assert compare.mig_like(rng.uniform(size=(2000, 3)), f) < 0.1
    dup = np.column_stack([f[:, 0], f[:, 0]])
    assert compare.mig_like(dup, f[:, :1]) == pytest.approx(0.0)  # two codes share one factor


def test_model_centrality_picks_the_consensus_model() -> None:
    ids = [f"t{i}" for i in range(4)]
    codes = synthetic_codes(ids, n_images=400, central=2, rng_seed=1)
    rng = np.random.default_rng(5)
    codes["outlier"] = rng.uniform(-1, 1, size=(400, 3))
    res = compare.model_centrality(codes)
    assert res.selected == "t2"
    assert res.scores["model_id"].iloc[-1] == "outlier"
    with pytest.raises(ValueError, match="same images"):
        compare.model_centrality({"a": np.zeros((5, 2)), "b": np.zeros((6, 2))})


def test_selection_report_ranks() -> None:
    t = make_trials(**{"final/eval/mig": [0.1, 0.4, 0.3, 0.2], "final/eval/fid": [10.0, 40.0, 20.0, 30.0]})
    rep = compare.selection_report(t, "t2", ["eval/mig", "eval/fid"]).set_index("metric")
    assert rep.loc["final/eval/mig", "selected_rank"] == 2 and rep.loc["final/eval/mig", "best_id"] == "t1"
    assert rep.loc["final/eval/mig", "gap"] == pytest.approx(0.1)
    assert rep.loc["final/eval/fid", "selected_rank"] == 2 and rep.loc["final/eval/fid", "gap"] == pytest.approx(10.0)
    assert rep.loc["final/eval/mig", "selected_percentile"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="not in"):
        compare.selection_report(t, "nope")


@pytest.mark.parametrize("nets", [["a@1", "b@2", "a@1"], ["a@1", None, "a@1"]])
def test_mixed_fid_feature_networks_are_refused(nets: list) -> None:
    t = make_trials(**{"fid_feature_net": nets, "final/eval/fid": [1.0, 2.0, 3.0], "final/eval/mig": [0.1, 0.2, 0.3],
                       "loss.lambda_cont": [0.1, 0.2, 0.3]})
    for call in (lambda: compare.pareto_front(t), lambda: compare.leaderboard(t, "eval/fid"),
                 lambda: compare.effect(t, "loss.lambda_cont", "eval/fid")):
        with pytest.raises(ValueError, match="different feature networks"):
            call()
    # Comparisons that don't touch FID are fine, and one network at a time is fine.
    assert len(compare.leaderboard(t, "eval/mig")) == 3
    one = t[t["fid_feature_net"] == "a@1"]
    assert compare.pareto_front(one)["trial_id"].tolist() == ["t0", "t2"]


def test_status_counts_has_every_status() -> None:
    t = make_trials(**{"status": ["finished", "failed", "finished"]})
    sc = compare.status_counts(t)
    assert sc.loc["s", "finished"] == 2 and sc.loc["s", "diverged"] == 0 and sc.loc["s", "total"] == 3


def test_code_dims_become_numeric_knobs() -> None:
    t = make_trials(**{"codes.categorical": ["10,3", "", "10", None], "codes.n_continuous": [2, 5, 0, 1],
                       "final/eval/mig": [0.1, 0.2, 0.3, 0.4]})
    d = compare.with_code_dims(t)
    assert d["codes.n_categorical"].tolist()[:3] == [2, 0, 1] and np.isnan(d["codes.n_categorical"].iloc[3])
    assert d["codes.categorical_dims"].tolist()[:3] == [13, 0, 10]
    assert d["codes.n_codes"].tolist()[:3] == [4, 5, 1]
    assert compare.effect(d, "codes.n_codes", "eval/mig").table["level"].tolist() == [1.0, 4.0, 5.0]


def test_default_metric_lists_hold_quality_metrics_only() -> None:
    # Eval time and a probe's training accuracy correlate perfectly with λ here: they must not
    # show up as "effects" or as metrics whose seed spread matters.
    lam = [0.1, 0.1, 1.0, 1.0]
    t = make_trials(**{"loss.lambda_cont": lam, "config_id": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1],
                       "final/eval/mig": [0.1, 0.3, 0.2, 0.5], "final/eval/seconds": [1.0, 1.1, 9.0, 9.1],
                       "final/eval/factor_vae_train": [0.1, 0.2, 0.8, 0.9], "final/train/loss_d": [4.0, 3.0, 2.0, 1.0]})
    assert compare.effects(t, params=["loss.lambda_cont"])["metric"].tolist() == ["final/eval/mig"]
    assert set(compare.seed_robustness(t)["metric"]) == {"final/eval/mig"}
    assert len(compare.effects(t, params=["loss.lambda_cont"], metrics=["eval/seconds"])) == 1  # when asked: fine


def test_levels_keep_a_grid_and_bin_a_search() -> None:
    grid = pd.Series([0.01, 0.1, 1.0] * 3)
    assert compare.levels(grid).tolist() == grid.tolist()
    drawn = pd.Series(np.logspace(-2, 0, 12))  # 12 distinct floats a sampler drew: no repeats
    lv = compare.levels(drawn)
    assert lv.nunique() == 6 and all(isinstance(v, pd.Interval) for v in lv)
    assert lv.value_counts().tolist() == [2] * 6  # log bins: two per bin


def test_study_table_means_and_seed_spread_per_cell() -> None:
    t = make_trials(**{
        "loss.lambda_cont": [0.1, 0.1, 1.0, 1.0, 0.1, 0.1, 1.0, 1.0],
        "loss.lambda_cr": [0.0] * 4 + [2.0] * 4,
        "seed": [0, 1] * 4,
        "final/eval/mig": [0.1, 0.3, 0.2, 0.2, 0.4, 0.6, 0.5, 0.7],
        "final/eval/fid": [10.0, 12.0, 20.0, 22.0, 11.0, 11.0, 30.0, 34.0],
    })
    table = compare.study_table(t, ["loss.lambda_cr", "loss.lambda_cont"], ["eval/mig", "eval/fid"])
    assert len(table) == 4 and table["n_seeds"].tolist() == [2, 2, 2, 2]
    cell = table[(table["loss.lambda_cr"] == 2.0) & (table["loss.lambda_cont"] == 1.0)].iloc[0]
    assert cell["eval/mig mean"] == pytest.approx(0.6) and cell["eval/mig std"] == pytest.approx(np.sqrt(0.02))
    assert cell["eval/fid mean"] == pytest.approx(32.0)
    mixed = t.assign(fid_feature_net=["a", "b"] * 4)
    with pytest.raises(ValueError, match="feature net"):
        compare.study_table(mixed, ["loss.lambda_cont"], ["eval/fid"])


def test_importance_finds_the_knob_that_drives_the_metric() -> None:
    from analysis.importance import param_importances

    rng = np.random.default_rng(0)
    lam = 10 ** rng.uniform(-2, 0, 40)
    lr = 10 ** rng.uniform(-4, -2, 40)
    t = make_trials(**{"loss.lambda_cont": lam, "optim.lr_g": lr, "codes.n_continuous": rng.integers(3, 7, 40),
                       "final/eval/mig": np.log10(lam) + rng.normal(0, 0.01, 40)})
    table = param_importances(t, ["loss.lambda_cont", "optim.lr_g", "codes.n_continuous", "model.width"], "eval/mig")
    assert table["param"].iloc[0] == "loss.lambda_cont" and table["importance"].iloc[0] > 0.8
    assert set(table["param"]) == {"loss.lambda_cont", "optim.lr_g", "codes.n_continuous"}  # width is absent
    with pytest.raises(ValueError, match="at least 3 trials"):
        param_importances(t.head(2), ["loss.lambda_cont"], "eval/mig")


def test_a_tied_knob_is_counted_once_in_the_importance() -> None:
    from analysis.importance import param_importances

    rng = np.random.default_rng(1)
    lr_d = 10 ** rng.uniform(-4, -2, 30)
    t = make_trials(**{"optim.lr_d": lr_d, "optim.lr_q": lr_d, "loss.lambda_cont": 10 ** rng.uniform(-2, 0, 30),
                       "final/eval/mig": np.log10(lr_d) + rng.normal(0, 0.01, 30)})
    table = param_importances(t, ["optim.lr_d", "optim.lr_q", "loss.lambda_cont"], "eval/mig")
    assert list(table["param"]) == ["optim.lr_d", "loss.lambda_cont"] and table["importance"].iloc[0] > 0.8


def test_report_levels_read_as_a_person_writes_them() -> None:
    from analysis.report import level_text

    assert level_text(0.03910605384005753) == "0.03911"
    assert level_text(np.float32(2.0)) == "2"
    assert level_text(pd.Interval(0.0125, 0.05000000001, closed="right")) == "(0.0125, 0.05]"
    assert level_text(pd.Interval(1.0, 2.0, closed="left")) == "[1, 2)"
    assert level_text("10,3") == "10,3" and level_text(5) == "5"


def test_an_undefined_rank_correlation_is_said_not_printed_as_nan() -> None:
    from analysis.report import spearman_text

    assert spearman_text(0.5, 0.0123, 12) == "Spearman ρ = 0.500 (p = 0.0123, n = 12)."
    assert spearman_text(float("nan"), float("nan"), 12).startswith("Spearman ρ: not defined for these 12 trials")
    # Below 10 trials the number is not printed at all (issue 24: refuse to over-read).
    assert spearman_text(0.5, 0.0123, 8).startswith("Spearman ρ: not meaningful at n = 8 (it needs 10 trials")
