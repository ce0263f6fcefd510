"""ExtractMetrics: Prism VM stats -> metric points with units.

Prism's groups API answers counters per sampling interval in its own units
(ppm, kB/s, bytes per interval); CloudForet wants named metrics with units.
"""
from __future__ import annotations

from itertools import chain
from typing import Any, Callable, Iterable

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from schemas.metrics import METRIC_CATALOG
from transforms.common.windows import in_global_window
from transforms.elements import MetricBatch, VmStats
from transforms.sources.prism import TIME_MAX, TIME_MIN, parse_stats_entity

# metric -> conversion(value, interval_s) from Prism's units to the catalog's
CONVERSIONS: dict[str, Callable[[float, int], float]] = {
    "cpu.utilization": lambda v, _: v / 10_000,
    "memory.utilization": lambda v, _: v / 10_000,
    "disk.read_iops": lambda v, _: v,
    "disk.write_iops": lambda v, _: v,
    "disk.read_throughput": lambda v, _: v * 1024,
    "disk.write_throughput": lambda v, _: v * 1024,
    # Prism counts the bytes of each sampling interval: divide to get a rate.
    "network.received_throughput": lambda v, i: v / i,
    "network.sent_throughput": lambda v, i: v / i,
}
# metric -> (Prism attribute, unit, conversion(value, interval_s))
METRICS: dict[str, tuple[str, str, Callable[[float, int], float]]] = {
    metric: (spec.attribute, spec.unit, CONVERSIONS[metric]) for metric, spec in METRIC_CATALOG.items()}


def _to_millionths(values: np.ndarray) -> np.ndarray:
    """Values to the nearest millionth, by scaling (beyond 1e15 a double has no millionths)."""
    with np.errstate(over="ignore"):  # the scaled huge values are not used
        return np.where(values >= 1e15, values, np.rint(values * 1e6) / 1e6)


_ATTRIBUTE_INDEX = {attr: i for i, (attr, _, _) in enumerate(METRICS.values())}
_METRIC_NAMES = pa.array(list(METRICS))
_UNITS = pa.array([unit for _, unit, _ in METRICS.values()])


Series = tuple[list[tuple[int, int]], list, list]  # [(metric index, points)], times, values


def _series_as_is(ent: Any) -> Series | None:
    """A VM's wanted series read in bulk, or None when anything is not exactly as
    Prism answers (the careful path decides then)."""
    try:
        columns = []
        for col in ent["data"]:
            metric = _ATTRIBUTE_INDEX.get(col["name"])
            if metric is not None:
                if type(col["values"]) is not list:
                    return None
                columns.append((metric, col["values"]))
        if len({m for m, _ in columns}) != len(columns):
            return None
        flat = list(chain.from_iterable(values for _, values in columns))
        times = [v["time"] for v in flat]
        lists = [v["values"] for v in flat]
        if flat and (set(map(type, times)) != {int} or set(map(type, lists)) != {list}
                     or min(times) < TIME_MIN or max(times) > TIME_MAX):
            return None
        return [(m, len(values)) for m, values in columns], times, list(map(float, [x[0] for x in lists]))
    except (KeyError, TypeError, IndexError, ValueError, OverflowError):
        return None


def _series_checked(ent: Any) -> Series:
    segments, times, values = [], [], []
    for attr, points in parse_stats_entity(ent, _ATTRIBUTE_INDEX).items():
        segments.append((_ATTRIBUTE_INDEX[attr], len(points)))
        times += [t for t, _ in points]
        values += [v for _, v in points]
    return segments, times, values


