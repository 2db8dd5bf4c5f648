"""Files kept next to Tune's state (the sweep's parent run, its config, the confirmation's plan):
JSON under ``<storage>/<sweep>/``, on a local path or a URI such as ``s3://`` (pyarrow's
filesystems, as Tune's own storage)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _storage_fs(storage_path: str) -> tuple[Any, str]:
    import pyarrow.fs

    if "://" in storage_path:
        fs, root = pyarrow.fs.FileSystem.from_uri(storage_path)
        return fs, root.rstrip("/")
    return pyarrow.fs.LocalFileSystem(), str(Path(storage_path).resolve())


def read_storage_json(storage_path: str, name: str, filename: str) -> dict[str, Any] | None:
    """``<storage>/<name>/<filename>`` as JSON, or None when missing."""
    import pyarrow.fs

    fs, root = _storage_fs(storage_path)
    path = f"{root}/{name}/{filename}"
    if fs.get_file_info(path).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(path) as fh:
        return json.loads(fh.read().decode())


def write_storage_json(storage_path: str, name: str, filename: str, payload: dict[str, Any]) -> None:
    """Write ``<storage>/<name>/<filename>`` (via a temporary name on local disks)."""
    fs, root = _storage_fs(storage_path)
    fs.create_dir(f"{root}/{name}", recursive=True)
    data = json.dumps(payload, indent=2, default=str).encode()  # key order kept: a saved space's is its knobs'
    tmp = f"{root}/{name}/.{filename}.tmp"
    with fs.open_output_stream(tmp) as fh:
        fh.write(data)
    fs.move(tmp, f"{root}/{name}/{filename}")
