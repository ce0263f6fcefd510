"""Cost arithmetic on a small hand-checked fleet, and metric conversions."""
from __future__ import annotations

import pytest

from transforms.cost import cost_key, costs_for
from transforms.metrics import metric_points
from transforms.settings import Rate, RateCard

CARD = RateCard(
    default=Rate(vcpu_hour=0.02, gib_ram_hour=0.005, gib_storage_month=0.05, currency="USD"),
    clusters=(("cluster-b", Rate(vcpu_hour=0.05, gib_ram_hour=0.01, gib_storage_month=0.31, currency="USD")),),
)


def vm(uuid, cluster, power, vcpus, mem):
    return {"kind": "vm", "resource_id": uuid, "account": "pc", "name": uuid, "region_code": cluster,
            "cloud_service_type": "Instance", "tags": {"CostCenter": "cc1"},
            "data": {"power_state": power, "vcpus": vcpus, "memory_gib": mem,
                     "cluster": {"uuid": cluster, "name": cluster}}}


def disk(uuid, cluster, size):
    return {"kind": "disk", "resource_id": uuid, "account": "pc", "name": uuid, "region_code": cluster,
            "cloud_service_type": "Disk", "tags": {},
            "data": {"size_gib": size, "cluster": {"uuid": cluster, "name": cluster}}}


def totals(resources, day="2026-11-28"):
    out = {}
    for r in resources:
        for c in costs_for(r, CARD, day, "ds"):
            out[(c["resource"], c["usage_type"])] = c
    return out


def test_hand_checked_fleet():
    fleet = [
        vm("vm-on-a", "cluster-a", "ON", 4, 8.0),     # default rate
        vm("vm-off-a", "cluster-a", "OFF", 2, 4.0),   # off: no compute, no memory
        vm("vm-on-b", "cluster-b", "ON", 2, 16.0),    # cluster-b rate
        disk("disk-a", "cluster-a", 100.0),           # default storage rate, November = 30 days
        disk("disk-b", "cluster-b", 300.0),
        {"kind": "cluster", "resource_id": "cluster-a", "data": {}},   # no cost of its own
    ]
    c = totals(fleet)
    # vm-on-a: 4 vCPU * 24 h * 0.02 = 1.92 ; 8 GiB * 24 h * 0.005 = 0.96
    assert c[("vm-on-a", "vcpu")]["cost"] == pytest.approx(1.92)
    assert c[("vm-on-a", "vcpu")]["usage_quantity"] == 96
    assert c[("vm-on-a", "memory")]["cost"] == pytest.approx(0.96)
    assert c[("vm-on-a", "memory")]["usage_quantity"] == 192
    assert ("vm-off-a", "vcpu") not in c and ("vm-off-a", "memory") not in c
    # vm-on-b: 2 * 24 * 0.05 = 2.40 ; 16 * 24 * 0.01 = 3.84
    assert c[("vm-on-b", "vcpu")]["cost"] == pytest.approx(2.40)
    assert c[("vm-on-b", "memory")]["cost"] == pytest.approx(3.84)
    # disks: 100 GiB * 0.05 / 30 days = 0.166667 ; 300 * 0.31 / 30 = 3.10
    assert c[("disk-a", "storage")]["cost"] == pytest.approx(0.166667, abs=1e-6)
    assert c[("disk-b", "storage")]["cost"] == pytest.approx(3.10)
    assert len(c) == 6
    assert sum(x["cost"] for x in c.values()) == pytest.approx(1.92 + 0.96 + 2.40 + 3.84 + 0.166667 + 3.10, abs=1e-5)
    rec = c[("vm-on-a", "vcpu")]
    assert rec["billed_date"] == "2026-11-28" and rec["region_code"] == "cluster-a"
    assert rec["tags"] == {"CostCenter": "cc1"} and rec["usage_unit"] == "vCPU-Hours"
    assert rec["additional_info"]["Account"] == "pc" and rec["provider"] == "nutanix"


def test_storage_month_length_follows_the_billed_month():
    feb = costs_for(disk("d", "cluster-a", 280.0), CARD, "2026-02-10", "ds")[0]
    assert feb["cost"] == pytest.approx(280 * 0.05 / 28)


def test_rate_lookup_by_name_then_default():
    card = RateCard(default=CARD.default, clusters=(("prod", CARD.clusters[0][1]),))
    assert card.for_cluster("uuid-x", "prod").vcpu_hour == 0.05
    assert card.for_cluster("uuid-x", "other").vcpu_hour == 0.02


def test_cost_key_is_deterministic():
    a = costs_for(vm("v", "cluster-a", "ON", 1, 1.0), CARD, "2026-11-28", "ds")
    b = costs_for(vm("v", "cluster-a", "ON", 1, 1.0), CARD, "2026-11-28", "ds")
    assert [cost_key(x) for x in a] == [cost_key(x) for x in b] == [("v", "vcpu", "2026-11-28"),
                                                                    ("v", "memory", "2026-11-28")]


def test_metric_conversions_and_window():
    series = {
        "hypervisor_cpu_usage_ppm": [(1_000_000_000, 250_000.0), (2_000_000_000, 500_000.0)],
        "memory_usage_ppm": [(1_000_000_000, 1_000_000.0)],
        "controller_num_read_iops": [(1_000_000_000, 12.0)],
        "controller_read_io_bandwidth_kBps": [(1_000_000_000, 2.0)],
        "hypervisor_num_received_bytes": [(1_000_000_000, 3000.0)],
    }
    pts = metric_points("pc", "vm-1", series, 300, "cl", start_ms=0, end_ms=1_500_000)
    by = {(p["metric"], p["timestamp_ms"]): p for p in pts}
    assert by[("cpu.utilization", 1_000_000)]["value"] == 25.0
    assert by[("cpu.utilization", 1_000_000)]["unit"] == "Percent"
    assert ("cpu.utilization", 2_000_000) not in by  # outside the run's window
    assert by[("memory.utilization", 1_000_000)]["value"] == 100.0
    assert by[("disk.read_iops", 1_000_000)]["value"] == 12.0
    assert by[("disk.read_throughput", 1_000_000)]["value"] == 2048.0
    assert by[("network.received_throughput", 1_000_000)]["value"] == 10.0  # 3000 bytes / 300 s
    assert all(p["resource_id"] == "vm-1" and p["region_code"] == "cl" for p in pts)
    assert len(pts) == 5


def test_a_points_batch_is_split_at_midnight_utc():
    from transforms.metric_store import split_by_date
    midnight = 1_795_046_400_000  # 2026-11-19T00:00:00Z
    assert midnight % 86_400_000 == 0
    batch = {"account": "a", "resource_id": "r", "metric": ["m", "m", "m"], "unit": ["u", "u", "u"],
             "timestamp_ms": [midnight - 300_000, midnight, midnight + 300_000], "value": [1.0, 2.0, 3.0]}
    days = list(split_by_date(batch))
    assert [(d["date"], d["value"]) for d in days] == [("2026-11-18", [1.0]), ("2026-11-19", [2.0, 3.0])]
    same_day = {**batch, "timestamp_ms": [midnight, midnight + 1, midnight + 86_399_999]}
    assert [(d["date"], d["value"]) for d in split_by_date(same_day)] == [("2026-11-19", [1.0, 2.0, 3.0])]
    assert list(split_by_date({**batch, "metric": [], "unit": [], "timestamp_ms": [], "value": []})) == []
