"""WriteToPartitionedParquet: rows -> a Hive-partitioned Parquet dataset, atomically.

The layout of the metric and cost stores on the one file engine (``write_files.py``):
``<root>/<key>=<value>/.../<run_id>-NNNNN.parquet``, staged under
``<root>/_staging/<run_id>/``. ``weight_of`` says how many records an element
stands for (an element may be a batch of points), for row groups and counts.
Two replacement policies:

- ``run``: a partition holds one file set per run id; re-running the same run
  id replaces its own files (metric points: every run owns its window).
- ``partition``: a committed partition is replaced whole (costs: a re-collected
  day replaces that day, never doubles it).
"""
from __future__ import annotations

import posixpath
from typing import Any, Callable, Iterable

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from transforms.sinks.files.formats import ParquetSink
from transforms.sinks.files.write_files import STAGING, FileLayout, WriteToFiles

ROWS_PER_GROUP = 100_000

Partition = tuple[tuple[str, str], ...]  # (("date", "2026-11-28"), ...)


def partition_dir(base: str, partition: Partition) -> str:
    return posixpath.join(base, *(f"{k}={v}" for k, v in partition))


class PartitionLayout(FileLayout[Partition]):
    """``<key>=<value>/...`` directories, files ``<run_id>-NNNNN.parquet``."""

    def __init__(self, run_id: str, replace: str):
        if replace not in ("run", "partition"):
            raise ValueError("replace must be 'run' or 'partition'")
        super().__init__(posixpath.join(STAGING, run_id))
        self.run_id, self.replace = run_id, replace

    def directory(self, destination: Partition) -> str:
        return partition_dir("", destination)

    def name(self, destination: Partition, index: int, total: int) -> str:
        return f"{self.run_id}-{index:05d}.parquet"

    def replaces(self, directory: str, name: str) -> bool:
        return name.endswith(".parquet") and (self.replace == "partition" or name.startswith(f"{self.run_id}-"))


class _ByPartition:
    """Picklable ``row -> [(partition, row)]``."""

    def __init__(self, partition_of: Callable[[Any], Partition]):
        self.partition_of = partition_of

    def __call__(self, row: Any) -> list[tuple[Partition, Any]]:
        return [(self.partition_of(row), row)]


class _AccountWeight:
    """Picklable ``row -> (account, rows it stands for)``."""

    def __init__(self, weight_of: Callable[[Any], int]):
        self.weight_of = weight_of

    def __call__(self, row: Any) -> tuple[str, int]:
        return row["account"], self.weight_of(row)


def _one(row: Any) -> int:
    return 1


class _Results(beam.DoFn):
    def __init__(self, sink: str, count_key: str):
        self.sink, self.count_key = sink, count_key
        self.committed = Metrics.counter(sink, "rows_committed")

    def process(self, committed: tuple) -> Iterable[dict]:
        _, counts = committed
        self.committed.inc(sum(n for _, n in counts))
        for account, n in counts:
            yield {"sink": self.sink, "account": account, self.count_key: n}


class WriteToPartitionedParquet(beam.PTransform):
    """Rows -> per-account results, emitted once the dataset is committed."""

    def __init__(self, root: str, run_id: str, to_table: Callable[[list], pa.Table],
                 partition_of: Callable[[Any], Partition], replace: str, sink: str, count_key: str,
                 schema: pa.Schema, weight_of: Callable[[Any], int] = _one):
        super().__init__()
        self.write = WriteToFiles(
            root, PartitionLayout(run_id, replace),
            ParquetSink(schema, to_table, ROWS_PER_GROUP, weight_of, compression="zstd"),
            records=_ByPartition(partition_of), count_of=_AccountWeight(weight_of), namespace=sink)
        self.sink, self.count_key = sink, count_key

    def expand(self, rows):
        return rows | "Write" >> self.write | "Results" >> beam.ParDo(_Results(self.sink, self.count_key))
