"""Ctrl-C during training: the loop stops between two steps, checkpoints the last one, records it
and re-raises; the CLI exits 130 with the command that resumes the run."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from infogan import checkpoint
from infogan.cli import interrupted_message
from infogan.config import Config
from infogan.interrupt import Interrupted
from infogan.loop import EvalReport, train
from tests.signals import default_sigint

ROOT = Path(__file__).resolve().parents[1]


def _losses(history: list[dict[str, float]]) -> list[tuple[float, ...]]:
    return [(row["step"], row["loss_d"], row["loss_g"], row["nll_cont"]) for row in history]


def _ctrl_c_at(step: int, times: int = 1, then: Any = None) -> Any:
    """An ``on_eval`` that presses Ctrl-C ``times`` times at ``step``'s evaluation (then calls ``then``)."""

    def on_eval(report: EvalReport) -> None:
        if report.step == step:
            if then is not None:
                then()
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)

    return on_eval


def _saved(run: Path) -> dict[str, Any]:
    return json.loads((run / "metrics.json").read_text())


def test_ctrl_c_checkpoints_the_last_completed_step_and_resumes_exactly(tmp_path: Path, tiny_cfg: Config) -> None:
    # No periodic checkpoint before the end: the one at step 2 can only be the interrupt's.
    cfg = tiny_cfg.replace(**{"train.eval_every": 2, "train.checkpoint_every": 100})
    full = train(cfg, run_dir=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt) as info:
        train(cfg, run_dir=tmp_path / "cut", on_eval=_ctrl_c_at(2))
    assert isinstance(info.value, Interrupted)  # honoured between two steps
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back
    saved = _saved(tmp_path / "cut")
    assert saved["status"] == "interrupted" and saved["step"] == 2
    assert saved["checkpoint"] == str(tmp_path / "cut" / "checkpoints" / "step_00000002")
    assert json.loads((tmp_path / "cut" / "checkpoints" / "latest.json").read_text())["step"] == 2
    state = checkpoint.load(saved["checkpoint"])
    assert state.step == 2 and state.config == cfg.to_flat()
    # A half-updated step would not continue into the uninterrupted run's losses and weights.
    resumed = train(cfg, run_dir=tmp_path / "cut", resume=saved["checkpoint"])
    assert _losses(resumed.history) == _losses(full.history)[2:]
    g_full, g_resumed = checkpoint.load(full.checkpoint).generator, checkpoint.load(resumed.checkpoint).generator
    assert all(torch.equal(g_full[k], g_resumed[k]) for k in g_full)


def test_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path: Path, tiny_cfg: Config) -> None:
    cfg = tiny_cfg.replace(**{"train.eval_every": 3, "train.checkpoint_every": 2})
    with pytest.raises(KeyboardInterrupt) as info:
        train(cfg, run_dir=tmp_path, on_eval=_ctrl_c_at(3, times=2))
    assert not isinstance(info.value, Interrupted)  # mid-step: nothing new may be saved
    assert not (tmp_path / "checkpoints" / "step_00000003").exists()
    saved = _saved(tmp_path)
    assert saved["status"] == "interrupted" and saved["checkpoint"] == str(tmp_path / "checkpoints" / "step_00000002")
    assert checkpoint.load(saved["checkpoint"]).step == 2


def test_ctrl_c_during_the_interrupt_checkpoint_leaves_no_torn_file(
    tmp_path: Path, tiny_cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_cfg.replace(**{"train.eval_every": 3, "train.checkpoint_every": 2})

    def torn_save(obj: Any, f: Any) -> None:  # half a file, then the second Ctrl-C
        Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=tmp_path, on_eval=_ctrl_c_at(3, then=lambda: monkeypatch.setattr(torch, "save", torn_save)))
    monkeypatch.undo()
    checkpoints = tmp_path / "checkpoints"
    assert not (checkpoints / "step_00000003" / "checkpoint.pt").exists()
    assert not [p for p in checkpoints.rglob("*") if ".tmp" in p.name]
    assert json.loads((checkpoints / "latest.json").read_text())["step"] == 2
    assert checkpoint.load(checkpoints / "step_00000002").step == 2
    line = interrupted_message(tmp_path, None, cfg.train.steps)
    assert f"--resume {checkpoints / 'step_00000002'} " in line


