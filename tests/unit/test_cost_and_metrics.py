"""Cost arithmetic on a small hand-checked fleet, and metric conversions."""
from __future__ import annotations

import pytest

from tests.metric_reference import metric_points
from transforms.settings import Rate, RateCard
from transforms.stages.cost import cost_key, costs_for

CARD = RateCard(
    default=Rate(vcpu_hour=0.02, gib_ram_hour=0.005, gib_storage_month=0.05, currency="USD"),
    clusters=(("cluster-b", Rate(vcpu_hour=0.05, gib_ram_hour=0.01, gib_storage_month=0.31, currency="USD")),),
)


def vm(uuid, cluster, power, vcpus, mem):
    return {"kind": "vm", "resource_id": uuid, "account": "pc", "name": uuid, "region_code": cluster,
            "cloud_service_type": "Instance", "tags": {"CostCenter": "cc1"},
            "data": {"power_state": power, "vcpus": vcpus, "memory_gib": mem, "size_known": True,
                     "cluster": {"uuid": cluster, "name": cluster}}}


def disk(uuid, cluster, size):
    return {"kind": "disk", "resource_id": uuid, "account": "pc", "name": uuid, "region_code": cluster,
            "cloud_service_type": "Disk", "tags": {},
            "data": {"size_gib": size, "size_known": True, "cluster": {"uuid": cluster, "name": cluster}}}


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


def test_a_points_table_is_split_at_midnight_utc():
    import pyarrow as pa

    from transforms.sinks.files.metric_store import split_by_date
    midnight = 1_795_046_400_000  # 2026-11-19T00:00:00Z
    assert midnight % 86_400_000 == 0

    def batch(stamps):
        return {"account": "a", "points": pa.table({
            "resource_id": ["r"] * len(stamps), "metric": ["m"] * len(stamps),
            "timestamp_ms": pa.array(stamps, pa.int64()), "value": [1.0, 2.0, 3.0][:len(stamps)],
            "unit": ["u"] * len(stamps)})}

    days = list(split_by_date(batch([midnight - 300_000, midnight, midnight + 300_000])))
    assert [(d["date"], d["account"], d["points"]["value"].to_pylist()) for d in days] == [
        ("2026-11-18", "a", [1.0]), ("2026-11-19", "a", [2.0, 3.0])]
    same_day = list(split_by_date(batch([midnight, midnight + 1, midnight + 86_399_999])))
    assert [(d["date"], d["points"]["value"].to_pylist()) for d in same_day] == [("2026-11-19", [1.0, 2.0, 3.0])]
    assert list(split_by_date(batch([]))) == []


def _stats_entity(columns: dict) -> dict:
    return {"entity_id": "x", "data": [{"name": a, "values": v} for a, v in columns.items()]}


def _emulated_stats(n: int) -> list[tuple[str, dict]]:
    """Stats as the Prism emulator answers them (values as strings, -1 for no data)."""
    from emulators.prism.fleet import FleetSpec, generate_fleet
    pc = generate_fleet(FleetSpec(seed=3, vms=n, clusters=1, hosts_per_cluster=2, disks_per_vm=1))[0]
    end = 1_764_309_600_000
    out = []
    for i, vm in enumerate(pc.vm_entities(0, n)):
        series = pc.vm_stats(i, end - 3_600_000, end, 300)
        out.append((vm["metadata"]["uuid"], _stats_entity({
            a: [{"values": [str(v)], "time": t} for t, v in pts] for a, pts in series.items()})))
    return out


ODD_STATS = [
    # no data, garbage, non-int times, empty and scalar values: the careful path's cases
    _stats_entity({"hypervisor_cpu_usage_ppm": [{"time": 2_000_000, "values": ["-1"]},
                                                {"time": 1_000_000, "values": ["100"]},
                                                {"time": 3_000_000, "values": ["abc"]}],
                   "memory_usage_ppm": [None, {"time": "t", "values": ["1"]}, {"time": 1, "values": []},
                                        {"time": 4_000, "values": ["nan"]}, {"time": 5_000, "values": ["inf"]},
                                        {"time": 6_000, "values": [None]}, {"time": 7_000, "values": ["500000"]}]}),
    _stats_entity({"memory_usage_ppm": 5}),
    _stats_entity({"memory_usage_ppm": [{"time": 1, "values": {"a": 1}}]}),
    _stats_entity({"hypervisor_num_received_bytes": [{"time": True, "values": ["7"]},
                                                     {"time": 1 << 70, "values": ["7"]},
                                                     {"time": 9_000, "values": [" 12 "]}]}),
    {"entity_id": "x", "data": [{"name": "controller_num_read_iops", "values": [{"time": 1_000, "values": ["1"]}]},
                                {"name": "controller_num_read_iops", "values": [{"time": 2_000, "values": ["2"]}]}]},
    _stats_entity({"controller_read_io_bandwidth_kBps": [{"time": 1_000, "values": [3]},
                                                         {"time": 2_000, "values": [2.5]}]}),
    "not an entity", {"data": "x"}, {}, None,
]


