"""CI's smoke command against a real ``mlflow server`` process, read back through the MLflow client
and looked at in a real browser (headless Chromium driven by Selenium)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sweeps import record, summary
from tests.sweeps.conftest import SCRIPT, subprocess_env
from tests.sweeps.readback import artifact_paths, assert_ended_child, assert_parent_contract, sweep_runs

SWEEP = "smoke_server"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@dataclass(frozen=True)
class ServerSweep:
    uri: str
    stdout: str
    client: Any
    parent: Any
    children: list[Any]


@pytest.fixture(scope="module")
def server_sweep(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> ServerSweep:
    """The README's smoke sweep run once against the real server; its records read back."""
    tmp_path = tmp_path_factory.mktemp("server_sweep")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke-test", "--tracking-uri", mlflow_server, "--name", SWEEP],
        capture_output=True, text=True, timeout=900, env=subprocess_env(tmp_path), cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not (tmp_path / "mlflow.db").exists()  # nothing went to the local default store
    client, parent, children = sweep_runs(mlflow_server, SWEEP)
    return ServerSweep(mlflow_server, proc.stdout, client, parent, children)


@pytest.mark.integration
@pytest.mark.slow
def test_smoke_test_logs_to_a_real_mlflow_server(server_sweep: ServerSweep) -> None:
    out, client, parent, children = server_sweep.stdout, server_sweep.client, server_sweep.parent, server_sweep.children
    assert "best 2 by eval/mig" in out and f"open {server_sweep.uri}" in out
    assert f"{server_sweep.uri}/#/experiments/" in out and "workflowType=machine_learning" in out
    assert "optuna-dashboard sqlite:///" in out
    assert_parent_contract(client, parent, SWEEP, 2)
    assert len(children) == 2
    statuses = [assert_ended_child(client, child, steps=20, eval_every=10) for child in children]
    # ASHA never cuts the first trial to reach a rung (the cutoff is its own value), so at least
    # one trial runs its whole budget.
    assert "finished" in statuses, statuses
    # The parent run carries the sweep's answer; every child its traversal per evaluation.
    parent_files = artifact_paths(client, parent.info.run_id)
    assert {"sweep/leaderboard.csv", "sweep/leaderboard.md", "sweep/parallel_coordinates.png"} <= parent_files
    assert any(f.startswith("sweep/best_trial/") for f in parent_files), parent_files
    for child in children:
        images = [f for f in artifact_paths(client, child.info.run_id) if f.startswith("images/")]
        assert len([f for f in images if f.endswith(".png")]) >= 1, images


# --------------------------------------------------------------------------------------------
# The same sweep in a real browser


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Debian Chromium through Selenium, with no network beyond localhost."""
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip(f"no Chromium: {CHROMIUM} and {CHROMEDRIVER} come from Debian's chromium and chromium-driver "
                    "packages, which .ci/run installs with apt-get when it can")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1500,1000", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # no Selenium Manager download
    try:
        yield driver
    finally:
        driver.quit()


def _wait_for_text(driver: Any, *texts: str, timeout: float = 60.0) -> str:
    """The page's visible text once it holds every one of ``texts`` (the UI renders client-side)."""
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        body = driver.execute_script("return document.body ? document.body.innerText : ''") or ""
        if all(t in body for t in texts):
            return body
        time.sleep(0.5)
    raise AssertionError(f"page {driver.current_url} never showed {texts}; it shows: {body[:1500]!r}")


def _loaded_artifact_images(driver: Any, min_side: int = 100, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Artifact images the page decoded to a real picture: the artifact viewer fetches the file
    and shows it from a ``blob:`` URL (or a get-artifact URL), at least ``min_side`` px a side."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = driver.execute_script(
            "return Array.from(document.images).map(i => ({src: (i.currentSrc || i.src).slice(0, 120), "
            "w: i.naturalWidth, h: i.naturalHeight, done: i.complete}))") or []
        loaded = [i for i in found if i["src"].startswith(("blob:", "http")) and "artifact" in i["src"] or
                  i["src"].startswith("blob:")]
        loaded = [i for i in loaded if i["done"] and i["w"] >= min_side and i["h"] >= min_side]
        if loaded:
            return loaded
        time.sleep(0.5)
    raise AssertionError(f"no decoded artifact image on {driver.current_url}: {found}")


def _shoot(driver: Any, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    return path


@pytest.mark.integration
@pytest.mark.slow
def test_mlflow_ui_shows_the_sweep_in_a_real_browser(server_sweep: ServerSweep, browser: Any, tmp_path: Path) -> None:
    """The printed URLs open the model-training view; the parent run has the sweep's plots, a
    child run its metric chart and its traversal. Screenshots are kept under the test's tmp dir
    (and copied to $INFOGAN_SCREENSHOTS when set, e.g. docs/results/mlflow_ui)."""
    parent = server_sweep.parent
    # A finished trial: one ASHA stopped at its first rung has only the intermediate metrics.
    child = next(c for c in server_sweep.children if c.data.tags[record.TAG_STATUS] == record.STATUS_FINISHED)
    experiment_id = parent.info.experiment_id
    experiment_url, parent_url = summary.ui_urls(server_sweep.uri, experiment_id, parent.info.run_id)
    shots = tmp_path / "screenshots"

    browser.get(experiment_url)
    # The model-training view's runs table: the parent run, its trials nested (collapsed) under it.
    _wait_for_text(browser, "Model training", SWEEP, f"{1 + len(server_sweep.children)} matching runs")
    _shoot(browser, shots, "1_experiment.png")

    browser.get(parent_url.replace("?", "/artifacts/sweep/parallel_coordinates.png?"))
    _wait_for_text(browser, "leaderboard.md", "parallel_coordinates.png", "best_trial")
    _loaded_artifact_images(browser, min_side=300)  # summary.study_figures draws 8 x 5 in at 100 dpi
    _shoot(browser, shots, "2_parent_run_sweep_plots.png")

    child_url = f"{server_sweep.uri}/#/experiments/{experiment_id}/runs/{child.info.run_id}"
    browser.get(child_url + "/model-metrics?workflowType=machine_learning")
    # Charts grouped by section ("eval", "train", "time"), each titled and with its legend.
    _wait_for_text(browser, "Model metrics", "dci_disentanglement", f"{child.info.run_name} (eval/")
    # The charts draw after their titles and legends (later still on a busy machine).
    deadline, charts = time.monotonic() + 60, 0
    while not charts and time.monotonic() < deadline:
        charts = browser.execute_script("return document.querySelectorAll('canvas, svg.main-svg, .js-plotly-plot').length")
        time.sleep(0.5)
    assert charts > 0, "no metric chart rendered"
    _shoot(browser, shots, "3_child_run_metrics.png")

    browser.get(child_url + "/artifacts/figures/traversal.png?workflowType=machine_learning")
    _wait_for_text(browser, "traversal.png", "samples.png")
    _loaded_artifact_images(browser)
    _shoot(browser, shots, "4_child_run_traversal.png")

    keep = os.environ.get("INFOGAN_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in sorted(shots.glob("*.png")):
            shutil.copy(shot, Path(keep) / shot.name)
