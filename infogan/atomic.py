"""Atomic file writes: write a temporary file next to the destination, then ``os.replace`` it.

A crash mid-write leaves either the old file or none, never a torn one; readers never see a half
file. Every file the project writes for others to read (checkpoints, JSON records, figures,
Parquet tables, cached networks) goes through ``atomic_path``. Standard library only, so the
analysis package can use it without loading torch.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike[str], fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it replaces ``path``.

    The temporary name ends with the destination's suffix, so writers that infer a format from
    the extension (matplotlib, torchvision, numpy's ``.npz``) behave as they would on ``path``.

    Args:
        path: the destination file (its folder is created).
        fsync: flush the file to disk before the rename (checkpoints: survive a power loss too).
    Yields:
        The temporary path to write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    # mkstemp makes the file private (0600); results are read by others (shared storage, an
    # MLflow server, teammates), so give it the usual rw-r--r--.
    os.chmod(tmp, 0o644)
    try:
        yield Path(tmp)
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike[str], payload: Any) -> Path:
    """Write ``payload`` as indented, key-sorted JSON, atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    return Path(path)
