"""ExtractMetrics: Prism VM stats -> metric points with units.

Prism's groups API answers counters per sampling interval in its own units
(ppm, kB/s, bytes per interval); CloudForet wants named metrics with units.
"""
from __future__ import annotations

from typing import Callable, Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

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


def metric_points(account: str, vm_uuid: str, series: dict, interval_s: int,
                  region_code: str = "", start_ms: int | None = None, end_ms: int | None = None) -> list[dict]:
    """One point per metric per timestamp; timestamps in epoch milliseconds.

    Only points inside the run's window are kept, so a replay or a retry
    never emits points the run did not own.
    """
    out = []
    for metric, (attr, unit, convert) in METRICS.items():
        for t_usec, value in series.get(attr, ()):
            ts_ms = t_usec // 1000
            if (start_ms is not None and ts_ms < start_ms) or (end_ms is not None and ts_ms >= end_ms):
                continue
            out.append({"account": account, "resource_id": vm_uuid, "region_code": region_code,
                        "metric": metric, "timestamp_ms": ts_ms, "value": round(convert(value, interval_s), 6),
                        "unit": unit})
    return out


class ExtractMetrics(beam.DoFn):
    """Joined (key, {'vm': [...], 'stats': [...]}) -> metric points."""

    def __init__(self, interval_s: int, start_ms: int, end_ms: int):
        self.interval_s, self.start_ms, self.end_ms = interval_s, start_ms, end_ms
        self.points = Metrics.counter("metrics", "points_extracted")

    def process(self, joined: tuple) -> Iterable[dict]:
        (account, uuid), groups = joined
        vms = list(groups["vm"])
        if not vms:  # stats of a VM that is no longer listed: not ours to report
            return
        _, entity = vms[0]
        cluster = ((entity.get("status") or {}).get("cluster_reference") or {}) if isinstance(entity, dict) else {}
        region = cluster.get("uuid", "") if isinstance(cluster, dict) else ""
        for series in groups["stats"]:
            points = metric_points(account, uuid, series, self.interval_s, str(region), self.start_ms, self.end_ms)
            self.points.inc(len(points))
            yield from points
            return