class PointColumns:
    """Many VMs' stats gathered into flat columns, turned into one table at once.

    A VM has about a hundred points: converting, filtering and tabulating them
    per VM, point by point, was most of the cost of storing metrics. Here each
    VM's series are read in bulk (or through :func:`parse_stats_entity` when
    anything is odd, which gives the same points) and the arithmetic runs over
    the columns of many VMs. Values are rounded to the nearest millionth; points
    outside the run's window are dropped, so a replay or a retry never emits
    points the run did not own. tests/metric_reference.py computes the same
    points one by one, the straightforward way, to check these.
    """

    def __init__(self, interval_s: int, start_ms: int | None = None, end_ms: int | None = None):
        self.interval_s = interval_s
        self.lo = start_ms if start_ms is not None else -(1 << 62)
        self.hi = end_ms if end_ms is not None else 1 << 62
        self.uuids: list[str] = []
        self.seg_vm: list[int] = []
        self.seg_metric: list[int] = []
        self.seg_len: list[int] = []
        self.times: list[int] = []
        self.values: list[float] = []

    def __len__(self) -> int:
        return len(self.times)

    def add(self, vm_uuid: str, entity_result: Any) -> None:
        segments, times, values = _series_as_is(entity_result) or _series_checked(entity_result)
        vm = len(self.uuids)
        self.uuids.append(vm_uuid)
        for metric, n in segments:
            self.seg_vm.append(vm)
            self.seg_metric.append(metric)
            self.seg_len.append(n)
        self.times += times
        self.values += values

    def table(self) -> pa.Table:
        """resource_id, metric, timestamp_ms, value, unit of the points inside the window."""
        ts_ms = np.array(self.times, dtype=np.int64) // 1000
        raw = np.array(self.values, dtype=np.float64)
        lens = np.array(self.seg_len, dtype=np.int64)
        metric = np.repeat(np.array(self.seg_metric, dtype=np.int64), lens)
        vm = np.repeat(np.array(self.seg_vm, dtype=np.int64), lens)
        with np.errstate(invalid="ignore"):
            keep = (raw >= 0) & (raw != np.inf) & (ts_ms >= self.lo) & (ts_ms < self.hi)
        value = np.empty_like(raw)
        for i, (_, _, convert) in enumerate(METRICS.values()):
            rows = metric == i
            value[rows] = convert(raw[rows], self.interval_s)
        idx_metric, idx_vm = pa.array(metric[keep]), pa.array(vm[keep])
        return pa.table({
            "resource_id": pa.array(self.uuids, pa.string()).take(idx_vm),
            "metric": _METRIC_NAMES.take(idx_metric),
            "timestamp_ms": pa.array(ts_ms[keep]),
            "value": pa.array(_to_millionths(value[keep])),
            "unit": _UNITS.take(idx_metric),
        })


class ExtractMetrics(beam.DoFn):
    """VmStats ((account, uuid), stats entity_result | None) -> MetricBatch: tables of points, per account.

    One element per VM would cost Beam's per-element work on every step to the
    store; the points of up to ``max_points`` are gathered per account and
    handed on as one table ``{account, points}``, each row a point with its
    resource id, metric, timestamp, value and unit.
    """

    def __init__(self, interval_s: int, start_ms: int, end_ms: int, max_points: int = 100_000):
        self.interval_s, self.start_ms, self.end_ms = interval_s, start_ms, end_ms
        self.max_points = max_points
        self.points = Metrics.counter("metrics", "points_extracted")

    def start_bundle(self):
        self.pending: dict[str, PointColumns] = {}

    def process(self, item: VmStats) -> Iterable[MetricBatch]:
        (account, uuid), entity_result = item
        if entity_result is None:
            return
        cols = self.pending.get(account)
        if cols is None:
            cols = self.pending[account] = PointColumns(self.interval_s, self.start_ms, self.end_ms)
        cols.add(uuid, entity_result)
        if len(cols) >= self.max_points:
            yield from self._flush(account)

    def finish_bundle(self):
        for account in sorted(self.pending):
            for out in self._flush(account):
                yield in_global_window(out)

    def _flush(self, account: str) -> Iterable[MetricBatch]:
        cols = self.pending.pop(account)
        table = cols.table()
        if table.num_rows:
            self.points.inc(table.num_rows)
            yield {"account": account, "points": table}
