"""Faults: tracking outages survived, checkpoints pruned safely, requests the cluster can never
place refused, interrupts recorded truthfully, two sweeps starting together on one new store."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sweeps import lambda_search, record, tracking
from sweeps.checks import check_address, unplaceable
from sweeps.settings import SweepSettings
from sweeps.trial_record import prune_local_checkpoints
from sweeps.tuner import resume_command
from tests.sweeps.conftest import SCRIPT, free_port, interrupt_sweep, subprocess_env
from tests.sweeps.readback import sweep_runs


class FlakyClient:
    """Fails its first ``failures`` calls the way an unreachable server does, then answers."""

    def __init__(self, failures: int, error: Exception | None = None):
        self.failures, self.calls = failures, 0
        self.error = error or Exception("API request to http://h:5000/api failed: Max retries exceeded with url")

    def set_tag(self, *args: Any) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def test_a_tracking_outage_is_waited_out_and_logged_when_it_starts_and_ends(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tracking.time, "sleep", lambda s: None)
    flaky = FlakyClient(failures=3)
    client = tracking.ResilientClient(flaky, patience=60)
    with caplog.at_level("WARNING", logger="sweeps.tracking"):
        assert client.set_tag("run", "k", "v") == "ok"
    assert flaky.calls == 4
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "unreachable" in messages[0] and "reachable again" in messages[1]


def test_an_outage_longer_than_the_patience_fails_and_a_refusal_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 10_000, 10))
    monkeypatch.setattr(tracking.time, "sleep", lambda s: None)
    monkeypatch.setattr(tracking.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(Exception, match="Max retries"):
        tracking.ResilientClient(FlakyClient(failures=10**6), patience=50).set_tag("run", "k", "v")
    refused = FlakyClient(failures=1, error=Exception("RESOURCE_DOES_NOT_EXIST: Run 'x' not found"))
    with pytest.raises(Exception, match="RESOURCE_DOES_NOT_EXIST"):
        tracking.ResilientClient(refused, patience=50).set_tag("run", "k", "v")
    assert refused.calls == 1


def test_local_checkpoints_keep_the_last_two_reported(tmp_path: Path) -> None:
    for step in (10, 20, 30, 40):
        (tmp_path / f"step_{step:08d}").mkdir()
    prune_local_checkpoints(tmp_path / "step_00000030")  # Tune may still be copying 30 (and 20 is its last)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00000020", "step_00000030", "step_00000040"]


def test_a_request_the_cluster_cannot_place_is_named() -> None:
    settings = SweepSettings(gpus_per_trial=0.5)
    assert "asks for 0.5 GPU but the cluster has 0" in unplaceable(settings, {"CPU": 2.0})
    assert unplaceable(settings, {"CPU": 2.0, "GPU": 1.0}) is None
    assert "CPUs" in unplaceable(SweepSettings(cpus_per_trial=4), {"CPU": 2.0})


def test_an_address_nothing_answers_on_fails_fast() -> None:
    port = free_port()
    start = time.monotonic()
    with pytest.raises(ValueError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        check_address(f"127.0.0.1:{port}", timeout=5)
    assert time.monotonic() - start < 10
    with pytest.raises(ValueError, match="expected 'auto', HOST:PORT"):
        check_address("nonsense")
    check_address("auto")  # resolved by Ray itself


def test_resume_command_names_the_storage() -> None:
    settings = SweepSettings(name="s", address="ray://head:10001")
    assert resume_command(settings, "/shared/tune") == \
        "python sweeps/lambda_search.py --resume --name s --storage-path /shared/tune --address ray://head:10001"


def test_a_smoke_test_cannot_be_resumed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = set(Path("/tmp").glob("infogan-smoke-*"))
    assert lambda_search.main(["--smoke-test", "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert set(Path("/tmp").glob("infogan-smoke-*")) == before  # no temporary folder left behind


# --------------------------------------------------------------------------------------------
# With real processes


def _run(argv: list[str], tmp_path: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, timeout=timeout,
                          env=subprocess_env(tmp_path), cwd=tmp_path)


@pytest.mark.integration
def test_gpus_the_cluster_lacks_and_an_unreachable_address_end_before_any_record(tmp_path: Path) -> None:
    for argv, expected in ((["--gpus-per-trial", "0.5"], "asks for 0.5 GPU"),
                           (["--address", f"127.0.0.1:{free_port()}"], "no Ray cluster answers")):
        start = time.monotonic()
        proc = _run(["--smoke-test", *argv, "--storage-path", str(tmp_path / "tune")], tmp_path, timeout=180)
        assert proc.returncode == 2, proc.stderr[-2000:]
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and expected in errors[0], proc.stderr[-2000:]
        assert time.monotonic() - start < 120
        assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "tune").exists()


def _reported(storage: Path, name: str) -> bool:
    """Whether a trial of the sweep has handed Tune a checkpoint (it is training)."""
    return any(storage.glob(f"{name}/trial_*/checkpoint_*"))


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize(("name", "search"), [
    ("last_trial", []),
    # Tune pickles the searcher with its NSGA-II sampler (which holds a lock in Optuna 5.1) to
    # build the Tuner, checkpoint the sweep and restore it.
    ("last_trial_pareto", ["--multi-objective", "eval/fid:min,eval/mig:max", "--search", "nsga2"]),
], ids=["tpe", "nsga2-multi-objective"])
def test_sigint_during_the_last_trial_is_an_interrupted_sweep_then_resumed(
    tmp_path: Path, name: str, search: list[str]
) -> None:
    storage, uri = tmp_path / "tune", f"sqlite:///{tmp_path}/mlflow.db"
    command = ["--smoke-test", "--name", name, "--storage-path", str(storage), "--tracking-uri", uri, *search,
               "--num-samples", "1", "--set", "train.steps=3000", "--set", "train.eval_every=100",
               "--set", "train.checkpoint_every=100"]  # long enough that the SIGINT lands mid-training
    code, first = interrupt_sweep(command, tmp_path, lambda: _reported(storage, name),
                                  lambda proc: proc.send_signal(signal.SIGINT), what="the trial never reported")
    assert code == 130, first[-3000:]
    assert f"--resume --name {name} --storage-path {storage}" in first
    assert "stopped_early" not in first.split(f"sweep '{name}'")[-1]
    _, parent, children = sweep_runs(uri, name)
    assert parent.info.status == "KILLED" and [c.info.status for c in children] == ["KILLED"]
    resumed = _run(["--resume", "--name", name, "--storage-path", str(storage)], tmp_path, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    _, parent, children = sweep_runs(uri, name)
    assert parent.info.status == "FINISHED"
    assert [c.data.tags[record.TAG_STATUS] for c in children] == ["finished"]


@pytest.mark.integration
@pytest.mark.slow
def test_a_second_ctrl_c_still_ends_truthfully(tmp_path: Path) -> None:
    """Two SIGINTs a second apart: Tune gives up its graceful stop; the sweep still exits 130 with
    no traceback, the parent run KILLED and nothing left RUNNING."""
    storage, uri, name = tmp_path / "tune", f"sqlite:///{tmp_path}/mlflow.db", "twice"
    command = ["--smoke-test", "--name", name, "--storage-path", str(storage), "--tracking-uri", uri,
               "--num-samples", "1", "--set", "train.steps=3000", "--set", "train.eval_every=100",
               "--set", "train.checkpoint_every=100"]

    def twice(proc: subprocess.Popen) -> None:
        proc.send_signal(signal.SIGINT)
        time.sleep(1)
        proc.send_signal(signal.SIGINT)

    code, output = interrupt_sweep(command, tmp_path, lambda: _reported(storage, name),
                                   twice, what="the trial never reported")
    assert code == 130, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert f"--resume --name {name} --storage-path {storage}" in output
    _, parent, children = sweep_runs(uri, name)
    assert parent.info.status == "KILLED" and all(c.info.status != "RUNNING" for c in children)


@pytest.mark.integration
@pytest.mark.slow
def test_two_sweeps_start_together_on_one_new_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    procs = [subprocess.Popen([sys.executable, str(SCRIPT), "--smoke-test", "--num-samples", "1", "--name", f"twin{i}",
                               "--storage-path", str(tmp_path / f"tune{i}"), "--tracking-uri", uri],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=subprocess_env(tmp_path), cwd=tmp_path) for i in (0, 1)]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[-2000:] for o in outputs]
    for i in (0, 1):
        _, parent, children = sweep_runs(uri, f"twin{i}")
        assert parent.info.status == "FINISHED" and len(children) == 1


def test_local_file_errors_are_not_mistaken_for_an_outage() -> None:
    assert not tracking.is_transient(FileNotFoundError("figures/traversal.png"))
    assert tracking.is_transient(ConnectionRefusedError("[Errno 111] Connection refused"))
    assert tracking.is_transient(Exception("sqlite3.OperationalError: database is locked"))


@pytest.mark.integration
@pytest.mark.slow
def test_sigkill_of_the_driver_then_resume_leaves_nothing_running(tmp_path: Path) -> None:
    import os

    storage, uri, name = tmp_path / "tune", f"sqlite:///{tmp_path}/mlflow.db", "killed"
    command = ["--smoke-test", "--name", name, "--storage-path", str(storage), "--tracking-uri", uri,
               "--num-samples", "2", "--max-concurrent", "1", "--scheduler", "fifo"]
    # The driver and the Ray it started, as a crash would.
    interrupt_sweep(command, tmp_path, lambda: _reported(storage, name),
                    lambda proc: os.killpg(proc.pid, signal.SIGKILL), timeout=60, what="no trial reported")
    resumed = _run(["--resume", "--name", name, "--storage-path", str(storage)], tmp_path, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    client, parent, children = sweep_runs(uri, name)
    assert parent.info.status == "FINISHED" and len(children) == 2
    assert all(c.info.status == "FINISHED" and c.data.tags[record.TAG_STATUS] == "finished" for c in children)


@pytest.mark.integration
@pytest.mark.slow
def test_a_tracking_server_killed_mid_trial_and_restarted_is_waited_out(tmp_path: Path) -> None:
    """The server dies while a trial logs; it comes back 20 s later on the same port and store.
    MLflow's own retries are switched off, so the trial's ResilientClient has to wait it out."""
    import os
    import urllib.request

    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server_env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server_env.pop("MLFLOW_TRACKING_URI", None)

    def start_server() -> subprocess.Popen:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
             "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=server_env, cwd=tmp_path,
            start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(uri + "/health", timeout=2):
                    return server
            except OSError:
                time.sleep(1)
        raise RuntimeError("mlflow server did not start")

    server = start_server()
    env = {**subprocess_env(tmp_path), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    sweep = subprocess.Popen([sys.executable, str(SCRIPT), "--smoke-test", "--num-samples", "1", "--name", "outage",
                              "--tracking-uri", uri, "--set", "train.steps=600", "--set", "train.eval_every=20",
                              "--set", "train.checkpoint_every=20"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    try:
        time.sleep(5)
        deadline = time.monotonic() + 400
        client = tracking.client(uri)
        while True:  # wait until the trial has logged a few evaluations
            assert sweep.poll() is None, sweep.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the trial never logged"
            try:
                runs = client.search_runs([client.get_experiment_by_name("outage").experiment_id],
                                          filter_string="tags.`infogan.role` = 'trial'")
                if runs and "eval/mig" in runs[0].data.metrics:
                    break
            except Exception:
                pass
            time.sleep(2)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        time.sleep(20)
        server = start_server()
        output = sweep.communicate(timeout=900)[0]
        assert sweep.returncode == 0, output[-3000:]
        assert "unreachable" in output and "reachable again after" in output, output[-3000:]  # logged, both ends
        client, parent, children = sweep_runs(uri, "outage")  # read back while the server still runs
        assert [c.data.tags[record.TAG_STATUS] for c in children] == ["finished"]
        assert parent.info.status == "FINISHED"
    finally:
        for proc in (sweep, server):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL) if proc is server else proc.kill()
                proc.wait()
