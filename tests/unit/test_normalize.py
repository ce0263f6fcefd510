"""Normalization of the real recorded Prism v3 responses (shared/fixtures)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from apache_beam import pvalue

from connectors.prism import parse_list_page
from emulators.prism.fleet import FleetSpec, generate_fleet
from transforms.elements import InfraRead, VmRead
from transforms.settings import Rate, RateCard
from transforms.sources.prism import parse_stats_entity, parse_stats_page
from transforms.stages.cost import costs_for
from transforms.stages.normalize import (
    MalformedEntity,
    NormalizeInfra,
    NormalizeVm,
    is_prism_central,
    latest_utilization,
    normalize_cluster,
    normalize_host,
    normalize_vm,
)

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "prism" / "v3_prism_go_client" / "v3_keploy"
BASE = "https://prism-test.nutanix.com:9440"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def recorded_vm() -> dict:
    return load("ListVM.response.json")["entities"][0]


def test_recorded_vm_list_envelope_parses():
    page = parse_list_page(load("ListVM.response.json"), "vm", 0, "test")
    assert page.total_matches == 1 and page.length == 1 and len(page.entities) == 1


def test_recorded_cluster_list_without_length_or_offset():
    page = parse_list_page(load("ListCluster.response.json"), "cluster", 0, "test")
    # metadata has only kind and total_matches; the recording was trimmed by hand
    assert page.total_matches == 5
    assert page.length == len(page.entities) == 2


def test_recorded_powered_off_vm(recorded_vm):
    resources = normalize_vm("pc-1", BASE, recorded_vm)
    vm, disk = resources
    assert vm["kind"] == "vm" and disk["kind"] == "disk"
    assert (vm["provider"], vm["cloud_service_group"], vm["cloud_service_type"]) == ("nutanix", "Compute", "Instance")
    assert vm["name"] == "test-vm"
    assert vm["account"] == "pc-1"
    assert vm["region_code"] == "00061f7f-44f7-19dc-3be1-7cc25586ee44"
    assert vm["reference"]["resource_id"] == "bdbbad7a-a401-4f9a-a789-2b8406905b56"
    assert vm["reference"]["external_link"].startswith(BASE + "/console/")
    assert "bdbbad7a-a401-4f9a-a789-2b8406905b56" in vm["reference"]["external_link"]
    assert vm["instance_type"] == "1vCPU-1GiB" and vm["instance_size"] == 1.0
    assert vm["ip_addresses"] == ["10.23.129.96"]
    d = vm["data"]
    assert d["power_state"] == "OFF"
    assert d["vcpus"] == 1 and d["memory_gib"] == 1.0
    assert d["host"] == {"uuid": "", "name": ""}  # powered off: no host_reference
    assert d["cluster"] == {"uuid": "00061f7f-44f7-19dc-3be1-7cc25586ee44", "name": "ncn-dev-sandbox"}
    assert d["guest_os"] == ""  # no NGT in the recording
    assert d["created_at"] == "2025-06-07T18:23:52Z"
    assert d["nics"][0]["mac_address"] == "50:6b:8d:24:19:54" and d["nics"][0]["subnet"] == "vlan173"
    assert d["disks"] == [{"uuid": "537e0352-0af0-4aa5-af01-28e5964c5e80", "device_type": "DISK",
                           "adapter_type": "SCSI", "device_index": 0, "size_gib": 8.0,
                           "source": {"kind": "image", "uuid": "70cfd137-a8d9-4169-a5ac-cf9ad6ddb03a", "name": ""}}]
    # the fields operators look for, as the real pc.2024.3 answer holds them
    assert d["owner"] == {"uuid": "1b223294-26c6-5241-919a-bafd1dc0b48f", "name": "cswdjlnxgfji"}
    assert (d["boot_type"], d["machine_type"], d["protection_type"]) == ("UEFI", "PC", "UNPROTECTED")
    assert d["vtpm"] == {"enabled": False, "version": ""} and d["gpus"] == []
    assert d["last_updated_at"] == "2025-06-07T18:23:52Z"
    assert (d["prism_state"], d["prism_messages"]) == ("COMPLETE", [])
    assert (d["size_source"], d["size_known"], d["filled_from_spec"]) == ("status", True, [])
    assert d["nics"][0]["ip_addresses"] == [{"ip": "10.23.129.96", "type": "ASSIGNED"}]
    assert d["utilization"] == {}
    assert vm["tags"] == {}
    assert (disk["cloud_service_group"], disk["cloud_service_type"]) == ("Storage", "Disk")
    assert disk["resource_id"] == "537e0352-0af0-4aa5-af01-28e5964c5e80"
    assert disk["name"] == "test-vm-scsi0"
    assert disk["data"]["size_gib"] == 8.0
    assert disk["data"]["storage_container"]["name"] == "SelfServiceContainer"
    assert disk["data"]["vm"] == {"uuid": vm["resource_id"], "name": "test-vm"}
    assert disk["data"]["source"]["uuid"] == "70cfd137-a8d9-4169-a5ac-cf9ad6ddb03a"
    assert disk["data"]["size_known"] is True


def test_recorded_get_vm_matches_list_entity():
    # GET /vms/{uuid} answers the same entity shape as the list
    vm = normalize_vm("pc-1", BASE, load("GetVM.response.json"))[0]
    assert vm["resource_id"] == "bdbbad7a-a401-4f9a-a789-2b8406905b56" and vm["data"]["power_state"] == "OFF"


def test_vcpus_are_sockets_times_vcpus_per_socket_and_cdrom_is_not_a_disk(recorded_vm):
    e = copy.deepcopy(recorded_vm)
    res = e["status"]["resources"]
    res.update(num_sockets=4, num_vcpus_per_socket=2, memory_size_mib=6144, power_state="ON",
               host_reference={"kind": "host", "uuid": "h-1", "name": "NTNX-A"},
               guest_tools={"nutanix_guest_tools": {"state": "ENABLED",
                                                   "guest_os_version": "linux:64:CentOS Linux-7.9.2009"}})
    res["disk_list"].append({"uuid": "cd-1", "device_properties": {"device_type": "CDROM",
                                                                  "disk_address": {"adapter_type": "IDE",
                                                                                   "device_index": 0}}})
    e["metadata"]["categories"] = {"CostCenter": "finance", "Environment": "prod"}
    resources = normalize_vm("pc-1", BASE, e)
    vm = resources[0]
    assert len(resources) == 2  # the CDROM is listed on the VM but is no disk resource
    assert vm["data"]["vcpus"] == 8 and vm["instance_size"] == 8.0
    assert vm["data"]["memory_gib"] == 6.0 and vm["instance_type"] == "8vCPU-6GiB"
    assert vm["data"]["host"] == {"uuid": "h-1", "name": "NTNX-A"}
    assert vm["data"]["guest_os"] == "linux:64:CentOS Linux-7.9.2009"
    assert [d["device_type"] for d in vm["data"]["disks"]] == ["DISK", "CDROM"]
    assert vm["tags"] == {"CostCenter": "finance", "Environment": "prod"}
    assert resources[1]["tags"] == vm["tags"]


def test_latest_utilization_from_stats(recorded_vm):
    stats = {"hypervisor_cpu_usage_ppm": [(1_000_000_000, 250_000.0), (1_300_000_000, 123_400.0)],
             "memory_usage_ppm": [(1_300_000_000, 500_000.0)]}
    vm = normalize_vm("pc-1", BASE, recorded_vm, stats)[0]
    assert vm["data"]["utilization"] == {"cpu_percent": 12.34, "memory_percent": 50.0,
                                         "as_of": "1970-01-01T00:21:40Z"}
    assert latest_utilization(None) == {}
    far = {"memory_usage_ppm": [(1 << 62, 500_000.0)]}  # a time no calendar holds: no as_of, no crash
    assert normalize_vm("pc-1", BASE, recorded_vm, far)[0]["data"]["utilization"] == {
        "memory_percent": 50.0, "as_of": ""}


def test_recorded_clusters_and_prism_central_pseudo_cluster():
    aos, pc = load("ListCluster.response.json")["entities"]
    assert not is_prism_central(aos) and is_prism_central(pc)
    c = normalize_cluster("pc-1", BASE, aos)
    assert (c["cloud_service_group"], c["cloud_service_type"]) == ("Cluster", "Cluster")
    assert c["name"] == "ganon" and c["resource_id"] == "0005b0f1-8f43-a0f2-02b7-3cecef193712"
    assert c["region_code"] == c["resource_id"]
    assert c["data"]["aos_version"] == "6.5.4.5" and c["data"]["num_nodes"] == 5
    assert c["data"]["redundancy_factor"] == 2 and c["ip_addresses"] == ["10.40.231.131"]
    assert c["data"]["hypervisors"] == ["AHV"]
    assert normalize_cluster("pc-1", BASE, load("GetCluster.response.json"))["name"] == "ganon"


def test_emulated_host_normalizes():
    pc = generate_fleet(FleetSpec(vms=4))[0]
    host = pc.host_entities()[0]
    h = normalize_host("pc-1", BASE, host)
    assert (h["cloud_service_group"], h["cloud_service_type"]) == ("Host", "Host")
    assert h["resource_id"] == host["metadata"]["uuid"]
    assert h["region_code"] == host["status"]["cluster_reference"]["uuid"]
    res = host["status"]["resources"]
    assert h["data"]["num_cpu_cores"] == res["num_cpu_cores"]
    assert h["data"]["memory_gib"] == round(res["memory_capacity_mib"] / 1024, 3)
    assert h["data"]["serial_number"] == res["serial_number"]


@pytest.mark.parametrize("mutate, reason", [
    (lambda e: e["metadata"].pop("uuid"), "uuid"),
    (lambda e: e["metadata"].update(uuid=12345), "uuid"),
    (lambda e: (e["status"].pop("name"), e["spec"].pop("name")), "name"),
    (lambda e: (e["status"].pop("cluster_reference"), e["spec"].pop("cluster_reference")), "cluster"),
])
def test_malformed_vm_is_rejected_with_a_reason(recorded_vm, mutate, reason):
    e = copy.deepcopy(recorded_vm)
    mutate(e)
    with pytest.raises(MalformedEntity, match=reason):
        normalize_vm("pc-1", BASE, e)


def test_hostile_values_are_cleaned_not_crashing(recorded_vm):
    e = copy.deepcopy(recorded_vm)
    e["status"]["name"] = "evil\x00\x1b[31mname" + "x" * 5000
    res = e["status"]["resources"]
    res["num_sockets"] = "lots"
    res["memory_size_mib"] = None
    res["nic_list"] = "not a list"
    res["disk_list"][0]["disk_size_bytes"] = {"x": 1}
    e["metadata"]["categories"] = {"ok": "v", "bad": {"nested": 1}}
    vm = normalize_vm("pc-1", BASE, e)[0]
    assert "\x00" not in vm["name"] and "\x1b" not in vm["name"] and len(vm["name"]) == 255
    assert vm["data"]["vcpus"] == 0  # status holds garbage: not replaced by spec
    assert vm["data"]["memory_gib"] == 1.0 and vm["data"]["filled_from_spec"] == ["memory_size_mib"]  # null: lacking
    assert vm["data"]["size_source"] == "unknown" and vm["instance_type"] == ""
    assert vm["data"]["nics"] == [] and vm["tags"] == {"ok": "v"}


def test_groups_answer_parsing_drops_no_data_and_garbage():
    answer = {"total_entity_count": 2, "group_results": [{"entity_results": [
        {"entity_id": "vm-a", "data": [
            {"name": "hypervisor_cpu_usage_ppm", "values": [{"time": 2, "values": ["-1"]},
                                                             {"time": 1, "values": ["100"]},
                                                             {"time": 3, "values": ["abc"]}]},
            {"name": "unknown_attr", "values": [{"time": 1, "values": ["5"]}]}]},
        {"entity_id": 7, "data": []}]}]}
    total, entities = parse_stats_page(answer)
    assert total == 2
    assert [uuid for uuid, _ in entities] == ["vm-a"]
    assert parse_stats_entity(entities[0][1]) == {"hypervisor_cpu_usage_ppm": [(1, 100.0)]}
    assert parse_stats_entity("not an entity") == {}


def test_clean_str_fast_path_drops_exactly_what_the_pattern_drops():
    import random

    from connectors.untrusted_text import CONTROL_CHARACTERS as _CONTROL
    from transforms.stages.normalize import clean_str
    rng = random.Random(1)
    for _ in range(20_000):
        s = "".join(chr(rng.choice([rng.randint(0, 0x7f), rng.randint(0x80, 0x2100), rng.randint(0x2000, 0x2070)]))
                    for _ in range(rng.randint(0, 8)))
        assert clean_str(s, 5) == _CONTROL.sub("", s)[:5], repr(s)
    assert clean_str("plain name", 5) == "plain" and clean_str("a\x00b\u200bc") == "abc"


# ------------------------------------------------------------------ real-world v3 answers (issue 15)
# Shapes from ../shared/docs/prism.md "Seen in real v3 answers", the v3 swagger
# (vm_def_status, message_resource, vm_vtpm_status, vm_gpu_output_status) and
# the pc.2024.3 recording each test starts from.
CARD = RateCard(default=Rate(vcpu_hour=0.02, gib_ram_hour=0.005, gib_storage_month=0.05, currency="USD"))


def _on(vm: dict) -> dict:
    for side in ("status", "spec"):
        vm[side]["resources"]["power_state"] = "ON"
    return vm


def test_an_ip_listed_assigned_and_learned_is_kept_once_and_link_local_stays_out(recorded_vm):
    e = copy.deepcopy(recorded_vm)
    e["status"]["resources"]["nic_list"][0]["ip_endpoint_list"] = [
        {"ip": "10.23.129.96", "type": "LEARNED"}, {"ip": "10.23.129.96", "type": "ASSIGNED"},
        {"ip": "169.254.10.3", "type": "LEARNED"}, {"ip": "FE80::506B:8DFF:FE24:1954", "type": "LEARNED"},
        {"ip": "fe80::506b:8dff:fe24:1954", "type": "LEARNED"}, {"ip": "2001:db8::5", "type": "LEARNED"}]
    vm = normalize_vm("pc-1", BASE, e)[0]
    assert vm["data"]["nics"][0]["ip_addresses"] == [
        {"ip": "10.23.129.96", "type": "ASSIGNED"}, {"ip": "169.254.10.3", "type": "LEARNED"},
        {"ip": "fe80::506b:8dff:fe24:1954", "type": "LEARNED"}, {"ip": "2001:db8::5", "type": "LEARNED"}]
    assert vm["ip_addresses"] == ["10.23.129.96", "2001:db8::5"]


def test_a_vm_being_created_is_sized_from_spec_flagged_and_gets_no_cost(recorded_vm):
    e = _on(copy.deepcopy(recorded_vm))
    # a create in flight: status holds the state and little else, spec the desired VM
    e["status"] = {"state": "PENDING", "name": "test-vm", "resources": {"hypervisor_type": "AHV"},
                   "execution_context": {"task_uuid": ["e074cb94-1123-4dca-82b0-b842f019a825"]}}
    resources = normalize_vm("pc-1", BASE, e)
    vm, disk = resources
    d = vm["data"]
    assert (d["prism_state"], d["prism_messages"]) == ("PENDING", [])
    assert (d["size_source"], d["size_known"]) == ("spec", False)
    assert {"cluster_reference", "num_sockets", "memory_size_mib", "disk_list", "nic_list", "power_state",
            "boot_config", "machine_type", "description"} <= set(d["filled_from_spec"])
    assert "hypervisor_type" not in d["filled_from_spec"] and d["hypervisor_type"] == "AHV"
    assert vm["instance_type"] == "1vCPU-1GiB" and d["power_state"] == "ON"  # shown as asked for
    assert d["cluster"]["uuid"] == "00061f7f-44f7-19dc-3be1-7cc25586ee44"
    assert disk["data"]["size_source"] == "spec" and disk["data"]["size_known"] is False
    assert costs_for(vm, CARD, "2026-11-28", "ds") == [] and costs_for(disk, CARD, "2026-11-28", "ds") == []
    # the same VM once created: status sized, costed
    done = normalize_vm("pc-1", BASE, _on(copy.deepcopy(recorded_vm)))
    assert done[0]["data"]["size_source"] == "status" and done[0]["data"]["filled_from_spec"] == []
    assert len(costs_for(done[0], CARD, "2026-11-28", "ds")) == 2
    assert len(costs_for(done[1], CARD, "2026-11-28", "ds")) == 1


def test_a_vm_in_error_without_status_resources_keeps_its_messages_and_is_not_lost(recorded_vm):
    e = _on(copy.deepcopy(recorded_vm))
    messages = [{"message": "Not enough memory on any host of cluster ncn-dev-sandbox", "reason": "RESOURCE_SHORTAGE",
                 "details": {}}]
    e["status"] = {"state": "ERROR", "name": "test-vm", "message_list": messages,
                   "cluster_reference": e["spec"]["cluster_reference"]}
    for key in ("num_sockets", "num_vcpus_per_socket", "memory_size_mib"):
        del e["spec"]["resources"][key]  # an ERROR answer whose spec does not size it either
    out = list(NormalizeVm().process((("pc-1", e["metadata"]["uuid"]), VmRead(BASE, e, None))))
    assert not [o for o in out if isinstance(o, pvalue.TaggedOutput)]  # kept, not a dead letter
    vm = out[0]
    d = vm["data"]
    assert (d["prism_state"], d["size_source"], d["size_known"]) == ("ERROR", "unknown", False)
    assert d["prism_messages"] == [{"reason": "RESOURCE_SHORTAGE",
                                    "message": "Not enough memory on any host of cluster ncn-dev-sandbox"}]
    assert vm["instance_type"] == "" and d["vcpus"] == 0 and d["memory_gib"] == 0
    assert costs_for(vm, CARD, "2026-11-28", "ds") == []
    # status sized but powered on only in spec: not priced either
    half = _on(copy.deepcopy(recorded_vm))
    del half["status"]["resources"]["power_state"]
    vm = normalize_vm("pc-1", BASE, half)[0]
    assert vm["data"]["size_known"] and vm["data"]["filled_from_spec"] == ["power_state"]
    assert costs_for(vm, CARD, "2026-11-28", "ds") == []


def test_the_fields_operators_look_for(recorded_vm):
    e = copy.deepcopy(recorded_vm)
    res, spec_res = e["status"]["resources"], e["spec"]["resources"]
    res.update(machine_type="Q35", protection_type="RULE_PROTECTED",
               boot_config={"boot_device_order_list": ["CDROM", "DISK", "NETWORK"], "boot_type": "SECURE_BOOT"},
               vtpm_config={"vtpm_enabled": True, "version": "2.0"},
               gpu_list=[{"vendor": "NVIDIA", "mode": "VIRTUAL", "device_id": 326, "name": "NVIDIA A16-4Q",
                          "uuid": "5a1b9c7e-7a4e-4f59-9d4c-1f6e8b3f2d11", "frame_buffer_size_mib": 4096,
                          "fraction": 4, "num_virtual_display_heads": 4, "guest_driver_version": "535.104.05",
                          "pci_address": "0000:3b:00.0"}])
    spec_res.update(vtpm_config={"vtpm_enabled": True, "vtpm_secret": "do-not-copy-me"},
                    gpu_list=[{"vendor": "NVIDIA", "mode": "VIRTUAL", "device_id": 326}])
    e["metadata"]["last_update_time"] = "2025-07-01T09:10:11Z"
    d = normalize_vm("pc-1", BASE, e)[0]["data"]
    assert (d["boot_type"], d["machine_type"], d["protection_type"]) == ("SECURE_BOOT", "Q35", "RULE_PROTECTED")
    assert d["vtpm"] == {"enabled": True, "version": "2.0"}
    assert d["gpus"] == [{"vendor": "NVIDIA", "mode": "VIRTUAL", "device_id": 326, "name": "NVIDIA A16-4Q",
                          "uuid": "5a1b9c7e-7a4e-4f59-9d4c-1f6e8b3f2d11", "frame_buffer_size_mib": 4096,
                          "guest_driver_version": "535.104.05"}]
    assert d["last_updated_at"] == "2025-07-01T09:10:11Z"
    assert "do-not-copy-me" not in json.dumps(normalize_vm("pc-1", BASE, e))
    # 5.10-era answers: no owner, no boot_type, no vtpm, a disk without container or image
    old = copy.deepcopy(recorded_vm)
    del old["metadata"]["owner_reference"]
    for side in (old["status"]["resources"], old["spec"]["resources"]):
        side["boot_config"] = {"boot_device_order_list": ["CDROM", "DISK", "NETWORK"]}
        for disk in side["disk_list"]:
            disk.pop("data_source_reference")
            disk["storage_config"].pop("storage_container_reference")
    vm, disk = normalize_vm("pc-1", BASE, old)
    assert vm["data"]["owner"] == {"uuid": "", "name": ""} and vm["data"]["boot_type"] == ""
    assert vm["data"]["disks"][0]["source"] == {"kind": "", "uuid": "", "name": ""}
    assert disk["data"]["storage_container"] == {"uuid": "", "name": ""}


def test_hypervisor_versions_of_recorded_cluster_and_emulated_host():
    aos, _ = load("ListCluster.response.json")["entities"]
    c = normalize_cluster("pc-1", BASE, aos)
    # 5 nodes, one reporting 127.0.0.1 with no version: one version, counted once
    assert c["data"]["hypervisor_versions"] == [{"type": "AHV", "version": "el7.nutanix.20220304.462"}]
    host = generate_fleet(FleetSpec(vms=4))[0].host_entities()[0]
    h = normalize_host("pc-1", BASE, host)
    assert h["data"]["hypervisor_version"] == "el7.nutanix.20220304.462"
    assert h["data"]["name_source"] == "prism"


@pytest.mark.parametrize("strip, name, source", [
    (lambda r: None, "10.40.0.10", "hypervisor_ip"),
    (lambda r: r["hypervisor"].pop("ip"), "10.40.0.11", "controller_vm_ip"),
    (lambda r: (r["hypervisor"].pop("ip"), r["controller_vm"].pop("ip")), "SERIAL", "serial_number"),
    (lambda r: (r["hypervisor"].pop("ip"), r["controller_vm"].pop("ip"), r.pop("serial_number")), "UUID", "uuid"),
])
def test_a_host_without_a_name_is_named_from_what_it_has(strip, name, source):
    host = copy.deepcopy(generate_fleet(FleetSpec(vms=4))[0].host_entities()[0])
    del host["status"]["name"], host["spec"]["name"]
    res = host["status"]["resources"]
    strip(res)
    name = {"SERIAL": res.get("serial_number"), "UUID": host["metadata"]["uuid"]}.get(name, name)
    out = list(NormalizeInfra().process((("pc-1", "host", host["metadata"]["uuid"]), InfraRead(BASE, host))))
    assert len(out) == 1 and not isinstance(out[0], pvalue.TaggedOutput)  # never a dead letter
    assert out[0]["name"] == name and out[0]["data"]["name_source"] == source


def test_every_data_key_is_written_even_when_prism_has_nothing(recorded_vm):
    """CloudForet merges ``data`` one level deep: a key left out keeps its old value."""
    full = copy.deepcopy(recorded_vm)
    full["status"]["resources"]["gpu_list"] = [{"vendor": "NVIDIA", "mode": "PASSTHROUGH_COMPUTE", "device_id": 1}]
    bare = {"metadata": {"uuid": recorded_vm["metadata"]["uuid"]},
            "status": {"state": "PENDING", "name": "bare", "cluster_reference": {"uuid": "c-1"}}}
    f_vm, f_disk = normalize_vm("pc-1", BASE, full)
    (b_vm,) = normalize_vm("pc-1", BASE, bare)
    assert set(f_vm["data"]) == set(b_vm["data"])
    assert b_vm["data"]["gpus"] == [] and b_vm["data"]["owner"] == {"uuid": "", "name": ""}
    bare_disk = copy.deepcopy(recorded_vm)
    bare_disk["status"]["resources"]["disk_list"] = [{"uuid": "537e0352-0af0-4aa5-af01-28e5964c5e80",
                                                      "device_properties": {"device_type": "DISK"}}]
    assert set(normalize_vm("pc-1", BASE, bare_disk)[1]["data"]) == set(f_disk["data"])
    pc = generate_fleet(FleetSpec(vms=4))[0]
    host = pc.host_entities()[0]
    bare_host = {"metadata": {"uuid": host["metadata"]["uuid"]}, "status": {}}
    assert set(normalize_host("pc-1", BASE, bare_host)["data"]) == set(normalize_host("pc-1", BASE, host)["data"])
    cluster = pc.cluster_entities()[1]
    bare_cluster = {"metadata": {"uuid": cluster["metadata"]["uuid"]}, "status": {"name": "c"}}
    assert (set(normalize_cluster("pc-1", BASE, bare_cluster)["data"])
            == set(normalize_cluster("pc-1", BASE, cluster)["data"]))
