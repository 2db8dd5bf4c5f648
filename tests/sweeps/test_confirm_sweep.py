"""End to end: a tiny real sweep with its confirmation stage (real Ray, a local sqlite MLflow
store), its records, its analysis report, and a resume in the middle of the confirmation."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import schema as S
from analysis.collect import collect
from analysis.report import write_report
from sweeps import lambda_search, record
from tests.sweeps.conftest import SCRIPT, interrupt_sweep, subprocess_env
from tests.sweeps.readback import artifact_paths, sweep_runs


@pytest.mark.integration
@pytest.mark.slow
def test_the_sweep_confirms_its_best_config_and_the_recipe_on_fresh_seeds(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri, storage = f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "tune"
    code = lambda_search.main(["--smoke-test", "--name", "c", "--num-samples", "2", "--scheduler", "fifo",
                               "--confirm", "1", "--confirm-seeds", "2", "--storage-path", str(storage),
                               "--tracking-uri", uri])
    assert code == 0
    client, parent, children = sweep_runs(uri, "c")
    search = [c for c in children if c.data.tags[record.TAG_STAGE] == record.STAGE_SEARCH]
    confirmed = [c for c in children if c.data.tags[record.TAG_STAGE] == record.STAGE_CONFIRM]
    assert len(search) == 2 and len(confirmed) == 4
    assert all(c.data.tags[record.TAG_STATUS] == record.STATUS_FINISHED for c in children)
    by_candidate: dict[str, list] = {}
    for c in confirmed:
        by_candidate.setdefault(c.data.tags[record.TAG_CANDIDATE], []).append(c)
    assert sorted(by_candidate) == ["recipe", "top1"]
    seeds = {name: sorted(int(r.data.params["train.seed"]) for r in runs) for name, runs in by_candidate.items()}
    assert seeds == {"recipe": [1, 2], "top1": [1, 2]}  # fresh: the search trained seed 0
    best = max(search, key=lambda r: r.data.metrics["eval/mig"])
    top1 = by_candidate["top1"][0].data.params
    assert all(top1[k] == best.data.params[k] for k in ("loss.lambda_cont", "optim.lr_d", "optim.lr_g"))
    assert by_candidate["recipe"][0].data.params["loss.lambda_cont"] == "0.05"
    assert all(int(r.data.params["train.steps"]) == 20 for r in confirmed)  # the search's full budget

    # The parent run leads with the answer.
    tags, metrics = parent.data.tags, parent.data.metrics
    assert tags[record.TAG_NOTE].startswith("## The answer of sweep c") and tags[record.TAG_ANSWER]
    assert {"answer/recipe/mig_mean", "answer/top1/mig_low", "answer/top1-recipe/mig_diff"} <= set(metrics)
    assert metrics["answer/recipe/mig_seeds"] == 2.0
    assert "sweep/answer.md" in artifact_paths(client, parent.info.run_id)
    summary = json.loads((storage / "c" / "summary.json").read_text())
    assert summary["confirm_statuses"] == {"finished": 4} and summary["answer"]["verdict"]
    assert json.loads((storage / "c" / record.CONFIRM_PLAN_FILE).read_text())["seeds"] == [1, 2]

    # The analysis reads the stages and opens its report with the same answer.
    collect(uri, sweep="c", tune_dir=storage / "c", out_dir=tmp_path / "tables", progress=False)
    trials = S.read_trials(tmp_path / "tables")
    assert trials["stage"].value_counts().to_dict() == {"confirm": 4, "search": 2}
    assert sorted(trials["candidate"].dropna()) == ["recipe", "recipe", "top1", "top1"]
    report = write_report(tmp_path / "tables", tmp_path / "report", sweep="c").read_text()
    sections = [line for line in report.splitlines() if line.startswith("## ")]
    assert sections[0] == "## The answer: the confirmed configs over fresh seeds"
    assert summary["answer"]["verdict"][0] in report
    assert "Spearman ρ: not meaningful at n = 2" in report and "Not meaningful at n = 2: fANOVA" in report
    assert (tmp_path / "report" / "figures" / "answer.png").is_file()


NAME = "confirm_resume"


@pytest.mark.integration
@pytest.mark.slow
def test_an_interrupted_confirmation_resumes_without_retraining_what_finished(tmp_path: Path) -> None:
    from ray.tune import ExperimentAnalysis

    storage, uri = tmp_path / "tune", f"sqlite:///{tmp_path}/mlflow.db"
    confirm_dir = storage / NAME / record.CONFIRM_EXPERIMENT
    argv = ["--smoke-test", "--name", NAME, "--storage-path", str(storage)]

    def one_confirmed() -> bool:  # a confirmation trial's final result reached Tune
        for result in confirm_dir.glob("trial_*/result.json"):
            if any(json.loads(line).get("step") == 20 for line in result.read_text().splitlines() if line.strip()):
                return True
        return False

    code, log = interrupt_sweep([*argv, "--num-samples", "1", "--confirm", "1", "--confirm-seeds", "2",
                                 "--max-concurrent", "1", "--tracking-uri", uri], tmp_path, one_confirmed,
                                lambda proc: proc.send_signal(signal.SIGINT), timeout=180,
                                what="no confirmation trial finished in time")
    assert code == 130, log[-3000:]
    assert "The confirmation is incomplete" in log
    before = {t.trial_id: t.last_result.get("step") for t in ExperimentAnalysis(str(confirm_dir)).trials}
    done_before = [t for t, step in before.items() if step == 20]
    planned = 2 * len(json.loads((storage / NAME / record.CONFIRM_PLAN_FILE).read_text())["candidates"])
    assert 1 <= len(done_before) < planned
    rows = {t: len((confirm_dir / f"trial_{t}" / "result.json").read_text().splitlines()) for t in done_before}

    resumed = subprocess.run([sys.executable, str(SCRIPT), *argv, "--resume"], capture_output=True, text=True,
                             timeout=600, env=subprocess_env(tmp_path), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    after = ExperimentAnalysis(str(confirm_dir)).trials
    assert len(after) == planned
    assert all(t.last_result.get("step") == 20 for t in after)
    for t in done_before:  # trained once: no result rows added by the resume
        assert len((confirm_dir / f"trial_{t}" / "result.json").read_text().splitlines()) == rows[t]
    _, parent, children = sweep_runs(uri, NAME)
    assert parent.info.status == "FINISHED"
    assert sum(c.data.tags.get(record.TAG_STAGE) == record.STAGE_CONFIRM for c in children) == len(after)
