"""End to end: Prism emulators -> pipeline (FnApiRunner) -> CloudForet emulator.

The expected state is derived from the emulated fleet itself, never from the
pipeline's own output.
"""
from __future__ import annotations

import json
from collections import Counter

import pyarrow.dataset as ds

from emulators.prism.fleet import FleetSpec
from pipeline.run import run
from tests.helpers import (  # noqa: F401  (fixtures)
    CLOUDFORET_USER_PASSWORD,
    COLLECTED_AT,
    DAY,
    DEFAULT_RATE,
    PRISM_PASSWORD,
    _env,
    account_entry,
    expected_resources,
    install_plugins,
    register_data_sources,
    write_config,
)
from transforms.settings import Rate, RateCard
from transforms.stages.cost import costs_for

SPEC = FleetSpec(seed=11, prism_centrals=2, clusters=2, hosts_per_cluster=2, vms=60, disks_per_vm=2,
                 power_on_ratio=0.7)


def by_type(services):
    return Counter((c["cloud_service_group"], c["cloud_service_type"]) for c in services)


def test_collection_end_to_end_and_second_run_creates_nothing(tmp_path, prism_servers, cloudforet, capsys):
    servers = prism_servers(SPEC)
    config = write_config(tmp_path, servers, cloudforet)
    assert run(["--config", config, "--collected-at", COLLECTED_AT]) == 0
    out = capsys.readouterr().out
    assert "SUCCESS" in out and "run report:" in out

    store = cloudforet.store
    services = store.cloud_services()
    vms_expected = expected_resources(servers)
    n_vms = sum(1 for r in vms_expected if r["kind"] == "vm")
    n_disks = sum(1 for r in vms_expected if r["kind"] == "disk")
    assert n_vms == 60 and n_disks == 120
    assert by_type(services) == {("Compute", "Instance"): 60, ("Storage", "Disk"): 120,
                                 ("Cluster", "Cluster"): 4, ("Host", "Host"): 8}
    refs = Counter(c["reference"]["resource_id"] for c in services)
    assert max(refs.values()) == 1

    # a few resources field by field
    by_ref = {c["reference"]["resource_id"]: c for c in services}
    some = [r for r in vms_expected if r["kind"] == "vm"][:5] + [r for r in vms_expected if r["kind"] == "disk"][:3]
    for want in some:
        got = by_ref[want["resource_id"]]
        for key in ("name", "account", "provider", "cloud_service_group", "cloud_service_type", "region_code",
                    "instance_type", "ip_addresses"):
            assert got[key] == want[key], key
        assert got["reference"] == want["reference"]
        assert got["tags"] == {"nutanix": want["tags"]}  # filed under the provider by the create
        assert got["data"]["categories"] == want["tags"]
        for key in ("power_state", "vcpus", "memory_gib", "cluster", "host", "guest_os", "disks", "nics",
                    "size_gib", "vm"):
            if key in want["data"]:
                assert got["data"][key] == want["data"][key], key
    on_vm = next(r for r in vms_expected if r["kind"] == "vm" and r["data"]["power_state"] == "ON")
    util = by_ref[on_vm["resource_id"]]["data"]["utilization"]
    assert 5 <= util["cpu_percent"] <= 90 and "memory_percent" in util
    pc_uuids = {s.pc.uuid for s in servers}
    assert not pc_uuids & set(refs)  # the Prism Central pseudo-cluster is no cloud service
    types = {(t["provider"], t["group"], t["name"]) for t in store.cloud_service_types()}
    assert types == {("nutanix", "Compute", "Instance"), ("nutanix", "Storage", "Disk"),
                     ("nutanix", "Cluster", "Cluster"), ("nutanix", "Host", "Host")}
    assert len(store.regions()) == 4

    # costs: one record per resource and usage type for the day, amounts from the rate card
    card = RateCard(default=Rate(**DEFAULT_RATE),
                    clusters=(("cluster-1-0", Rate(**{**DEFAULT_RATE, "vcpu_hour": 0.05})),))
    want_costs = [c for r in vms_expected for c in costs_for(r, card, DAY, "ds-nutanix")]
    costs = store.costs()
    assert len(costs) == len(want_costs)
    assert Counter((c["resource"], c["usage_type"], c["billed_date"]) for c in costs) == \
        Counter((c["resource"], c["usage_type"], c["billed_date"]) for c in want_costs)
    assert round(sum(c["cost"] for c in costs), 4) == round(sum(c["cost"] for c in want_costs), 4)
    assert any(c["region_code"] and c["data_source_id"] == "ds-nutanix" for c in costs)

    # metric points: the powered-on VMs' stats over the run's window
    table = ds.dataset(str(tmp_path / "metrics"), format="parquet", partitioning="hive").to_table()
    n_on = sum(1 for r in vms_expected if r["kind"] == "vm" and r["data"]["power_state"] == "ON")
    assert table.num_rows == n_on * 8 * 12  # 8 metrics, 12 five-minute points in the hour
    assert set(table.column("metric").to_pylist()) >= {"cpu.utilization", "network.sent_throughput"}

    # one notification per account, naming the run
    notes = store.notifications()
    assert len(notes) == 2
    assert {n["message"]["account"] for n in notes} == {s.pc.name for s in servers}
    assert all(n["notification_type"] == "SUCCESS" for n in notes)

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "SUCCESS" and report["billed_date"] == DAY
    first = report["accounts"][servers[0].pc.name]
    assert first["inventory"]["created"] == 30 + 60 + 2 + 4 and first["inventory"]["updated"] == 0
    assert first["read"]["vms"] == 30

    # second run, same day: nothing created, nothing doubled
    assert run(["--config", config, "--collected-at", "2026-11-28T07:00:00Z", "--run-id", "second"]) == 0
    services2 = store.cloud_services()
    assert len(services2) == len(services)
    assert max(Counter(c["reference"]["resource_id"] for c in services2).values()) == 1
    assert len(store.costs()) == len(costs)
    report2 = json.loads((tmp_path / "report.json").read_text())
    acc = report2["accounts"][servers[0].pc.name]
    # unchanged resources are not rewritten within the touch interval
    assert acc["inventory"]["created"] == 0 and acc["inventory"]["unchanged"] == 96
    assert acc["inventory"]["updated"] == 0
    assert acc["cost"]["created"] == 0 and acc["cost"]["already_present"] > 0
    assert len(store.notifications()) == 4  # a new run id, so a new notification per account

    # a change in Prism is written; a resource not written for touch_after_s is touched
    vm0 = servers[0].pc
    moved = next(i for i in vm0.iter_live_indices())
    vm0.delete_vms([moved])
    config3 = write_config(tmp_path, servers, cloudforet, name="config3.yaml", touch_after_s=0)
    assert run(["--config", config3, "--collected-at", "2026-11-28T08:00:00Z", "--run-id", "third"]) == 0
    acc = json.loads((tmp_path / "report.json").read_text())["accounts"][servers[0].pc.name]
    assert acc["inventory"]["updated"] == 96 - 3 and acc["inventory"]["unchanged"] == 0


