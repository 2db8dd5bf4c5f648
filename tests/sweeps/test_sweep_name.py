"""The same sweep command run twice starts a second sweep under a fresh name; --resume continues."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeps import lambda_search, record, tracking
from sweeps.settings import SweepSettings
from sweeps.storage import read_storage_json, write_storage_json
from sweeps.tuner import free_sweep_name


def _settings(tmp_path: Path, name: str = "s") -> SweepSettings:
    return SweepSettings(name=name, dataset="digits", budget="smoke", steps=2, num_samples=1,
                         storage_path=str(tmp_path / "tune"), tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")


def test_a_name_is_free_until_a_sweep_holds_it_in_tune_or_optuna(tmp_path: Path) -> None:
    import optuna

    settings = _settings(tmp_path)
    storage = settings.storage_path
    assert free_sweep_name(settings, storage) == "s"
    write_storage_json(storage, "s", record.PARENT_FILE, {"run_id": "r"})  # a sweep's Tune folder
    assert free_sweep_name(settings, storage) == "s_2"
    # An Optuna study outlives a smoke test's temporary Tune folder: it holds its name too.
    optuna.create_study(study_name="s_2", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert free_sweep_name(settings, storage) == "s_3"
    assert settings.name == "s"  # the settings are not changed by asking


@pytest.mark.integration
@pytest.mark.slow
def test_running_the_smoke_test_twice_starts_a_second_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["--smoke-test", "--num-samples", "1", "--storage-path", str(tmp_path / "tune"),
            "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"]
    assert lambda_search.main(argv) == 0
    assert lambda_search.main(argv) == 0
    out = capsys.readouterr().out
    assert "sweep 'smoke_test' already exists (continue it with --resume --name smoke_test): " \
           "this sweep is 'smoke_test_2'" in out
    for name in ("smoke_test", "smoke_test_2"):
        assert read_storage_json(str(tmp_path / "tune"), name, record.PARENT_FILE) is not None
    client = tracking.client(f"sqlite:///{tmp_path}/mlflow.db")
    assert client.get_experiment_by_name("smoke_test_2") is not None
