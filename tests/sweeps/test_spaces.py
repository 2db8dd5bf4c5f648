"""The search space: only suggest_* calls, dotted keys, overrides from the CLI and files."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infogan.config import KEYS, Config
from sweeps import spaces
from sweeps.spaces import Param, SearchSpace


class RecordingTrial:
    """A stand-in Optuna trial that records suggest_* calls and fails on anything else."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        self.calls.append(("float", name, (low, high, log)))
        return high

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
        self.calls.append(("int", name, (low, high, log)))
        return high

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        self.calls.append(("categorical", name, tuple(choices)))
        return choices[-1]

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the space used trial.{name}; only suggest_* is allowed")


@pytest.mark.parametrize("dataset", ["dsprites", "digits", "mnist"])
def test_base_space_only_suggests_config_keys(dataset: str) -> None:
    space = spaces.base_space(dataset)
    trial = RecordingTrial()
    fixed = space(trial)
    names = [name for _, name, _ in trial.calls]
    assert names == list(space.params)
    assert set(names) | set(fixed) <= set(KEYS)
    kinds = {name: kind for kind, name, _ in trial.calls}
    assert kinds["loss.lambda_cont"] == "float" and kinds["codes.n_continuous"] == "int"
    logs = {name: args[2] for kind, name, args in trial.calls if kind != "categorical"}
    assert logs["loss.lambda_cont"] and logs["optim.lr_d"] and logs["optim.lr_g"]
    # Q's head learns with D (the recipes' q_update='with_d'): lr_q is tied to D's rate.
    assert fixed["optim.lr_q"] == next(args[1] for _, name, args in trial.calls if name == "optim.lr_d")
    suggested = {name: (args[1] if kind != "categorical" else args[-1]) for kind, name, args in trial.calls}
    cfg = Config.from_flat({**suggested, **fixed})
    # Every range holds its recipe's value: the sweep searches around the published recipe.
    recipe = spaces.recipe(dataset)
    for key, p in space.params.items():
        assert p.low <= recipe[key] <= p.high, key
    for key in fixed:
        if key in recipe and key not in spaces._BUDGET_KEYS and key != "optim.lr_q":
            assert cfg.to_flat()[key] == recipe[key], key


def test_dsprites_space_is_infogan_cr_recipe_and_labelled_spaces_the_official_mnist_code() -> None:
    d = spaces.base_space("dsprites").fixed
    assert (d["model.d_norm"], d["train.g_steps"], d["codes.noise_dim"], d["codes.categorical"]) == ("spectral", 2, 5, "")
    m = spaces.base_space("digits").fixed
    assert (m["model.d_norm"], m["train.g_steps"], m["codes.noise_dim"], m["codes.categorical"]) == ("batch", 1, 62, "10")


def test_space_with_a_real_optuna_study_gives_valid_configs() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = spaces.base_space("dsprites").with_fixed(spaces.BUDGETS["smoke"]["fixed"])
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, multivariate=True))
    for _ in range(5):
        trial = study.ask()
        fixed = space(trial)
        cfg = Config.from_flat({**trial.params, **fixed})
        assert 0.01 <= cfg.loss.lambda_cont <= 0.25 and cfg.codes.categorical == ()
        assert cfg.optim.lr_q == cfg.optim.lr_d
        study.tell(trial, 0.5)


def test_cli_overrides_fix_search_and_untie() -> None:
    space = spaces.base_space("dsprites")
    key, value = spaces.parse_set("optim.lr_d=1e-3")
    assert (key, value) == ("optim.lr_d", 0.001)
    space = space.with_fixed({key: value})
    assert "optim.lr_d" not in space.params and space.fixed["optim.lr_d"] == 0.001
    space = space.with_params(dict([spaces.parse_range("optim.lr_q=1e-4:1e-2:log")]))
    assert "optim.lr_q" not in space.ties and space.params["optim.lr_q"] == Param(1e-4, 1e-2, log=True)
    key, param = spaces.parse_range("train.batch_size=32,64")
    assert param.choices == (32, 64)
    key, param = spaces.parse_range("codes.categorical=10,3")
    assert param.choices == ("10", "3")  # Optuna stores scalars; Config parses "10" back to (10,)
    assert spaces.parse_range("codes.n_continuous=1:4")[1] == Param(1, 4)
    space.validate()