def test_user_credentials_and_one_failed_account(tmp_path, prism_servers, cloudforet):
    good, = prism_servers(FleetSpec(vms=10, clusters=1, hosts_per_cluster=1))
    accounts = [account_entry(good, name="good"),
                {**account_entry(good, name="bad-password"), "password_env": "WRONG_PASSWORD"},
                {"name": "unreachable", "host": "127.0.0.1", "port": 9, "scheme": "http", "username": "admin",
                 "password_env": "TEST_PRISM_PASSWORD"}]
    import os
    os.environ["WRONG_PASSWORD"] = "not-the-password"
    try:
        config = write_config(tmp_path, [good], cloudforet, accounts=accounts,
                              auth={"user_id": "collector@example.com", "password_env": "TEST_CF_PASSWORD"})
        assert run(["--config", config, "--collected-at", COLLECTED_AT]) == 1
    finally:
        del os.environ["WRONG_PASSWORD"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "ERROR"
    assert report["accounts"]["good"]["status"] == "SUCCESS"
    assert report["accounts"]["good"]["inventory"]["created"] == 10 + 20 + 1 + 1
    bad = report["accounts"]["bad-password"]
    assert bad["status"] == "ERROR" and "credentials rejected" in bad["error"]
    assert report["accounts"]["unreachable"]["status"] == "ERROR"
    notes = {n["message"]["account"]: n for n in cloudforet.store.notifications()}
    assert notes["bad-password"]["notification_type"] == "ERROR"
    assert notes["good"]["notification_type"] == "SUCCESS"
    assert PRISM_PASSWORD not in (tmp_path / "report.json").read_text()
    assert "not-the-password" not in (tmp_path / "report.json").read_text()


def test_reconciliation_deletes_what_prism_no_longer_has(tmp_path, prism_servers, cloudforet):
    server, = prism_servers(FleetSpec(seed=4, vms=20, clusters=1, hosts_per_cluster=1, disks_per_vm=1))
    config = write_config(tmp_path, [server], cloudforet)
    assert run(["--config", config, "--collected-at", COLLECTED_AT]) == 0
    live = lambda: {c["reference"]["resource_id"] for c in cloudforet.store.cloud_services()}  # noqa: E731
    assert len(live()) == 20 + 20 + 1 + 1
    counters = lambda: json.loads((tmp_path / "report.json").read_text())["counters"]  # noqa: E731
    # CloudForet holds exactly what the run wrote: one count, no listing
    assert counters()["reconcile.accounts_settled_by_count"] == 1

    gone = [1, 2]
    gone_ids = {server.pc.vm_uuid(i) for i in gone}
    gone_ids |= {d["uuid"] for i in gone for d in server.pc.vm_entity(i)["spec"]["resources"]["disk_list"]
                 if d["device_properties"]["device_type"] == "DISK"}
    server.pc.delete_vms(gone)
    assert run(["--config", config, "--collected-at", "2026-11-29T06:00:00Z"]) == 0
    assert live() & gone_ids == set() and len(live()) == 42 - 4
    deleted = [c for c in cloudforet.store.cloud_services(include_deleted=True) if c["state"] == "DELETED"]
    assert {c["reference"]["resource_id"] for c in deleted} == gone_ids
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["accounts"][server.pc.name]["reconcile"]["deleted"] == 4
    assert counters().get("reconcile.accounts_settled_by_count", 0) == 0  # 4 more than written: listed

    # a guard: 60% gone at once is refused unless allowed
    server.pc.delete_vms(range(3, 15))
    assert run(["--config", config, "--collected-at", "2026-11-30T06:00:00Z"]) == 0
    acc = json.loads((tmp_path / "report.json").read_text())["accounts"][server.pc.name]
    assert acc["reconcile"]["deleted"] == 0 and acc["reconcile"]["refused"] == 24
    assert any("reconciliation refused" in n and "--allow-mass-delete" in n for n in acc["notes"])
    assert len(live()) == 38
    assert run(["--config", config, "--collected-at", "2026-11-30T07:00:00Z", "--allow-mass-delete"]) == 0
    assert len(live()) == 38 - 24


def test_no_reconciliation_after_an_incomplete_collection(tmp_path, prism_servers, cloudforet):
    from emulators.prism.faults import PrismFaults
    server, = prism_servers(FleetSpec(seed=4, vms=30, clusters=1, hosts_per_cluster=1, disks_per_vm=1))
    config = write_config(tmp_path, [server], cloudforet)
    assert run(["--config", config, "--collected-at", COLLECTED_AT]) == 0
    before = len(cloudforet.store.cloud_services())
    server.pc.delete_vms([0])
    # every VM page after the first fails: the collection is incomplete
    server.faults = PrismFaults("500@after=1@path=/vms/list")
    assert run(["--config", config, "--collected-at", "2026-11-29T06:00:00Z"]) == 0
    acc = json.loads((tmp_path / "report.json").read_text())["accounts"][server.pc.name]
    assert acc["status"] == "WARNING" and not acc["complete"]
    assert any("reconciliation skipped" in n for n in acc["notes"])
    assert len(cloudforet.store.cloud_services()) == before  # nothing deleted


def test_readback_calls_the_monitoring_and_the_cost_plugin_on_their_own_ports(tmp_path, prism_servers, cloudforet,
                                                                                capsys):
    """One run, both plugins, each its own server with reflection, called by the emulator as CloudForet does."""
    from emulators.readback import main as readback
    from plugin.server import CostPluginServer, MonitoringPluginServer

    servers = prism_servers(FleetSpec(seed=5, vms=12, clusters=2, hosts_per_cluster=1, disks_per_vm=1))
    config = write_config(tmp_path, servers, cloudforet, cost_mode="datasource")
    assert run(["--config", config, "--collected-at", COLLECTED_AT]) == 0
    assert cloudforet.store.costs() == []  # datasource mode: costs only through the cost plugin
    card = RateCard(default=Rate(**DEFAULT_RATE),
                    clusters=(("cluster-1-0", Rate(**{**DEFAULT_RATE, "vcpu_hour": 0.05})),))
    want: dict[str, float] = {}
    for r in expected_resources(servers):
        for c in costs_for(r, card, DAY, "ds"):
            want[c["region_code"]] = want.get(c["region_code"], 0.0) + c["cost"]
    ready = tmp_path / "cloudforet.json"
    ready.write_text(json.dumps({"endpoint": cloudforet.endpoint, "domain_id": cloudforet.config.domain_id,
                                 "workspace_id": cloudforet.config.workspace_id,
                                 "app_tokens": {"app": cloudforet.app_token()}}))
    capsys.readouterr()
    with MonitoringPluginServer(str(tmp_path / "metrics")) as mon, CostPluginServer(str(tmp_path / "costs")) as cost:
        assert mon.port != cost.port
        install_plugins(cloudforet, {"monitoring": mon.endpoint, "cost": cost.endpoint})
        register_data_sources(cloudforet)  # as setup --plugins registers them: by plugin_info
        assert readback(["--cloudforet-ready", str(ready), "--metric-store", str(tmp_path / "metrics")]) == 0
    out = capsys.readouterr().out
    assert "SUCCESS tasks=1" in out
    rows = {line.split()[0]: float(line.split()[1]) for line in out.splitlines()
            if line.split() and line.split()[0] in want}
    assert rows == {k: round(v, 2) for k, v in want.items()}
    series = out.split("5-minute AVERAGE", 1)[1].splitlines()[2:]
    points = [line.split() for line in series if line.startswith(DAY)]
    assert len(points) == 12  # the run's hour of 5-minute points
    assert all(float(p[1]) >= 0 and float(p[2]) >= 0 for p in points)

def console(emu):
    """A person's CloudForet client, as the console's: public API calls with their token."""
    import grpc
    from spaceone.api.inventory.v1 import cloud_service_pb2_grpc

    channel = grpc.insecure_channel(emu.endpoint)
    return channel, cloud_service_pb2_grpc.CloudServiceStub(channel), (("token", emu.app_token()),)


def test_a_category_changed_in_prism_keeps_the_console_tags_and_is_reported(tmp_path, prism_servers, cloudforet,
                                                                            monkeypatch, capsys):
    """On a real inventory a create files tags under tags.nutanix, which no public update can
    change, and a public update's tags replace tags.custom, where people's console tags
    live (inventory CloudServiceService.update_resource, _get_provider_from_meta). A
    category changed in Prism therefore goes to data.categories; the custom bucket stays
    as its people left it; the run reports the resources whose tags.nutanix lag Prism."""
    from spaceone.api.inventory.v1 import cloud_service_pb2

    from connectors.cloudforet import to_struct

    server, = prism_servers(FleetSpec(seed=4, vms=8, clusters=1, hosts_per_cluster=1, disks_per_vm=1))
    config = write_config(tmp_path, [server], cloudforet)
    assert run(["--config", config, "--collected-at", COLLECTED_AT]) == 0
    pc = server.pc
    i = next(i for i in pc.iter_live_indices() if pc.vm_entity(i)["metadata"]["categories"])
    before = dict(pc.vm_entity(i)["metadata"]["categories"])
    uuid = pc.vm_uuid(i)
    record = lambda: next(c for c in cloudforet.store.cloud_services()  # noqa: E731
                          if c["reference"]["resource_id"] == uuid)
    assert record()["tags"] == {"nutanix": before} and record()["data"]["categories"] == before

    channel, stub, token = console(cloudforet)
    try:  # a person tags the VM in the console
        stub.update(cloud_service_pb2.UpdateCloudServiceRequest(
            cloud_service_id=record()["cloud_service_id"], tags=to_struct({"Owner": "alice", "Environment": "x"})),
            metadata=token, timeout=5)
    finally:
        channel.close()
    moved = {**before, "Environment": "Moved"}
    entity = pc.vm_entity

    def recategorized(j):  # the VM's Environment category changed in Prism
        e = entity(j)
        if j == i:
            e["metadata"]["categories"] = dict(moved)
            e["metadata"]["categories_mapping"] = {k: [v] for k, v in moved.items()}
        return e

    monkeypatch.setattr(pc, "vm_entity", recategorized)
    capsys.readouterr()
    assert run(["--config", config, "--collected-at", "2026-11-28T07:00:00Z", "--run-id", "second"]) == 0
    got = record()
    assert got["tags"] == {"nutanix": before, "custom": {"Owner": "alice", "Environment": "x"}}
    assert got["data"]["categories"] == moved
    disks = [c for c in cloudforet.store.cloud_services() if c["data"].get("vm", {}).get("uuid") == uuid]
    assert disks and all(d["data"]["categories"] == moved for d in disks)
    acc = json.loads((tmp_path / "report.json").read_text())["accounts"][pc.name]
    assert acc["inventory"]["tags_drift"] == 1 + len(disks)  # the VM and its disks
    assert acc["inventory"]["updated"] == 1 + len(disks) and acc["inventory"]["failed"] == 0
    assert any("tags follow prism only through the collector plugin" in n.lower() for n in acc["notes"])
    out = capsys.readouterr().out
    assert "tag drift" in out and f"{1 + len(disks)} cloud services' tags.nutanix no longer match" in out


def test_a_vm_deleted_in_cloudforet_and_still_in_prism_is_created_anew(tmp_path, prism_servers, cloudforet):
    """A deleted record stays readable (state DELETED) and is left out of matching (inventory
    CloudServiceManager.list_cloud_services appends state ACTIVE unless the query asks for
    DELETED): the collector's lookup does not find it, and the VM gets a new record."""
    from spaceone.api.inventory.v1 import cloud_service_pb2

    server, = prism_servers(FleetSpec(seed=4, vms=6, clusters=1, hosts_per_cluster=1, disks_per_vm=1))
    config = write_config(tmp_path, [server], cloudforet)
    assert run(["--config", config, "--collected-at", COLLECTED_AT]) == 0
    uuid = server.pc.vm_uuid(next(server.pc.iter_live_indices()))
    old = next(c for c in cloudforet.store.cloud_services() if c["reference"]["resource_id"] == uuid)
    channel, stub, token = console(cloudforet)
    try:
        stub.delete(cloud_service_pb2.CloudServiceRequest(cloud_service_id=old["cloud_service_id"]),
                    metadata=token, timeout=5)
        assert run(["--config", config, "--collected-at", "2026-11-28T07:00:00Z", "--run-id", "second"]) == 0
        gone = stub.get(cloud_service_pb2.CloudServiceRequest(cloud_service_id=old["cloud_service_id"]),
                        metadata=token, timeout=5)
    finally:
        channel.close()
    assert gone.state == "DELETED"
    now = [c for c in cloudforet.store.cloud_services() if c["reference"]["resource_id"] == uuid]
    assert len(now) == 1 and now[0]["cloud_service_id"] != old["cloud_service_id"] and now[0]["state"] == "ACTIVE"
    acc = json.loads((tmp_path / "report.json").read_text())["accounts"][server.pc.name]
    assert acc["inventory"]["created"] == 1 and acc["inventory"]["failed"] == 0 and acc["status"] == "SUCCESS"
