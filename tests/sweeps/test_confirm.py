"""Choosing what the confirmation trains, from the search's trials (Tune's view, faked here),
and the searcher that hands the plan to Tune."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sweeps import confirm, record, spaces
from sweeps.settings import SweepSettings


def _space() -> spaces.SearchSpace:
    return spaces.base_space("dsprites").with_fixed(spaces.BUDGETS["smoke"]["fixed"])


def _trial(tid: str, lam: float, mig: float, *, seed: int = 0, steps: int = 20, status: str = "TERMINATED",
           extra: dict[str, Any] | None = None, fid: float = 100.0) -> SimpleNamespace:
    config = {**_space().fixed, "loss.lambda_cont": lam, "optim.lr_d": 0.002, "optim.lr_q": 0.002, "optim.lr_g": 0.001,
              "codes.n_continuous": 5, "train.seed": seed, **(extra or {})}
    return SimpleNamespace(trial_id=tid, status=status, config=config,
                           last_result={"step": steps, "eval/mig": mig, "eval/fid": fid, "train/diverged": 0.0})


def _settings(**kw: Any) -> SweepSettings:
    return SweepSettings(**{"steps": 20, "confirm": 2, "confirm_seeds": 3, **kw})


def test_plan_takes_the_best_configs_the_recipe_and_fresh_seeds() -> None:
    trials = [_trial("a", 0.01, 0.30), _trial("b", 0.2, 0.10), _trial("c", 0.1, 0.50, steps=10),  # stopped: after b
              _trial("d", 0.03, 0.20, seed=4), _trial("e", 0.05, 0.90),  # the recipe's own λ: not a "top" config
              _trial("f", 0.15, 0.95, status="ERROR")]
    plan = confirm.plan_confirmation(_settings(), _space(), trials)
    assert [c.name for c in plan.candidates] == ["recipe", "top1", "top2"]
    assert [c.source_trials for c in plan.candidates] == [("e",), ("a",), ("d",)]
    assert plan.candidates[0].config["loss.lambda_cont"] == spaces.recipe("dsprites")["loss.lambda_cont"]
    assert plan.candidates[0].config["optim.lr_q"] == plan.candidates[0].config["optim.lr_d"]  # ties resolved
    assert plan.candidates[1].search_scores == {"eval/mig": 0.30}
    assert plan.seeds == (5, 6, 7)  # after every seed the search used (d's 4)
    assert plan.candidates[1].description == "lambda_cont=0.01, lr_d=0.002, lr_g=0.001, n_continuous=5"
    configs = plan.trial_configs()
    assert len(configs) == 9 and [c["train.seed"] for c in configs[:3]] == [5, 6, 7]
    assert dict(plan.labels())[record.config_id(plan.candidates[2].config)] == "top2"
    assert confirm.Plan.from_json(plan.to_json()) == plan


def test_plan_ranks_a_config_by_the_mean_of_its_seeds() -> None:
    trials = [_trial("a1", 0.01, 0.40, seed=0), _trial("a2", 0.01, 0.00, seed=1),  # mean 0.20
              _trial("b1", 0.2, 0.25, seed=0), _trial("b2", 0.2, 0.25, seed=1)]
    plan = confirm.plan_confirmation(_settings(confirm=1, seeds=2), _space(), trials)
    assert [c.source_trials for c in plan.candidates] == [(), ("b1", "b2")]  # the recipe never ran in the search
    assert plan.candidates[1].search_scores["eval/mig"] == pytest.approx(0.25) and plan.seeds == (2, 3, 4)


def test_plan_of_several_objectives_spreads_along_the_pareto_front() -> None:
    trials = [_trial("a", 0.01, 0.1, fid=10), _trial("b", 0.02, 0.2, fid=20), _trial("c", 0.03, 0.3, fid=30),
              _trial("d", 0.04, 0.1, fid=40)]  # dominated by a
    settings = _settings(metrics=["eval/fid", "eval/mig"], modes=["min", "max"], scheduler="fifo")
    plan = confirm.plan_confirmation(settings, _space(), trials)
    assert [c.source_trials for c in plan.candidates[1:]] == [("a",), ("c",)]  # both ends of the front
    three = confirm.plan_confirmation(_settings(metrics=settings.metrics, modes=settings.modes, confirm=3), _space(), trials)
    assert [c.source_trials for c in three.candidates[1:]] == [("a",), ("b",), ("c",)]


def test_plan_per_level_of_a_knob() -> None:
    trials = [_trial("a", 0.01, 0.5), _trial("b", 0.2, 0.4), _trial("c", 0.01, 0.1, extra={"loss.lambda_cr": 2.0}),
              _trial("d", 0.2, 0.3, extra={"loss.lambda_cr": 2.0})]
    plan = confirm.plan_confirmation(_settings(confirm=1, confirm_per="loss.lambda_cr"), _space(), trials)
    assert [(c.name, c.source_trials) for c in plan.candidates] == [("recipe", ()), ("top1", ("a",)), ("top2", ("d",))]
    assert plan.candidates[2].description.endswith("lambda_cr=2")


def test_configs_asha_stopped_rank_after_those_it_let_finish_by_their_furthest_step() -> None:
    trials = [_trial("a", 0.01, 0.1), _trial("b", 0.2, 0.9, steps=10), _trial("c", 0.1, 0.95, steps=5),
              _trial("d", 0.15, 0.99, status="ERROR")]
    plan = confirm.plan_confirmation(_settings(confirm=3), _space(), trials)
    assert [(c.source_trials, c.search_step) for c in plan.candidates[1:]] == [(("a",), 20), (("b",), 10), (("c",), 5)]


def test_no_plan_without_confirmation_or_ranked_trials() -> None:
    assert confirm.plan_confirmation(_settings(confirm=0), _space(), [_trial("a", 0.01, 0.5)]) is None
    assert confirm.plan_confirmation(_settings(), _space(), [_trial("a", 0.01, 0.5, status="ERROR")]) is None
    only_recipe = confirm.plan_confirmation(_settings(), _space(), [_trial("a", 0.05, 0.5)])
    assert [c.name for c in only_recipe.candidates] == ["recipe"]


def test_the_plan_is_kept_beside_tunes_state_and_read_back(tmp_path: Path) -> None:
    settings = _settings(name="s")
    first = confirm.load_or_make_plan(settings, _space(), str(tmp_path), [_trial("a", 0.01, 0.5)])
    assert (tmp_path / "s" / record.CONFIRM_PLAN_FILE).is_file()
    again = confirm.load_or_make_plan(settings, _space(), str(tmp_path), [_trial("b", 0.2, 0.9)])  # a resume
    assert again == first


def test_planned_configs_searcher_hands_out_each_config_once_and_resumes(tmp_path: Path) -> None:
    searcher = confirm.PlannedConfigs([{"x": 1}, {"x": 2}])
    assert searcher.suggest("t1") == {"x": 1}
    searcher.save(str(tmp_path / "state.pkl"))
    restored = confirm.PlannedConfigs([])
    restored.restore(str(tmp_path / "state.pkl"))
    assert restored.suggest("t2") == {"x": 2} and restored.suggest("t3") == confirm.PlannedConfigs.FINISHED


def test_answer_rows_name_each_trial_by_its_candidate() -> None:
    plan = confirm.plan_confirmation(_settings(confirm=1), _space(), [_trial("a", 0.01, 0.5)])
    ended = [SimpleNamespace(trial_id=f"t{i}", status="TERMINATED", config=c, last_result={"step": 20, "eval/mig": 0.1 * i})
             for i, c in enumerate(plan.trial_configs())]
    ended.append(SimpleNamespace(trial_id="x", status="RUNNING", config=plan.trial_configs()[0], last_result={}))
    rows = confirm.answer_rows(ended, plan)
    assert list(rows["candidate"]) == ["recipe"] * 3 + ["top1"] * 3
    assert list(rows["status"]) == ["finished"] * 6 and list(rows["seed"]) == [1, 2, 3] * 2
    assert confirm.answer_metrics(["eval/fid", "eval/mig"]) == ["eval/fid", "eval/mig", "eval/factor_vae", "eval/cat_accuracy"]
