"""Console layouts, region map tags and Metric Explorer against the CloudForet emulator (issue 17).

A pipeline run registers the CloudServiceTypes with their layouts (schemas/console.py) and the
clusters' Regions with the config's map tags; ``ensure_cloud_service_types`` updates a type whose
metadata changed (inventory CloudServiceTypeService.update); ``ensure_metric_explorer`` creates the
namespace and metrics (inventory NamespaceService/MetricService.create, which run the metric's
analyze query at once), and the MetricData read back equal figures derived from the emulated fleet
independently of the pipeline (tests/helpers.py ``expected``).
"""
from __future__ import annotations

import copy
from collections import defaultdict

import grpc
import pytest
from google.protobuf import json_format
from spaceone.api.inventory.v1 import (
    cloud_service_pb2,
    cloud_service_pb2_grpc,
    metric_data_pb2,
    metric_data_pb2_grpc,
    metric_pb2,
    metric_pb2_grpc,
)

from connectors.cloudforet import CloudForetAuth, CloudForetClient, CloudForetEndpoint
from connectors.errors import CloudForetError
from emulators.cloudforet.config import EmulatorConfig
from emulators.cloudforet.server import CloudForetEmulator
from emulators.prism.fleet import FleetSpec
from emulators.readback import console_table, metric_figures
from pipeline.run import run
from schemas.console import cloud_service_type_definitions
from schemas.metric_explorer import metric_definitions, metric_id, namespace_definition
from tests.helpers import COLLECTED_AT, _env, account_entry, expected, write_config  # noqa: F401  (fixtures)

SPEC = FleetSpec(seed=3, clusters=2, hosts_per_cluster=2, vms=30, disks_per_vm=1, power_on_ratio=0.7)
MAP = {"cluster-00-00": {"continent": "europe", "latitude": 52.37, "longitude": 4.9}}


def client_for(emu, token_env: str = "TEST_CF_TOKEN") -> CloudForetClient:
    auth = CloudForetAuth(domain_id=emu.config.domain_id, workspace_id=emu.config.workspace_id, token_env=token_env)
    return CloudForetClient(CloudForetEndpoint.parse(emu.endpoint), auth)


@pytest.fixture
def collected(tmp_path, prism_servers, cloudforet):
    """One pipeline run over the fleet, with map tags for one cluster (by name) of the account."""
    server, = prism_servers(SPEC)
    account = {**account_entry(server), "regions": MAP}
    assert run(["--config", write_config(tmp_path, [server], cloudforet, accounts=[account]),
                "--collected-at", COLLECTED_AT]) == 0
    return server, cloudforet


def test_a_run_registers_the_types_with_their_layouts_and_the_regions_with_map_tags(collected):
    server, emu = collected
    held = {(t["group"], t["name"]): t for t in emu.store.cloud_service_types()}
    for d in cloud_service_type_definitions():
        t = held[(d["group"], d["name"])]
        assert t["metadata"] == d["metadata"] and t["labels"] == d["labels"] and t["tags"] == d["tags"]
        assert (t["is_primary"], t["is_major"], t["resource_type"]) == (d["is_primary"], d["is_major"],
                                                                          "inventory.CloudService")
    regions = {r["name"]: r for r in emu.store.regions()}
    assert regions["cluster-00-00"]["tags"] == {"continent": "europe", "latitude": "52.37", "longitude": "4.9"}
    assert regions["cluster-00-01"]["tags"] == {}


def test_types_whose_metadata_changed_are_updated_and_the_rest_left_alone(collected):
    _, emu = collected
    client = client_for(emu)
    defs = cloud_service_type_definitions()
    assert client.ensure_cloud_service_types(defs) == {"created": 0, "updated": 0, "unchanged": 4}
    changed = copy.deepcopy(defs)
    changed[0]["metadata"]["view"]["table"]["layout"]["options"]["fields"].pop()
    changed[1]["labels"] = ["Storage", "Block"]
    assert client.ensure_cloud_service_types(changed) == {"created": 0, "updated": 2, "unchanged": 2}
    held = {(t["group"], t["name"]): t for t in emu.store.cloud_service_types()}
    assert held[("Compute", "Instance")]["metadata"] == changed[0]["metadata"]
    assert held[("Storage", "Disk")]["labels"] == ["Storage", "Block"]
    assert held[("Storage", "Disk")]["metadata"] == defs[1]["metadata"]  # a field not sent is kept
    assert client.ensure_cloud_service_types(changed) == {"created": 0, "updated": 0, "unchanged": 4}


