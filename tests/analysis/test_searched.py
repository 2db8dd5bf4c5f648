"""Which knobs a sweep searched: from its logged space beside the tables, else from the trials."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis import schema as S
from analysis.searched import SPACE_FILE, default_knob, read_space, searched_knobs, write_space
from sweeps.spaces import Param, SearchSpace


def _trials(**cols: list) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    return pd.DataFrame({"sweep": ["s"] * n, "trial_id": [f"t{i}" for i in range(n)], **cols})


def test_the_logged_space_names_the_knob_not_a_default() -> None:
    space = SearchSpace(params={"codes.categorical": Param(choices=("10", "10,3")),
                                "optim.lr_g": Param(low=1e-4, high=1e-2, log=True)}).to_json()
    trials = _trials(**{"optim.lr_g": [1e-4, 1e-3], "codes.categorical": ["10", "10,3"],
                        "loss.lambda_cont": [0.1, 0.1]})
    assert searched_knobs(trials, space) == ["codes.categorical", "optim.lr_g"]
    assert default_knob(trials, space) == "optim.lr_g"  # the first numeric one


def test_without_a_space_the_varying_model_keys_are_the_knobs() -> None:
    trials = _trials(**{"train.seed": [0, 1, 2], "loss.lambda_cat": [0.5, 1.0, 2.0],
                        "optim.lr_d": [2e-4, 2e-4, 2e-4], "train.log_every": [1, 2, 3]})
    # The seed and bookkeeping vary too, but they are not what was searched.
    assert searched_knobs(trials, None) == ["loss.lambda_cat"]
    assert default_knob(trials, None) == "loss.lambda_cat"


def test_no_numeric_searched_knob_asks_for_one() -> None:
    space = SearchSpace(params={"codes.categorical": Param(choices=("10", "10,3"))}).to_json()
    trials = _trials(**{"codes.categorical": ["10", "10,3"]})
    with pytest.raises(ValueError, match=r"searched: codes\.categorical.*--param KEY"):
        default_knob(trials, space)


def test_space_round_trips_beside_the_tables(tmp_path: Path) -> None:
    space = SearchSpace(params={"loss.lambda_cont": Param(low=0.01, high=1.0, log=True),
                                "codes.n_continuous": Param(choices=(3, 5))}).to_json()
    written = write_space(S.sweep_dir(tmp_path, "my sweep"), space)
    assert written.name == SPACE_FILE and written.parent == S.sweep_dir(tmp_path, "my sweep")
    assert read_space(tmp_path, "my sweep") == space  # from the tables root
    # In the space's order, not sorted: its first knob is the one a report shows by default.
    assert list(read_space(tmp_path, "my sweep")["params"]) == ["loss.lambda_cont", "codes.n_continuous"]
    assert read_space(written.parent, "my sweep") == space  # or from the sweep's own folder
    assert read_space(tmp_path, "other") is None


@pytest.mark.integration
@pytest.mark.slow
def test_a_real_sweeps_report_follows_its_logged_space(smoke_sweep, tmp_path: Path) -> None:
    from analysis.report import write_report
    from tests.analysis.conftest import SMOKE_SWEEP

    knobs = list(read_space(smoke_sweep.tables, SMOKE_SWEEP)["params"])
    assert knobs[0] == "loss.lambda_cont"  # the space's order survives logging and collection
    text = write_report(smoke_sweep.tables, tmp_path / "rep", sweep=SMOKE_SWEEP).read_text()
    assert f"## Effect of {knobs[0]} on eval/mig" in text
    board = text.split("## Search leaderboard by eval/mig")[1].split("\n## ")[0].strip().splitlines()
    header = next(line for line in board if line.startswith("| rank |"))
    assert all(f"| {k} |" in header for k in knobs)  # what each trial ran, every searched knob
