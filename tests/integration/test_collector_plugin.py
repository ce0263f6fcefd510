"""The collector plugin alone, called through reflection as Inventory calls it.

The emulator's ``PluginConnector`` binds services by short name from gRPC
reflection, as spaceone-core's SpaceConnector does for inventory's
``CollectorPluginManager`` (``init_plugin``, ``verify_plugin``,
``get_tasks``, ``collect``).
"""
from __future__ import annotations

from collections import Counter

import pytest
from google.protobuf.json_format import MessageToDict

from emulators.cloudforet.plugin_client import PluginCallError, PluginConnector
from emulators.prism.fleet import FleetSpec, generate_fleet
from emulators.prism.server import PrismServer
from emulators.tls import make_ca_and_server_cert, prism_ssl_context
from plugin.collector.reading import account_of, open_client, prism_options
from plugin.collector.resources import cloud_service_fields
from plugin.collector.server import CollectorPluginServer
from plugin.collector.tasks import Runs
from tests.helpers import PRISM_PASSWORD, FakeClock, secret_of
from transforms.sinks.inventory import create_request
from transforms.stages.normalize import normalize_vm

OPTIONS = {"vms_per_task": 12, "page_size": 5, "max_requests_per_s": 500, "max_concurrency": 2}


@pytest.fixture
def plugin():
    server = CollectorPluginServer(runs=Runs()).start()
    connector = PluginConnector(server.endpoint)
    yield connector
    connector.close()
    server.stop()


def vm_uuids(plugin: PluginConnector, secret: dict, task: dict, options: dict = OPTIONS) -> list[str]:
    infos = plugin.dispatch("Collector.collect", {"options": options, "secret_data": secret, "filter": {},
                                                  "task_options": task})
    return [i["resource"]["reference"]["resource_id"] for i in infos
            if i.get("resource_type") == "inventory.CloudService" and i["resource"]["cloud_service_type"] == "Instance"]


def test_reflection_lists_collector_and_job_and_init_answers_the_metadata(plugin):
    assert {k: sorted(v) for k, v in plugin.api_resources.items()} == {
        "Collector": ["collect", "init", "verify"], "Job": ["get_tasks"]}
    metadata = plugin.dispatch("Collector.init", {"options": OPTIONS})["metadata"]
    assert metadata["concurrency"] == 4
    assert "inventory.CloudService" in metadata["supported_resource_type"]
    assert "vms_per_task" in metadata["options_schema"]["properties"]
    with pytest.raises(PluginCallError, match="vms_per_task must be a whole number > 0"):
        plugin.dispatch("Collector.init", {"options": {"vms_per_task": 0}})


def test_verify_logs_in_to_prism_and_names_rejected_credentials_without_the_secret(plugin, prism_servers):
    server = prism_servers(FleetSpec(vms=4))[0]
    plugin.dispatch("Collector.verify", {"options": {}, "secret_data": secret_of(server)})
    assert server.requests  # a real Prism call was made
    with pytest.raises(PluginCallError) as err:
        plugin.dispatch("Collector.verify", {"options": {}, "secret_data": secret_of(server, "wrong-Pa55")})
    assert "ERROR_AUTHENTICATE_FAILURE" in err.value.message and "credentials rejected" in err.value.message
    assert "wrong-Pa55" not in err.value.message
    with pytest.raises(PluginCallError, match="nutanix_password"):  # not a Nutanix secret: the field named
        plugin.dispatch("Collector.verify", {"options": {}, "secret_data": {"nutanix_host": "h",
                                                                           "nutanix_username": "u"}})


def test_verify_names_a_tls_failure_and_the_ca_bundle_option_fixes_it(plugin, tmp_path):
    tls = make_ca_and_server_cert(tmp_path)
    with PrismServer(generate_fleet(FleetSpec(vms=2))[0], password=PRISM_PASSWORD,
                     ssl_context=prism_ssl_context(tls)) as server:
        secret = {**secret_of(server), "scheme": "https"}
        with pytest.raises(PluginCallError) as err:
            plugin.dispatch("Collector.verify", {"options": {}, "secret_data": secret})
        assert "TLS verification failed" in err.value.message and "ca_bundle" in err.value.message
        plugin.dispatch("Collector.verify", {"options": {"ca_bundle": tls.ca_pem}, "secret_data": secret})


