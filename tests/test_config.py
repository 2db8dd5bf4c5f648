"""Config validation (every field), the flat dotted-key round trip and string coercion."""

from __future__ import annotations

import pytest

from infogan.config import KEYS, Config, describe

# One bad value per key: the wrong type or out of range for that field.
BAD = {
    "codes.noise_dim": -1, "codes.categorical": (1,), "codes.n_continuous": 65, "codes.noise_dist": "cauchy",
    "model.image_size": 48, "model.channels": 0, "model.arch": "resnet", "model.width": 0.0,
    "model.d_norm": "layer", "model.leak": 1.5, "model.output": "relu", "model.g_blocks": "bn_bn",
    "loss.gan": "wgan", "loss.lambda_cat": -0.1, "loss.lambda_cont": float("nan"), "loss.q_std": "free",
    "loss.q_update": "never", "loss.lambda_cr": -2.0, "loss.cr_start": -1,
    "optim.lr_d": 0.0, "optim.lr_g": 2e4, "optim.lr_q": -1e-3, "optim.lr_cr": 0.0, "optim.beta1": 1.0, "optim.beta2": -0.5,
    "data.name": "cifar10", "data.root": "", "data.download": "maybe", "data.eval_size": 3, "data.dsprites_source": "hdf5",
    "train.steps": 0, "train.batch_size": 1, "train.g_steps": 0, "train.g_latent": "new", "train.step_mode": "jit",
    "train.seed": -5, "train.device": "tpu", "train.precision": "fp8", "train.tf32": "sometimes", "train.eval_every": 0,
    "train.eval_schedule": "cosine", "train.checkpoint_every": 0, "train.log_every": 0,
    "train.threads": -1, "train.max_loss": float("inf"),
    "eval.num_points": 10, "eval.mig_points": -1, "eval.num_test": 0,
    "eval.num_votes_train": 1, "eval.num_votes_eval": -3, "eval.vote_batch": 1, "eval.fid_samples": 4, "eval.fid_net_steps": 0,
    "eval.intermediate": "mig,elbo", "eval.final": "", "eval.intermediate_points": 5,
    "eval.intermediate_fid_samples": 0, "eval.dci_model": "lasso",
    "eval.feature_net": "vgg", "eval.inception_weights": 5, "eval.cache_dir": "",
}


def test_every_key_has_a_bad_value_case() -> None:
    assert set(BAD) == set(KEYS)


@pytest.mark.parametrize("key", sorted(BAD))
def test_bad_value_names_key_value_and_allowed(key: str) -> None:
    with pytest.raises(ValueError) as info:
        Config.from_flat({key: BAD[key]})
    message = str(info.value)
    assert key in message
    assert "allowed" in message
    assert repr(BAD[key]) in message or str(BAD[key]) in message


@pytest.mark.parametrize("value", [3, "3", 2, 4])
def test_channels_other_than_one_are_refused_at_validation(value: object) -> None:
    # The datasets are greyscale: a colour config must fail when it is read, not at the run's start.
    with pytest.raises(ValueError) as info:
        Config.from_flat({"model.channels": value})
    assert str(info.value) == f"invalid config value model.channels={value!r}: allowed is 1 (every dataset here is greyscale)"
    assert Config.from_flat({"model.channels": "1"}).model.channels == 1


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown config key 'loss.lambda'"):
        Config.from_flat({"loss.lambda": 1.0})
    with pytest.raises(ValueError, match="unknown config key 'nosection'"):
        Config.from_flat({"nosection": 1})


def test_flat_round_trip_is_exact() -> None:
    cfg = Config.from_flat({"codes.categorical": (10, 3), "loss.lambda_cont": 0.5, "model.image_size": 32})
    flat = cfg.to_flat()
    assert flat["codes.categorical"] == "10,3"  # the one flat form of a code layout: its text
    assert flat["loss.lambda_cont"] == 0.5
    assert Config.from_flat(flat) == cfg
    assert list(flat) == list(KEYS)


def test_one_codec_reads_every_form_and_writes_one() -> None:
    from infogan.config import coerce_value, flat_value, value_text

    for form in ((10, 3), [10, 3], "10,3", "[10, 3]", " 10, 3 "):
        assert coerce_value("codes.categorical", form) == (10, 3)
        assert flat_value("codes.categorical", form) == "10,3"
    assert flat_value("codes.categorical", []) == "" and value_text(()) == ""
    assert flat_value("loss.lambda_cont", "1e-3") == 0.001 and value_text(0.001) == "0.001"
    assert flat_value("model.image_size", "64") == 64 and flat_value("data.download", "false") is False
    # Text and back is the identity on every default value.
    flat = Config().to_flat()
    assert {k: flat_value(k, value_text(v)) for k, v in flat.items() if v is not None} == \
        {k: v for k, v in flat.items() if v is not None}
    with pytest.raises(ValueError, match="invalid config value codes.categorical='x'"):
        flat_value("codes.categorical", "x")


