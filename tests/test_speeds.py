"""Wall times derived from measured speeds: known answers, and the help texts that quote them."""

import pytest

from infogan import speeds
from infogan.presets import PAPER_STEPS, PRESETS
from sweeps import cli, spaces


def test_training_seconds_known_answers():
    alone = speeds.Speed("a GPU", "dsprites", "eager", 20.0, 1, "test")
    four = speeds.Speed("a GPU", "dsprites", "eager", 10.0, 4, "test")
    assert speeds.training_seconds(1000, alone) == 50.0
    assert speeds.training_seconds(1000, alone, models=3) == 150.0
    assert speeds.training_seconds(1000, four, models=4) == 100.0  # one wave of four
    assert speeds.training_seconds(1000, four, models=5) == 200.0  # the fifth trains in a second wave
    with pytest.raises(ValueError, match="models >= 1"):
        speeds.training_seconds(1000, four, models=0)


@pytest.mark.parametrize(("seconds", "text"), [(42, "42 s"), (89.4, "89 s"), (1680, "28 min"), (11_009, "3.1 h"),
                                               (3 * 86400, "3.0 days")])
def test_format_duration(seconds, text):
    assert speeds.format_duration(seconds) == text


def test_paper_preset_quotes_its_measured_wall_time():
    # 322,560 steps at the H200's measured 29.3 steps/s: 11,009 s.
    assert PAPER_STEPS == 322_560
    assert "about 3.1 h of training on one NVIDIA H200 at the eager loop's measured 29.3 steps/s" in \
        PRESETS["paper"]["description"]


def test_gpu_budget_help_is_derived_from_the_speed_measured_at_its_concurrency():
    gpu = spaces.BUDGETS["gpu"]
    # The eight-process measurement only sizes a budget that runs eight trials at a time.
    assert gpu["max_concurrent"] == speeds.H200_EIGHT_PROCESSES.processes
    help_text = " ".join(cli.build_parser().format_help().split())
    hours = speeds.training_seconds(gpu["fixed"]["train.steps"], speeds.H200_EIGHT_PROCESSES, gpu["num_samples"]) / 3600
    assert f"{hours:.1f} h of training on one NVIDIA H200" in help_text
    assert f"{gpu['num_samples']} trials of {gpu['fixed']['train.steps']:,} steps" in help_text