def test_region_tags_added_later_update_the_region_and_keep_others_tags(collected):
    _, emu = collected
    client = client_for(emu)
    regions = {r["region_code"]: r["name"] for r in emu.store.regions()}
    code = next(c for c, n in regions.items() if n == "cluster-00-01")
    assert client.ensure_regions("nutanix", regions, {code: {"continent": "asia_pacific", "latitude": "1.35",
                                                             "longitude": "103.8"}}) == \
        {"created": 0, "updated": 1, "unchanged": 1}
    tags = {r["name"]: r["tags"] for r in emu.store.regions()}
    assert tags["cluster-00-01"] == {"continent": "asia_pacific", "latitude": "1.35", "longitude": "103.8"}
    assert tags["cluster-00-00"]["continent"] == "europe"  # given no tags now: what it holds stays


def _want(server) -> dict[str, dict[tuple, float]]:
    """Per metric, the VMs' figures by (cluster uuid, power state, Prism Central), from the fleet."""
    resources, _ = expected(server)
    out: dict[str, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))
    for r in resources.values():
        if r["kind"] != "vm":
            continue
        key = (r["region_code"], r["data"]["power_state"], r["account"])
        out["vm-count"][key] += 1
        out["vcpus"][key] += r["data"]["vcpus"]
        out["memory-gib"][key] += r["data"]["memory_gib"]
        out["disk-gib"][key] += r["data"]["disk_total_gib"]
    return out


def _read(emu, suffix: str) -> dict[tuple, float]:
    """MetricData.list of one metric, summed over the labels the comparison does not split by."""
    stub = metric_data_pb2_grpc.MetricDataStub(grpc.insecure_channel(emu.endpoint))
    info = stub.list(metric_data_pb2.MetricDataQuery(metric_id=metric_id(suffix)),
                     metadata=[("token", emu.app_token())])
    got: dict[tuple, float] = defaultdict(float)
    newest = max(row.created_date for row in info.results)  # the day of the latest run (midnight may pass)
    for row in info.results:
        if row.created_date != newest:
            continue
        labels = json_format.MessageToDict(row.labels)
        got[(labels["Cluster"], labels["Power State"], labels["Prism Central"])] += row.value
    return got


def test_metric_explorer_figures_equal_the_fleets(collected):
    server, emu = collected
    client = client_for(emu)
    namespace, metrics = namespace_definition(), metric_definitions()
    assert client.ensure_metric_explorer(namespace, metrics) == {"created": 5, "updated": 0, "unchanged": 0}
    assert client.ensure_metric_explorer(namespace, metrics) == {"created": 0, "updated": 0, "unchanged": 5}
    want = _want(server)
    assert set(want["vm-count"]) and {p for _, p, _ in want["vm-count"]} == {"ON", "OFF"}
    for suffix in ("vm-count", "vcpus", "memory-gib", "disk-gib"):
        got = _read(emu, suffix)
        assert set(got) == set(want[suffix]), suffix
        for key, value in want[suffix].items():
            assert got[key] == pytest.approx(value, rel=1e-6), (suffix, key)
    # MetricData.analyze, as Metric Explorer asks it: today's vCPUs per cluster
    today = max(r["created_date"] for r in emu.store.metric_data())  # the emulator's day (its wall clock)
    per_cluster = metric_figures(emu.endpoint, emu.app_token(), metric_id("vcpus"), today, "labels.Cluster")
    by_cluster: dict[str, float] = defaultdict(float)
    for (cluster, _, _), v in want["vcpus"].items():
        by_cluster[cluster] += v
    assert {r["Cluster"]: r["value"] for r in per_cluster} == pytest.approx(dict(by_cluster))
    assert all(r["date"] == today for r in per_cluster)
    stub = metric_data_pb2_grpc.MetricDataStub(grpc.insecure_channel(emu.endpoint))
    for start, end in ((today, "2020-01-01"), (today, today[:7])):  # metric_data_manager._check_date_range
        fields = {"value": {"key": "value", "operator": "sum"}}
        request = json_format.ParseDict({"metric_id": metric_id("vcpus"), "query": {
            "granularity": "DAILY", "start": start, "end": end, "fields": fields}},
            metric_data_pb2.MetricDataAnalyzeQuery())
        with pytest.raises(grpc.RpcError) as bad:
            stub.analyze(request, metadata=[("token", emu.app_token())])
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "ERROR_INVALID_DATE_RANGE" in bad.value.details()


def test_a_run_replaces_the_days_figures_with_what_inventory_holds_now(collected):
    server, emu = collected
    client = client_for(emu)
    client.ensure_metric_explorer(namespace_definition(), metric_definitions())
    vm = next(c for c in emu.store.cloud_services() if c["cloud_service_type"] == "Instance")
    cloud_service_pb2_grpc.CloudServiceStub(grpc.insecure_channel(emu.endpoint)).delete(
        cloud_service_pb2.CloudServiceRequest(cloud_service_id=vm["cloud_service_id"]),
        metadata=[("token", emu.app_token())])
    assert client.run_metrics([metric_id("vm-count"), metric_id("vcpus")]) == 2
    want = _want(server)
    key = (vm["region_code"], vm["data"]["power_state"], vm["account"])
    want["vm-count"][key] -= 1
    want["vcpus"][key] -= vm["data"]["vcpus"]
    for suffix in ("vm-count", "vcpus"):
        got = _read(emu, suffix)  # one row per group for the day: the earlier job's rows are gone
        assert {k: v for k, v in got.items() if v} == pytest.approx({k: v for k, v in want[suffix].items() if v})


