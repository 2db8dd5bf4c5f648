"""Known answers for the label-free choice among seeds by their categorical code
(analysis/categorical_selection.py), and one tiny real run through the loader and the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from analysis import categorical_selection as cs


def one_hot(classes: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[np.asarray(classes)]


def test_agreement_is_hungarian_matched_and_symmetric() -> None:
    a = np.array([0, 0, 1, 1, 2, 2])
    assert cs.agreement(a, (a + 1) % 3) == 1.0  # the same partition under other names
    b = np.array([0, 0, 1, 1, 1, 1])  # merges a's clusters 1 and 2: 4 of 6 can match
    assert cs.agreement(a, b) == pytest.approx(4 / 6)
    assert cs.agreement(b, a) == pytest.approx(4 / 6)


def test_information_and_confidence_known_values() -> None:
    k = 4
    balanced_certain = one_hot(np.arange(40) % k, k)
    assert cs.information(balanced_certain) == pytest.approx(math.log(k))
    assert cs.confidence(balanced_certain) == 1.0
    uniform = np.full((40, k), 1 / k)
    assert cs.information(uniform) == pytest.approx(0.0, abs=1e-12)
    assert cs.confidence(uniform) == pytest.approx(1 / k)
    all_one_class = one_hot(np.zeros(40, dtype=int), k)  # certain, but says the same for every image
    assert cs.information(all_one_class) == pytest.approx(0.0, abs=1e-12)
    # Two equally used values, each image 3/4 sure: H(mean) = ln 2, mean H = H(3/4, 1/4).
    half = np.array([[0.75, 0.25], [0.25, 0.75]] * 10)
    assert cs.information(half) == pytest.approx(math.log(2) + 0.75 * math.log(0.75) + 0.25 * math.log(0.25))


def test_posteriors_must_be_probabilities() -> None:
    with pytest.raises(ValueError, match="softmax"):
        cs.information(np.array([[2.0, -1.0], [0.5, 0.1]]))  # logits
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        cs.confidence(np.ones(5))


def _noisy_models(rng: np.random.Generator, truth: np.ndarray, k: int, noise: dict[str, float]) -> dict[str, np.ndarray]:
    """Each model: the truth under its own renaming, a fraction of images reassigned at random."""
    models = {}
    for name, frac in noise.items():
        pred = rng.permutation(k)[truth]
        flip = rng.random(len(truth)) < frac
        pred[flip] = rng.integers(0, k, flip.sum())
        models[name] = one_hot(pred, k) * 0.9 + 0.1 / k  # soft but argmax-preserving
    return models


def test_agreement_picks_the_cleanest_clustering_and_ranks_by_noise() -> None:
    rng = np.random.default_rng(0)
    k, truth = 5, np.repeat(np.arange(5), 80)
    noise = {"s1": 0.5, "s2": 0.05, "s3": 0.3, "s4": 0.15, "s5": 0.4}
    models = _noisy_models(rng, truth, k, noise)
    sel = cs.select_categorical(models)
    assert sel.selected == "s2"
    # Best first = most accurate first. (Not quite least noise first: in this draw s1's random
    # reassignments land on the right class more often than s5's, so s1 is the more accurate.)
    acc = cs.accuracies(models, truth)
    assert list(sel.scores["model_id"]) == sorted(acc, key=acc.get, reverse=True)
    assert list(sel.scores["rank"]) == [1, 2, 3, 4, 5]
    assert np.isnan(np.diag(sel.pairwise.to_numpy())).all()


def test_a_confident_but_arbitrary_model_wins_confidence_and_loses_agreement() -> None:
    rng = np.random.default_rng(1)
    k, truth = 4, np.repeat(np.arange(4), 50)
    models = _noisy_models(rng, truth, k, {"a": 0.1, "b": 0.2, "c": 0.2})
    models["fool"] = one_hot(rng.integers(0, k, len(truth)), k)  # certain about a random clustering
    sel = cs.select_categorical(models)
    assert sel.selected == "a"
    assert sel.scores.set_index("model_id")["confidence"].idxmax() == "fool"
    assert sel.scores["model_id"].iloc[-1] == "fool"
    assert cs.select_categorical(models, "confidence").selected == "fool"


def test_ties_go_to_the_smallest_id_and_bad_inputs_are_refused() -> None:
    same = one_hot(np.arange(12) % 3, 3)
    assert cs.select_categorical({"z": same, "b": same, "m": same}).selected == "b"
    with pytest.raises(ValueError, match="criterion"):
        cs.select_categorical({"a": same, "b": same}, "accuracy")
    with pytest.raises(ValueError, match="same images"):
        cs.select_categorical({"a": same, "b": same[:6]})


def test_spearman_known_values() -> None:
    x = np.arange(1, 9)
    y = np.array([1, 2, 4, 6, 7, 8, 5, 3])  # sum of squared rank differences 42: rho = 1 - 6 * 42 / 504
    r = cs.spearman(x, y, "c")
    assert (r.criterion, r.n) == ("c", 8)
    assert r.rho == pytest.approx(0.5)
    # Fisher z, Bonett-Wright variance (1 + 0.5^2 / 2) / 5, computed by hand.
    assert (r.low, r.high) == (pytest.approx(-0.36304, abs=1e-4), pytest.approx(0.90128, abs=1e-4))
    assert r.p_value == pytest.approx(8716 / 40320)  # |rho| >= 0.5 in 8,716 of the 8! orderings (brute force)
    perfect = cs.spearman(x, x * 2.0)
    assert perfect.rho == pytest.approx(1.0)
    assert perfect.p_value == pytest.approx(2 / 40320)  # only the two monotone orderings
    assert math.isnan(perfect.low)  # |rho| = 1: no Fisher z
    assert math.isnan(cs.spearman(x, np.ones(8)).rho)  # a constant column has no ranking


def test_judge_reports_pick_median_best_and_rank() -> None:
    rng = np.random.default_rng(2)
    k, truth = 5, np.repeat(np.arange(5), 60)
    noise = {f"seed{i}": f for i, f in enumerate([0.6, 0.1, 0.3, 0.2, 0.5, 0.4, 0.05, 0.7], start=1)}
    models = _noisy_models(rng, truth, k, noise)
    sel = cs.select_categorical(models)
    acc = cs.accuracies(models, truth)
    j = cs.judge(sel, acc)
    values = sorted(acc.values())
    assert j.n == 8
    assert j.median_accuracy == pytest.approx((values[3] + values[4]) / 2)
    assert j.best_accuracy == pytest.approx(values[-1]) and j.best_id == "seed7"
    assert j.selected == "seed7" and j.selected_accuracy_rank == 1
    assert list(j.table["accuracy"]) == sorted(acc.values(), reverse=True)
    assert j.table["picked"].sum() == 1
    agreement_rho = j.correlations[cs.CRITERIA.index("agreement")]
    assert agreement_rho.n == 8 and agreement_rho.rho > 0.9
    with pytest.raises(ValueError, match="no accuracy"):
        cs.judge(sel, {"seed1": 0.5})


def test_subset_picks_known_rates() -> None:
    rng = np.random.default_rng(3)
    k, truth = 4, np.repeat(np.arange(4), 60)
    noise = {f"m{i}": f for i, f in enumerate([0.05, 0.15, 0.25, 0.35, 0.45, 0.55])}
    models = _noisy_models(rng, truth, k, noise)
    sel = cs.select_categorical(models)
    acc = cs.accuracies(models, truth)
    whole = cs.subset_picks(sel, acc, 6)  # the one subset is the whole set: the full pick
    assert whole.subsets == 1 and whole.at_least_median == 1.0
    assert whole.mean_gap_to_best == pytest.approx(max(acc.values()) - acc[sel.selected])
    four = cs.subset_picks(sel, acc, 4)
    assert four.subsets == 15
    assert four.at_least_median == 1.0  # agreement follows accuracy here in every subset
    assert four.random_at_least_median == pytest.approx(0.5)  # 2 of 4 distinct values are >= the median
    with pytest.raises(ValueError, match="k="):
        cs.subset_picks(sel, acc, 7)


def _tiny_run(tiny_cfg, tmp_path: Path, seed: int) -> Path:
    from infogan.config import Config
    from infogan.loop import train

    cfg = Config.from_flat({**tiny_cfg.to_flat(), "train.seed": seed, "eval.final": "categorical",
                            "eval.intermediate": "categorical"})
    run = tmp_path / f"seed{seed}"
    train(cfg, run_dir=run)
    return run


def test_loader_gives_the_evaluations_clustering(tiny_cfg, tmp_path: Path) -> None:
    """The posteriors' argmax is the code the evaluation suite reads off Q on the same images."""
    from infogan import checkpoint as ckpt
    from infogan.config import Config
    from infogan.data import load_dataset
    from infogan.metrics.suite import EVAL_SEED, inference_model, q_representation
    from infogan.model import build
    from infogan.run_writer import latest_checkpoint

    run = _tiny_run(tiny_cfg, tmp_path, 1)
    post, labels, facts = cs.load_posteriors([run], n_images=50)
    p = post["seed1"]
    assert p.shape == (50, 10) and np.allclose(p.sum(axis=1), 1.0)
    assert facts["steps"] == {"seed1": 6} and facts["seeds"] == {"seed1": 1}
    state = ckpt.load(latest_checkpoint(run)[1])
    cfg = Config.from_flat(state.config)
    _, d = build(cfg.codes, cfg.model, learned_std=False)
    d.load_state_dict(state.discriminator)
    images, expected_labels = load_dataset(cfg, "cpu").eval_set(50, EVAL_SEED)
    codes = q_representation(inference_model(d), images)["categorical"][:, 0]
    np.testing.assert_array_equal(p.argmax(axis=1), codes)
    np.testing.assert_array_equal(labels, expected_labels)


def test_cli_writes_the_table_and_figure(tiny_cfg, tmp_path: Path) -> None:
    from analysis.__main__ import main

    runs = [str(_tiny_run(tiny_cfg, tmp_path, s)) for s in (1, 2, 3)]
    out = tmp_path / "out"
    assert main(["select-categorical", *runs, "--out", str(out), "--name", "sel", "--n-images", "60"]) == 0
    page = (out / "sel.md").read_text()
    assert (out / "sel.png").stat().st_size > 0
    for name in ("seed1", "seed2", "seed3"):
        assert f"| {name} |" in page
    assert page.count("**pick**") == 1
    assert "every subset" not in page  # 3 runs, subsets of 8 by default: none
    assert main(["select-categorical", *runs, "--out", str(out), "--name", "sub", "--n-images", "60",
                 "--subset-size", "2"]) == 0
    assert "The pick repeated on every subset of 2 of the 3 seeds (3 subsets" in (out / "sub.md").read_text()
    assert main(["select-categorical", *runs[:2], "--out", str(out)]) == 2  # two seeds have no median


def test_importing_the_criteria_loads_no_torch() -> None:
    import subprocess
    import sys

    code = "import sys, analysis.categorical_selection; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
