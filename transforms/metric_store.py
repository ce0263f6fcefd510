"""WriteToMetricStore: metric points -> Parquet dataset partitioned by ``date``.

Each run owns the points of its stats window: its files in a day are
``<run_id>-NNNNN.parquet`` and re-running the same run id replaces them.
Rows are sorted by metric, then resource, so readers prune row groups.
"""
from __future__ import annotations

from datetime import datetime, timezone

import apache_beam as beam
import pyarrow as pa

from schemas.parquet import METRIC_POINT
from transforms.parquet_store import Partition, WriteToPartitionedParquet


def date_of(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def metric_partition(point: dict) -> Partition:
    return (("date", date_of(point["timestamp_ms"])),)


def points_table(points: list[dict], run_id: str) -> pa.Table:
    points = sorted(points, key=lambda p: (p["metric"], p["resource_id"], p["timestamp_ms"]))
    return pa.Table.from_pydict({
        "account": [p["account"] for p in points],
        "resource_id": [p["resource_id"] for p in points],
        "region_code": [p.get("region_code", "") for p in points],
        "metric": [p["metric"] for p in points],
        "timestamp": [p["timestamp_ms"] for p in points],
        "value": [float(p["value"]) for p in points],
        "unit": [p["unit"] for p in points],
        "run_id": [run_id] * len(points),
    }, schema=METRIC_POINT)


class _PointsTable:
    """Picklable ``rows -> Table`` bound to a run id."""

    def __init__(self, run_id: str):
        self.run_id = run_id

    def __call__(self, rows: list) -> pa.Table:
        return points_table(rows, self.run_id)


class WriteToMetricStore(beam.PTransform):
    """Metric points -> per-account results ``{sink: metrics, account, points}``."""

    def __init__(self, root: str, run_id: str):
        super().__init__()
        self.root, self.run_id = root, run_id

    def expand(self, points):
        return points | WriteToPartitionedParquet(self.root, self.run_id, _PointsTable(self.run_id),
                                                  metric_partition, replace="run", sink="metrics",
                                                  count_key="points")
