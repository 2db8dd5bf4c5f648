"""The loop of K members (infogan.loop.train_members) against train(), on the CPU.

Each member of ``train_members`` is the run ``train()`` makes of its config: the same evaluations,
checkpoints and run directory, its losses to float rounding (tests/test_members.py says why they
are not bit-equal), and a member stopped, diverged or finished leaves the others unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from infogan import metric_names as names
from infogan.config import Config
from infogan.loop import EvalReport, train, train_members

BASE = {
    "model.image_size": 32, "model.width": 0.125, "train.batch_size": 8, "train.device": "cpu",
    "train.precision": "fp32", "train.steps": 6, "train.log_every": 1, "train.eval_every": 3,
    "train.checkpoint_every": 3, "eval.intermediate": "categorical,mig", "eval.final": "categorical,mig",
    "data.eval_size": 64,
}
MEMBERS = [{"train.seed": 0}, {"train.seed": 1, "loss.lambda_cont": 0.2, "optim.lr_g": 5e-4}]
LOSSES = ("loss_d", "loss_g", "nll_cat", "nll_cont")
# Six steps of the dSprites recipe, two members vs separate runs: tests/test_members.py measured 1e-5
# at step 6 for the losses; the metrics are of networks that close.
TOLERANCE = 5e-3


def _configs(**extra: object) -> list[Config]:
    return [Config.from_flat({**BASE, **m, **extra}) for m in MEMBERS]


def _losses(history: list[dict[str, float]]) -> torch.Tensor:
    return torch.tensor([[row[n] for n in LOSSES] for row in history])


def _eval_lines(run_dir: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines()]


def test_each_member_is_the_run_train_makes_of_its_config(tmp_path: Path) -> None:
    cfgs = _configs()
    reports: list[tuple[int, int]] = []

    def on_eval(k: int, report: EvalReport) -> bool:
        reports.append((k, report.step))
        return True

    got = train_members(cfgs, [tmp_path / "m0", tmp_path / "m1"], on_eval)
    assert reports == [(0, 3), (1, 3), (0, 6), (1, 6)]
    for k, cfg in enumerate(cfgs):
        alone = train(cfg, run_dir=tmp_path / f"alone{k}")
        member = got[k]
        assert member.status == alone.status == "finished" and member.step == 6
        assert [r["step"] for r in member.history] == [r["step"] for r in alone.history] == [1, 2, 3, 4, 5, 6]
        torch.testing.assert_close(_losses(member.history), _losses(alone.history), rtol=TOLERANCE, atol=TOLERANCE)
        ours, theirs = _eval_lines(tmp_path / f"m{k}"), _eval_lines(tmp_path / f"alone{k}")
        assert [line["step"] for line in ours] == [3, 6] and [sorted(line) for line in ours] == [sorted(line) for line in theirs]
        for a, b in zip(ours, theirs, strict=True):
            for key in (name for name in a if not name.endswith("seconds")):  # timings differ
                assert a[key] == pytest.approx(b[key], rel=TOLERANCE, abs=TOLERANCE), (k, a["step"], key)
        run = tmp_path / f"m{k}"
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest.json", "step_00000003", "step_00000006"]
        assert (run / "figures" / "traversal.png").is_file() and json.loads((run / "config.json").read_text()) == cfg.to_flat()
        ending = json.loads((run / "metrics.json").read_text())
        assert ending["status"] == "finished" and ending["step"] == 6 and ending["images_per_second"] > 0


def test_a_members_checkpoint_resumes_as_a_plain_run(tmp_path: Path) -> None:
    cfgs = _configs()
    got = train_members(cfgs, [tmp_path / "m0", tmp_path / "m1"])
    resumed = train(cfgs[1], run_dir=tmp_path / "resumed", resume=tmp_path / "m1" / "checkpoints" / "step_00000003")
    assert [r["step"] for r in resumed.history] == [4, 5, 6]
    torch.testing.assert_close(_losses(resumed.history), _losses(got[1].history[3:]), rtol=TOLERANCE, atol=TOLERANCE)


def test_resumed_members_continue_their_uninterrupted_ensemble_exactly(tmp_path: Path) -> None:
    cfgs = _configs()
    whole = train_members(cfgs, [tmp_path / "m0", tmp_path / "m1"])
    resumed = train_members(cfgs, [tmp_path / "r0", tmp_path / "r1"],
                            resume=[tmp_path / f"m{k}" / "checkpoints" / "step_00000003" for k in range(2)])
    for a, b in zip(whole, resumed, strict=True):
        assert [r["step"] for r in b.history] == [4, 5, 6]
        assert torch.equal(_losses(a.history[3:]), _losses(b.history))
    with pytest.raises(ValueError, match="cannot resume some members"):
        train_members(cfgs, [None, None], resume=[tmp_path / "m0" / "checkpoints" / "step_00000003", None])


def test_a_stopped_member_leaves_the_others_unchanged(tmp_path: Path) -> None:
    cfgs = _configs()
    whole = train_members(cfgs, [None, None])

    def stop_member_1(k: int, report: EvalReport) -> bool:
        return k != 1  # a scheduler stops member 1 at its first report (step 3)

    ended: list[tuple[int, str, int]] = []
    got = train_members(cfgs, [tmp_path / "m0", tmp_path / "m1"], stop_member_1,
                        on_end=lambda k, result: ended.append((k, result.status, result.step)))
    assert ended == [(1, "stopped", 3), (0, "finished", 6)]  # each as it leaves
    assert (got[1].status, got[1].step) == ("stopped", 3) and (got[0].status, got[0].step) == ("finished", 6)
    assert torch.equal(_losses(got[1].history), _losses(whole[1].history[:3]))
    # Member 0 trains on alone: from its state at step 3 its run is the one-member run resumed there
    # (bit for bit: the same kernels); against the two-member run, to rounding (other kernels).
    assert torch.equal(_losses(got[0].history[:3]), _losses(whole[0].history[:3]))
    alone = train(cfgs[0], resume=tmp_path / "m0" / "checkpoints" / "step_00000003")
    assert torch.equal(_losses(got[0].history[3:]), _losses(alone.history))
    torch.testing.assert_close(_losses(got[0].history), _losses(whole[0].history), rtol=TOLERANCE, atol=TOLERANCE)
    assert json.loads((tmp_path / "m1" / "metrics.json").read_text())["status"] == "stopped"
    assert [line["step"] for line in _eval_lines(tmp_path / "m1")] == [3]


def test_a_diverging_member_ends_alone(tmp_path: Path) -> None:
    cfgs = _configs(**{"train.max_loss": 50.0})
    cfgs[1] = cfgs[1].replace(**{"optim.lr_d": 1e3, "optim.lr_g": 1e3})
    reports: list[EvalReport] = []

    def keep(k: int, report: EvalReport) -> bool:
        if k == 1:
            reports.append(report)
        return True

    got = train_members(cfgs, [tmp_path / "m0", tmp_path / "m1"], keep)
    assert got[1].status == "diverged" and "diverged at step" in got[1].message
    assert got[0].status == "finished" and got[0].step == 6 and torch.isfinite(_losses(got[0].history)).all()
    last = reports[-1]
    assert last.metrics[names.DIVERGED_STEP] == got[1].step and last.checkpoint is None


def test_members_that_differ_in_shape_are_refused() -> None:
    cfgs = [Config.from_flat(BASE), Config.from_flat({**BASE, "model.width": 0.25})]
    with pytest.raises(ValueError, match="model.width"):
        train_members(cfgs, [None, None])


def test_ctrl_c_checkpoints_every_member_and_they_resume_exactly(tmp_path: Path) -> None:
    # Ctrl-C at step 3's report: the loop ends after the step, every member's last completed step
    # is checkpointed and recorded as interrupted, and resuming all of them gives the uninterrupted run.
    import os
    import signal

    from infogan.interrupt import Interrupted

    cfgs = _configs(**{"train.checkpoint_every": 100, "train.eval_every": 3})
    whole = train_members(cfgs, [None, None])

    def ctrl_c(k: int, report: EvalReport) -> bool:
        if k == 1 and report.step == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return True

    with pytest.raises(KeyboardInterrupt) as info:
        train_members(cfgs, [tmp_path / "m0", tmp_path / "m1"], ctrl_c)
    assert isinstance(info.value, Interrupted)
    for k in range(2):
        ending = json.loads((tmp_path / f"m{k}" / "metrics.json").read_text())
        assert (ending["status"], ending["step"]) == ("interrupted", 3)
        assert ending["checkpoint"] == str(tmp_path / f"m{k}" / "checkpoints" / "step_00000003")
    resumed = train_members(cfgs, [None, None], resume=[tmp_path / f"m{k}" / "checkpoints" / "step_00000003"
                                                        for k in range(2)])
    for a, b in zip(whole, resumed, strict=True):
        assert torch.equal(_losses(a.history[3:]), _losses(b.history))


def test_the_progress_bar_counts_steps_and_members(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train_members(_configs(), [None, None], progress=True)
    err = capsys.readouterr().err
    assert "6/6" in err and "members=2" in err and "loss_d=" in err


def test_a_checkpoint_from_another_kind_of_device_restarts_the_draws_with_a_warning() -> None:
    # A CPU generator's state cannot continue on a GPU's (another algorithm): the draws restart from
    # a seed of (train.seed, step), the same on every resume, and the run says so.
    from infogan.data import load_dataset
    from infogan.step import InfoGANStep

    cpu = torch.device("cpu")
    cfg = _configs()[0]
    step = InfoGANStep([cfg], load_dataset(cfg, cpu), cpu)
    foreign = torch.zeros(16, dtype=torch.uint8)  # a CUDA (Philox) generator's state: seed and offset
    states = []
    for _ in range(2):
        with pytest.warns(UserWarning, match="made on another kind of device"):
            step.restore_generator(0, foreign, 3)
        states.append(step.samplers[0].generator.get_state())
    assert torch.equal(states[0], states[1])
    own = step.samplers[0].generator.get_state()
    step.restore_generator(0, own, 3)  # a state of this kind: continued as it was
    assert torch.equal(step.samplers[0].generator.get_state(), own)
