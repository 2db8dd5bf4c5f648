"""The confirmation's answer: its verdict on known confirmations, and how often it is right on
simulated sweeps (issue 24's goal: at least 90% "not separable" when every config is equal)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.synthetic import simulate_answers
from sweeps import record
from sweeps.answer import better, compute_answer, decimals, fmt

METRICS = ["eval/mig", "eval/factor_vae", "eval/cat_accuracy", "eval/fid"]


def _rows(values: dict[str, list[tuple[float, float, float]]], status: dict[str, list[str]] | None = None) -> pd.DataFrame:
    rows = []
    for name, seeds in values.items():
        for i, (mig, fvae, fid) in enumerate(seeds):
            st = (status or {}).get(name, [])
            rows.append({"candidate": name, "seed": 10 + i, "status": st[i] if i < len(st) else record.STATUS_FINISHED,
                         "eval/mig": mig, "eval/factor_vae": fvae, "eval/fid": fid})
    return pd.DataFrame(rows)


DESCRIPTIONS = {"top1": "lambda_cont=0.2", "top2": "lambda_cont=0.01", "recipe": "lambda_cont=0.05"}


def test_equal_configs_are_not_separable_and_the_answer_says_how_many_seeds_it_would_take() -> None:
    rng = np.random.default_rng(0)
    seeds = [(0.05 + rng.normal(0, 0.02), 0.5 + rng.normal(0, 0.05), 200 + rng.normal(0, 30)) for _ in range(3)]
    # Every config's seeds score alike, in another order, and top2's a little higher on MIG.
    values = {"recipe": seeds, "top1": seeds[::-1], "top2": [(m + 0.004, f, d) for m, f, d in seeds[1:] + seeds[:1]]}
    answer = compute_answer(_rows(values), METRICS, DESCRIPTIONS, steps=800)
    assert answer.metrics == ("eval/mig", "eval/factor_vae", "eval/fid")  # no categorical code: no accuracy
    assert [c.name for c in answer.candidates] == ["recipe", "top1", "top2"]  # the recipe first
    assert answer.metric_level == pytest.approx(1 - 0.05 / 3)
    verdict = answer.verdict()
    assert verdict[0] == "No confirmed config is separable from the recipe on MIG, FactorVAE or FID at 3 seeds per config."
    assert any("seeds per config (80% power)" in line and "top2's +0.0040 from zero" in line for line in verdict)
    assert any("top1's +0.0000 from zero would take more than 1,000 seeds" in line for line in verdict)
    assert answer.separable() == []
    text = answer.text()
    assert text.startswith("The answer: 3 configs x 3 fresh seeds, 800 steps each")
    table = answer.table()
    assert list(table.columns) == ["config", "what", "seeds", "MIG", "FactorVAE", "FID"]
    iv = answer.candidates[0].intervals["eval/mig"]
    assert table.loc[0, "MIG"] == f"{iv.mean:.4f} [{iv.low:.4f}, {iv.high:.4f}]"  # 3 digits of the largest mean
    assert answer.mlflow_metrics()["answer/separable"] == 0.0
    assert "answer/top1-recipe/mig_diff" in answer.mlflow_metrics()


def test_a_clearly_better_config_is_named_with_its_margin_and_direction() -> None:
    values = {"recipe": [(0.05, 0.50, 200), (0.06, 0.52, 210), (0.04, 0.48, 190)],
              "top1": [(0.15, 0.50, 120), (0.16, 0.51, 130), (0.14, 0.49, 110)],
              "top2": [(0.05, 0.49, 205), (0.06, 0.51, 200), (0.05, 0.50, 195)]}
    answer = compute_answer(_rows(values), METRICS, DESCRIPTIONS)
    found = {(c.group, m): is_better for c, m, is_better in answer.separable()}
    assert found == {("top1", "eval/mig"): True, ("top1", "eval/fid"): True}  # FID: lower is better
    verdict = answer.verdict()
    assert verdict[0].startswith("top1 is better than the recipe on MIG: +0.100 [")
    assert verdict[1].startswith("top1 is better than the recipe on FID: -80 [")
    assert "top1 is not separable from the recipe on FactorVAE." in verdict
    assert "top2 is not separable from the recipe on MIG, FactorVAE or FID." in verdict
    assert "* " not in answer.difference_table().loc[1, "MIG"] and answer.difference_table().loc[0, "MIG"].endswith(" *")


def test_too_few_finished_seeds_are_said_not_computed() -> None:
    values = {"recipe": [(0.05, 0.5, 200), (0.06, 0.5, 200), (0.04, 0.5, 200)],
              "top1": [(0.2, 0.5, 200), (0.1, 0.5, 200), (0.3, 0.5, 200)]}
    rows = _rows(values, {"top1": ["finished", "diverged", "failed"]})
    answer = compute_answer(rows, METRICS, {"recipe": "r", "top1": "t"}, planned={"recipe": 3, "top1": 3})
    assert answer.verdict()[0] == "top1: 1 of 3 seeds finished (1 diverged, 1 failed, 1 finished): too few to compare."
    assert answer.table().loc[1, "MIG"].endswith("(1 seed: no interval)")
    no_recipe = compute_answer(_rows(values, {"recipe": ["failed", "failed", "finished"]}), METRICS,
                               {"recipe": "r", "top1": "t"}, notes=["so far"])
    assert no_recipe.verdict() == ["The recipe has 1 finished seed: nothing to compare with (at least 2 are needed).",
                                   "so far"]


def test_number_formats() -> None:
    assert decimals([0.0412, 0.151]) == 3 and decimals([215.0]) == 0 and decimals([0.5]) == 3 and decimals([]) == 3
    assert fmt(0.0412, 3) == "0.041" and fmt(-0.015, 3, sign=True) == "-0.015" and fmt(2258.4, 0) == "2,258"
    assert fmt(float("nan")) == "n/a"
    assert better("eval/fid", -3.0) and not better("eval/mig", -0.01)


def test_simulated_sweeps_say_not_separable_when_all_configs_are_equal_and_find_a_real_margin() -> None:
    """Issue 24's goal on synthetic confirmations (3 configs x 3 seeds, MIG/FactorVAE/FID at the
    seed spread the λ study measured): with every config equal the answer says "not separable"
    in at least 90% of sweeps; with top1 better by 4 seed sds on MIG it says so in most.
    Measured here (200 sweeps each): 0.94 not separable; at 4 sd, found in 0.815 (docs/results
    gives the rates over 1,000 sweeps and other margins)."""
    equal = simulate_answers(200, rng_seed=0)
    assert equal.not_separable >= 0.90 and equal.found_better == 0.0
    better_by_4 = simulate_answers(200, margin_sd=4.0, rng_seed=1)
    assert better_by_4.found_better > 0.5 and better_by_4.false_claims <= 0.1
