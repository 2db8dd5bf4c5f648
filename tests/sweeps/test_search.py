"""The searcher and scheduler the CLI builds (no Ray cluster needed: Tune's searcher API directly)."""

from __future__ import annotations

import pickle

import pytest

from infogan.config import Config
from sweeps import lambda_search


def _settings(*argv: str) -> tuple[lambda_search.SweepSettings, object]:
    return lambda_search.settings_from_args(lambda_search.build_parser().parse_args(["--smoke-test", *argv]))


@pytest.mark.parametrize("search", ["tpe", "random", "nsga2"])
def test_searcher_suggests_valid_configs_and_learns(search: str) -> None:
    settings, space = _settings("--search", search)
    searcher = lambda_search.build_searcher(settings, space)
    for i in range(4):
        config = searcher.suggest(f"t{i}")
        assert set(space.params) <= set(config) and config["optim.lr_q"] == config["optim.lr_g"]
        Config.from_flat(config)
        searcher.on_trial_complete(f"t{i}", {"eval/cat_accuracy": 0.1 * i, "step": 20})
    pickle.loads(pickle.dumps(searcher))  # Tune checkpoints the searcher for --resume


def test_concurrency_limit_holds_back_suggestions() -> None:
    settings, space = _settings("--max-concurrent", "2")
    searcher = lambda_search.build_searcher(settings, space)
    assert searcher.suggest("a") is not None and searcher.suggest("b") is not None
    assert searcher.suggest("c") is None  # two are running: TPE waits for a result
    searcher.on_trial_complete("a", {"eval/cat_accuracy": 0.5})
    assert searcher.suggest("c") is not None


def test_points_to_evaluate_come_first() -> None:
    settings, space = _settings("--points-to-evaluate", '[{"optim.lr_d": 0.004, "codes.categorical": "6"}]')
    config = lambda_search.build_searcher(settings, space).suggest("first")
    assert config["optim.lr_d"] == 0.004 and config["codes.categorical"] == "6"


def test_multi_objective_tells_optuna_both_values() -> None:
    settings, space = _settings("--multi-objective", "eval/fid:min,eval/mig:max", "--search", "nsga2")
    searcher = lambda_search.build_searcher(settings, space)
    searcher.suggest("a")
    searcher.on_trial_complete("a", {"eval/fid": 120.0, "eval/mig": 0.2})
    study = searcher.searcher._ot_study
    assert [t.values for t in study.trials] == [[120.0, 0.2]]
    assert lambda_search.build_scheduler(settings, 10).__class__.__name__ == "FIFOScheduler"


def test_asha_uses_the_training_step_and_never_cuts_the_last_report() -> None:
    settings, _ = _settings("--steps", "40")
    scheduler = lambda_search.build_scheduler(settings, eval_every=10)
    assert scheduler.__class__.__name__ == "AsyncHyperBandScheduler"
    assert scheduler._time_attr == "step" and scheduler._max_t == 41


@pytest.mark.parametrize(("steps", "eval_every"), [(1500, 150), (600, 150), (20, 10), (450, 100)])
def test_asha_rungs_fall_on_report_steps(steps: int, eval_every: int) -> None:
    settings, _ = _settings("--steps", str(steps))
    scheduler = lambda_search.build_scheduler(settings, eval_every=eval_every)
    rungs = [milestone for milestone, _ in scheduler._brackets[0]._rungs]
    assert rungs and all(r % eval_every == 0 and r <= steps for r in rungs), rungs


def test_tpe_start_up_phase_scales_with_the_sweep() -> None:
    assert [lambda_search.startup_trials(n) for n in (2, 12, 30, 64)] == [3, 4, 10, 10]
    settings, space = _settings("--num-samples", "12")
    sampler = lambda_search.build_searcher(settings, space).searcher._sampler
    assert sampler._n_startup_trials == 4 and sampler._multivariate
