"""The collector plugin run by the emulated Inventory: Jobs, JobTasks, provider tags, clean-up.

Everything over real gRPC: the emulator's ``Collector.collect`` calls the
plugin (``python -m plugin collector``'s server) through reflection, as
inventory's ``CollectorPluginManager`` does through SpaceConnector, and the
tests read Jobs, JobTasks and cloud services back through the public API.
Expected counts come from the emulated fleet, never from the plugin.
Behaviour followed: cloudforet-io/inventory ``manager/collecting_manager.py``
(counts), ``manager/job_task_manager.py`` ``decrease_remained_sub_tasks`` and
``manager/cleanup_manager.py`` (disconnected and deleted), ``service/
cloud_service_service.py`` ``update_resource`` (a collector's tags go to the
provider's bucket).
"""
from __future__ import annotations

import socket
from collections import Counter
from datetime import datetime, timezone

import grpc
import pytest
from google.protobuf.json_format import MessageToDict
from spaceone.api.inventory.v1 import (
    cloud_service_pb2,
    cloud_service_pb2_grpc,
    collector_pb2,
    collector_pb2_grpc,
    job_pb2,
    job_pb2_grpc,
    job_task_pb2,
    job_task_pb2_grpc,
    metric_pb2,
    metric_pb2_grpc,
    namespace_pb2,
    namespace_pb2_grpc,
)

from connectors.cloudforet import to_struct
from emulators.cloudforet.config import EmulatorConfig
from emulators.cloudforet.server import CloudForetEmulator
from emulators.prism.fleet import FleetSpec
from pipeline.run import run
from plugin.collector.server import CollectorPluginServer
from plugin.collector.tasks import Runs
from plugin.images import IMAGES
from schemas.metric_explorer import metric_definitions, namespace_definition
from tests.helpers import (
    COLLECTED_AT,
    PRISM_PASSWORD,
    FakeClock,
    account_entry,
    expected,
    install_plugins,
    secret_of,
    write_config,
)

SPEC = FleetSpec(seed=5, prism_centrals=2, clusters=2, hosts_per_cluster=2, vms=60, disks_per_vm=2)
OPTIONS = {"vms_per_task": 12, "page_size": 5, "max_requests_per_s": 500, "max_concurrency": 2}
HOUR = 3600.0
SPEC_NAMES = ("prism-central-0", "prism-central-1")
T0 = datetime(2026, 11, 28, 6, tzinfo=timezone.utc).timestamp()
STATUS = job_task_pb2.JobTaskInfo.JobTaskStatus.Name


def address(server) -> str:
    """The account name the plugin gives a Prism Central's records (host:port when not 9440)."""
    return f"{server.host}:{server.port}"


