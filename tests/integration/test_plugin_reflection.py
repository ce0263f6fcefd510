"""Plugins a real CloudForet can call: one server per protocol, with gRPC server reflection.

The real servers call plugins through spaceone-core's SpaceConnector
(spaceone-core 2.0.144 ``pygrpc/client.py``: ``client()``,
``GRPCClient._init_grpc_reflection`` / ``_bind_grpc_stub``;
``connector/space_connector.py`` ``_check_method``): services come from
reflection and are bound by short name. The emulator's plugin client does the
same, so it refuses what a real server would refuse.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent import futures

import grpc
import pytest
from google.protobuf.json_format import MessageToDict
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from spaceone.api.cost_analysis.plugin import cost_pb2_grpc, job_pb2_grpc
from spaceone.api.cost_analysis.plugin import data_source_pb2_grpc as cost_plugin_ds_grpc
from spaceone.api.cost_analysis.v1 import data_source_pb2 as cost_ds_pb2
from spaceone.api.cost_analysis.v1 import data_source_pb2_grpc as cost_ds_grpc
from spaceone.api.monitoring.plugin import data_source_pb2_grpc as mon_plugin_ds_grpc
from spaceone.api.monitoring.plugin import metric_pb2_grpc
from spaceone.api.monitoring.v1 import data_source_pb2 as mon_ds_pb2
from spaceone.api.monitoring.v1 import data_source_pb2_grpc as mon_ds_grpc

from emulators.cloudforet import plugin_client
from emulators.cloudforet.config import EmulatorConfig
from emulators.cloudforet.server import CloudForetEmulator
from plugin.cost import CostData, CostDataSource, CostJob
from plugin.cost_store import CostStore
from plugin.metric_store import MetricStore
from plugin.monitoring import MonitoringDataSource, MonitoringMetric
from plugin.server import CostPluginServer, MonitoringPluginServer
from tests.helpers import cost_records, install_plugins, register_data_sources, write_costs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MONITORING = {"spaceone.api.monitoring.plugin.DataSource", "spaceone.api.monitoring.plugin.Metric"}
COST = {"spaceone.api.cost_analysis.plugin.DataSource", "spaceone.api.cost_analysis.plugin.Job",
        "spaceone.api.cost_analysis.plugin.Cost"}


def listed_services(endpoint: str) -> set[str]:
    """What the server's reflection answers to list_services (read with the raw reflection stub)."""
    with grpc.insecure_channel(endpoint) as ch:
        answers = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
        answer = next(answers)
    return {s.name for s in answer.list_services_response.service}