def test_the_stats_asked_of_prism_are_exactly_those_the_metrics_use():
    from transforms.sources.prism import STATS_ATTRIBUTES
    from transforms.stages.metrics import METRICS
    from transforms.stages.normalize import UTILIZATION_ATTRIBUTES
    used = {attr for attr, _, _ in METRICS.values()} | set(UTILIZATION_ATTRIBUTES)
    assert sorted(STATS_ATTRIBUTES) == sorted(used)


def test_rounding_to_millionths_is_the_same_in_bulk_and_one_by_one():
    import random

    import numpy as np

    from tests.metric_reference import to_millionths
    from transforms.stages.metrics import _to_millionths
    rng = random.Random(7)
    values = [0.0, 7 / 300, 12.3456, 0.5e-6, 1.5e-6, 2.5e-6, 1e15, 3.3e15, 1e300, 1.7e308]
    values += [rng.uniform(0, 10 ** rng.randint(0, 16)) for _ in range(5000)]
    assert _to_millionths(np.array(values)).tolist() == [to_millionths(v) for v in values]
    assert [to_millionths(v) for v in (7 / 300, 12.34560000001, 2 / 3)] == [0.023333, 12.3456, 0.666667]
    assert to_millionths(1e300) == 1e300


def _points_by_vm(table) -> dict:
    rows = zip(*(table[c].to_pylist() for c in ("resource_id", "metric", "timestamp_ms", "value", "unit")))
    out: dict = {}
    for r, m, t, v, u in rows:
        out.setdefault(r, []).append((m, t, v, u))
    return {r: sorted(p) for r, p in out.items()}


@pytest.mark.parametrize("window", [(None, None), (1_764_306_600_000, 1_764_308_400_000), (0, 8)])
def test_point_columns_are_exactly_the_careful_paths_points(window):
    """The bulk reading of many VMs gives each VM exactly metric_columns' points,
    on stats as Prism sends them and on every odd shape the careful path handles."""
    from tests.metric_reference import metric_columns
    from transforms.sources.prism import parse_stats_entity
    from transforms.stages.metrics import PointColumns
    vms = _emulated_stats(30) + [(f"odd-{i}", ent) for i, ent in enumerate(ODD_STATS)]
    vms.insert(5, vms.pop())  # odd ones among the good ones
    cols = PointColumns(300, *window)
    for uuid, ent in vms:
        cols.add(uuid, ent)
    got = _points_by_vm(cols.table())
    expected = {}
    for uuid, ent in vms:
        c = metric_columns(parse_stats_entity(ent), 300, *window)
        if c["metric"]:
            expected[uuid] = sorted(zip(c["metric"], c["timestamp_ms"], c["value"], c["unit"]))
    assert got == expected
    if window == (None, None):
        assert len([u for u in got if not u.startswith("odd")]) > 20  # powered-off VMs have none
        assert sorted(u for u in got if u.startswith("odd")) == ["odd-0", "odd-3", "odd-4", "odd-5"]
        assert got["odd-0"] == [("cpu.utilization", 1_000, 0.01, "Percent"),
                                ("memory.utilization", 7, 50.0, "Percent")]


def test_extract_metrics_hands_on_a_table_per_account_and_counts_every_point():
    from tests.metric_reference import metric_columns
    from transforms.sources.prism import parse_stats_entity
    from transforms.stages.metrics import ExtractMetrics
    fn = ExtractMetrics(300, 0, 1 << 62, max_points=200)
    fn.start_bundle()
    stats = _emulated_stats(12)
    out = []
    for i, (uuid, ent) in enumerate(stats):
        out += list(fn.process((("pc-a" if i % 3 else "pc-b", uuid), ent)))
    out += [w.value for w in fn.finish_bundle()]
    assert len(out) > 2 and all(b["points"].num_rows for b in out)  # flushed along the way, then at the end
    by_account: dict = {}
    for b in out:
        for r in b["points"]["resource_id"].to_pylist():
            by_account.setdefault(b["account"], set()).add(r)
    with_points = {u for u, ent in stats if parse_stats_entity(ent)["memory_usage_ppm"]}  # not powered off
    assert by_account == {"pc-a": {u for i, (u, _) in enumerate(stats) if i % 3} & with_points,
                          "pc-b": {u for i, (u, _) in enumerate(stats) if not i % 3} & with_points}
    assert sum(b["points"].num_rows for b in out) == sum(
        len(metric_columns(parse_stats_entity(ent), 300, 0, 1 << 62)["metric"]) for _, ent in stats)
