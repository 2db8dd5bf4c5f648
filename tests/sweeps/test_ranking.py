"""Known-answer tests of sweeps.ranking, the one ranking the sweep's summary and the analysis share."""

from __future__ import annotations

import math

import pandas as pd

from sweeps import ranking


def test_ranked_best_first_missing_last_ties_in_order_or_by_tiebreak() -> None:
    frame = pd.DataFrame({"trial_id": ["a", "b", "c", "d", "e"], "group": ["y", "y", "x", "x", "x"],
                          "m": [0.1, 0.5, math.nan, 0.5, 0.3]})
    assert ranking.ranked(frame, "m", ascending=False)["trial_id"].tolist() == ["b", "d", "e", "a", "c"]
    assert ranking.ranked(frame, "m", ascending=True)["trial_id"].tolist() == ["a", "e", "b", "d", "c"]
    by_group = ranking.ranked(frame, "m", ascending=False, tiebreak=("group",))
    assert by_group["trial_id"].tolist() == ["d", "b", "e", "a", "c"]
    assert by_group.index.tolist() == [0, 1, 2, 3, 4]
    no_metric = pd.DataFrame({"trial_id": ["a"]})  # no trial reported the objective
    assert ranking.ranked(no_metric, "m", ascending=False) is no_metric


def test_best_row_is_the_best_finite_value() -> None:
    frame = pd.DataFrame({"trial_id": ["a", "b", "c", "d"], "m": [0.2, math.inf, math.nan, 0.4]})
    assert ranking.best_row(frame, "m", ascending=False)["trial_id"] == "d"
    assert ranking.best_row(frame, "m", ascending=True)["trial_id"] == "a"
    assert ranking.finite_rows(frame, "m")["trial_id"].tolist() == ["a", "d"]
    assert ranking.best_row(frame.iloc[1:3], "m", ascending=False) is None


def test_non_dominated_known_answer_with_three_objectives() -> None:
    # (min x, max y, min z): a dominates b (worse y); c trades x for y; d duplicates a; e is worse
    # than c everywhere; f has no z, so it neither dominates nor is dominated.
    frame = pd.DataFrame({"trial_id": ["a", "b", "c", "d", "e", "f"],
                          "x": [1.0, 1.0, 2.0, 1.0, 3.0, 0.0],
                          "y": [0.5, 0.4, 0.9, 0.5, 0.8, 9.0],
                          "z": [1.0, 1.0, 1.0, 1.0, 2.0, math.nan]})
    front = ranking.non_dominated(frame, ["x", "y", "z"], ["min", "max", "min"])
    assert front["trial_id"].tolist() == ["a", "c", "d", "f"]
    assert front.index.tolist() == [0, 2, 3, 5]  # the frame's rows, in its order
    both_max = ranking.non_dominated(frame.iloc[:5], ["x", "y"], ["max", "max"])
    assert both_max["trial_id"].tolist() == ["c", "e"]
    assert ranking.non_dominated(frame.iloc[:0], ["x", "y"], ["min", "max"]).empty


def test_markdown_table_cells_floats_blanks_pipes_and_index() -> None:
    frame = pd.DataFrame({"name": ["a|b", None], "value": [0.123456, math.nan], "n": [3, 4]},
                         index=pd.Index(["r1", "r2"], name="row"))
    assert ranking.markdown_table(frame).splitlines() == [
        "| name | value | n |", "|---|---|---|", "| a\\|b | 0.1235 | 3 |", "|  |  | 4 |"]
    assert ranking.markdown_table(frame, floatfmt=".2f", index=True).splitlines()[::2] == [
        "| row | name | value | n |", "| r1 | a\\|b | 0.12 | 3 |"]
