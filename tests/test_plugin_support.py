"""Helpers for the plugin tests: small stores written by the real writers, servers on port 0."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import grpc
import pyarrow as pa
import pyarrow.parquet as pq

from schemas.parquet import METRIC_POINT
from transforms.settings import Rate, RateCard

METRICS = {"cpu.utilization": "Percent", "memory.utilization": "Percent", "disk.read_iops": "Count/Second"}
CARD = RateCard(
    default=Rate(vcpu_hour=0.02, gib_ram_hour=0.005, gib_storage_month=0.05, currency="USD"),
    clusters=(("cluster-b", Rate(vcpu_hour=0.05, gib_ram_hour=0.01, gib_storage_month=0.31, currency="USD")),),
)


def day_start_ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp() * 1000)


def point_value(vm: str, metric: str, ts_ms: int, run: str = "") -> float:
    """A deterministic, distinct value per point (run-specific when ``run`` is given)."""
    base = (sum(map(ord, vm)) % 17) + list(METRICS).index(metric) * 10
    return round(base + (ts_ms // 300_000) % 288 / 10 + (0.5 if run else 0.0), 6)


def make_points(vms: list[str], day: str, start_idx: int = 0, end_idx: int = 288, run: str = "") -> list[dict]:
    t0 = day_start_ms(day)
    out = []
    for vm in vms:
        for metric, unit in METRICS.items():
            for i in range(start_idx, end_idx):
                ts = t0 + i * 300_000
                out.append({"account": "pc-1", "resource_id": vm, "region_code": "cluster-a", "metric": metric,
                            "timestamp_ms": ts, "value": point_value(vm, metric, ts, run), "unit": unit})
    return out


def points_table(points: list[dict], run_id: str) -> pa.Table:
    """METRIC_POINT rows sorted by metric, resource_id, timestamp (the store's contract)."""
    points = sorted(points, key=lambda p: (p["metric"], p["resource_id"], p["timestamp_ms"]))
    return pa.Table.from_pydict({
        "account": [p["account"] for p in points], "resource_id": [p["resource_id"] for p in points],
        "region_code": [p["region_code"] for p in points], "metric": [p["metric"] for p in points],
        "timestamp": [p["timestamp_ms"] for p in points], "value": [p["value"] for p in points],
        "unit": [p["unit"] for p in points], "run_id": [run_id] * len(points)}, schema=METRIC_POINT)


def write_metric_run(root: str, run_id: str, points: list[dict]) -> list[str]:
    """Points -> ``{root}/date=D/<run_id>-00000.parquet`` exactly as WriteToMetricStore lays them out."""
    by_day: dict[str, list[dict]] = {}
    for p in points:
        d = datetime.fromtimestamp(p["timestamp_ms"] / 1000, tz=timezone.utc).strftime("%Y-%m-%d")
        by_day.setdefault(d, []).append(p)
    paths = []
    for d, rows in by_day.items():
        directory = os.path.join(root, f"date={d}")
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"{run_id}-00000.parquet")
        pq.write_table(points_table(rows, run_id), path, compression="zstd", row_group_size=100_000)
        paths.append(path)
    return paths


def fleet(vcpus: int = 2) -> list[dict]:
    """Resources (as the pipeline normalizes them) over two clusters: VMs on/off and disks."""
    def vm(uuid, cluster, power, cpus, mem):
        return {"kind": "vm", "resource_id": uuid, "account": "pc-1", "name": uuid, "region_code": cluster,
                "cloud_service_type": "Instance", "tags": {"CostCenter": "cc1"},
                "data": {"power_state": power, "vcpus": cpus, "memory_gib": mem, "size_known": True,
                         "cluster": {"uuid": cluster, "name": cluster}}}

    def disk(uuid, cluster, size):
        return {"kind": "disk", "resource_id": uuid, "account": "pc-1", "name": uuid, "region_code": cluster,
                "cloud_service_type": "Disk", "tags": {}, "data": {"size_gib": size, "size_known": True,
                                                                   "cluster": {"uuid": cluster, "name": cluster}}}
    return [vm("vm-a1", "cluster-a", "ON", vcpus, 4.0), vm("vm-a2", "cluster-a", "OFF", 8, 16.0),
            vm("vm-b1", "cluster-b", "ON", vcpus, 16.0), disk("disk-a1", "cluster-a", 100.0),
            disk("disk-b1", "cluster-b", 310.0)]


def cost_records(days: list[str], vcpus: int = 2, account: str = "pc-1") -> list[dict]:
    from transforms.stages.cost import costs_for
    out = []
    for d in days:
        for r in fleet(vcpus):
            for c in costs_for({**r, "account": account}, CARD, d, "ds-nutanix"):
                out.append(c)
    return out


def write_costs(root: str, run_id: str, records: list[dict]) -> list[dict]:
    """Run the real WriteToCostStore in a tiny Beam pipeline; returns its per-account results."""
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from transforms.sinks.files.cost_store import WriteToCostStore
    _RESULTS.pop(run_id, None)
    with beam.Pipeline(runner=FnApiRunner()) as p:
        _ = (p | beam.Create(records) | WriteToCostStore(root, run_id)
             | beam.Map(_collect, run_id))
    return _RESULTS.pop(run_id, [])


_RESULTS: dict[str, list[dict]] = {}  # the in-process runner's DoFns append here


def _collect(row: dict, key: str) -> None:
    _RESULTS.setdefault(key, []).append(row)


def wait_ready(channel: grpc.Channel, timeout: float = 10.0) -> None:
    grpc.channel_ready_future(channel).result(timeout=timeout)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_from(day: str, n: int) -> list[str]:
    d = datetime.fromisoformat(day)
    return [(d + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(n)]
