"""The cost sink's modes: api (Cost.create), datasource (the plugin's cost store), both."""
from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf.json_format import MessageToDict, ParseDict
from spaceone.api.cost_analysis.v1 import cost_pb2, cost_pb2_grpc, job_pb2
from spaceone.api.cost_analysis.v1 import data_source_pb2 as cost_ds_pb2
from spaceone.api.cost_analysis.v1 import data_source_pb2_grpc as cost_ds_grpc

from emulators.cloudforet.config import EmulatorConfig
from emulators.cloudforet.server import CloudForetEmulator
from emulators.prism.fleet import FleetSpec
from emulators.readback import find_data_sources
from pipeline.run import run
from plugin.server import CostPluginServer, MonitoringPluginServer
from tests.helpers import (
    CLOUDFORET_USER_PASSWORD,
    DEFAULT_RATE,
    PRISM_PASSWORD,
    expected_resources,
    install_plugins,
    register_data_sources,
    write_config,
)
from transforms.settings import Rate, RateCard
from transforms.sinks.cost_analysis import NOT_SUPPORTED_HINT
from transforms.stages.cost import costs_for

SPEC = FleetSpec(seed=9, prism_centrals=1, clusters=2, hosts_per_cluster=1, vms=40, disks_per_vm=2)


@pytest.fixture
def modern_cloudforet(tmp_path, monkeypatch):
    """A CloudForet like servers from 2025 on: Cost.create answers ERROR_NOT_SUPPORT_API."""
    user = {"user_id": "collector@example.com", "password": CLOUDFORET_USER_PASSWORD, "role_type": "DOMAIN_ADMIN"}
    emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"), EmulatorConfig(users=[user],
                                                                          cost_create_unsupported=True)).start()
    monkeypatch.setenv("TEST_CF_TOKEN", emu.app_token())
    monkeypatch.setenv("TEST_CF_PASSWORD", CLOUDFORET_USER_PASSWORD)
    monkeypatch.setenv("TEST_PRISM_PASSWORD", PRISM_PASSWORD)
    yield emu
    emu.stop()


def test_api_mode_against_a_modern_server_stops_costs_only(tmp_path, prism_servers, modern_cloudforet):
    servers = prism_servers(SPEC)
    config = write_config(tmp_path, servers, modern_cloudforet, cost_mode="api")
    assert run(["--config", config, "--collected-at", "2026-11-28T06:00:00Z"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    acc = report["accounts"][servers[0].pc.name]
    assert acc["status"] == "WARNING"
    assert acc["inventory"]["created"] == 40 + 80 + 2 + 2 and acc["inventory"]["failed"] == 0
    assert acc["metrics"]["points"] > 0
    assert acc["cost"]["created"] == 0 and acc["cost"]["failed"] > 0
    assert acc["dead_letters"] == 1  # one message, not one per record
    assert NOT_SUPPORTED_HINT in acc["errors"][0] and "'datasource' mode" in acc["errors"][0]
    assert modern_cloudforet.store.costs() == []


def _analyze_per_cluster(emu, ds_id: str, day: str) -> dict:
    with grpc.insecure_channel(emu.endpoint) as ch:
        req = cost_pb2.CostAnalyzeQuery(data_source_id=ds_id)
        ParseDict({"granularity": "DAILY", "start": day, "end": day, "group_by": ["region_code"],
                   "fields": {"cost": {"key": "cost", "operator": "sum"}}}, req.query)
        answer = MessageToDict(cost_pb2_grpc.CostStub(ch).analyze(req, metadata=[("token", emu.app_token())]))
    return {r["region_code"]: r["cost"] for r in answer.get("results", [])}


def _sync(emu, plugins) -> str:
    md = [("token", emu.app_token())]
    with grpc.insecure_channel(emu.endpoint) as ch:
        mon, cost = plugins
        if not emu.config.plugin_images:  # a second sync reuses the data source
            install_plugins(emu, {"monitoring": mon.endpoint, "cost": cost.endpoint})
            register_data_sources(emu)
        _, cost_id = find_data_sources(ch, md)
        job = cost_ds_grpc.DataSourceStub(ch).sync(cost_ds_pb2.SyncDataSourceRequest(data_source_id=cost_id),
                                                   metadata=md)
        assert job_pb2.JobInfo.Status.Name(job.status) == "SUCCESS", job
    return cost_id


def test_datasource_mode_reaches_cloudforet_through_the_plugin(tmp_path, prism_servers, modern_cloudforet):
    servers = prism_servers(SPEC)
    emu = modern_cloudforet
    config = write_config(tmp_path, servers, emu, cost_mode="datasource")
    assert run(["--config", config, "--collected-at", "2026-11-28T06:00:00Z"]) == 0
    acc = json.loads((tmp_path / "report.json").read_text())["accounts"][servers[0].pc.name]
    assert acc["status"] == "SUCCESS" and acc["cost"]["created"] == 0  # no Cost.create at all

    card = RateCard(default=Rate(**DEFAULT_RATE))
    want: dict = {}
    for r in expected_resources(servers):
        for c in costs_for(r, card, "2026-11-28", "ds-nutanix"):
            want[c["region_code"]] = want.get(c["region_code"], 0.0) + c["cost"]
    assert acc["cost_store"]["records"] == sum(
        len(costs_for(r, card, "2026-11-28", "ds")) for r in expected_resources(servers))

    plugins = (MonitoringPluginServer(str(tmp_path / "metrics")).start(),
               CostPluginServer(str(tmp_path / "costs")).start())
    try:
        ds_id = _sync(emu, plugins)
        got = _analyze_per_cluster(emu, ds_id, "2026-11-28")
        assert {k: round(v, 2) for k, v in got.items()} == {k: round(v, 2) for k, v in want.items()}
        n_costs = len(emu.store.costs())

        # the same day collected again (a new run): replaced in CloudForet, not doubled
        assert run(["--config", config, "--collected-at", "2026-11-28T09:00:00Z", "--run-id", "again"]) == 0
        _sync(emu, plugins)
        assert len(emu.store.costs()) == n_costs
        again = _analyze_per_cluster(emu, ds_id, "2026-11-28")
        assert {k: round(v, 2) for k, v in again.items()} == {k: round(v, 2) for k, v in want.items()}
    finally:
        for server in plugins:
            server.stop()
