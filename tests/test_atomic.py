"""Atomic writes: a failed write leaves the old file and no temporary file behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infogan.atomic import atomic_path, write_json


def test_write_json_replaces_the_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "metrics.json"
    write_json(path, {"b": 1, "a": [1, 2]})
    write_json(path, {"step": 3})
    assert json.loads(path.read_text()) == {"step": 3}
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]
    assert path.stat().st_mode & 0o777 == 0o644  # readable by others, unlike mkstemp's 0600


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "table.parquet"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="writer crashed"), atomic_path(path, fsync=True) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".parquet"  # writers that infer the format
        tmp.write_text("half")
        raise RuntimeError("writer crashed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"]