def test_a_checkpoint_with_a_list_layout_resumes_without_a_conflict() -> None:
    from infogan.config import resume_conflicts

    current = Config.from_flat({"codes.categorical": "10,3"}).to_flat()
    assert resume_conflicts({**current, "codes.categorical": [10, 3]}, current, 5) == []
    assert resume_conflicts({**current, "codes.categorical": [10]}, current, 5) == ["codes.categorical"]


def test_strings_are_coerced_like_cli_and_mlflow_values() -> None:
    cfg = Config.from_flat({
        "codes.categorical": "10,3", "train.steps": "12", "loss.lambda_cat": "0.5",
        "data.download": "false", "codes.noise_dim": "0",
    })
    assert cfg.codes.categorical == (10, 3)
    assert cfg.train.steps == 12 and cfg.loss.lambda_cat == 0.5 and cfg.data.download is False
    assert Config.from_flat({"codes.categorical": ""}).codes.categorical == ()
    assert Config.from_flat({"codes.categorical": "[10]"}).codes.categorical == (10,)
    # MLflow logs lists as their repr: that string parses back too.
    assert Config.from_flat({k: str(v) for k, v in cfg.to_flat().items()}) == cfg


def test_unparseable_string_names_key() -> None:
    with pytest.raises(ValueError, match=r"train\.steps='many'.*integer"):
        Config.from_flat({"train.steps": "many"})


def test_bool_is_not_an_int() -> None:
    with pytest.raises(ValueError, match="train.steps"):
        Config.from_flat({"train.steps": True})


def test_cross_field_checks() -> None:
    with pytest.raises(ValueError, match="no latent code"):
        Config.from_flat({"codes.categorical": (), "codes.n_continuous": 0})
    with pytest.raises(ValueError, match="model.arch='conv'.*28"):
        Config.from_flat({"model.arch": "conv", "model.image_size": 28})
    with pytest.raises(ValueError, match=r"eval\.inception_weights"):
        Config.from_flat({"eval.feature_net": "inception"})
    # A weights path, or no FID at all, makes the Inception choice valid.
    assert Config.from_flat({"eval.feature_net": "inception", "eval.inception_weights": "w.pth"})
    Config.from_flat({"eval.feature_net": "inception", "eval.intermediate": "mig", "eval.final": "mig,dci"})
    with pytest.raises(ValueError, match=r"eval\.inception_weights"):  # FID in either stage needs the weights
        Config.from_flat({"eval.feature_net": "inception", "eval.intermediate": "mig"})


@pytest.mark.parametrize("key", ["eval.fid", "eval.disentanglement"])
def test_retired_switches_are_no_longer_keys(key: str) -> None:
    # eval.intermediate / eval.final alone say which metrics run.
    with pytest.raises(ValueError, match=f"unknown config key '{key}'"):
        Config.from_flat({key: False})


def test_a_saved_config_with_the_retired_switches_reads_as_the_metric_sets_they_meant() -> None:
    from infogan.config import upgrade_saved

    old = {**Config().to_flat(), "eval.fid": False, "eval.disentanglement": True, "eval.intermediate": "mig,fid"}
    cfg = Config.from_flat(upgrade_saved(old))
    assert (cfg.eval.intermediate, cfg.eval.final) == ("mig", "categorical,mig,dci,sap,modularity,factor_vae,beta_vae")
    both_off = upgrade_saved({"eval.fid": "False", "eval.disentanglement": "false"})
    assert both_off == {"eval.intermediate": "categorical", "eval.final": "categorical"}
    assert upgrade_saved({"eval.fid": True, "loss.lambda_cont": 1.0}) == {"loss.lambda_cont": 1.0}  # on: no change


def test_frozen_and_replace() -> None:
    cfg = Config()
    with pytest.raises(ValueError, match="frozen"):  # pydantic's ValidationError is a ValueError
        cfg.train.steps = 5  # type: ignore[misc]
    assert cfg.replace(**{"train.steps": 5}).train.steps == 5
    assert cfg.train.steps != 5


def test_latent_dim_and_arch() -> None:
    cfg = Config.from_flat({"codes.noise_dim": 62, "codes.categorical": (10,), "codes.n_continuous": 2})
    assert cfg.codes.latent_dim == 74  # the paper's MNIST input width
    assert Config.from_flat({"model.image_size": 28}).model.resolved_arch == "mnist"
    assert Config().model.resolved_arch == "conv"


def test_describe_gives_allowed_text() -> None:
    assert "one of" in describe("model.image_size")


def test_numpy_scalars_from_pandas_frames_are_plain_values() -> None:
    import numpy as np

    cfg = Config.from_flat({"codes.n_continuous": np.int64(6), "loss.lambda_cont": np.float64(0.5)})
    flat = cfg.to_flat()
    assert flat["codes.n_continuous"] == 6 and type(flat["codes.n_continuous"]) is int
    assert type(flat["loss.lambda_cont"]) is float
