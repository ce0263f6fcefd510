"""WriteToMetricStore: tables of metric points -> Parquet dataset partitioned by ``date``.

Each run owns the points of its stats window: its files in a day are
``<run_id>-NNNNN.parquet`` and re-running the same run id replaces them.
Rows are sorted by metric, then resource, so readers prune row groups.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

import apache_beam as beam
import numpy as np
import pyarrow as pa

from schemas.parquet import METRIC_POINT
from transforms.elements import MetricBatch, SinkResult
from transforms.sinks.files.parquet_store import Partition, WriteToPartitionedParquet


def date_of(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


DAY_MS = 86_400_000


def split_by_date(batch: dict) -> Iterable[dict]:
    """A table of points -> one per day (a window may cross midnight)."""
    points: pa.Table = batch["points"]
    if not points.num_rows:
        return
    stamps = points["timestamp_ms"].to_numpy()
    lo, hi = int(stamps.min()), int(stamps.max())
    if lo // DAY_MS == hi // DAY_MS:  # the usual case: one day, no per-point work
        yield {**batch, "date": date_of(lo)}
        return
    days = stamps // DAY_MS
    for day in np.unique(days):
        yield {**batch, "points": points.filter(pa.array(days == day)), "date": date_of(int(day) * DAY_MS)}


def metric_partition(batch: dict) -> Partition:
    return (("date", batch["date"]),)


def batch_size(batch: dict) -> int:
    return batch["points"].num_rows


def points_table(batches: list[dict], run_id: str) -> pa.Table:
    """Point tables -> one table sorted by metric, resource, time (for row-group pruning)."""
    tables = []
    for b in batches:
        t, n = b["points"], b["points"].num_rows
        tables.append(pa.table({
            "account": pa.repeat(b["account"], n), "resource_id": t["resource_id"],
            "region_code": pa.repeat(b.get("region_code", ""), n), "metric": t["metric"],
            "timestamp": t["timestamp_ms"].cast(pa.timestamp("ms", tz="UTC")), "value": t["value"],
            "unit": t["unit"], "run_id": pa.repeat(run_id, n),
        }).cast(METRIC_POINT))
    table = pa.concat_tables(tables) if tables else METRIC_POINT.empty_table()
    return table.sort_by([("metric", "ascending"), ("resource_id", "ascending"), ("timestamp", "ascending"),
                          ("value", "ascending")])


class _PointsTable:
    """Picklable ``batches -> Table`` bound to a run id."""

    def __init__(self, run_id: str):
        self.run_id = run_id

    def __call__(self, batches: list) -> pa.Table:
        return points_table(batches, self.run_id)


class WriteToMetricStore(beam.PTransform[beam.PCollection[MetricBatch], beam.PCollection[SinkResult]]):
    """Metric points -> per-account results ``{sink: metrics, account, points}``."""

    def __init__(self, root: str, run_id: str):
        super().__init__()
        self.root, self.run_id = root, run_id

    def expand(self, points: beam.PCollection[MetricBatch]) -> beam.PCollection[SinkResult]:
        return (points
                | "SplitByDate" >> beam.FlatMap(split_by_date)
                | WriteToPartitionedParquet(self.root, self.run_id, _PointsTable(self.run_id), metric_partition,
                                            replace="run", sink="metrics", count_key="points",
                                            schema=METRIC_POINT, weight_of=batch_size))
