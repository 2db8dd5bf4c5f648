"""Which knobs a sweep searched: the search space it logged, kept beside its tables.

The sweep logs its space as the parent run's ``search_space.json`` (``SearchSpace.to_json``:
``params`` searched, ``fixed``, ``ties``); ``analysis collect`` copies it next to
``trials.parquet``, and the report and notebooks take their default knob from it instead of
assuming one. Tables collected without it (an older collection, a sweep logged by other means)
fall back to the model keys whose values differ between the trials.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import schema as S
from infogan.atomic import atomic_path
from infogan.config import KEYS, key_role, value_kind
from sweeps.record import ARTIFACT_SEARCH_SPACE

__all__ = ["SPACE_FILE", "default_knob", "read_space", "searched_knobs", "write_space"]

SPACE_FILE = ARTIFACT_SEARCH_SPACE  # the same name beside the tables as in the parent run


def write_space(folder: str | os.PathLike[str], space: Mapping[str, Any]) -> Path:
    """Write a sweep's search space as ``<folder>/search_space.json`` (atomically)."""
    path = Path(folder) / SPACE_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(space, indent=2, default=str) + "\n")  # in the space's order
    return path


def read_space(tables: str | os.PathLike[str], sweep: str) -> dict[str, Any] | None:
    """The search space collected with a sweep's tables, or None if there is none.

    Args:
        tables: the folder ``collect`` wrote, or one sweep's folder in it.
        sweep: the sweep's name.
    """
    for path in (S.sweep_dir(tables, sweep) / SPACE_FILE, Path(tables) / SPACE_FILE):
        if path.is_file():
            return json.loads(path.read_text())
    return None


def searched_knobs(trials: pd.DataFrame, space: Mapping[str, Any] | None) -> list[str]:
    """The config columns a sweep searched, in the space's order.

    Args:
        trials: the sweep's trials table.
        space: its logged search space (``read_space``), or None: then the model and budget keys
            whose values differ between trials, in ``infogan.config`` order.
    """
    if space is not None:
        return [k for k in space.get("params", {}) if k in trials.columns]
    return [k for k in KEYS if k in trials.columns and key_role(k) in ("model", "budget")
            and trials[k].nunique(dropna=True) > 1]


def default_knob(trials: pd.DataFrame, space: Mapping[str, Any] | None) -> str:
    """The knob whose effect a report shows when none is named: the first numeric searched one.

    Raises:
        ValueError: the sweep searched no numeric knob (then a knob must be named).
    """
    knobs = searched_knobs(trials, space)
    numeric = [k for k in knobs if value_kind(k) in ("int", "float")]
    if not numeric:
        where = "its search space" if space is not None else "its trials (no search_space.json beside the tables)"
        found = f" (searched: {', '.join(knobs)})" if knobs else ""
        raise ValueError(f"no numeric searched knob in {where}{found}; name one with --param KEY")
    return numeric[0]