@pytest.mark.parametrize("margin", [3, 0])
def test_a_vm_moving_between_ranges_during_a_run_is_neither_lost_nor_counted_twice(plugin, prism_servers, margin):
    """3 VMs go (every later VM moves 3 towards the first range) and 4 are created: the list's length
    changes by 1, a margin of 3 more covers the move; with none, the shift past the boundary is missed."""
    server = prism_servers(FleetSpec(seed=3, clusters=1, hosts_per_cluster=1, vms=60))[0]
    pc, secret = server.pc, secret_of(server)
    options = {**OPTIONS, "range_margin": margin}
    tasks = [t["task_options"] for t in plugin.dispatch(
        "Job.get_tasks", {"options": options, "secret_data": secret})["tasks"]]
    vm_tasks = [t for t in tasks if t["part"] == "vms"]
    assert [t["offset"] for t in vm_tasks] == [0, 12, 24, 36, 48] and vm_tasks[-1]["last"]
    seen = Counter(vm_uuids(plugin, secret, vm_tasks[0], options))
    read_before = set(seen)
    # Prism's list changes between two tasks of the run: 3 VMs of the first range go (every later VM moves
    # 3 positions towards the first range, already read) and 4 are created (at the list's end)
    pc.delete_vms(list(pc.iter_live_indices())[:3])
    pc.add_vms(4)
    for task in reversed(vm_tasks[1:]):  # CloudForet's workers take them in any order
        seen.update(vm_uuids(plugin, secret, task, options))
    live = {pc.vm_uuid(i) for i in pc.iter_live_indices()}
    assert max(seen.values()) == 1, "a VM was handed on twice"
    if margin == 0:  # the margin is what keeps them: without it the first VMs of a range are missed
        assert len(live - set(seen)) == 2  # moved by 3, the length change (1) covers one
        return
    assert live <= set(seen), f"lost: {sorted(live - set(seen))[:3]}"
    assert set(seen) - live <= read_before  # the only extra VMs: the deleted ones, read before they went


def test_tasks_of_one_prism_central_share_its_rate_budget(prism_servers):
    server = prism_servers(FleetSpec(vms=2))[0]
    account = account_of(secret_of(server), {})
    first, second = (open_client(account, prism_options(OPTIONS)) for _ in range(2))
    assert first.limiter is second.limiter  # connectors/ratelimit.shared_limiter, keyed by the Prism Central
    assert first.limiter.rate == OPTIONS["max_requests_per_s"]
    other = account_of({**secret_of(server), "nutanix_port": server.port + 1}, {})
    assert open_client(other, prism_options(OPTIONS)).limiter is not first.limiter


def test_a_cloud_service_is_streamed_with_the_fields_the_pipeline_creates_it_with(prism_servers):
    server = prism_servers(FleetSpec(vms=3))[0]
    vm = normalize_vm("pc", server.url, server.pc.vm_entity(0))[0]
    pipeline = MessageToDict(create_request(vm), preserving_proto_field_name=True)
    from google.protobuf import struct_pb2

    streamed = struct_pb2.Struct()
    streamed.update(cloud_service_fields(vm))
    assert MessageToDict(streamed) == pipeline


def test_concurrent_streams_send_the_definitions_first_once_and_the_others_after_their_resources(prism_servers):
    """Inventory creates a definition it cannot match (collecting_manager ``_upsert_resource``: look up,
    then create), so two infrastructure streams sending a new type at once would fail one JobTask
    ERROR_SAVE_UNIQUE_VALUES: one stream sends them first, the others last, when they are held."""
    servers = prism_servers(FleetSpec(prism_centrals=2, clusters=1, hosts_per_cluster=1, vms=3))
    clock = FakeClock()
    server = CollectorPluginServer(runs=Runs(clock), clock=clock).start()
    connector = PluginConnector(server.endpoint)
    definitions = {"inventory.CloudServiceType", "inventory.Namespace", "inventory.Metric"}

    def kinds(s) -> list[str]:
        infos = connector.dispatch("Collector.collect", {"options": OPTIONS, "secret_data": secret_of(s),
                                                         "filter": {}, "task_options": {"part": "infrastructure"}})
        return [i["resource_type"] for i in infos]

    try:
        first, second = kinds(servers[0]), kinds(servers[1])
        n = sum(k in definitions for k in first)
        assert n == sum(k in definitions for k in second) > 0
        assert set(first[:n]) == definitions and "inventory.CloudService" in first[n:]
        assert set(second[-n:]) == definitions and "inventory.CloudService" in second[:-n]
        clock.advance(601)  # a later job's first stream sends them first again
        assert set(kinds(servers[1])[:n]) == definitions
    finally:
        connector.close()
        server.stop()
