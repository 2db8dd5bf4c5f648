"""The searcher and scheduler the CLI builds (no Ray cluster needed: Tune's searcher API directly)."""

from __future__ import annotations

import pickle

import pytest

from infogan.config import Config
from sweeps.checks import check_sweep
from sweeps.cli import build_parser, settings_from_args
from sweeps.samplers import make_sampler, sampler_options, startup_trials
from sweeps.settings import SweepSettings, default_grace_period
from sweeps.tuner import build_scheduler, build_searcher


def _settings(*argv: str) -> tuple[SweepSettings, object]:
    """The CLI's settings and space, held to run_sweep's consistency checks."""
    settings, space = settings_from_args(build_parser().parse_args(["--smoke-test", *argv]))
    check_sweep(settings, space)
    return settings, space


@pytest.mark.parametrize(("search", "ranges"), [
    ("tpe", ()), ("random", ()), ("nsga2", ()),
    ("grid", ("--range", "loss.lambda_cont=0.01,0.1", "--range", "codes.n_continuous=3,5")),
])
def test_searcher_suggests_valid_configs_and_learns(search: str, ranges: tuple[str, ...]) -> None:
    settings, space = _settings("--search", search, *ranges)
    searcher = build_searcher(settings, space)
    for i in range(4):
        config = searcher.suggest(f"t{i}")
        assert set(space.params) <= set(config) and config["optim.lr_q"] == config["optim.lr_d"]
        Config.from_flat(config)
        searcher.on_trial_complete(f"t{i}", {"eval/cat_accuracy": 0.1 * i, "step": 20})
    pickle.loads(pickle.dumps(searcher))  # Tune checkpoints the searcher for --resume


def test_a_restored_nsga2_searcher_keeps_suggesting_from_its_study(tmp_path) -> None:
    """Optuna 5.1's NSGA-II holds a thread lock: restored from its pickle (as ``--resume`` restores
    it) the sampler has a new lock, goes on with the same study and suggests new configs."""
    import optuna

    storage = f"sqlite:///{tmp_path}/optuna.db"
    settings, space = _settings("--multi-objective", "eval/fid:min,eval/mig:max", "--search", "nsga2",
                                "--optuna-storage", storage, "--max-concurrent", "1")
    searcher = build_searcher(settings, space)
    for i in range(3):
        searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"eval/fid": 100.0 - i, "eval/mig": 0.1 * i})
    restored = pickle.loads(pickle.dumps(searcher))
    for i in range(3, 6):
        config = restored.suggest(f"t{i}")
        Config.from_flat(config)
        restored.on_trial_complete(f"t{i}", {"eval/fid": 100.0 - i, "eval/mig": 0.1 * i})
    study = optuna.load_study(study_name=settings.name, storage=storage)
    assert [t.number for t in study.trials] == list(range(6))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_the_picklable_nsga2_sampler_is_optunas_nsga2() -> None:
    """Same seed, same study: the same suggestions and the same study attributes as Optuna's own
    NSGAIISampler (a study it wrote can be carried on with optuna.load_study and NSGA-II), and a
    second restore from a pickle keeps a working lock."""
    import optuna

    from sweeps.samplers import PicklableNSGAIISampler

    def run(sampler: optuna.samplers.BaseSampler, repickle: bool) -> optuna.Study:
        study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
        for _ in range(8):  # two generations of four
            if repickle:
                study.sampler = pickle.loads(pickle.dumps(study.sampler))
            trial = study.ask()
            x, n = trial.suggest_float("x", 0, 1), trial.suggest_int("n", 1, 8)
            study.tell(trial, [x * n, x - n])
        return study

    ours = run(PicklableNSGAIISampler(seed=0, population_size=4), repickle=True)
    theirs = run(optuna.samplers.NSGAIISampler(seed=0, population_size=4), repickle=False)
    assert [t.params for t in ours.trials] == [t.params for t in theirs.trials]
    assert [t.system_attrs for t in ours.trials] == [t.system_attrs for t in theirs.trials]
    assert max(t.system_attrs["NSGAIISampler:generation"] for t in ours.trials) >= 1


