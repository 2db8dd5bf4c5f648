"""Which trials are best, computed once: trials ranked by an objective, the best trial, the
non-dominated trials of several objectives, and the Markdown table they are shown in.

The sweep (its closing summary and the parent run's leaderboard, from Tune's trials) and the
analysis (its report, from the trials table) each turn their trials into a frame with one row per
trial and call these functions. Pandas and numpy only: the analysis imports this module without
loading Ray, Optuna or MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd


def ranked(frame: pd.DataFrame, metric: str, ascending: bool, tiebreak: Sequence[str] = ()) -> pd.DataFrame:
    """The rows best first by one metric.

    Args:
        frame: one row per trial.
        metric: the column to rank by; a frame without it (no trial reported it) is returned as is.
        ascending: True when lower is better.
        tiebreak: columns that order equal values (ascending); rows still equal keep their order.
    Returns:
        The sorted rows (missing values last), with a fresh index.
    """
    if metric not in frame.columns:
        return frame
    by = [metric, *tiebreak] if tiebreak else metric
    order = [ascending, *(True for _ in tiebreak)] if tiebreak else ascending
    return frame.sort_values(by, ascending=order, na_position="last", kind="mergesort").reset_index(drop=True)


def finite_rows(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows whose ``metric`` is a finite float (a trial that never reported it, or reported a
    NaN or an infinity, cannot be best)."""
    return frame[[isinstance(v, float) and math.isfinite(v) for v in frame[metric]]]


def best_row(frame: pd.DataFrame, metric: str, ascending: bool) -> pd.Series | None:
    """The best of the rows whose ``metric`` is a finite float, or None when there is none."""
    finite = finite_rows(frame, metric)
    return None if finite.empty else ranked(finite, metric, ascending).iloc[0]


def non_dominated(frame: pd.DataFrame, metrics: Sequence[str], modes: Sequence[str]) -> pd.DataFrame:
    """The rows no other row beats on every objective: a row is dominated by another that is no
    worse on all of ``metrics`` and strictly better on one. Identical rows are all kept; a missing
    value neither dominates nor is dominated on its objective.

    Args:
        frame: one row per trial.
        metrics: the objective columns; modes: ``min`` or ``max`` for each.
    Returns:
        The non-dominated rows, in the frame's order (index kept).
    """
    signs = np.array([1.0 if mode == "min" else -1.0 for mode in modes])
    values = frame[list(metrics)].to_numpy(dtype=float) * signs  # (n, k), lower is better
    # (n, n) comparisons are fine for sweeps of thousands of trials; [i, j]: row j against row i.
    no_worse = (values[None, :, :] <= values[:, None, :]).all(axis=2)
    better = (values[None, :, :] < values[:, None, :]).any(axis=2)
    return frame[~(no_worse & better).any(axis=1)]


def markdown_table(df: pd.DataFrame, floatfmt: str = ".4g", index: bool = False) -> str:
    """A GitHub-flavoured Markdown table (no ``tabulate`` dependency).

    Args:
        df: frame to render.
        floatfmt: format for floats; missing values are empty cells.
        index: include the index as the first column.
    Returns:
        Markdown text.
    """
    if index:
        df = df.reset_index()

    def cell(v: object) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if isinstance(v, float):
            return format(v, floatfmt)
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])
