"""CloudForet emulator pulling from the plugin, as the real Monitoring and Cost Analysis services do.

What CloudForet reads back must equal what the pipeline derived: costs to the
cent per cluster and day, metric values per timestamp; a re-synced day is
replaced, never doubled.
"""
from __future__ import annotations

import json
from collections import defaultdict

import grpc
import pytest
from google.protobuf.json_format import ParseDict
from spaceone.api.cost_analysis.v1 import cost_pb2, cost_pb2_grpc
from spaceone.api.cost_analysis.v1 import data_source_pb2 as cost_ds_pb2
from spaceone.api.cost_analysis.v1 import data_source_pb2_grpc as cost_ds_grpc
from spaceone.api.inventory.v1 import cloud_service_pb2, cloud_service_pb2_grpc
from spaceone.api.monitoring.v1 import data_source_pb2 as mon_ds_pb2
from spaceone.api.monitoring.v1 import data_source_pb2_grpc as mon_ds_grpc
from spaceone.api.monitoring.v1 import metric_pb2, metric_pb2_grpc

from emulators.cloudforet.config import EmulatorConfig
from emulators.cloudforet.server import CloudForetEmulator
from plugin.server import CostPluginServer, MonitoringPluginServer
from tests.helpers import (
    cost_records,
    day_start_ms,
    domain_admin_md,
    install_plugins,
    make_points,
    point_value,
    register_data_sources,
    rewrite_after_sync,
    write_costs,
    write_metric_run,
)
from tests.helpers import proto_dict as MessageToDict
from tests.helpers import to_struct as _s

DAY = "2026-11-28"
MON_SECRET = "secret-nutanix-monitoring"
DAYS = ["2026-11-27", DAY]
VMS = ["vm-a1", "vm-b1"]




@pytest.fixture
def env(tmp_path):
    costs, metrics = str(tmp_path / "costs"), str(tmp_path / "metrics")
    write_costs(costs, "20261128T0100-run", cost_records(DAYS))
    write_metric_run(metrics, "20261128T0100-run", make_points(VMS, DAY))
    config = EmulatorConfig(apps=[{"app_id": "app-owner", "role_type": "WORKSPACE_OWNER"},
                                  {"app_id": "app-member", "role_type": "WORKSPACE_MEMBER"},
                                  {"app_id": "app-admin", "role_type": "DOMAIN_ADMIN"}],
                            secrets={MON_SECRET: {"nutanix_host": "pc.example.com", "nutanix_username": "u",
                                                  "nutanix_password": "p"}},
                            cost_create_unsupported=True)
    with MonitoringPluginServer(metrics) as mon_plugin, CostPluginServer(costs) as cost_plugin, \
            CloudForetEmulator(str(tmp_path / "cf.sqlite"), config) as emu, \
            grpc.insecure_channel(emu.endpoint) as ch:
        plugin_ids = install_plugins(emu, {"monitoring": mon_plugin.endpoint, "cost": cost_plugin.endpoint})
        yield {"ch": ch, "emu": emu, "mon_plugin": mon_plugin, "cost_plugin": cost_plugin, "costs": costs,
               "plugin_ids": plugin_ids, "domain_admin": domain_admin_md(emu),
               "metrics": metrics, "tmp": tmp_path,
               "owner": [("token", emu.app_token("app-owner"))], "member": [("token", emu.app_token("app-member"))],
               # cost-analysis 2.0.108 lists costs in domain scope only: a workspace's Cost.list goes through
               # the data source's account mappings (CostManager._change_filter_v_workspace_id), none here
               "admin": [("token", emu.app_token("app-admin"))]}


def cost_request(env, options: dict | None = None, **fields) -> cost_ds_pb2.RegisterDataSourceRequest:
    """As cost-analysis takes it: the plugin_info of a plugin in the repository (no host and port)."""
    info = cost_ds_pb2.PluginInfo(plugin_id=env["plugin_ids"]["cost"], options=_s(options or {}),
                                  upgrade_mode=cost_ds_pb2.PluginInfo.UpgradeMode.AUTO, secret_data=_s({}))
    return cost_ds_pb2.RegisterDataSourceRequest(**{
        "name": "nutanix-cost", "provider": "nutanix", "plugin_info": info,
        "data_source_type": cost_ds_pb2.RegisterDataSourceRequest.DataSourceType.EXTERNAL,
        "resource_group": cost_ds_pb2.RegisterDataSourceRequest.ResourceGroup.WORKSPACE, **fields})


def register_cost(env) -> str:
    return cost_ds_grpc.DataSourceStub(env["ch"]).register(cost_request(env), metadata=env["owner"]).data_source_id


def sync(env, ds_id: str) -> dict:
    return MessageToDict(cost_ds_grpc.DataSourceStub(env["ch"]).sync(
        cost_ds_pb2.SyncDataSourceRequest(data_source_id=ds_id), metadata=env["owner"]))


