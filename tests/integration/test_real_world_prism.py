"""Real-world Prism v3 answers end to end (issue 15), and data keys that follow Prism (issue 13, point 8).

Prism emulator with ``real_world_quirks`` -> pipeline -> CloudForet emulator. The
expected state is derived from the emulated fleet, never from the pipeline's output.
"""
from __future__ import annotations

import copy
import json
from collections import Counter

from emulators.prism.fleet import FleetSpec
from pipeline.run import run
from tests.helpers import COLLECTED_AT, DAY, DEFAULT_RATE, _env, expected_resources, write_config  # noqa: F401  (fixtures)
from transforms.settings import Rate, RateCard
from transforms.stages.cost import costs_for
from transforms.stages.normalize import is_link_local

QUIRKS = FleetSpec(seed=13, prism_centrals=1, clusters=2, hosts_per_cluster=2, vms=40, disks_per_vm=1,
                   real_world_quirks=True)


def test_vms_being_created_or_in_error_are_kept_flagged_and_cost_nothing(tmp_path, prism_servers, cloudforet):
    server, = prism_servers(QUIRKS)
    assert run(["--config", write_config(tmp_path, [server], cloudforet), "--collected-at", COLLECTED_AT]) == 0
    store = cloudforet.store
    services = store.cloud_services()
    by_ref = {c["reference"]["resource_id"]: c for c in services}
    want = expected_resources([server])
    vms = [r for r in want if r["kind"] == "vm"]
    assert len(vms) == server.pc.vm_count()  # none lost, whatever its state
    assert Counter(c["cloud_service_type"] for c in services) == {
        "Instance": len(vms), "Disk": len(want) - len(vms), "Cluster": 2, "Host": 4}
    flagged = [r for r in vms if not r["data"]["size_known"]]
    states = Counter(by_ref[r["resource_id"]]["data"]["prism_state"] for r in flagged)
    assert states == {"PENDING": 4, "ERROR": 2}  # 2 PENDING + 1 ERROR per 20 VMs
    for r in flagged:
        got = by_ref[r["resource_id"]]["data"]
        assert got["size_source"] == "spec" and got["filled_from_spec"] == r["data"]["filled_from_spec"]
        if got["prism_state"] == "ERROR":
            assert got["prism_messages"][0]["reason"] == "RESOURCE_SHORTAGE"

    # costs: only what status sized; the flagged VMs and their spec-sized disks have none
    card = RateCard(default=Rate(**DEFAULT_RATE),
                    clusters=(("cluster-1-0", Rate(**{**DEFAULT_RATE, "vcpu_hour": 0.05})),))
    want_costs = Counter((c["resource"], c["usage_type"]) for r in want for c in costs_for(r, card, DAY, "ds-nutanix"))
    costs = store.costs()
    assert Counter((c["resource"], c["usage_type"]) for c in costs) == want_costs
    unsized = {r["resource_id"] for r in want if not r["data"]["size_known"]}
    assert len(unsized) > len(flagged) and not unsized & {c["resource"] for c in costs}

    # addresses: each once, with its type; link-local only in the NIC detail
    saw_duplicate = saw_link_local = False
    for r in vms:
        got = by_ref[r["resource_id"]]
        assert got["ip_addresses"] == r["ip_addresses"] and not any(map(is_link_local, got["ip_addresses"]))
        for nic in got["data"]["nics"]:
            ips = [e["ip"] for e in nic["ip_addresses"]]
            assert len(ips) == len(set(ips))
            saw_link_local |= any(map(is_link_local, ips))
        entity = server.pc.vm_entity(server.pc.vm_index_of(r["resource_id"]))
        listed = [e["ip"] for n in entity["status"].get("resources", {}).get("nic_list", [])
                  for e in n["ip_endpoint_list"]]
        saw_duplicate |= len(listed) != len(set(listed))
    assert saw_duplicate and saw_link_local

    # the nameless host: named from its hypervisor IP, not a dead letter
    hosts = [c for c in services if c["cloud_service_type"] == "Host"]
    nameless = next(h for h in server.pc.host_entities() if "name" not in h["status"])
    named = by_ref[nameless["metadata"]["uuid"]]
    assert named["name"] == nameless["status"]["resources"]["hypervisor"]["ip"]
    assert named["data"]["name_source"] == "hypervisor_ip" and len(hosts) == 4
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["accounts"][server.pc.name]["dead_letters"] == 0
    assert report["counters"]["cost.resources_without_known_size"] == len(unsized)  # said in the report


def test_a_field_that_goes_away_in_prism_goes_away_in_cloudforet(tmp_path, prism_servers, cloudforet):
    """CloudForet merges ``data`` one level deep on update (emulators/cloudforet/inventory_service.py,
    as the real inventory does): only a key written again, empty, replaces what it held."""
    server, = prism_servers(FleetSpec(seed=4, vms=6, clusters=1, hosts_per_cluster=1, disks_per_vm=1))
    pc = server.pc
    plain = pc.vm_entity
    uuid = pc.vm_uuid(1)

    def rich(i: int) -> dict:  # VM 1 as first seen: a vGPU, a vTPM, NGT, an owner
        e = copy.deepcopy(plain(i))
        if i == 1:
            res = e["status"]["resources"]
            res.update(gpu_list=[{"vendor": "NVIDIA", "mode": "PASSTHROUGH_COMPUTE", "device_id": 8372,
                                  "name": "NVIDIA A100", "uuid": "8d1f6a3e-2b7c-4c1d-9e0f-3a4b5c6d7e8f"}],
                       vtpm_config={"vtpm_enabled": True, "version": "2.0"},
                       guest_tools={"nutanix_guest_tools": {"state": "ENABLED", "guest_os_version":
                                                            "linux:64:Ubuntu-22.04"}})
        return e

    def stripped(i: int) -> dict:  # the same VM later: GPU and vTPM removed, NGT uninstalled, no owner
        e = copy.deepcopy(plain(i))
        if i == 1:
            res = e["status"]["resources"]
            res["gpu_list"] = []
            res.pop("vtpm_config", None)
            res.pop("guest_tools", None)
            del e["metadata"]["owner_reference"]
        return e

    config = write_config(tmp_path, [server], cloudforet)
    pc.vm_entity = rich
    assert run(["--config", config, "--collected-at", COLLECTED_AT]) == 0
    held = lambda: next(c for c in cloudforet.store.cloud_services()  # noqa: E731
                        if c["reference"]["resource_id"] == uuid)["data"]
    first = held()
    assert first["gpus"][0]["name"] == "NVIDIA A100" and first["vtpm"]["enabled"] is True
    assert first["guest_os"] == "linux:64:Ubuntu-22.04" and first["owner"]["name"] == "admin"

    pc.vm_entity = stripped
    assert run(["--config", config, "--collected-at", "2026-11-28T07:00:00Z", "--run-id", "second"]) == 0
    after = held()
    assert after["gpus"] == [] and after["vtpm"] == {"enabled": False, "version": ""}
    assert after["guest_os"] == "" and after["owner"] == {"uuid": "", "name": ""}
    assert set(after) == set(first)  # every key written again, none left behind
