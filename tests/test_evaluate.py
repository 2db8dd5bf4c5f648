"""Staged evaluation and on-demand evaluation of saved checkpoints (``python -m infogan.evaluate``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infogan.config import Config, metric_set
from infogan.evaluate import RESULTS, main
from infogan.loop import EvalReport, reported_metrics, train
from infogan.metrics.suite import metric_names
from infogan.presets import PRESETS, is_eval_preset

TINY_DSPRITES_EVAL = {
    "model.image_size": 32, "model.width": 0.125, "codes.noise_dim": 2, "codes.n_continuous": 3,
    "train.steps": 4, "train.batch_size": 8, "train.device": "cpu", "train.precision": "fp32",
    "train.eval_every": 2, "train.checkpoint_every": 2, "data.eval_size": 60,
    "eval.num_points": 300, "eval.num_test": 100, "eval.num_votes_train": 40, "eval.num_votes_eval": 20,
    "eval.vote_batch": 8, "eval.fid_samples": 96, "eval.fid_net_steps": 3,
    "eval.intermediate_points": 200, "eval.intermediate_fid_samples": 32,
}
FINAL_ONLY = {"eval/factor_vae", "eval/beta_vae", "eval/dci_disentanglement", "eval/sap", "eval/modularity"}


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return Config.from_flat({**TINY_DSPRITES_EVAL, "eval.cache_dir": str(tmp_path / "cache")})


def test_intermediate_evaluations_compute_only_the_cheap_subset(tmp_path: Path, cfg: Config) -> None:
    reports: list[EvalReport] = []
    train(cfg, run_dir=tmp_path / "run", on_eval=reports.append)
    first, last = reports[0].metrics, reports[-1].metrics
    assert reports[0].step == 2 and reports[-1].step == 4
    assert {"eval/mig", "eval/fid"} <= set(first) and not FINAL_ONLY & set(first)
    assert FINAL_ONLY | {"eval/mig", "eval/fid"} <= set(last)
    # The names declared before a run (what a sweep checks its objective against) are these.
    assert {k for k in first if k.startswith("eval/")} == metric_names(cfg, False, ground_truth=True)
    assert {k for k in last if k.startswith("eval/")} == metric_names(cfg, True, ground_truth=True)
    assert reported_metrics(cfg) == set(first) & set(last)
    # Every stage is configurable: all metrics at every evaluation, or none in between.
    every = []
    train(cfg.replace(**{"eval.intermediate": "all"}), on_eval=every.append)
    assert set(every[0].metrics) >= FINAL_ONLY
    quiet = []
    train(cfg.replace(**{"eval.intermediate": "none", "eval.final": "mig"}), on_eval=quiet.append)
    assert not [k for k in quiet[0].metrics if k.startswith("eval/") and k != "eval/seconds"]
    assert [k for k in quiet[-1].metrics if k.startswith("eval/") and k != "eval/seconds"] == ["eval/mig"]


def test_metric_sets_parse_and_refuse_unknown_names() -> None:
    assert metric_set("all") >= {"mig", "fid", "factor_vae"} and metric_set("none") == frozenset()
    assert metric_set(" mig , fid") == {"mig", "fid"}
    with pytest.raises(ValueError, match="eval.intermediate"):
        Config.from_flat({"eval.intermediate": "mig,elbo"})


def test_evaluate_cli_scores_every_checkpoint_once_and_matches_the_runs_final_evaluation(
    tmp_path: Path, cfg: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    result = train(cfg, run_dir=run)
    assert main([str(run)]) == 0
    rows = [json.loads(line) for line in (run / RESULTS).read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    assert set(rows[0]) >= FINAL_ONLY  # the full suite, also for the intermediate checkpoint
    # The same evaluation code and seeds: the last checkpoint scores what the run scored at its end.
    for key in FINAL_ONLY | {"eval/mig", "eval/fid"}:
        assert rows[-1][key] == pytest.approx(result.metrics[key]), key
    assert rows[-1]["fid_feature_net"].startswith("lenet-dsprites32@")
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["step"] for p in printed] == [2, 4]
    # Already scored with these settings: skipped. Other settings: scored again, beside them.
    assert main([str(run)]) == 0 and len((run / RESULTS).read_text().splitlines()) == 2
    no_fid = "categorical,mig,dci,sap,modularity,factor_vae,beta_vae"
    assert main([str(run / "checkpoints" / "step_00000004"), "--eval.final", no_fid]) == 0
    rows = [json.loads(line) for line in (run / RESULTS).read_text().splitlines()]
    assert len(rows) == 3 and "eval/fid" not in rows[-1] and rows[-1]["settings"]["eval.final"] == no_fid


def test_evaluate_cli_refuses_training_keys_and_bad_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--loss.lambda_cont", "1"])  # not an evaluation setting
    assert main([str(tmp_path)]) == 2
    assert "neither a checkpoint nor a run directory" in capsys.readouterr().err
    assert main([str(tmp_path), "--eval.num_points", "3"]) == 2


def test_eval_presets_set_only_eval_keys_and_name_the_published_protocol() -> None:
    names = [n for n in PRESETS if is_eval_preset(n)]
    assert {"eval-quick", "eval-dlib", "eval-infogan-cr"} <= set(names)
    cr = Config.from_flat(PRESETS["eval-infogan-cr"]["overrides"]).eval
    assert (cr.mig_points, cr.num_votes_train, cr.vote_batch, cr.dci_model) == (73_728, 500, 100, "gradient_boosting")
    dlib = Config.from_flat(PRESETS["eval-dlib"]["overrides"]).eval
    assert (dlib.num_points, dlib.num_votes_train, dlib.num_votes_eval, dlib.vote_batch) == (10_000, 10_000, 5_000, 64)
    for name in PRESETS:  # every preset is a valid config on its own
        Config.from_flat(PRESETS[name]["overrides"])


def test_evaluate_set_accepts_only_evaluation_keys(tmp_path: Path, cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    train(cfg.replace(**{"train.steps": 2}), run_dir=run)
    assert main([str(run), "--set", "loss.lambda_cont=3"]) == 2
    assert "only evaluation settings may change" in capsys.readouterr().err
    assert main([str(run), "--set", "eval.final=mig"]) == 0
    rows = [json.loads(line) for line in (run / RESULTS).read_text().splitlines()]
    assert [k for k in rows[-1] if k.startswith("eval/") and k != "eval/seconds"] == ["eval/mig"]


def test_declared_metric_names_hold_on_a_labelled_dataset(tmp_path: Path, tiny_cfg: Config) -> None:
    reports: list[EvalReport] = []
    cfg = tiny_cfg.replace(**{"eval.cache_dir": str(tmp_path / "cache")})  # every family but FID at the end
    train(cfg, on_eval=reports.append)
    assert [r.step for r in reports] == [3, 6]
    for report, final in zip(reports, (False, True), strict=True):
        # digits: categorical accuracy only (no factors, no FID in the tiny config's sets)
        assert {k for k in report.metrics if k.startswith("eval/")} == metric_names(cfg, final, ground_truth=False) \
            == {"eval/cat_accuracy", "eval/cat_nmi", "eval/seconds"}
    assert reported_metrics(cfg) == set(reports[0].metrics) & set(reports[1].metrics)


def test_ground_truth_datasets_are_the_ones_loaded_with_factors(tmp_path: Path) -> None:
    from infogan.data import GROUND_TRUTH_DATASETS, GroundTruthDataset, load_dataset
    from tests.test_data_mnist import make_dataset

    make_dataset(tmp_path, "mnist")
    for name in ("dsprites", "digits", "mnist"):
        dataset = load_dataset(Config.from_flat({"data.name": name, "model.image_size": 32, "data.root": str(tmp_path)}))
        assert isinstance(dataset, GroundTruthDataset) == (name in GROUND_TRUTH_DATASETS), name