def test_concurrency_limit_holds_back_suggestions() -> None:
    settings, space = _settings("--max-concurrent", "2")
    searcher = build_searcher(settings, space)
    assert searcher.suggest("a") is not None and searcher.suggest("b") is not None
    assert searcher.suggest("c") is None  # two are running: TPE waits for a result
    searcher.on_trial_complete("a", {"eval/cat_accuracy": 0.5})
    assert searcher.suggest("c") is not None


def test_points_to_evaluate_come_first() -> None:
    settings, space = _settings("--points-to-evaluate", '[{"optim.lr_d": 0.004, "codes.n_continuous": 6}]')
    config = build_searcher(settings, space).suggest("first")
    assert config["optim.lr_d"] == 0.004 and config["codes.n_continuous"] == 6


def test_multi_objective_tells_optuna_both_values(tmp_path) -> None:
    import optuna

    storage = f"sqlite:///{tmp_path}/optuna.db"
    settings, space = _settings("--multi-objective", "eval/fid:min,eval/mig:max", "--search", "nsga2",
                                "--optuna-storage", storage)
    searcher = build_searcher(settings, space)
    searcher.suggest("a")
    searcher.on_trial_complete("a", {"eval/fid": 120.0, "eval/mig": 0.2})
    study = optuna.load_study(study_name=settings.name, storage=storage)  # the study outlives the searcher
    assert [t.values for t in study.trials] == [[120.0, 0.2]]
    assert build_scheduler(settings, space).__class__.__name__ == "FIFOScheduler"


def _decisions(scheduler, reports: list[tuple[str, float, float]]) -> list[str]:
    """Drive the scheduler through its public Tune API: (trial, train/images, eval/mig) reports."""
    from ray.tune.experiment import Trial

    trials: dict[str, Trial] = {}
    out = []
    for name, images, mig in reports:
        if name not in trials:
            trials[name] = Trial("run_trial", trial_id=name, stub=True)
            scheduler.on_trial_add(None, trials[name])
        out.append(scheduler.on_trial_result(None, trials[name], {"train/images": images, "eval/mig": mig,
                                                                  "step": 0}))
    return out


@pytest.mark.parametrize("g_steps", [1, 2])
def test_asha_cuts_at_equal_training_work_on_report_steps(g_steps: int) -> None:
    # 40 steps, reports every 10: the first rung is the first report at or after a third of the
    # budget (step 20), measured in images = step x batch 32 x (1 + g_steps).
    settings, space = _settings("--steps", "40", "--set", f"train.g_steps={g_steps}")
    scheduler = build_scheduler(settings, space)
    per_step = 32 * (1 + g_steps)
    assert space.sample_config().train.images_per_step == per_step
    decisions = _decisions(scheduler, [
        ("good", 20 * per_step, 0.5),   # first at the rung: never cut
        ("bad", 10 * per_step, 0.1),    # before the rung: not judged yet
        ("bad", 20 * per_step, 0.1),    # at the rung, below the good one: cut
        ("good", 40 * per_step, 0.6),   # its last report: never cut (max_t lies past the budget)
    ])
    assert decisions == ["CONTINUE", "CONTINUE", "STOP", "CONTINUE"]


def test_a_searched_report_interval_is_refused_under_asha_and_allowed_under_fifo() -> None:
    with pytest.raises(ValueError, match="searching train.eval_every would put ASHA's rungs off"):
        _settings("--scheduler", "asha", "--range", "train.eval_every=10,20", "--set", "train.checkpoint_every=10")
    settings, space = _settings("--scheduler", "fifo", "--range", "train.eval_every=10,20",
                                "--set", "train.checkpoint_every=10")
    assert settings.scheduler == "fifo" and "train.eval_every" in space.params