def raw_server(tmp_path, monitoring: bool, cost: bool, with_reflection: bool) -> tuple[grpc.Server, str]:
    """The plugin's servicers on a server of the test's own making (e.g. the old layout: both, no reflection)."""
    server = grpc.server(futures.ThreadPoolExecutor(4))
    names = []
    if monitoring:
        metrics = MetricStore(str(tmp_path / "metrics"))
        mon_plugin_ds_grpc.add_DataSourceServicer_to_server(MonitoringDataSource(metrics), server)
        metric_pb2_grpc.add_MetricServicer_to_server(MonitoringMetric(metrics), server)
        names += sorted(MONITORING)
    if cost:
        costs = CostStore(str(tmp_path / "costs"))
        cost_plugin_ds_grpc.add_DataSourceServicer_to_server(CostDataSource(costs), server)
        job_pb2_grpc.add_JobServicer_to_server(CostJob(costs), server)
        cost_pb2_grpc.add_CostServicer_to_server(CostData(costs), server)
        names += sorted(COST)
    if with_reflection:
        reflection.enable_server_reflection(names, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
def emulator(tmp_path):
    config = EmulatorConfig(apps=[{"app_id": "app-owner", "role_type": "WORKSPACE_OWNER"}],
                            cost_create_unsupported=True)
    with CloudForetEmulator(str(tmp_path / "cf.sqlite"), config) as emu, grpc.insecure_channel(emu.endpoint) as ch:
        yield {"ch": ch, "md": [("token", emu.app_token("app-owner"))], "emu": emu}


def register_cost(emulator, endpoint: str) -> str:
    """The cost plugin at ``endpoint`` registered in the repository, then its data source by plugin_info."""
    install_plugins(emulator["emu"], {"cost": endpoint})
    return register_data_sources(emulator["emu"], ("cost",))["cost"]


def register_monitoring(emulator, endpoint: str) -> str:
    install_plugins(emulator["emu"], {"monitoring": endpoint})
    return register_data_sources(emulator["emu"], ("monitoring",))["monitoring"]


def test_each_plugin_server_lists_exactly_its_protocols_services(tmp_path):
    with MonitoringPluginServer(str(tmp_path / "metrics")) as mon, CostPluginServer(str(tmp_path / "costs")) as cost:
        assert mon.port != cost.port
        assert listed_services(mon.endpoint) == MONITORING
        assert listed_services(cost.endpoint) == COST


@pytest.mark.parametrize("protocol,services", [("monitoring", MONITORING), ("cost", COST)])
def test_cli_serves_one_protocol_with_reflection_and_exits_cleanly(tmp_path, protocol, services):
    ready = tmp_path / f"{protocol}.json"
    proc = subprocess.Popen([sys.executable, "-m", "plugin", protocol, "--port", "0", "--store", str(tmp_path),
                             "--ready-file", str(ready)], cwd=REPO, env={**os.environ, "PYTHONPATH": REPO},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # printed once serving (after the ready file is written)
        assert line, proc.stderr.read()
        endpoint = json.loads(line)["endpoint"]
        assert json.loads(ready.read_text()) == {"endpoint": endpoint}
        assert listed_services(endpoint) == services
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_cli_without_a_protocol_is_refused_naming_the_subcommands(tmp_path):
    """The old ``python -m plugin --port N --store DIR`` would serve what no real server can call."""
    proc = subprocess.run([sys.executable, "-m", "plugin", "--port", "0", "--store", str(tmp_path)], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "python -m plugin monitoring --port N --store DIR" in proc.stderr
    assert "python -m plugin cost --port M --store DIR" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("register", [register_cost, register_monitoring])
def test_emulator_refuses_a_plugin_without_reflection_as_the_real_client_does(tmp_path, emulator, register):
    server, endpoint = raw_server(tmp_path, monitoring=True, cost=True, with_reflection=False)
    try:
        with pytest.raises(grpc.RpcError) as err:
            register(emulator, endpoint)
        # pygrpc client(): the GRPCClient's reflection call fails -> ERROR_GRPC_CONNECTION(e.details())
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert err.value.details() == ("ERROR_GRPC_CONNECTION: Server is unavailable. "
                                       f"(channel = {endpoint}, message = Method not found!)")
    finally:
        server.stop(0).wait()


def test_both_protocols_on_one_port_collide_on_the_short_name_datasource(tmp_path, emulator):
    """Even with reflection: GRPCClient binds services by short name, the later DataSource (monitoring's) wins."""
    server, endpoint = raw_server(tmp_path, monitoring=True, cost=True, with_reflection=True)
    try:
        assert plugin_client.PluginConnector(endpoint).api_resources["DataSource"] == ["init", "verify"]
        assert register_monitoring(emulator, endpoint)
        with pytest.raises(grpc.RpcError) as err:
            register_cost(emulator, endpoint)  # cost's init params do not fit monitoring's InitRequest
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert err.value.details().startswith("ERROR_UNKNOWN")
        assert "spaceone.api.monitoring.plugin.InitRequest" in err.value.details()
    finally:
        server.stop(0).wait()


def test_client_binds_short_names_and_refuses_a_method_reflection_does_not_list(tmp_path):
    with CostPluginServer(str(tmp_path / "costs")) as cost:
        client = plugin_client.PluginConnector(cost.endpoint)
        assert client.api_resources == {"DataSource": ["init", "verify"], "Job": ["get_tasks"],
                                        "Cost": ["get_linked_accounts", "get_data"]}
        assert client.dispatch("DataSource.init", {"options": {}, "domain_id": "d"})["metadata"]["currency"] == "USD"
        with pytest.raises(plugin_client.PluginCallError) as err:
            client.dispatch("Metric.get_data", {})
        # SpaceConnector._check_method
        assert err.value.code == grpc.StatusCode.INTERNAL and err.value.error_code == "ERROR_CONNECTOR"
        assert f"Method not supported. (endpoint = {cost.endpoint}, method = Metric.get_data)" in err.value.message


def test_monitoring_and_cost_on_separate_ports_both_called_in_one_emulator(tmp_path, emulator):
    write_costs(str(tmp_path / "costs"), "20261128T0100-run", cost_records(["2026-11-28"]))
    with MonitoringPluginServer(str(tmp_path / "metrics")) as mon, CostPluginServer(str(tmp_path / "costs")) as cost:
        mon_id = register_monitoring(emulator, mon.endpoint)
        cost_id = register_cost(emulator, cost.endpoint)
        got = mon_ds_grpc.DataSourceStub(emulator["ch"]).get(mon_ds_pb2.DataSourceRequest(data_source_id=mon_id),
                                                             metadata=emulator["md"])
        assert "required_keys" in got.plugin_info.metadata  # monitoring's init metadata
        job = MessageToDict(cost_ds_grpc.DataSourceStub(emulator["ch"]).sync(cost_ds_pb2.SyncDataSourceRequest(
            data_source_id=cost_id), metadata=emulator["md"], timeout=60))
        assert job["status"] == "SUCCESS" and job["totalTasks"] == 1
