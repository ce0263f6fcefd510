"""Small file helpers on Beam's filesystems (local paths, gs://, ...)."""
from __future__ import annotations

import json
import posixpath

from apache_beam.io.filesystems import FileSystems


def write_json_atomically(path: str, doc: dict) -> None:
    """Readers see the old file or the new one, never half of one."""
    directory = posixpath.dirname(path)
    if directory and not FileSystems.exists(directory):
        FileSystems.mkdirs(directory)
    tmp = f"{path}.tmp"
    with FileSystems.create(tmp) as fh:
        fh.write(json.dumps(doc, indent=2, sort_keys=True).encode())
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def read_json_if_present(path: str) -> dict | None:
    """The JSON document at ``path``, or None when there is none (or it is unreadable)."""
    try:
        if not FileSystems.exists(path):
            return None
        with FileSystems.open(path) as fh:
            doc = json.loads(fh.read().decode())
        return doc if isinstance(doc, dict) else None
    except (OSError, ValueError):
        return None
