"""The monitoring data-source plugin over real gRPC, on a metric store laid out as the pipeline writes it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import grpc
import pytest
from spaceone.api.monitoring.plugin import data_source_pb2, data_source_pb2_grpc, metric_pb2, metric_pb2_grpc

from plugin.metric_store import CATALOG
from plugin.server import MonitoringPluginServer
from tests.helpers import (
    METRICS,
    day_start_ms,
    iso,
    make_points,
    point_value,
    wait_for_ready_file,
    write_metric_run,
)
from tests.helpers import proto_dict as MessageToDict
from tests.helpers import to_struct as _s

DAY = "2026-11-28"
VMS = ["vm-a1", "vm-a2", "vm-b1"]




@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    metrics = str(root / "metrics")
    write_metric_run(metrics, "20261128T0000-run", make_points(VMS, DAY, 0, 150))
    # A later run whose window overlaps points 120..149 (values differ) and continues the day.
    write_metric_run(metrics, "20261128T1200-run", make_points(VMS, DAY, 120, 288, run="b"))
    server = MonitoringPluginServer(metrics).start()
    channel = grpc.insecure_channel(server.endpoint)
    yield server, channel, metrics
    channel.close()
    server.stop()


def get_data(channel, metric_query, metric="cpu.utilization", start=DAY + "T00:00:00Z",
             end="2026-11-29T00:00:00Z", period=300, stat="AVERAGE"):
    answer = metric_pb2_grpc.MetricStub(channel).get_data(metric_pb2.MetricDataRequest(
        options=_s({}), secret_data=_s({}), metric_query=_s(metric_query), metric=metric, start=start, end=end,
        period=period, stat=stat), timeout=30)
    return MessageToDict(answer)


def expected(vm: str, metric: str, i: int) -> float:
    ts = day_start_ms(DAY) + i * 300_000
    return point_value(vm, metric, ts, "b" if i >= 120 else "")


def test_catalog_matches_the_pipeline_metrics():
    from transforms.stages.metrics import METRICS as PIPELINE
    assert set(CATALOG) == set(PIPELINE)


def test_init_declares_metadata(served):
    _, channel, _ = served
    info = MessageToDict(data_source_pb2_grpc.DataSourceStub(channel).init(data_source_pb2.InitRequest()))
    md = info["metadata"]
    assert md["required_keys"] == ["reference"]
    assert set(md["supported_stat"]) == {"AVERAGE", "MAX", "MIN", "SUM"}
    assert "inventory.CloudService" in md["supported_resource_type"]
    data_source_pb2_grpc.DataSourceStub(channel).verify(data_source_pb2.PluginVerifyRequest())


def test_metric_list_names_groups_units(served):
    _, channel, _ = served
    answer = MessageToDict(metric_pb2_grpc.MetricStub(channel).list(
        metric_pb2.MetricRequest(query=_s({"resource_id": "vm-a1", "external_link": "x"}))))
    got = {m["key"]: m for m in answer["metrics"]}
    assert set(got) == set(METRICS)
    assert got["cpu.utilization"]["unit"] == {"x": "Timestamp", "y": "Percent"}
    assert got["cpu.utilization"]["group"] == "CPU" and got["disk.read_iops"]["name"] == "Disk Read IOPS"
    assert got["memory.utilization"]["metric_query"] == {"resource_id": "vm-a1"}
    unknown = MessageToDict(metric_pb2_grpc.MetricStub(channel).list(
        metric_pb2.MetricRequest(query=_s({"resource_id": "nope"}))))
    assert unknown.get("metrics", []) == []


def test_values_per_timestamp_equal_the_store_each_point_once(served):
    _, channel, _ = served
    data = get_data(channel, {"cs-1": {"resource_id": "vm-a1", "region_name": "cluster-a"}, "vm-b1": {}})
    assert len(data["labels"]) == 288
    assert data["labels"][0] == "2026-11-28T00:00:00.000Z" and data["labels"][1] == "2026-11-28T00:05:00.000Z"
    assert set(data["values"]) == {"cs-1", "vm-b1"}
    for key, vm in (("cs-1", "vm-a1"), ("vm-b1", "vm-b1")):
        assert data["values"][key] == pytest.approx([expected(vm, "cpu.utilization", i) for i in range(288)])
    # SUM per hour counts each overlapped point once (the later run's value).
    hourly = get_data(channel, {"vm-a1": {}}, period=3600, stat="SUM")
    assert len(hourly["labels"]) == 24
    for h in range(24):
        assert hourly["values"]["vm-a1"][h] == pytest.approx(
            sum(expected("vm-a1", "cpu.utilization", i) for i in range(h * 12, h * 12 + 12)))


@pytest.mark.parametrize("stat,fn", [("AVERAGE", lambda v: sum(v) / len(v)), ("MAX", max), ("MIN", min)])
def test_stats_per_period(served, stat, fn):
    _, channel, _ = served
    data = get_data(channel, {"vm-a2": {}}, metric="memory.utilization", period=7200, stat=stat)
    assert len(data["labels"]) == 12
    for b in range(12):
        vals = [expected("vm-a2", "memory.utilization", i) for i in range(b * 24, b * 24 + 24)]
        assert data["values"]["vm-a2"][b] == pytest.approx(fn(vals))


def test_window_inside_a_day_and_empty_buckets(served):
    _, channel, _ = served
    start = day_start_ms(DAY) + 23 * 3600_000
    data = get_data(channel, {"vm-a1": {}}, start=iso(start), end=iso(start + 2 * 3600_000), period=3600)
    assert data["labels"] == ["2026-11-28T23:00:00.000Z", "2026-11-29T00:00:00.000Z"]
    assert data["values"]["vm-a1"][1] is None  # no point stored for the next day
    assert data["values"]["vm-a1"][0] == pytest.approx(
        sum(expected("vm-a1", "cpu.utilization", i) for i in range(276, 288)) / 12)


def test_unknown_resource_gives_empty_values(served):
    _, channel, _ = served
    data = get_data(channel, {"no-such-vm": {}})
    assert data.get("values", {}) == {} and data.get("labels", []) == []
    mixed = get_data(channel, {"no-such-vm": {}, "vm-a1": {}})
    assert set(mixed["values"]) == {"vm-a1"}
    outside = get_data(channel, {"vm-a1": {}}, start="2025-01-01T00:00:00Z", end="2025-01-02T00:00:00Z")
    assert outside.get("values", {}) == {}


@pytest.mark.parametrize("kwargs,needle", [
    ({"metric": "cpu.bogus"}, "unknown metric 'cpu.bogus'"),
    ({"start": "2026-11-29T00:00:00Z", "end": "2026-11-28T00:00:00Z"}, "must be before end"),
    ({"start": "yesterday"}, "not an ISO-8601 time"),
    ({"stat": "MEDIAN"}, "stat 'MEDIAN' is not supported"),
    ({"metric_query": {}}, "metric_query is required"),
])
def test_bad_requests_are_invalid_argument(served, kwargs, needle):
    _, channel, _ = served
    mq = kwargs.pop("metric_query", {"vm-a1": {}})
    with pytest.raises(grpc.RpcError) as err:
        get_data(channel, mq, **kwargs)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in err.value.details()


def test_malformed_file_is_internal_naming_it_and_server_keeps_serving(tmp_path):
    metrics = tmp_path / "metrics"
    write_metric_run(str(metrics), "run-1", make_points(["vm-x"], DAY, 0, 12))
    bad = metrics / f"date={DAY}" / "run-0-00000.parquet"
    bad.write_bytes(b"this is not parquet")
    with MonitoringPluginServer(str(metrics)) as server, \
            grpc.insecure_channel(server.endpoint) as channel:
        with pytest.raises(grpc.RpcError) as err:
            get_data(channel, {"vm-x": {}})
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert str(bad) in err.value.details()
        bad.unlink()
        assert len(get_data(channel, {"vm-x": {}})["values"]["vm-x"]) == 288


def test_cli_ready_file_and_sigterm(tmp_path):
    ready = tmp_path / "plugin.json"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-m", "plugin", "monitoring", "--port", "0", "--store", str(tmp_path),
                             "--ready-file", str(ready)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_ready_file(ready, proc)
        endpoint = json.loads(ready.read_text())["endpoint"]
        assert endpoint.startswith("127.0.0.1:")
        with grpc.insecure_channel(endpoint) as channel:
            data_source_pb2_grpc.DataSourceStub(channel).init(data_source_pb2.InitRequest(), timeout=10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
