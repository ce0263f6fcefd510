"""WriteToFiles: elements -> files on any Beam filesystem, staged until committed.

The one stage-then-commit engine of the file-writing sinks (snapshots, the
metric and the cost stores), shaped like Beam's ``fileio.WriteToFiles(path,
destination=..., sink=...)``: each bundle writes one staging file per
destination it saw and hands on their names (``StageFiles``); one final step
moves the staged files of the bundles that succeeded to their names in place
(``commit_files``) and removes what they replace. A retried bundle's staging
files are never committed, and the commit removes them. It runs on Beam's
``FileSystems``, so ``path`` may be a local directory, ``gs://...`` or any
filesystem Beam has.

Unlike ``fileio.WriteToFiles``, ``records(element)`` may turn one element into
records of several destinations (a VM and its stats: one step per VM, not a
step per record), and each record counts (``count_of``) in what the commit
reports.
"""
from __future__ import annotations

import copy
import os
import posixpath
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from typing import Any, Callable, Generic, Hashable, Iterable, TypeVar

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms.common.windows import in_global_window
from transforms.sinks.files.formats import FileSink

STAGING = "_staging"

# element -> [(destination, record)]
Records = Callable[[Any], Iterable[tuple[Hashable, Any]]]
# record -> (what it counts for, how many)
CountOf = Callable[[Any], tuple[Hashable, int]]


Destination = TypeVar("Destination", bound=Hashable)


class FileLayout(ABC, Generic[Destination]):
    """Where a destination's committed files go (relative to the write's path) and which
    files already there a commit replaces. Subclasses define the three methods."""

    def __init__(self, staging: str = STAGING):
        self.staging = staging  # the staging directory, relative to the path

    @abstractmethod
    def directory(self, destination: Destination) -> str:
        ...

    @abstractmethod
    def name(self, destination: Destination, index: int, total: int) -> str:
        ...

    @abstractmethod
    def replaces(self, directory: str, name: str) -> bool:
        """A file named ``name`` in ``directory`` that a commit there replaces, if it did not write it."""
        ...

    def swept(self) -> Iterable[str]:
        """Directories whose replaced files go even when no destination of the commit is there."""
        return ()


def resolve(path: str) -> str:
    """A local path made absolute (where the worker runs); other filesystems' paths as they are."""
    return path if "://" in path else os.path.abspath(path)


def _create(path: str):
    return FileSystems.create(path, mime_type="application/octet-stream",
                              compression_type=CompressionTypes.UNCOMPRESSED)


class StageFiles(beam.DoFn):
    """Elements -> staged files; at the end of each bundle, one
    ``{"destination", "path", "counts": [(key, n)]}`` per file written."""

    def __init__(self, path: str, layout: FileLayout, sink: FileSink, records: Records, count_of: CountOf,
                 namespace: str):
        self.path, self.layout, self.sink, self.records, self.count_of = path, layout, sink, records, count_of
        self.staged = Metrics.counter(namespace, "records_staged")

    def setup(self):
        self.staging = posixpath.join(resolve(self.path), self.layout.staging)

    def start_bundle(self):
        self.files: dict[Hashable, tuple[str, Any, FileSink, Counter]] = {}

    def process(self, element: Any) -> None:
        for destination, record in self.records(element):
            entry = self.files.get(destination)
            if entry is None:
                entry = self.files[destination] = self._open()
            entry[2].write(record)
            key, n = self.count_of(record)
            entry[3][key] += n

    def finish_bundle(self):
        files, self.files = self.files, {}
        for destination, (path, fh, sink, counts) in files.items():
            sink.flush()
            fh.close()
            self.staged.inc(sum(counts.values()))
            yield in_global_window({"destination": destination, "path": path, "counts": sorted(counts.items())})

    def _open(self) -> tuple[str, Any, FileSink, Counter]:
        sink = copy.copy(self.sink)
        path = posixpath.join(self.staging, f"{uuid.uuid4().hex}{sink.suffix}")
        fh = _create(path)
        sink.open(fh)
        return path, fh, sink, Counter()


def _under(base: str, relative: str) -> str:
    return posixpath.join(base, relative) if relative else base


def _exists(path: str) -> bool:
    return FileSystems.exists(path)


def _names_in(directory: str) -> list[str]:
    if not _exists(directory):
        return []
    return [m.path for m in FileSystems.match([posixpath.join(directory, "*")])[0].metadata_list]


def commit_files(path: str, layout: FileLayout, staged: list[dict]) -> tuple[list[str], list]:
    """Staged files of successful bundles -> their names in place; returns (their paths,
    [(key, n)] summed over them).

    Safe to repeat: a file already moved is not moved again. Files a destination's
    directory holds that this commit did not write and the layout says it replaces
    go, and so does every staged file, committed or not.
    """
    base = resolve(path)
    by_destination: dict[Hashable, list[dict]] = {}
    for s in staged:
        destination = s["destination"]
        by_destination.setdefault(tuple(map(tuple, destination)) if isinstance(destination, list) else destination,
                                  []).append(s)
    paths: list[str] = []
    counts: Counter = Counter()
    directories = {_under(base, d): d for d in layout.swept()}  # full path -> relative to the path
    for destination, files in sorted(by_destination.items()):
        relative = layout.directory(destination)
        directory = _under(base, relative)
        directories[directory] = relative
        if not _exists(directory):
            FileSystems.mkdirs(directory)
        for i, s in enumerate(sorted(files, key=lambda f: f["path"])):
            target = posixpath.join(directory, layout.name(destination, i, len(files)))
            if _exists(s["path"]):  # a retried commit finds its staged file already moved: fine
                if _exists(target):
                    FileSystems.delete([target])
                FileSystems.rename([s["path"]], [target])
            paths.append(target)
            for key, n in s["counts"]:
                counts[tuple(key) if isinstance(key, list) else key] += n
    keep = set(paths)
    stale = [p for d, relative in sorted(directories.items()) for p in _names_in(d)
             if p not in keep and layout.replaces(relative, posixpath.basename(p))]
    staging = posixpath.join(base, layout.staging)
    stale += _names_in(staging)
    if stale:
        FileSystems.delete(stale)
    if _exists(staging):  # a local directory (object stores have none left)
        FileSystems.delete([staging])
    return paths, sorted(counts.items())


class _CommitFn(beam.DoFn):
    def __init__(self, path: str, layout: FileLayout):
        self.path, self.layout = path, layout

    def process(self, staged: list[dict]) -> Iterable[tuple[list[str], list]]:
        yield commit_files(self.path, self.layout, staged)


class WriteToFiles(beam.PTransform):
    """Elements -> one ``(committed paths, [(key, n)])`` once every file is in place."""

    def __init__(self, path: str, layout: FileLayout, sink: FileSink, records: Records, count_of: CountOf,
                 namespace: str):
        super().__init__()
        self.path, self.layout = path, layout
        self.stage = StageFiles(path, layout, sink, records, count_of, namespace)

    def expand(self, elements):
        return (elements
                | "Stage" >> beam.ParDo(self.stage)
                | "Gather" >> beam.combiners.ToList()
                | "Commit" >> beam.ParDo(_CommitFn(self.path, self.layout)))
