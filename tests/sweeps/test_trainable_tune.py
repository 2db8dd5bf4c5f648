"""The trainable inside a real (local) Tune run: a bad config fails only its own trial."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeps import record, tracking
from sweeps.spaces import BUDGETS
from sweeps.trainable import TrialSettings, TrialStatusCallback, make_trainable


@pytest.mark.integration
@pytest.mark.slow
def test_invalid_config_fails_its_trial_not_the_sweep(tmp_path: Path) -> None:
    import ray
    from ray import tune

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = tracking.client(uri)
    experiment_id = tracking.get_or_create_experiment(client, "bad_config", uri)
    parent = tracking.start_parent_run(client, experiment_id, "bad_config", {}, {}, {})
    ref = tracking.SweepRef(uri, experiment_id, parent, "bad_config")
    base = {**BUDGETS["smoke"]["fixed"], "model.image_size": 32, "codes.categorical": "3", "train.threads": 1}
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        tuner = tune.Tuner(
            make_trainable(TrialSettings(ref, (("eval/cat_accuracy", "max"),))),
            param_space={**base, "loss.lambda_cat": tune.grid_search([1.0, -5.0])},
            run_config=tune.RunConfig(name="bad_config", storage_path=str(tmp_path / "tune"),
                                      failure_config=tune.FailureConfig(max_failures=0),
                                      callbacks=[TrialStatusCallback(ref)], verbose=0),
        )
        results = tuner.fit()
    finally:
        ray.shutdown()
    assert len(results) == 2 and results.num_errors == 1
    error = str(results.errors[0])
    assert "invalid config value loss.lambda_cat=-5.0" in error and "TrialConfigError" in error
    ok = next(r for r in results if r.error is None)
    assert ok.metrics["step"] == 20 and "eval/cat_accuracy" in ok.metrics
    runs = tracking.child_runs(client, ref)
    by_status = {r.data.tags[record.TAG_STATUS]: r for r in runs}
    assert sorted(by_status) == ["failed", "finished"]
    assert "loss.lambda_cat" in by_status["failed"].data.tags[record.TAG_ERROR]
    assert by_status["failed"].info.status == "FAILED"
