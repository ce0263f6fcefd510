"""Where a store lives: the pyarrow filesystem of a store root, resolved as the
pipeline's writers resolve it (``transforms/sinks/files/parquet_store.py``
``filesystem``), so the plugin serves whatever the pipeline can write: a local
path, or a URI (``gs://``, ``s3://``, ``hdfs://``, ``file://``) through
``pyarrow.fs.FileSystem.from_uri``."""
from __future__ import annotations

import posixpath

import pyarrow.fs as pafs


def filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, base path inside it) of a store root."""
    if "://" in root:
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), posixpath.abspath(root)


def hidden(name: str) -> bool:
    """Staging and bookkeeping entries the writers keep beside the data (``_staging``, ``.x``)."""
    return name[:1] in ("_", ".")


class StoreFiles:
    """Listing and opening the files of one store root on its filesystem."""

    def __init__(self, root: str, fs: pafs.FileSystem | None = None) -> None:
        """``fs``: the filesystem to read (``root`` is then a path in it); by default resolved from ``root``."""
        if fs is None:
            self.fs, self.base = filesystem(root)
        else:
            self.fs, self.base = fs, root
        self.root = root if "://" in root or fs is not None else self.base

    def path(self, *parts: str) -> str:
        return posixpath.join(self.base, *parts)

    def exists(self) -> bool:
        return self.fs.get_file_info(self.base).type == pafs.FileType.Directory

    def entries(self, directory: str, recursive: bool = False) -> list[pafs.FileInfo]:
        """What ``directory`` holds ([] when it is gone: replaced while we listed)."""
        selector = pafs.FileSelector(directory, allow_not_found=True, recursive=recursive)
        try:
            return self.fs.get_file_info(selector)
        except FileNotFoundError:
            return []

    def dirs(self, directory: str, prefix: str) -> list[pafs.FileInfo]:
        return [e for e in self.entries(directory)
                if e.type == pafs.FileType.Directory and e.base_name.startswith(prefix)]

    def files(self, directory: str) -> list[pafs.FileInfo]:
        return [e for e in self.entries(directory) if e.type == pafs.FileType.File and not hidden(e.base_name)]
