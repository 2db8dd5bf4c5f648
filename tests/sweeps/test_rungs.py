"""Rung-to-final rank correlations: known answers on made-up curves, and the store query on a
real (sqlite) MLflow store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sweeps import record, rungs, tracking


def _curves(n: int, noise_at: dict[int, float], final_step: int = 400, seed: int = 0) -> pd.DataFrame:
    """Trials whose metric at each step is their final value plus noise of the given size."""
    rng = np.random.default_rng(seed)
    final = rng.normal(0, 1, n)
    rows = [{"trial_id": f"t{i}", "step": final_step, "value": final[i]} for i in range(n)]
    for step, noise in noise_at.items():
        rows += [{"trial_id": f"t{i}", "step": step, "value": final[i] + rng.normal(0, noise)} for i in range(n)]
    return pd.DataFrame(rows)


def test_rung_correlations_rank_the_final_value() -> None:
    corr = rungs.rung_correlations(_curves(30, {100: 100.0, 200: 0.3, 300: 0.0}), 400)
    assert list(corr["step"]) == [100, 200, 300] and set(corr["n"]) == {30}
    assert corr.loc[2, "rho"] == pytest.approx(1.0)  # no noise: the same ranking
    assert corr.loc[1, "rho"] > 0.8 and corr.loc[1, "low"] > 0.5
    assert abs(corr.loc[0, "rho"]) < 0.4 and corr.loc[0, "low"] < 0 < corr.loc[0, "high"]  # noise only
    assert rungs.informative_step(corr) == 200


def test_rung_correlations_use_only_trials_that_reached_the_end() -> None:
    curves = _curves(12, {100: 0.1})
    stopped = pd.DataFrame([{"trial_id": "cut", "step": 100, "value": 9.0}])
    retried = pd.DataFrame([{"trial_id": "t0", "step": 100, "value": -99.0}])  # logged again later: the last counts
    corr = rungs.rung_correlations(pd.concat([retried, curves, stopped]), 400)
    assert corr.loc[0, "n"] == 12
    assert rungs.rung_correlations(curves, 999).empty and rungs.rung_correlations(curves.iloc[:0], 400).empty


def test_asha_rungs_and_the_informative_step() -> None:
    assert rungs.asha_rungs(250, 3, 1000) == [250, 750]
    assert rungs.asha_rungs(500, 3, 1000) == [500] and rungs.asha_rungs(1000, 3, 1000) == []
    few = pd.DataFrame({"step": [100, 200], "n": [5, 5], "rho": [0.9, 0.9], "low": [0.5, 0.5], "high": [1, 1]})
    assert rungs.informative_step(few) is None  # too few trials to say
    dip = pd.DataFrame({"step": [100, 200, 300], "n": [20] * 3, "rho": [0.7, 0.2, 0.8], "low": [0.4, -0.2, 0.6],
                        "high": [0.9, 0.5, 0.9]})
    assert rungs.informative_step(dip) == 300  # informative from 300 on, not before the dip


def test_describe_marks_rungs_and_refuses_small_n() -> None:
    corr = rungs.rung_correlations(_curves(12, {100: 100.0, 200: 0.01}), 400)
    lines = rungs.describe(corr, "eval/mig", [100], sweeps=2)
    assert lines[0].startswith("How MIG at each report step ranks the final MIG (Spearman rho [95% interval] over the 12")
    assert lines[1].startswith("  step 100 *: rho = ") and lines[2].startswith("  step 200: rho = 1.00")
    assert "ASHA's cut at step 100 is not shown to rank the final MIG better than chance" in lines[-1]
    small = rungs.describe(rungs.rung_correlations(_curves(5, {100: 0.1}), 400), "eval/mig", [], sweeps=1)
    assert small[1] == "  step 100: not meaningful at n = 5 (needs 10 trials)"
    assert "not measured yet" in rungs.describe(pd.DataFrame(columns=rungs.COLUMNS), "eval/mig", [], 0)[0]


def test_store_curves_finds_finished_trials_of_the_same_budget_in_every_sweep(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = tracking.client(uri)
    budget = {"data.name": "dsprites", "model.image_size": 32, "train.steps": 20, "train.eval_every": 10}

    def trial(sweep: str, tid: str, status: str, steps: int, stage: str = record.STAGE_SEARCH) -> None:
        exp = tracking.get_or_create_experiment(client, sweep, uri)
        run = client.create_run(exp, tags={record.TAG_ROLE: record.ROLE_TRIAL, record.TAG_SWEEP: sweep,
                                           record.TAG_TRIAL_ID: tid, record.TAG_STATUS: status, record.TAG_STAGE: stage})
        tracking.log_params(client, run.info.run_id, {**budget, "train.steps": steps})
        tracking.log_metric_rows(client, run.info.run_id, [{"step": 10, "eval/mig": 0.1}, {"step": 20, "eval/mig": 0.2}])

    trial("a", "t1", "finished", 20)
    trial("a", "t2", "stopped_early", 20)
    trial("b", "t3", "finished", 20, record.STAGE_CONFIRM)
    trial("b", "t4", "finished", 40)  # another budget
    curves = rungs.store_curves(client, "eval/mig", budget)
    assert sorted(set(curves["trial_id"])) == ["t1", "t3"] and len(curves) == 4
    assert set(curves["stage"]) == {"search", "confirm"} and set(curves["sweep"]) == {"a", "b"}
