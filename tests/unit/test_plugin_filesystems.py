"""The plugins serve a store wherever the pipeline's writers can put it: a URI
(``file://``, as ``gs://`` or ``s3://`` are resolved, through pyarrow's
FileSystem.from_uri) or any pyarrow filesystem (here an in-memory one, which
has no local path at all)."""
from __future__ import annotations

import grpc
import pyarrow.fs as pafs
import pytest
from google.protobuf import struct_pb2
from spaceone.api.cost_analysis.plugin import data_source_pb2 as cost_ds_pb2
from spaceone.api.cost_analysis.plugin import data_source_pb2_grpc as cost_ds_grpc
from spaceone.api.monitoring.plugin import data_source_pb2, data_source_pb2_grpc, metric_pb2, metric_pb2_grpc

from plugin.cost_store import CostStore
from plugin.metric_store import MetricStore
from plugin.server import CostPluginServer, MonitoringPluginServer
from tests.helpers import cost_records, day_start_ms, make_points, write_costs, write_metric_run

DAY = "2026-11-28"
VMS = ["vm-a1", "vm-b1"]
START = day_start_ms(DAY)
END = START + 86_400_000


@pytest.fixture(scope="module")
def local_stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    write_metric_run(str(root / "metrics"), "20261128T0000-run", make_points(VMS, DAY, 0, 288))
    write_costs(str(root / "costs"), "20261128T0100-run", cost_records(["2026-11-27", DAY]))
    return root


def in_memory_copy(local_root) -> pafs.FileSystem:
    fs = pafs._MockFileSystem()
    pafs.copy_files(str(local_root), "bucket/out", source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=fs)
    return fs


def answers_of(metrics: MetricStore) -> tuple:
    series = metrics.series(VMS, "cpu.utilization", START, END, 3600, "AVERAGE")
    return metrics.days(), metrics.metrics_of("vm-a1"), series.labels_ms, {k: list(v) for k, v in series.values.items()}


def cost_answers_of(costs: CostStore) -> tuple:
    return list(costs.days()), costs.currency(), sorted(map(repr, costs.records("2026-11-01", "2026-11-30")))


def test_a_metric_store_behind_a_uri_answers_as_the_local_one(local_stores):
    local = answers_of(MetricStore(str(local_stores / "metrics")))
    assert local[0] == [DAY] and len(local[3]["vm-a1"]) == 24
    assert answers_of(MetricStore(f"file://{local_stores}/metrics")) == local


def test_a_metric_store_on_a_non_local_filesystem_answers_as_the_local_one(local_stores):
    local = answers_of(MetricStore(str(local_stores / "metrics")))
    assert answers_of(MetricStore("bucket/out/metrics", fs=in_memory_copy(local_stores))) == local


def test_a_cost_store_behind_a_uri_or_on_a_non_local_filesystem_answers_as_the_local_one(local_stores):
    local_store = CostStore(str(local_stores / "costs"))
    local = cost_answers_of(local_store)
    assert local[0] == ["2026-11-27", DAY] and local[2]
    assert cost_answers_of(CostStore(f"file://{local_stores}/costs")) == local
    remote = CostStore("bucket/out/costs", fs=in_memory_copy(local_stores))
    assert cost_answers_of(remote) == local
    assert all(mtime > 0 for mtime in remote.days().values())  # the files' mtimes: "changed" still works


def test_the_plugin_servers_serve_a_store_given_as_a_uri(local_stores):
    def s(d):
        out = struct_pb2.Struct()
        out.update(d)
        return out

    mon = MonitoringPluginServer(f"file://{local_stores}/metrics").start()
    cost = CostPluginServer(f"file://{local_stores}/costs").start()
    try:
        with grpc.insecure_channel(mon.endpoint) as channel:
            data_source_pb2_grpc.DataSourceStub(channel).verify(data_source_pb2.PluginVerifyRequest(), timeout=30)
            answer = metric_pb2_grpc.MetricStub(channel).get_data(metric_pb2.MetricDataRequest(
                options=s({}), secret_data=s({}), metric_query=s({"vm-a1": {}}), metric="cpu.utilization",
                start=DAY + "T00:00:00Z", end="2026-11-29T00:00:00Z", period=3600, stat="AVERAGE"), timeout=30)
            assert len(answer.labels) == 24 and len(answer.values["vm-a1"].values) == 24
        with grpc.insecure_channel(cost.endpoint) as channel:
            cost_ds_grpc.DataSourceStub(channel).verify(cost_ds_pb2.PluginVerifyRequest(), timeout=30)
    finally:
        mon.stop()
        cost.stop()


def test_a_missing_store_behind_a_uri_fails_verify(tmp_path):
    assert not MetricStore(f"file://{tmp_path}/nowhere").exists()
    assert MetricStore(f"file://{tmp_path}/nowhere").days() == []
    assert CostStore(f"file://{tmp_path}/nowhere").days() == {}


def test_the_plugin_servers_read_the_store_the_data_sources_options_name(local_stores, tmp_path):
    """As CloudForet runs them (no --store: the image's command), each call's options name the store:
    ``store`` (the pipeline's output, here a URI) or ``metric_store`` / ``cost_store`` (the root itself)."""
    def s(d):
        out = struct_pb2.Struct()
        out.update(d)
        return out

    get_data = dict(secret_data=s({}), metric_query=s({"vm-a1": {}}), metric="cpu.utilization",
                    start=DAY + "T00:00:00Z", end="2026-11-29T00:00:00Z", period=3600, stat="AVERAGE")
    with MonitoringPluginServer() as mon, CostPluginServer() as cost:
        with grpc.insecure_channel(mon.endpoint) as channel:
            ds, metric = data_source_pb2_grpc.DataSourceStub(channel), metric_pb2_grpc.MetricStub(channel)
            ds.verify(data_source_pb2.PluginVerifyRequest(options=s({"store": f"file://{local_stores}"})), timeout=30)
            for options in ({"store": f"file://{local_stores}"}, {"metric_store": str(local_stores / "metrics")}):
                answer = metric.get_data(metric_pb2.MetricDataRequest(options=s(options), **get_data), timeout=30)
                assert len(answer.values["vm-a1"].values) == 24
            with pytest.raises(grpc.RpcError) as err:
                metric.get_data(metric_pb2.MetricDataRequest(options=s({}), **get_data), timeout=30)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "plugin_info.options 'store'" in err.value.details()
            with pytest.raises(grpc.RpcError) as err:  # a store that is not there fails verify, naming it
                ds.verify(data_source_pb2.PluginVerifyRequest(options=s({"store": str(tmp_path)})), timeout=30)
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and str(tmp_path) in err.value.details()
        with grpc.insecure_channel(cost.endpoint) as channel:
            costs = cost_ds_grpc.DataSourceStub(channel)
            costs.verify(cost_ds_pb2.PluginVerifyRequest(options=s({"cost_store": str(local_stores / "costs")})),
                         timeout=30)
            with pytest.raises(grpc.RpcError) as err:
                costs.init(cost_ds_pb2.InitRequest(options=s({})), timeout=30)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "costs/" in err.value.details()