@pytest.mark.parametrize("text, match", [
    ("optim.lr_d", "KEY=VALUE"),
    ("optim.nope=1", "unknown config key"),
    ("loss.lambda_cat=-1", "loss.lambda_cat"),
])
def test_bad_set_is_a_clear_error(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        spaces.parse_set(text)


@pytest.mark.parametrize("text, match", [
    ("optim.nope=1:2", "config key"),
    ("codes.n_continuous=1.5:3", "integer"),
    ("loss.lambda_cat=1:2:lin", "lo:hi:log"),
    ("loss.gan=1:2", "not numeric"),
])
def test_bad_range_is_a_clear_error(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        spaces.parse_range(text)


def test_validate_rejects_bounds_the_config_rejects() -> None:
    space = spaces.base_space("dsprites").with_params({"loss.lambda_cat": Param(0.1, 1000.0, log=True)})
    with pytest.raises(ValueError, match="loss.lambda_cat"):
        space.validate()
    with pytest.raises(ValueError, match="low > 0"):
        spaces.base_space("dsprites").with_params({"loss.lambda_cont": Param(0.0, 1.0, log=True)}).validate()
    with pytest.raises(ValueError, match="unknown dataset"):
        spaces.base_space("cifar")


def test_space_file_yaml_and_json_round_trip(tmp_path) -> None:
    yaml_file = tmp_path / "space.yaml"
    yaml_file.write_text(
        "loss.lambda_cont: {low: 0.001, high: 0.5, log: true}\n"
        "loss.q_std: {choices: [fixed, learned]}\n"
        "train.steps: 50\n"
    )
    space = spaces.load_space_file(yaml_file, base=spaces.base_space("dsprites"))
    assert space.params["loss.lambda_cont"] == Param(0.001, 0.5, log=True)
    assert space.params["loss.q_std"].choices == ("fixed", "learned")
    assert space.fixed["train.steps"] == 50
    space.validate()
    json_file = tmp_path / "space.json"
    json_file.write_text(json.dumps(space.to_json()))
    again = spaces.load_space_file(json_file)
    assert again.to_json() == space.to_json()
    trial_a, trial_b = RecordingTrial(), RecordingTrial()
    assert space(trial_a) == again(trial_b) and trial_a.calls == trial_b.calls


def test_space_is_picklable_for_tune_resume() -> None:
    import pickle

    space = spaces.base_space("digits")
    assert pickle.loads(pickle.dumps(space)).to_json() == space.to_json()


def test_empty_space_only_fixed_values() -> None:
    space = SearchSpace(fixed={"train.steps": 5})
    trial = RecordingTrial()
    assert space(trial) == {"train.steps": 5} and trial.calls == []


def test_fixing_one_code_kind_to_zero_is_allowed() -> None:
    assert spaces.parse_set("codes.n_continuous=0") == ("codes.n_continuous", 0)
    assert spaces.parse_set("codes.categorical=") == ("codes.categorical", "")
    # The labelled datasets' Cat(10) code stays, so no continuous code is a valid layout there.
    space = spaces.base_space("digits").with_fixed(dict([spaces.parse_set("codes.n_continuous=0")]))
    space.validate()
    both = space.with_fixed(dict([spaces.parse_set("codes.categorical=")]))
    with pytest.raises(ValueError, match="no latent"):
        both.validate()


def test_image_size_is_typed_from_text_as_the_training_cli_types_it() -> None:
    # The sweep's --set / --range read a key as infogan.train's --set does: "64" is the size 64.
    assert spaces.parse_set("model.image_size=64") == ("model.image_size", 64)
    assert spaces.parse_range("model.image_size=32,64")[1].choices == (32, 64)
    space = spaces.base_space("dsprites").with_fixed(dict([spaces.parse_set("model.image_size=64")]))
    space.validate()
    assert space.sample_config().model.image_size == 64
    with pytest.raises(ValueError, match="allowed is one of 28, 32, 64"):
        spaces.parse_set("model.image_size=48")


def test_a_space_saved_before_eval_switches_were_retired_still_loads() -> None:
    # A sweep started by an older version saved eval.fid / eval.disentanglement: --resume reads them as metric sets.
    old = {"params": {"loss.lambda_cont": {"low": 0.01, "high": 1.0, "log": True}},
           "fixed": {"eval.fid": False, "eval.disentanglement": True, "codes.categorical": [10, 3]}, "ties": {}}
    space = spaces.space_from_json(old)
    assert "eval.fid" not in space.fixed and "fid" not in space.fixed["eval.intermediate"]
    assert space.fixed["codes.categorical"] == "10,3"  # and a list layout becomes the one flat form
