"""Tracking helpers: URI resolution, the fast reachability check, parent/child runs in a sqlite store."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sweeps import record, tracking
from sweeps.tracking import SweepRef
from tests.sweeps.conftest import free_port


def test_resolve_tracking_uri_order_and_absolute_sqlite(tmp_path: Path) -> None:
    env = {"MLFLOW_TRACKING_URI": "http://example:5000"}
    assert tracking.resolve_tracking_uri("http://cli:1", env, tmp_path) == "http://cli:1"
    assert tracking.resolve_tracking_uri(None, env, tmp_path) == "http://example:5000"
    assert tracking.resolve_tracking_uri(None, {}, tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert tracking.resolve_tracking_uri("sqlite:///x/y.db", {}, tmp_path) == f"sqlite:///{tmp_path.resolve()}/x/y.db"
    assert tracking.resolve_tracking_uri("sqlite:////abs/y.db", {}, tmp_path) == "sqlite:////abs/y.db"
    assert tracking.default_artifact_location("sqlite:////abs/y.db") == "file:///abs/mlartifacts"
    assert "mlflow ui --backend-store-uri sqlite:////abs/y.db" in tracking.ui_command("sqlite:////abs/y.db")


def test_unreachable_server_is_one_clear_error_quickly() -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(tracking.TrackingUnavailableError, match="unreachable"):
        tracking.check_tracking(uri, timeout=2)


class _HealthyButForbidden(BaseHTTPRequestHandler):
    """Answers /health like MLflow does, and refuses every API call (a Host outside --allowed-hosts)."""

    def _answer(self) -> None:
        ok = self.path.rstrip("/") == "/health"
        body = b"OK" if ok else b'{"error_code": "PERMISSION_DENIED", "message": "host not allowed"}'
        self.send_response(200 if ok else 403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815 - http.server's method names

    def log_message(self, *args: object) -> None:
        pass


def test_server_that_refuses_the_api_is_one_clear_error() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HealthyButForbidden)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(tracking.TrackingUnavailableError, match="is unusable"):
            tracking.check_tracking(uri, timeout=2)
    finally:
        server.shutdown()
        server.server_close()


def test_sqlite_under_a_file_is_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(tracking.TrackingUnavailableError, match="not writable"):
        tracking.check_tracking(f"sqlite:///{blocker}/sub/mlflow.db")


def test_parent_and_child_runs_follow_the_contract(tmp_path: Path) -> None:
    uri = tracking.resolve_tracking_uri(None, {}, tmp_path)
    tracking.check_tracking(uri)
    client = tracking.client(uri)
    experiment_id = tracking.get_or_create_experiment(client, "unit_sweep", uri)
    assert tracking.get_or_create_experiment(client, "unit_sweep", uri) == experiment_id
    assert client.get_experiment(experiment_id).artifact_location == (tmp_path.resolve() / "mlartifacts").as_uri()
    space = {"params": {"loss.lambda_cont": {"low": 0.01}, "codes.n_continuous": {"choices": [3, 5]}}}
    parent = tracking.start_parent_run(client, experiment_id, "unit_sweep", {"num_samples": 3, "metric": "m"},
                                       space, {"settings": {}})
    run = client.get_run(parent)
    assert run.data.tags[record.TAG_ROLE] == "parent" and run.data.tags[record.TAG_SWEEP] == "unit_sweep"
    assert run.data.tags[record.TAG_GIT_COMMIT]
    assert {f"infogan.version.{p}" for p in tracking.VERSIONED_PACKAGES} <= set(run.data.tags)
    assert run.data.params == {"sweep.num_samples": "3", "sweep.metric": "m"}
    assert {a.path for a in client.list_artifacts(parent)} == {"search_space.json", "sweep_config.json"}
    logged = json.loads(Path(client.download_artifacts(parent, "search_space.json", str(tmp_path))).read_text())
    assert list(logged["params"]) == ["loss.lambda_cont", "codes.n_continuous"]  # the space's order, not sorted

    ref = SweepRef(uri, experiment_id, parent, "unit_sweep")
    child = tracking.open_child_run(client, ref, "trial_a", "trial_a")
    tracking.log_metrics(client, child, {"train/loss_d": 1.5, "eval/x": 2}, step=10)
    tracking.finish_run(client, child, record.STATUS_FAILED)
    # A retry finds the same run by its trial id and reopens it.
    again = tracking.open_child_run(client, ref, "trial_a", "trial_a")
    assert again == child
    run = client.get_run(child)
    assert run.info.status == "RUNNING" and run.data.tags[record.TAG_STATUS] == "running"
    assert run.data.tags[record.TAG_PARENT_RUN_ID] == parent and run.data.tags[record.TAG_TRIAL_ID] == "trial_a"
    assert [(m.step, m.value) for m in client.get_metric_history(child, "train/loss_d")] == [(10, 1.5)]
    other = tracking.open_child_run(client, ref, "trial_b", "trial_b")
    assert other != child and len(tracking.child_runs(client, ref)) == 2
    tracking.finish_run(client, other, record.STATUS_STOPPED_EARLY)
    assert client.get_run(other).info.status == "FINISHED"


def test_search_all_follows_page_tokens_past_one_page() -> None:
    class Page(list):
        token: str | None = None

    class Pager:
        def __init__(self) -> None:
            self.calls: list[tuple[int, str | None]] = []

        def search_runs(self, ids: list[str], filter_string: str, max_results: int, page_token: str | None) -> Page:
            self.calls.append((max_results, page_token))
            start = int(page_token or 0)
            page = Page(range(start, min(start + max_results, 2500)))
            page.token = str(start + max_results) if start + max_results < 2500 else None
            return page

    pager = Pager()
    assert tracking.search_all(pager, ["1"], "x") == list(range(2500))
    assert pager.calls == [(tracking.SEARCH_PAGE, None), (tracking.SEARCH_PAGE, "1000"), (tracking.SEARCH_PAGE, "2000")]


@pytest.mark.parametrize("before", [None, "true"])
def test_downloads_show_no_bar_inside_the_block_and_the_setting_comes_back(tmp_path: Path, capfd, monkeypatch,
                                                                           before: str | None) -> None:
    variable = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    if before is None:
        monkeypatch.delenv(variable, raising=False)
    else:
        monkeypatch.setenv(variable, before)
    uri = tracking.resolve_tracking_uri(None, {}, tmp_path)
    client = tracking.client(uri)
    run = client.create_run(tracking.get_or_create_experiment(client, "bars", uri)).info.run_id
    (tmp_path / "a.json").write_text("{}")
    client.log_artifact(run, str(tmp_path / "a.json"))
    capfd.readouterr()
    client.download_artifacts(run, "a.json", str(tmp_path / "plain"))
    assert "Downloading artifacts" in capfd.readouterr().err  # MLflow's bar: what the block silences
    with tracking.no_download_bars():
        client.download_artifacts(run, "a.json", str(tmp_path / "quiet"))
    assert capfd.readouterr().err == ""
    assert os.environ.get(variable) == before
