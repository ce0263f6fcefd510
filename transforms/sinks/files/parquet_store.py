"""WriteToPartitionedParquet: rows -> a Hive-partitioned Parquet dataset, atomically.

``weight_of`` says how many records an element stands for (an element may
be a batch of points), for the buffer limit and the counts.

Written like Beam's file sinks: each bundle writes staging files and emits
their names; one final step moves the staged files of successful bundles into
place. A retried bundle's staging file is never committed. Two replacement
policies:

- ``run``: a partition holds one file set per run id; re-running the same run
  id replaces its own files (metric points: every run owns its window).
- ``partition``: a committed partition is replaced whole (costs: a re-collected
  day replaces that day, never doubles it).
"""
from __future__ import annotations

import posixpath
import uuid
from collections import Counter, defaultdict
from typing import Callable, Iterable

import apache_beam as beam
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

STAGING = "_staging"
MAX_BUFFERED_ROWS = 250_000

Partition = tuple[tuple[str, str], ...]  # (("date", "2026-11-28"), ...)


def filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    if "://" in root:
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), posixpath.abspath(root)


def partition_dir(base: str, partition: Partition) -> str:
    return posixpath.join(base, *(f"{k}={v}" for k, v in partition))


class _StageFn(beam.DoFn):
    def __init__(self, root: str, run_id: str, to_table: Callable[[list], pa.Table],
                 partition_of: Callable[[dict], Partition], namespace: str, weight_of: Callable[[dict], int]):
        self.root, self.run_id = root, run_id
        self.to_table, self.partition_of, self.weight_of = to_table, partition_of, weight_of
        self.staged = Metrics.counter(namespace, "rows_staged")

    def setup(self):
        self.fs, self.base = filesystem(self.root)

    def start_bundle(self):
        self.buf: dict[Partition, list] = defaultdict(list)
        self.rows = 0

    def process(self, row: dict) -> Iterable:
        self.buf[self.partition_of(row)].append(row)
        self.rows += self.weight_of(row)
        if self.rows >= MAX_BUFFERED_ROWS:
            yield from self._flush()

    def finish_bundle(self):
        for out in self._flush():
            yield GlobalWindows.windowed_value(out)

    def _flush(self) -> Iterable[dict]:
        buf, self.buf, self.rows = self.buf, defaultdict(list), 0
        for partition, rows in sorted(buf.items()):
            directory = partition_dir(posixpath.join(self.base, STAGING, self.run_id), partition)
            self.fs.create_dir(directory, recursive=True)
            path = posixpath.join(directory, f"{uuid.uuid4().hex}.parquet")
            pq.write_table(self.to_table(rows), path, filesystem=self.fs, compression="zstd",
                           row_group_size=100_000)
            counts: Counter = Counter()
            for r in rows:
                counts[r["account"]] += self.weight_of(r)
            self.staged.inc(sum(counts.values()))
            yield {"partition": partition, "path": path, "counts": dict(counts)}


class _CommitFn(beam.DoFn):
    """All staged files of the run -> committed dataset files (idempotent)."""

    def __init__(self, root: str, run_id: str, replace: str, sink: str, count_key: str):
        self.root, self.run_id, self.replace = root, run_id, replace
        self.sink, self.count_key = sink, count_key
        self.committed = Metrics.counter(sink, "rows_committed")

    def process(self, staged: list[dict]) -> Iterable[dict]:
        fs, base = filesystem(self.root)
        by_partition: dict[Partition, list] = defaultdict(list)
        for s in staged:
            by_partition[tuple(map(tuple, s["partition"]))].append(s)
        totals: Counter = Counter()
        for partition, files in sorted(by_partition.items()):
            directory = partition_dir(base, partition)
            fs.create_dir(directory, recursive=True)
            prefix = f"{self.run_id}-"
            keep = set()
            for i, s in enumerate(sorted(files, key=lambda f: f["path"])):
                target = posixpath.join(directory, f"{prefix}{i:05d}.parquet")
                keep.add(target)
                # A retried commit finds its staged file already moved: fine.
                if fs.get_file_info(s["path"]).type != pafs.FileType.NotFound:
                    fs.move(s["path"], target)
                totals.update(s["counts"])
            for info in fs.get_file_info(pafs.FileSelector(directory)):
                stale = info.path not in keep and info.base_name.endswith(".parquet") and (
                    self.replace == "partition" or info.base_name.startswith(prefix))
                if stale:
                    fs.delete_file(info.path)
        staging = posixpath.join(base, STAGING, self.run_id)
        if fs.get_file_info(staging).type != pafs.FileType.NotFound:
            fs.delete_dir(staging)
        self.committed.inc(sum(totals.values()))
        for account, n in sorted(totals.items()):
            yield {"sink": self.sink, "account": account, self.count_key: n}


class WriteToPartitionedParquet(beam.PTransform):
    """Rows -> per-account results, emitted once the dataset is committed."""

    def __init__(self, root: str, run_id: str, to_table: Callable[[list], pa.Table],
                 partition_of: Callable[[dict], Partition], replace: str, sink: str, count_key: str,
                 weight_of: Callable[[dict], int] = lambda row: 1):
        super().__init__()
        if replace not in ("run", "partition"):
            raise ValueError("replace must be 'run' or 'partition'")
        self.args = (root, run_id, to_table, partition_of, replace, sink, count_key, weight_of)

    def expand(self, rows):
        root, run_id, to_table, partition_of, replace, sink, count_key, weight_of = self.args
        return (rows
                | "Stage" >> beam.ParDo(_StageFn(root, run_id, to_table, partition_of, sink, weight_of))
                | "Gather" >> beam.combiners.ToList()
                | "Commit" >> beam.ParDo(_CommitFn(root, run_id, replace, sink, count_key)))