def test_a_log_report_schedule_is_refused_under_asha_and_allowed_under_fifo() -> None:
    with pytest.raises(ValueError, match="eval_schedule=log reports at 1, 2, 4"):
        _settings("--scheduler", "asha", "--set", "train.eval_schedule=log")
    with pytest.raises(ValueError, match="searching train.eval_schedule would put ASHA's rungs off"):
        _settings("--scheduler", "asha", "--range", "train.eval_schedule=linear,log")
    settings, _ = _settings("--scheduler", "fifo", "--set", "train.eval_schedule=log")
    assert settings.scheduler == "fifo"


@pytest.mark.parametrize(("steps", "eval_every"), [(1500, 150), (600, 150), (20, 10), (450, 100)])
def test_asha_first_rung_falls_on_a_report_step(steps: int, eval_every: int) -> None:
    settings, space = _settings("--steps", str(steps), "--set", f"train.eval_every={eval_every}",
                                "--set", f"train.checkpoint_every={eval_every}")
    per_step = space.sample_config().train.images_per_step
    first = -(-max(eval_every, default_grace_period(steps)) // eval_every) * eval_every  # rounded up to a report
    before = _decisions(build_scheduler(settings, space),
                        [("a", first * per_step, 0.5), ("b", (first - eval_every) * per_step, 0.0)])
    at = _decisions(build_scheduler(settings, space),
                    [("a", first * per_step, 0.5), ("b", first * per_step, 0.0)])
    assert before == ["CONTINUE", "CONTINUE"] and at == ["CONTINUE", "STOP"]


def test_max_t_covers_the_most_work_per_step_in_the_space() -> None:
    settings, space = _settings("--steps", "40", "--range", "train.batch_size=16,48", "--range", "train.g_steps=1,3")
    assert space.max_images_per_step() == 48 * 4
    # The biggest trial's last report (40 steps of 48 x 4 images) is never cut by max_t.
    assert _decisions(build_scheduler(settings, space), [("big", 40 * 48 * 4, 0.1)]) == ["CONTINUE"]


def test_grid_search_with_seeds_runs_every_combination_on_every_seed() -> None:
    settings, space = _settings("--search", "grid", "--range", "loss.lambda_cont=0.01,0.1",
                                "--range", "loss.lambda_cr=0,2", "--seeds", "3", "--max-concurrent", "100")
    assert settings.num_samples == 4 and settings.seeds == 3 and settings.scheduler == "fifo"
    searcher = build_searcher(settings, space)
    configs = [searcher.suggest(f"t{i}") for i in range(12)]
    from sweeps.trainable import with_repeat_seed

    runs = {(c["loss.lambda_cont"], c["loss.lambda_cr"], with_repeat_seed(c)["train.seed"]) for c in configs}
    assert runs == {(lc, cr, seed) for lc in (0.01, 0.1) for cr in (0.0, 2.0) for seed in (0, 1, 2)}
    assert all("__trial_index__" not in with_repeat_seed(c) for c in configs)
    Config.from_flat(with_repeat_seed(configs[0]))


def test_grid_and_seed_flags_refuse_what_cannot_work() -> None:
    with pytest.raises(ValueError, match="choices"):
        _settings("--search", "grid", "--range", "loss.lambda_cont=0.01:1:log")
    with pytest.raises(ValueError, match="--seeds 0: allowed is >= 1"):
        _settings("--seeds", "0")
    with pytest.raises(ValueError, match="scheduler fifo"):
        _settings("--seeds", "2", "--scheduler", "asha")


def test_tpe_start_up_phase_scales_with_the_sweep() -> None:
    import optuna

    assert [startup_trials(n) for n in (2, 12, 30, 64)] == [3, 4, 10, 10]
    settings, _ = _settings("--num-samples", "12")
    sampler = make_sampler(settings)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler_options(settings) == {"seed": 0, "multivariate": True, "n_startup_trials": 4}
