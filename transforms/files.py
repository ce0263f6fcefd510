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
