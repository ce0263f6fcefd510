"""Normalization of the real recorded Prism v3 responses (shared/fixtures)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from emulators.prism.fleet import FleetSpec, generate_fleet
from transforms.normalize import (MalformedEntity, is_prism_central, latest_utilization, normalize_cluster,
                                  normalize_host, normalize_vm)
from transforms.prism_read import parse_stats_entity, parse_stats_page
from connectors.prism import parse_list_page

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "prism" / "v3_prism_go_client" / "v3_keploy"
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
                           "adapter_type": "SCSI", "device_index": 0, "size_gib": 8.0}]
    assert d["utilization"] == {}
    assert vm["tags"] == {}
    assert (disk["cloud_service_group"], disk["cloud_service_type"]) == ("Storage", "Disk")
    assert disk["resource_id"] == "537e0352-0af0-4aa5-af01-28e5964c5e80"
    assert disk["name"] == "test-vm-scsi0"
    assert disk["data"]["size_gib"] == 8.0
    assert disk["data"]["storage_container"]["name"] == "SelfServiceContainer"
    assert disk["data"]["vm"] == {"uuid": vm["resource_id"], "name": "test-vm"}


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
    assert vm["data"]["vcpus"] == 0 and vm["data"]["memory_gib"] == 0
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

    from transforms.normalize import _CONTROL, clean_str
    rng = random.Random(1)
    for _ in range(20_000):
        s = "".join(chr(rng.choice([rng.randint(0, 0x7f), rng.randint(0x80, 0x2100), rng.randint(0x2000, 0x2070)]))
                    for _ in range(rng.randint(0, 8)))
        assert clean_str(s, 5) == _CONTROL.sub("", s)[:5], repr(s)
    assert clean_str("plain name", 5) == "plain" and clean_str("a\x00b\u200bc") == "abc"