class Rig:
    """Prism Centrals, a CloudForet emulator holding one service account per Prism Central, the collector
    plugin registered in the emulated repository (its supervisor runs it at the plugin's endpoint), and a
    Collector of that plugin."""

    def __init__(self, tmp_path, servers, secrets: dict | None = None, options: dict | None = None,
                 secret_filter: dict | None = None) -> None:
        self.servers = servers
        secrets = secrets or {f"secret-{s.pc.name}": secret_of(s) for s in servers}
        accounts = [{"service_account_id": f"sa-{sid[7:]}", "name": sid[7:], "provider": "nutanix",
                     "secret_id": sid, "project_id": "project-nutanix"} for sid in secrets]
        self.emu = CloudForetEmulator(str(tmp_path / "cf.sqlite"),
                                      EmulatorConfig(secrets=secrets, service_accounts=accounts)).start()
        self.clock = FakeClock(T0)
        self.emu.backend.clock = self.clock
        self.plugin = CollectorPluginServer(runs=Runs(self.clock), clock=self.clock).start()
        self.channel = grpc.insecure_channel(self.emu.endpoint)
        self.md = (("token", self.emu.app_token()),)
        self.collectors = collector_pb2_grpc.CollectorStub(self.channel)
        self.jobs = job_pb2_grpc.JobStub(self.channel)
        self.job_tasks = job_task_pb2_grpc.JobTaskStub(self.channel)
        self.cloud_services = cloud_service_pb2_grpc.CloudServiceStub(self.channel)
        install_plugins(self.emu, {"collector": self.plugin.endpoint})
        request = collector_pb2.CreateCollectorRequest(
            name="Nutanix", provider="nutanix",
            plugin_info=collector_pb2.PluginInfo(plugin_id=IMAGES["collector"].name))
        request.plugin_info.options.update(options or OPTIONS)
        if secret_filter:
            request.secret_filter.CopyFrom(collector_pb2.SecretFilter(**secret_filter))
        self.collector = self.collectors.create(request, metadata=self.md)

    def job(self) -> tuple[dict, dict]:
        """Runs one job to its end: (the Job, {service account: its JobTask}) as the API answers them."""
        started = self.collectors.collect(collector_pb2.CollectRequest(collector_id=self.collector.collector_id),
                                          metadata=self.md)
        assert job_pb2.JobInfo.Status.Name(started.status) == "IN_PROGRESS"
        self.emu.collector_jobs.wait(started.job_id, timeout=120)
        job = MessageToDict(self.jobs.get(job_pb2.JobRequest(job_id=started.job_id), metadata=self.md),
                            preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
        tasks = self.job_tasks.list(job_task_pb2.JobTaskQuery(job_id=started.job_id), metadata=self.md).results
        return job, {t.service_account_id: t for t in tasks}

    def close(self) -> None:
        self.channel.close()
        self.plugin.stop()
        self.emu.stop()


@pytest.fixture
def rig(tmp_path, prism_servers):
    made: list[Rig] = []

    def make(spec: FleetSpec = SPEC, secrets=None, **kwargs) -> Rig:
        servers = prism_servers(spec)
        made.append(Rig(tmp_path, servers, secrets=secrets(servers) if secrets else None, **kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


def counts(task) -> tuple:
    return (STATUS(task.status), task.created_count, task.updated_count, task.failure_count, task.deleted_count,
            task.disconnected_count)


def fleet_size(server) -> int:
    return len(expected(server)[0])


def test_first_job_creates_every_resource_of_every_prism_central(rig):
    r = rig()
    job, tasks = r.job()
    assert job["status"] == "SUCCESS" and job["total_tasks"] == 2 and job["success_tasks"] == 2
    for s in r.servers:
        assert counts(tasks[f"sa-{s.pc.name}"]) == ("SUCCESS", fleet_size(s), 0, 0, 0, 0)
    services = r.emu.store.cloud_services()
    assert Counter(c["account"] for c in services) == {address(s): fleet_size(s) for s in r.servers}
    vm = next(c for c in services if c["cloud_service_type"] == "Instance" and c["data"]["categories"])
    assert vm["tags"] == {"nutanix": vm["data"]["categories"]}  # the provider's bucket
    assert vm["collection_info"]["collector_id"] == r.collector.collector_id
    assert vm["project_id"] == "project-nutanix"  # the secret's project (collecting manager: secret.project_id)
    # types (with their console layouts), regions, the Metric Explorer namespace and metrics: upserted, not counted
    types = r.emu.store.cloud_service_types()
    assert len(types) == 4 and all(t["metadata"]["view"]["table"] for t in types)
    assert len(r.emu.store.regions()) == 4
    namespaces = namespace_pb2_grpc.NamespaceStub(r.channel).list(namespace_pb2.NamespaceQuery(), metadata=r.md)
    metrics = metric_pb2_grpc.MetricStub(r.channel).list(metric_pb2.MetricQuery(), metadata=r.md)
    assert [n.namespace_id for n in namespaces.results] == [namespace_definition()["namespace_id"]]
    assert {m.metric_id for m in metrics.results} == {m["metric_id"] for m in metric_definitions()}
    assert all(m.is_managed for m in metrics.results)


def test_unchanged_fleet_second_job_creates_nothing_and_updates_everything(rig):
    r = rig()
    r.job()
    r.clock.advance(2 * HOUR)
    job, tasks = r.job()
    assert job["status"] == "SUCCESS"
    for s in r.servers:
        assert counts(tasks[f"sa-{s.pc.name}"]) == ("SUCCESS", 0, fleet_size(s), 0, 0, 0)
    refs = Counter(c["reference"]["resource_id"] for c in r.emu.store.cloud_services())
    assert max(refs.values()) == 1


def test_churned_fleet_creates_updates_and_deletes_only_after_the_third_success_run_more_than_an_hour_apart(rig):
    r = rig()
    r.job()
    pc = r.servers[0].pc
    gone = [i for i in list(pc.iter_live_indices())[:3]]
    gone_refs = {res["resource_id"] for i in gone for res in expected_one(r.servers[0], i)}
    pc.delete_vms(gone)
    added = pc.add_vms(2)
    added_n = sum(len(expected_one(r.servers[0], i)) for i in added)
    sa = f"sa-{pc.name}"
    live = fleet_size(r.servers[0])

    r.clock.advance(30 * 60)  # within the hour: the states of the missing VMs are too young to count
    _, tasks = r.job()
    assert counts(tasks[sa]) == ("SUCCESS", added_n, live - added_n, 0, 0, 0)
    for hours, disconnected, deleted in ((2, len(gone_refs), 0), (3, len(gone_refs), 0), (4, 0, len(gone_refs))):
        r.clock.advance(HOUR)  # cleanup_manager: +1 per SUCCESS run once a state is over an hour old
        _, tasks = r.job()
        assert counts(tasks[sa]) == ("SUCCESS", 0, live, 0, deleted, disconnected), hours
        held = {c["reference"]["resource_id"]: c["state"] for c in r.emu.store.cloud_services(include_deleted=True)}
        assert all(held[ref] == ("DELETED" if deleted else "ACTIVE") for ref in gone_refs)
    other = f"sa-{r.servers[1].pc.name}"
    assert counts(tasks[other])[4:] == (0, 0)  # the other Prism Central's records are its own


def expected_one(server, i: int) -> list[dict]:
    from transforms.stages.normalize import normalize_vm

    return normalize_vm(server.pc.name, server.url, server.pc.vm_entity(i))


def test_one_prism_central_down_fails_its_task_and_the_others_succeed(rig):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    r = rig(FleetSpec(seed=5, prism_centrals=1, clusters=1, hosts_per_cluster=1, vms=10),
            secrets=lambda servers: {"secret-up": secret_of(servers[0]),
                                     "secret-down": {**secret_of(servers[0]), "nutanix_port": dead_port}})
    up = r.servers[0]
    job, tasks = r.job()
    errors = {sa: [e.message for e in t.errors] for sa, t in tasks.items()}
    assert job["status"] == "FAILURE" and job["failure_tasks"] == 1 and job["success_tasks"] == 1, errors
    assert counts(tasks["sa-up"]) == ("SUCCESS", fleet_size(up), 0, 0, 0, 0)
    # Job.get_tasks failed, so one collect without task options ran, and failed (collecting manager)
    assert counts(tasks["sa-down"])[:4] == ("FAILURE", 0, 0, 1)
    message = " ".join(e.message for e in tasks["sa-down"].errors)
    assert "connection failed or timed out" in message and PRISM_PASSWORD not in message


def test_a_malformed_entity_is_a_counted_failure_and_the_rest_is_written(rig):
    r = rig()
    pc = r.servers[0].pc
    broken = next(iter(pc.iter_live_indices()))
    uuid = pc.vm_uuid(broken)
    original = pc.vm_entity
    written = fleet_size(r.servers[0]) - len(expected_one(r.servers[0], broken))  # the VM and its disks

    def vm_entity(i: int) -> dict:
        entity = original(i)
        if i == broken:  # Prism answers a VM without a name
            entity["status"].pop("name", None)
            entity["spec"].pop("name", None)
        return entity

    pc.vm_entity = vm_entity
    job, tasks = r.job()
    task = tasks[f"sa-{pc.name}"]
    assert counts(task) == ("FAILURE", written, 0, 1, 0, 0)
    assert any(uuid in e.message and "no name" in e.message for e in task.errors)
    assert job["status"] == "FAILURE"
    assert counts(tasks[f"sa-{r.servers[1].pc.name}"])[0] == "SUCCESS"


def test_a_category_changed_in_prism_reaches_the_provider_tags_and_a_console_tag_stays(rig):
    r = rig()
    r.job()
    pc = r.servers[0].pc
    i = next(iter(pc.iter_live_indices()))
    uuid = pc.vm_uuid(i)
    record = next(c for c in r.emu.store.cloud_services() if c["reference"]["resource_id"] == uuid)
    # a person tags the VM in the console: a public update, filed under "custom"
    r.cloud_services.update(cloud_service_pb2.UpdateCloudServiceRequest(
        cloud_service_id=record["cloud_service_id"], tags=to_struct({"Owner": "alice"})), metadata=r.md)
    original = pc.vm_entity

    def vm_entity(j: int) -> dict:
        entity = original(j)
        if j == i:
            entity["metadata"]["categories"] = {"Environment": "Prod", "Team": "payments"}
        return entity

    pc.vm_entity = vm_entity
    r.clock.advance(2 * HOUR)
    r.job()
    got = MessageToDict(r.cloud_services.get(cloud_service_pb2.CloudServiceRequest(
        cloud_service_id=record["cloud_service_id"]), metadata=r.md))
    assert got["tags"] == {"nutanix": {"Environment": "Prod", "Team": "payments"}, "custom": {"Owner": "alice"}}
    assert got["data"]["categories"] == {"Environment": "Prod", "Team": "payments"}


def test_the_same_fleet_gives_the_same_cloud_services_through_the_plugin_and_the_pipeline(
        tmp_path, rig, cloudforet, monkeypatch):
    r = rig()
    server = r.servers[0]
    monkeypatch.setenv("TEST_PRISM_PASSWORD", PRISM_PASSWORD)
    monkeypatch.setenv("TEST_CF_TOKEN", cloudforet.app_token())
    # the pipeline's account named as the plugin names it (or map it with the plugin's account_names)
    config = write_config(tmp_path, [server], cloudforet, cost_mode="datasource",
                          accounts=[account_entry(server, name=address(server))])
    assert run(["--config", config, "--collected-at", COLLECTED_AT]) == 0
    r.clock.now = datetime.fromisoformat(COLLECTED_AT.replace("Z", "+00:00")).timestamp()
    r.job()
    mine = {c["reference"]["resource_id"]: c for c in r.emu.store.cloud_services()
            if c["reference"]["external_link"].startswith(server.url)}
    theirs = {c["reference"]["resource_id"]: c for c in cloudforet.store.cloud_services()}
    assert set(mine) == set(theirs) and len(mine) == fleet_size(server)
    fields = ("cloud_service_type", "cloud_service_group", "provider", "name", "account", "instance_type",
              "instance_size", "ip_addresses", "data", "reference", "region_code", "tags", "metadata", "state")
    for ref, want in theirs.items():
        for key in fields:
            assert mine[ref].get(key) == want.get(key), (ref, key)


def test_a_secret_filter_leaves_the_other_prism_centrals_to_the_pipeline(rig):
    """Running both without writing twice: the collector's secret_filter names its service accounts
    (inventory collector_service.py _make_secret_filter)."""
    r = rig(secret_filter={"state": collector_pb2.SecretFilter.ENABLED,
                           "service_accounts": [f"sa-{SPEC_NAMES[0]}"]})
    job, tasks = r.job()
    assert job["total_tasks"] == 1 and set(tasks) == {f"sa-{SPEC_NAMES[0]}"}
    assert {c["account"] for c in r.emu.store.cloud_services()} == {address(r.servers[0])}


def test_a_secret_filter_by_schema_is_checked_on_update_and_then_fails_every_collect(rig):
    """inventory CollectorService.update checks an ENABLED filter's schemas against identity
    (_check_schemas), and collect lists the secrets with a filter on ``schema`` (_make_secret_filter),
    a field cloudforet-io/secret's Secret model lacks: Secret.list answers ERROR_DB_QUERY, and so does
    Collector.collect. (Why setup --plugins makes its Collector without a secret filter.)"""
    r = rig()
    enabled = collector_pb2.SecretFilter(state=collector_pb2.SecretFilter.ENABLED,
                                         schemas=["nutanix-secret-prism-central"])
    update = collector_pb2.UpdateCollectorRequest(collector_id=r.collector.collector_id, secret_filter=enabled)
    with pytest.raises(grpc.RpcError) as err:
        r.collectors.update(update, metadata=r.md)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "secret_filter.schemas" in err.value.details()
    domain_id = r.collector.domain_id
    r.emu.store.insert("schemas", f"{domain_id}/nutanix-secret-prism-central",
                       {"schema_id": "nutanix-secret-prism-central", "provider": "nutanix", "domain_id": domain_id})
    assert r.collectors.update(update, metadata=r.md).secret_filter.schemas == ["nutanix-secret-prism-central"]
    with pytest.raises(grpc.RpcError) as err:
        r.collectors.collect(collector_pb2.CollectRequest(collector_id=r.collector.collector_id), metadata=r.md)
    assert err.value.code() == grpc.StatusCode.INTERNAL and 'Cannot resolve field "schema"' in err.value.details()
    assert r.emu.store.scan("jobs") == []  # no job was made


def test_collectors_are_registered_by_owners_and_admins_and_collected_by_members_too(tmp_path, prism_servers):
    """inventory collector_service.py role_types: create/update/delete DOMAIN_ADMIN, WORKSPACE_OWNER;
    get/list/collect also WORKSPACE_MEMBER; no token is UNAUTHENTICATED."""
    server = prism_servers(FleetSpec(vms=2))[0]
    apps = [{"app_id": "app-owner", "role_type": "WORKSPACE_OWNER"},
            {"app_id": "app-member", "role_type": "WORKSPACE_MEMBER"}]
    emu = CloudForetEmulator(str(tmp_path / "roles.sqlite"), EmulatorConfig(
        apps=apps, secrets={"secret-pc": secret_of(server)},
        service_accounts=[{"service_account_id": "sa-pc", "name": "pc", "provider": "nutanix",
                           "secret_id": "secret-pc"}])).start()
    plugin = CollectorPluginServer(runs=Runs()).start()
    try:
        with grpc.insecure_channel(emu.endpoint) as channel:
            stub = collector_pb2_grpc.CollectorStub(channel)
            plugin_id = install_plugins(emu, {"collector": plugin.endpoint})["collector"]
            request = collector_pb2.CreateCollectorRequest(
                name="Nutanix", provider="nutanix", plugin_info=collector_pb2.PluginInfo(plugin_id=plugin_id))
            member = (("token", emu.app_token("app-member")),)
            with pytest.raises(grpc.RpcError) as err:
                stub.create(request, metadata=member)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            with pytest.raises(grpc.RpcError) as err:
                stub.list(collector_pb2.CollectorQuery())
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            owner = (("token", emu.app_token("app-owner")),)
            collector = stub.create(request, metadata=owner)
            assert [c.collector_id for c in stub.list(collector_pb2.CollectorQuery(), metadata=member).results] == \
                [collector.collector_id]
            job = stub.collect(collector_pb2.CollectRequest(collector_id=collector.collector_id), metadata=member)
            assert emu.collector_jobs.wait(job.job_id, timeout=60)["status"] == "SUCCESS"
            with pytest.raises(grpc.RpcError) as err:
                stub.delete(collector_pb2.CollectorRequest(collector_id=collector.collector_id), metadata=member)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            with pytest.raises(grpc.RpcError, match="Maximum 2 hours"):
                stub.update(collector_pb2.UpdateCollectorRequest(
                    collector_id=collector.collector_id, schedule=collector_pb2.Scheduled(
                        state=collector_pb2.Scheduled.ENABLED, hours=[1, 2, 3])), metadata=owner)
            assert emu.store.collection_states(collector.collector_id)
            stub.verify_plugin(collector_pb2.VerifyPluginRequest(collector_id=collector.collector_id), metadata=owner)
            # delete takes the collector's jobs, job tasks and collection states with it
            stub.delete(collector_pb2.CollectorRequest(collector_id=collector.collector_id), metadata=owner)
            assert not job_pb2_grpc.JobStub(channel).list(job_pb2.JobsQuery(), metadata=owner).results
            assert not emu.store.collection_states(collector.collector_id)
    finally:
        plugin.stop()
        emu.stop()