def per_cluster(env, ds_id: str, day: str, md_key: str = "owner") -> dict[str, float]:
    req = cost_pb2.CostAnalyzeQuery(data_source_id=ds_id)
    ParseDict({"granularity": "DAILY", "start": day, "end": day, "group_by": ["region_code"],
               "fields": {"cost": {"key": "cost", "operator": "sum"}}}, req.query)
    out = MessageToDict(cost_pb2_grpc.CostStub(env["ch"]).analyze(req, metadata=env[md_key]))
    assert all(r["date"] == day for r in out["results"])
    return {r["region_code"]: r["cost"] for r in out["results"]}


def derived(records: list[dict], day: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for r in records:
        if r["billed_date"] == day:
            out[r["region_code"]] += r["cost"]
    return {k: round(v, 2) for k, v in out.items()}


def cost_count(env, ds_id: str) -> int:
    return cost_pb2_grpc.CostStub(env["ch"]).list(cost_pb2.CostQuery(data_source_id=ds_id),
                                                  metadata=env["admin"]).total_count


def test_synced_costs_equal_the_pipeline_to_the_cent(env):
    ds_id = register_cost(env)
    info = MessageToDict(cost_ds_grpc.DataSourceStub(env["ch"]).get(
        cost_ds_pb2.DataSourceRequest(data_source_id=ds_id), metadata=env["member"]))
    assert info["plugin_info"]["metadata"]["currency"] == "USD"
    job = sync(env, ds_id)
    assert job["status"] == "SUCCESS" and job["total_tasks"] == 1
    assert job["changed"] == [{"start": "2026-11", "end": "2026-11"}]
    records = cost_records(DAYS)
    for day in DAYS:
        got = {k: round(v, 2) for k, v in per_cluster(env, ds_id, day, "member").items()}
        assert got == derived(records, day)
    costs = MessageToDict(cost_pb2_grpc.CostStub(env["ch"]).list(
        cost_pb2.CostQuery(data_source_id=ds_id, billed_date=DAY), metadata=env["admin"]))["results"]
    assert len(costs) == len([r for r in records if r["billed_date"] == DAY])
    assert all(c["data_source_id"] == ds_id and c["billed_date"] == DAY for c in costs)


@pytest.mark.parametrize("granularity", ["MONTH", "DAY"])
def test_resynced_day_is_replaced_not_doubled(env, granularity):
    ds_id = cost_ds_grpc.DataSourceStub(env["ch"]).register(
        cost_request(env, {"changed_granularity": granularity}), metadata=env["owner"]).data_source_id
    assert sync(env, ds_id)["status"] == "SUCCESS"
    before = cost_count(env, ds_id)
    unchanged = sync(env, ds_id)  # nothing rewritten: no task, nothing deleted
    assert unchanged["status"] == "SUCCESS" and unchanged.get("total_tasks", 0) == 0
    assert cost_count(env, ds_id) == before
    rewrite_after_sync(env["costs"],  # re-collected day
                       lambda: write_costs(env["costs"], "20261129T0100-run", cost_records([DAY], vcpus=4)))
    job = sync(env, ds_id)
    assert job["status"] == "SUCCESS" and job["total_tasks"] == 1
    assert cost_count(env, ds_id) == before
    new = cost_records([DAY], vcpus=4)
    assert {k: round(v, 2) for k, v in per_cluster(env, ds_id, DAY).items()} == derived(new, DAY)
    assert {k: round(v, 2) for k, v in per_cluster(env, ds_id, "2026-11-27").items()} == \
        derived(cost_records(["2026-11-27"]), "2026-11-27")


def test_monthly_and_accumulated_analyze(env):
    ds_id = register_cost(env)
    sync(env, ds_id)
    req = cost_pb2.CostAnalyzeQuery(data_source_id=ds_id)
    ParseDict({"start": "2026-11", "end": "2026-11",
               "fields": {"total": {"key": "cost", "operator": "sum"}, "n": {"operator": "count"}},
               "filter": [{"k": "region_code", "v": "cluster-b", "o": "eq"}]}, req.query)
    out = MessageToDict(cost_pb2_grpc.CostStub(env["ch"]).analyze(req, metadata=env["owner"]))["results"]
    records = [r for r in cost_records(DAYS) if r["region_code"] == "cluster-b"]
    assert len(out) == 1 and out[0]["n"] == len(records)
    assert round(out[0]["total"], 2) == round(sum(r["cost"] for r in records), 2)


def create_vm_services(env) -> dict[str, str]:
    stub = cloud_service_pb2_grpc.CloudServiceStub(env["ch"])
    out = {}
    for vm in VMS:
        req = cloud_service_pb2.CreateServiceRequest(
            cloud_service_type="Instance", cloud_service_group="VM", provider="nutanix", name=vm,
            region_code="cluster-a", reference=cloud_service_pb2.CloudServiceReference(resource_id=vm))
        out[vm] = stub.create(req, metadata=env["owner"]).cloud_service_id
    return out


def register_monitoring(env) -> str:
    return mon_ds_grpc.DataSourceStub(env["ch"]).register(mon_ds_pb2.RegisterDataSourceRequest(
        name="nutanix-monitoring", plugin_info=mon_ds_pb2.DataSourcePluginInfo(
            plugin_id=env["plugin_ids"]["monitoring"], secret_id=MON_SECRET,
            upgrade_mode=mon_ds_pb2.DataSourcePluginInfo.UpgradeMode.AUTO)),
        metadata=env["domain_admin"]).data_source_id


def test_metric_values_read_back_per_timestamp(env):
    ids = create_vm_services(env)
    ds_id = register_monitoring(env)
    listed = MessageToDict(metric_pb2_grpc.MetricStub(env["ch"]).list(
        metric_pb2.MetricRequest(data_source_id=ds_id, resources=[*ids.values(), "cloud-svc-unknown"]),
        metadata=env["member"]))
    assert listed["available_resources"] == {**{c: True for c in ids.values()}, "cloud-svc-unknown": False}
    cpu = next(m for m in listed["metrics"] if m["key"] == "cpu.utilization")
    assert set(cpu["metric_query"]) == set(ids.values())
    data = MessageToDict(metric_pb2_grpc.MetricStub(env["ch"]).get_data(metric_pb2.MetricDataRequest(
        data_source_id=ds_id, metric_query=_s(cpu["metric_query"]), metric="cpu.utilization",
        start=DAY + "T00:00:00Z", end="2026-11-29T00:00:00Z", period=300, stat="AVERAGE"), metadata=env["member"]))
    assert len(data["labels"]) == 288
    t0 = day_start_ms(DAY)
    for vm, csid in ids.items():
        assert data["values"][csid] == pytest.approx(
            [point_value(vm, "cpu.utilization", t0 + i * 300_000) for i in range(288)])
    by_uuid = MessageToDict(metric_pb2_grpc.MetricStub(env["ch"]).get_data(metric_pb2.MetricDataRequest(
        data_source_id=ds_id, metric_query=_s({"vm-a1": {}, "nope": {}}), metric="memory.utilization",
        start=DAY + "T00:00:00Z", end="2026-11-29T00:00:00Z", period=3600), metadata=env["owner"]))
    assert set(by_uuid["values"]) == {"vm-a1"} and len(by_uuid["labels"]) == 24


def test_roles_tokens_and_register_errors(env):
    stub = cost_ds_grpc.DataSourceStub(env["ch"])
    req = cost_request(env, name="x")
    with pytest.raises(grpc.RpcError) as err:
        stub.register(req, metadata=env["member"])
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        stub.register(req)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:  # no register by host and port: a plugin of the repository
        stub.register(cost_ds_pb2.RegisterDataSourceRequest(
            name="x", data_source_type=cost_ds_pb2.RegisterDataSourceRequest.DataSourceType.EXTERNAL,
            plugin_info=cost_ds_pb2.PluginInfo(plugin_id="p", secret_data=_s({}),
                                               options=_s({"endpoint": env["cost_plugin"].endpoint}))),
            metadata=env["owner"])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ERROR_NO_PLUGIN: Plugin does not exists. (plugin_id = p)" in err.value.details()
    ds_id = register_cost(env)
    with pytest.raises(grpc.RpcError) as err:
        stub.sync(cost_ds_pb2.SyncDataSourceRequest(data_source_id=ds_id), metadata=env["member"])
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:  # still refused: costs come through the plugin
        cost_pb2_grpc.CostStub(env["ch"]).create(cost_pb2.CreateCostRequest(
            cost=1.0, billed_date=DAY, data_source_id="ds-nutanix"), metadata=env["owner"])
    assert "ERROR_NOT_SUPPORT_API" in err.value.details()


def test_sync_with_plugin_down_fails_cleanly(env):
    ds_id = register_cost(env)
    env["cost_plugin"].stop()
    job = sync(env, ds_id)
    # spaceone-core pygrpc client: UNAVAILABLE is ERROR_GRPC_CONNECTION (JobManager.change_error_status)
    assert job["status"] == "FAILURE" and job["error_code"] == "ERROR_GRPC_CONNECTION"
    assert "Server is unavailable" in job["error_message"]
    assert cost_count(env, ds_id) == 0


def test_readback_prints_both_tables(env, capsys):
    from emulators.readback import main
    create_vm_services(env)
    ready = env["tmp"] / "cf.json"
    ready.write_text(json.dumps({"endpoint": env["emu"].endpoint, "domain_id": "domain-nutanix",
                                 "workspace_id": "workspace-default",
                                 "app_tokens": {"app-owner": env["owner"][0][1]}}))
    args = ["--cloudforet-ready", str(ready), "--metric-store", env["metrics"]]
    assert main(args) == 2  # nothing registered yet: it says to run setup --plugins
    assert "python -m pipeline setup --config FILE --plugins" in capsys.readouterr().err
    register_data_sources(env["emu"])
    assert main(args) == 0
    out = capsys.readouterr().out
    records = derived(cost_records(DAYS), DAY)
    assert f"Cost per cluster (region_code) on {DAY}" in out
    for cluster, cost in records.items():
        assert f"{cost:.2f}" in out and cluster in out
    assert "VM vm-a1 on 2026-11-28, 5-minute AVERAGE" in out and "2026-11-28T23:00:00.000Z" in out
    assert main(args) == 0  # a second sync: nothing new
    out = capsys.readouterr().out
    assert "tasks=0" in out
