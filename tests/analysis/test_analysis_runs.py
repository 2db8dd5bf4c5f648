"""Learning curves of standalone run directories (``python -m analysis runs``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.__main__ import main
from analysis.runs import curves_table, group_labels, read_run, speed_table


def _fake_run(root: Path, name: str, size: int, seed: int, mig: list[float], final: bool) -> Path:
    """A run directory as infogan.train (+ infogan.evaluate) writes it, with known numbers."""
    run = root / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model.image_size": size, "train.seed": seed, "train.batch_size": 64,
                                                 "train.steps": 100 * len(mig)}))
    steps = [100 * (i + 1) for i in range(len(mig))]
    with open(run / "eval.jsonl", "w") as fh:
        for step, value in zip(steps, mig, strict=True):
            # Intermediate evaluations: a smaller sample, here deliberately off by +1.
            fh.write(json.dumps({"step": step, "eval/mig": value + 1, "eval/fid": 50.0, "eval/seconds": 2.0}) + "\n")
    if final:
        with open(run / "eval_final.jsonl", "w") as fh:
            for step, value in zip(steps, mig, strict=True):
                fh.write(json.dumps({"step": step, "eval/mig": value, "settings": {}}) + "\n")
            fh.write('{"step": 9')  # a line torn by a crash is skipped
    (run / "metrics.json").write_text(json.dumps({"step": steps[-1], "start_step": 0, "train_seconds": 50.0}))
    return run


def test_final_evaluations_win_and_intermediate_fill_in(tmp_path: Path) -> None:
    run = read_run(_fake_run(tmp_path, "a", 32, 1, [0.1, 0.2], final=True))
    mig = run.frame[run.frame["metric"] == "eval/mig"]
    assert mig["value"].tolist() == [0.1, 0.2] and set(mig["stage"]) == {"final"}
    fid = run.frame[run.frame["metric"] == "eval/fid"]
    assert set(fid["stage"]) == {"intermediate"}  # no final FID: the run's own
    assert run.steps_per_second == pytest.approx(200 / 50.0)


def test_groups_by_what_differs_and_averages_seeds(tmp_path: Path) -> None:
    runs = [read_run(_fake_run(tmp_path, f"s{size}-{seed}", size, seed, [0.1 * seed, 0.2 * seed], final=True))
            for size in (32, 64) for seed in (1, 2)]
    assert group_labels(runs) == ["model.image_size=32"] * 2 + ["model.image_size=64"] * 2
    table = curves_table(runs, ["eval/mig"])
    row = table[(table["group"] == "model.image_size=64") & (table["step"] == 200)].iloc[0]
    assert row["n_seeds"] == 2 and row["mean"] == pytest.approx(0.3) and row["values"] == "0.2 / 0.4"


def test_cli_writes_figure_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dirs = [str(_fake_run(tmp_path, f"r{seed}", 32, seed, [0.1, 0.3], final=seed == 1)) for seed in (1, 2)]
    assert main(["runs", *dirs, "--out", str(tmp_path / "out"), "--name", "curves"]) == 0
    text = (tmp_path / "out" / "curves.md").read_text()
    assert "![learning curves](curves.png)" in text and "## eval/mig: mean over seeds (each seed)" in text
    assert "| 200 | 0.800 (0.3 / 1.3) |" in text  # seed 2 only has its run's own (intermediate) MIG
    assert (tmp_path / "out" / "curves.png").stat().st_size > 5000
    assert main(["runs", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_a_resumed_run_is_timed_over_its_last_leg_and_says_so(tmp_path: Path) -> None:
    run_dir = _fake_run(tmp_path, "resumed", 32, 1, [0.1, 0.2, 0.3, 0.4], final=False)
    (run_dir / "metrics.json").write_text(json.dumps({"step": 400, "start_step": 100, "train_seconds": 60.0}))
    table = speed_table([read_run(run_dir)])
    row = table.iloc[0]
    assert row["steps"] == 400 and row["timed_steps"] == 300  # evaluated through 400, timed 100 -> 400
    assert row["train_minutes"] == pytest.approx(1.0) and row["steps_per_second"] == pytest.approx(5.0)


def test_runs_differing_only_in_how_they_ran_are_one_group(tmp_path: Path) -> None:
    # Precision, threads, step path, budget and evaluation settings do not make another experiment
    # (infogan.config's key roles); a model key does.
    runs = []
    for i, (precision, threads, steps, mode) in enumerate([("fp32", 1, 100, "eager"), ("bf16", 2, 200, "compiled")]):
        run = _fake_run(tmp_path, f"r{i}", 32, i, [0.1], final=False)
        config = json.loads((run / "config.json").read_text())
        config.update({"train.precision": precision, "train.threads": threads, "train.steps": steps,
                       "train.step_mode": mode, "eval.num_points": 1000 * (i + 1)})
        (run / "config.json").write_text(json.dumps(config))
        runs.append(read_run(run))
    assert group_labels(runs) == ["all runs", "all runs"]
    config = json.loads((tmp_path / "r1" / "config.json").read_text())
    (tmp_path / "r1" / "config.json").write_text(json.dumps({**config, "loss.lambda_cont": 0.5}))
    assert group_labels([runs[0], read_run(tmp_path / "r1")]) == ["loss.lambda_cont=None", "loss.lambda_cont=0.5"]