def test_train_outside_the_main_thread_leaves_ctrl_c_alone(tiny_cfg: Config) -> None:
    # Ray Tune runs a trainable in a thread, where no signal handler can be installed.
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(train(tiny_cfg)))
    thread.start()
    thread.join(timeout=300)
    assert results and results[0].status == "finished"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_run_whose_ctrl_c_is_ignored_leaves_it_ignored(tiny_cfg: Config) -> None:
    # A background job (nohup … &) ignores SIGINT: training neither takes it over nor gives it back
    # as Python's handler, so the job stays immune to Ctrl-C as its shell asked.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    seen: list[Any] = []
    train(tiny_cfg, on_eval=lambda report: seen.append(signal.getsignal(signal.SIGINT)))
    assert seen and all(h is signal.SIG_IGN for h in seen)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_interrupted_message_names_the_checkpoint_the_directory_and_the_budget(
    tmp_path: Path, tiny_cfg: Config
) -> None:
    run = tmp_path / "a run"  # a space: the command must still split back into its arguments
    train(tiny_cfg.replace(**{"train.steps": 3}), run_dir=run)
    line = interrupted_message(run, None, 10)
    assert line.startswith("interrupted at step 3; resume with: ")
    command = shlex.split(line.partition("resume with: ")[2])
    assert command == ["python", "-m", "infogan.train", "--resume", str(run / "checkpoints" / "step_00000003"),
                       "--out", str(run), "--train.steps", "10"]
    assert "the run is complete" in interrupted_message(run, None, 3)
    assert "nothing to resume" in interrupted_message(tmp_path / "empty", None, 10)
    assert "nothing to resume" in interrupted_message(None, "x", None)
    # Resumed elsewhere and stopped before its first checkpoint: continue from where it started.
    line = interrupted_message(tmp_path / "b", str(run / "checkpoints" / "step_00000003"), 10)
    assert f"--resume {shlex.quote(str(run / 'checkpoints' / 'step_00000003'))} --out {tmp_path / 'b'}" in line


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("seeds", [None, (0, 1)], ids=["one run", "two seeds as members"])
def test_ctrl_c_on_the_cli_exits_130_with_a_resume_command_that_works(tmp_path: Path,
                                                                      seeds: tuple[int, ...] | None) -> None:
    out = tmp_path / "run"
    runs = [out] if seeds is None else [out / f"seed{s}" for s in seeds]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "infogan.train", "--preset", "dsprites-quick", "--set", "model.width=0.25",
         "--set", "train.steps=100000", "--set", "train.checkpoint_every=5", "--set", "train.eval_every=100000",
         "--set", "eval.final=mig", "--set", "train.device=cpu", "--no-progress", "--out", str(out),
         *(["--seeds", ",".join(map(str, seeds))] if seeds else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        preexec_fn=default_sigint)  # a test run in the background would pass SIGINT on ignored
    try:
        deadline = time.monotonic() + 300  # imports and data generation on a busy machine
        while not all((run / "checkpoints" / "latest.json").exists() for run in runs):  # training has started
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out_text, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("interrupted")]
    assert len(lines) == len(runs), err[-3000:]  # one resume command per run
    for run, line in zip(runs, lines, strict=True):
        match = re.fullmatch(r"interrupted at step (\d+); resume with: (.+)", line)
        assert match, line
        step, command = int(match[1]), shlex.split(match[2])
        assert command[:3] == ["python", "-m", "infogan.train"]
        assert command[command.index("--out") + 1] == str(run)
        saved = _saved(run)
        assert saved["status"] == "interrupted" and saved["step"] == step
        resume_from = Path(command[command.index("--resume") + 1])
        assert resume_from == run / "checkpoints" / f"step_{step:08d}" and checkpoint.load(resume_from).step == step

    # The printed command continues a run in its directory (here with a budget of two more steps);
    # a member's checkpoint resumes as a run of its own.
    step, command = int(re.search(r"step (\d+)", lines[-1])[1]), shlex.split(lines[-1].partition("resume with: ")[2])
    resumed = subprocess.run([sys.executable, *command[1:], "--train.steps", str(step + 2), "--no-progress"],
                             capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads(resumed.stdout)["step"] == step + 2
    saved = _saved(runs[-1])
    assert (saved["status"], saved["start_step"], saved["step"]) == ("finished", step, step + 2)