def test_a_changed_metric_is_updated_and_refused_to_a_workspace_member(tmp_path, monkeypatch):
    cfg = EmulatorConfig(apps=[{"app_id": "owner", "role_type": "WORKSPACE_OWNER"},
                               {"app_id": "member", "role_type": "WORKSPACE_MEMBER"}])
    with CloudForetEmulator(str(tmp_path / "cf.sqlite"), cfg) as emu:
        monkeypatch.setenv("TEST_CF_OWNER", emu.app_token("owner"))
        monkeypatch.setenv("TEST_CF_MEMBER", emu.app_token("member"))
        member = client_for(emu, "TEST_CF_MEMBER")
        with pytest.raises(CloudForetError) as refused:
            member.ensure_metric_explorer(namespace_definition(), metric_definitions())
        assert refused.value.code == "PERMISSION_DENIED" and "Namespace.create" in str(refused.value)
        with pytest.raises(CloudForetError) as refused:
            member.ensure_cloud_service_types(cloud_service_type_definitions())
        assert refused.value.code == "PERMISSION_DENIED"
        owner = client_for(emu, "TEST_CF_OWNER")
        assert owner.ensure_metric_explorer(namespace_definition(), metric_definitions())["created"] == 5
        changed = metric_definitions()
        changed[1]["unit"] = "vCPU"
        assert owner.ensure_metric_explorer(namespace_definition(), changed) == \
            {"created": 0, "updated": 1, "unchanged": 4}
        got = metric_pb2_grpc.MetricStub(grpc.insecure_channel(emu.endpoint)).get(
            metric_pb2.MetricRequest(metric_id=metric_id("vcpus")), metadata=[("token", emu.app_token("member"))])
        assert got.unit == "vCPU" and [json_format.MessageToDict(x)["key"] for x in got.labels_info][:3] == \
            ["workspace_id", "project_id", "service_account_id"]
        assert json_format.MessageToDict(got.labels_info[3])["key"] == "labels.Cluster"


def test_a_metric_query_that_fails_is_refused_naming_its_query_options_not_the_reason(tmp_path, monkeypatch):
    """inventory metric_manager.analyze_resource: any failure of the query is ERROR_WRONG_QUERY_OPTIONS
    (error/metric.py "Wrong query options. (query_options = ...)"), the reason only in the log."""
    cfg = EmulatorConfig(apps=[{"app_id": "owner", "role_type": "WORKSPACE_OWNER"}])
    with CloudForetEmulator(str(tmp_path / "cf.sqlite"), cfg) as emu:
        monkeypatch.setenv("TEST_CF_OWNER", emu.app_token("owner"))
        client_for(emu, "TEST_CF_OWNER").ensure_metric_explorer(namespace_definition(), metric_definitions())
        broken = {**metric_definitions()[0], "metric_id": "metric-broken", "name": "broken"}
        broken["query_options"] = {**broken["query_options"], "group_by": [{"key": "data.power_state"}]}  # no name
        request = json_format.ParseDict({k: v for k, v in broken.items() if k != "version"},
                                        metric_pb2.CreateMetricRequest(), ignore_unknown_fields=True)
        with pytest.raises(grpc.RpcError) as err, grpc.insecure_channel(emu.endpoint) as ch:
            metric_pb2_grpc.MetricStub(ch).create(request, metadata=[("token", emu.app_token("owner"))])
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith("ERROR_WRONG_QUERY_OPTIONS: Wrong query options. (query_options = ")
        assert '"data.power_state"' in err.value.details() and "requires a key and name" not in err.value.details()


def test_the_console_table_read_from_cloudforet_shows_the_layouts_columns_and_first_rows(collected):
    server, emu = collected
    text = console_table(emu.endpoint, emu.app_token(), rows=3)
    title, header, rule, *rows = text.splitlines()
    vms = sorted((r for r in expected(server)[0].values() if r["kind"] == "vm"), key=lambda r: r["name"])
    assert title == f"nutanix Compute / Instance: {len(vms)} resources" and len(rows) == 3
    assert header.split()[:4] == ["Name", "Power", "State", "Cluster"]
    for line, vm in zip(rows, vms):  # the layout's default sort: by name
        assert line.startswith(vm["name"]) and vm["data"]["cluster"]["name"] in line
        assert f" {vm['data']['power_state']} " in line and f"{vm['data']['memory_gib']:g} GB" in line
