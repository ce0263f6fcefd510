"""Small file helpers on Beam's filesystems (local paths, gs://, ...)."""
from __future__ import annotations

import json
import os
import posixpath

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems


def _staged(path: str) -> str:
    return f"{path}.tmp"


def write_json_atomically(path: str, doc: dict) -> None:
    """Readers see the old file or the new one, never half of one, and never none.

    The document is written whole to ``<path>.tmp`` first, then put in place:
    - local files: flushed to disk, then ``os.replace`` (one atomic rename over the old file);
    - object stores (gs://, s3://, azfs://): Beam's rename copies over the old object and
      deletes the copy's source; an object store replaces an object whole, so a reader
      gets the old object or the new one;
    - a filesystem whose rename refuses an existing destination (hdfs://): the old file is
      deleted only once the new one is complete under ``<path>.tmp``, which
      ``read_json_if_present`` reads in the moment between the delete and the rename.
    """
    directory = posixpath.dirname(path)
    if directory and not FileSystems.exists(directory):
        FileSystems.mkdirs(directory)
    data = json.dumps(doc, indent=2, sort_keys=True).encode()
    tmp = _staged(path)
    if FileSystems.get_scheme(path) is None:  # a local path
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())  # the new content is on disk before its name replaces the old
        os.replace(tmp, path)
        return
    with FileSystems.create(tmp) as fh:
        fh.write(data)
    try:
        FileSystems.rename([tmp], [path])
    except BeamIOError:
        if not FileSystems.exists(path):
            raise
        FileSystems.delete([path])
        FileSystems.rename([tmp], [path])


def read_json_if_present(path: str) -> dict | None:
    """The JSON document at ``path``, or None when there is none (or it is unreadable).

    Between the two steps of a replace on a filesystem that cannot rename over a file,
    the document is complete under its staged name: it is read there.
    """
    for candidate in (path, _staged(path)):
        try:
            if not FileSystems.exists(candidate):
                continue
            with FileSystems.open(candidate) as fh:
                doc = json.loads(fh.read().decode())
            return doc if isinstance(doc, dict) else None
        except (OSError, ValueError):
            return None
    return None
