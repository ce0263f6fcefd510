"""WriteToMetricStore: per-VM metric point batches -> Parquet dataset partitioned by ``date``.

Each run owns the points of its stats window: its files in a day are
``<run_id>-NNNNN.parquet`` and re-running the same run id replaces them.
Rows are sorted by metric, then resource, so readers prune row groups.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

import apache_beam as beam
import pyarrow as pa

from schemas.parquet import METRIC_POINT
from transforms.parquet_store import Partition, WriteToPartitionedParquet


def date_of(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


DAY_MS = 86_400_000


def split_by_date(batch: dict) -> Iterable[dict]:
    """A VM's point batch -> one batch per day (a window may cross midnight)."""
    stamps = batch["timestamp_ms"]
    if not stamps:
        return
    lo, hi = min(stamps), max(stamps)
    if lo // DAY_MS == hi // DAY_MS:  # the usual case: one day, no per-point work
        yield {**batch, "date": date_of(lo)}
        return
    days = [date_of(t) for t in stamps]
    for day in sorted(set(days)):
        idx = [i for i, d in enumerate(days) if d == day]
        yield {"account": batch["account"], "resource_id": batch["resource_id"], "date": day,
               **{k: [batch[k][i] for i in idx] for k in ("metric", "timestamp_ms", "value", "unit")}}


def metric_partition(batch: dict) -> Partition:
    return (("date", batch["date"]),)


def batch_size(batch: dict) -> int:
    return len(batch["metric"])


def points_table(batches: list[dict], run_id: str) -> pa.Table:
    """Point batches -> one table sorted by metric, resource, time (for row-group pruning)."""
    account, resource, region, metric, ts, value, unit = [], [], [], [], [], [], []
    for b in batches:
        n = len(b["metric"])
        account += [b["account"]] * n
        resource += [b["resource_id"]] * n
        region += [b.get("region_code", "")] * n
        metric += b["metric"]
        ts += b["timestamp_ms"]
        value += b["value"]
        unit += b["unit"]
    table = pa.Table.from_pydict({
        "account": account, "resource_id": resource, "region_code": region, "metric": metric,
        "timestamp": ts, "value": value, "unit": unit, "run_id": [run_id] * len(metric),
    }, schema=METRIC_POINT)
    return table.sort_by([("metric", "ascending"), ("resource_id", "ascending"), ("timestamp", "ascending")])


class _PointsTable:
    """Picklable ``batches -> Table`` bound to a run id."""

    def __init__(self, run_id: str):
        self.run_id = run_id

    def __call__(self, batches: list) -> pa.Table:
        return points_table(batches, self.run_id)


class WriteToMetricStore(beam.PTransform):
    """Metric points -> per-account results ``{sink: metrics, account, points}``."""

    def __init__(self, root: str, run_id: str):
        super().__init__()
        self.root, self.run_id = root, run_id

    def expand(self, points):
        return (points
                | "SplitByDate" >> beam.FlatMap(split_by_date)
                | WriteToPartitionedParquet(self.root, self.run_id, _PointsTable(self.run_id), metric_partition,
                                            replace="run", sink="metrics", count_key="points",
                                            weight_of=batch_size))
