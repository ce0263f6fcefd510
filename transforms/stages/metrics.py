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
from apache_beam.transforms.window import GlobalWindows

from transforms.elements import MetricBatch, VmStats
from transforms.sources.prism import TIME_MAX, TIME_MIN, parse_stats_entity

# metric -> (Prism attribute, unit, conversion(value, interval_s))
METRICS: dict[str, tuple[str, str, Callable[[float, int], float]]] = {
    "cpu.utilization": ("hypervisor_cpu_usage_ppm", "Percent", lambda v, _: v / 10_000),
    "memory.utilization": ("memory_usage_ppm", "Percent", lambda v, _: v / 10_000),
    "disk.read_iops": ("controller_num_read_iops", "Count/Second", lambda v, _: v),
    "disk.write_iops": ("controller_num_write_iops", "Count/Second", lambda v, _: v),
    "disk.read_throughput": ("controller_read_io_bandwidth_kBps", "Bytes/Second", lambda v, _: v * 1024),
    "disk.write_throughput": ("controller_write_io_bandwidth_kBps", "Bytes/Second", lambda v, _: v * 1024),
    # Prism counts the bytes of each sampling interval: divide to get a rate.
    "network.received_throughput": ("hypervisor_num_received_bytes", "Bytes/Second", lambda v, i: v / i),
    "network.sent_throughput": ("hypervisor_num_transmitted_bytes", "Bytes/Second", lambda v, i: v / i),
}


def to_millionths(value: float) -> float:
    """A value to the nearest millionth, by scaling: the same double as numpy's
    rint over arrays (round(value, 6) decides by the exact decimal and can differ
    in the last digit). Beyond 1e15 a double has no millionths to round."""
    return value if value >= 1e15 else round(value * 1e6) / 1e6


def _to_millionths(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # the scaled huge values are not used
        return np.where(values >= 1e15, values, np.rint(values * 1e6) / 1e6)


def metric_columns(series: dict, interval_s: int, start_ms: int | None = None,
                   end_ms: int | None = None) -> dict[str, list]:
    """A VM's points as columns (metric, timestamp_ms, value, unit).

    Only points inside the run's window are kept, so a replay or a retry
    never emits points the run did not own.
    """
    cols: dict[str, list] = {"metric": [], "timestamp_ms": [], "value": [], "unit": []}
    lo = start_ms if start_ms is not None else -(1 << 62)
    hi = end_ms if end_ms is not None else 1 << 62
    for metric, (attr, unit, convert) in METRICS.items():
        for t_usec, value in series.get(attr, ()):
            ts_ms = t_usec // 1000
            if lo <= ts_ms < hi:
                cols["metric"].append(metric)
                cols["timestamp_ms"].append(ts_ms)
                cols["value"].append(to_millionths(convert(value, interval_s)))
                cols["unit"].append(unit)
    return cols


def metric_points(account: str, vm_uuid: str, series: dict, interval_s: int,
                  region_code: str = "", start_ms: int | None = None, end_ms: int | None = None) -> list[dict]:
    """One dict per point (the readable form of :func:`metric_columns`)."""
    cols = metric_columns(series, interval_s, start_ms, end_ms)
    return [{"account": account, "resource_id": vm_uuid, "region_code": region_code, "metric": m,
             "timestamp_ms": t, "value": v, "unit": u}
            for m, t, v, u in zip(cols["metric"], cols["timestamp_ms"], cols["value"], cols["unit"])]


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
    the columns of many VMs. The points are exactly :func:`metric_columns`'.
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
                yield GlobalWindows.windowed_value(out)

    def _flush(self, account: str) -> Iterable[MetricBatch]:
        cols = self.pending.pop(account)
        table = cols.table()
        if table.num_rows:
            self.points.inc(table.num_rows)
            yield {"account": account, "points": table}
