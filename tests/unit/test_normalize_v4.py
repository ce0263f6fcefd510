"""v4 answers -> the v3 form -> resources, on the real v4.0 recordings
(../shared/fixtures/prism/v4_manageiq from pc.2024.3.1.1, v4_datadog_stats from pc 7.3)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.prism_v4 import parse_v4_page, pick_version
from transforms.sources.v4_shapes import Lookups, cluster_to_v3, host_to_v3, stats_to_v3, v3_time, vm_to_v3
from transforms.stages.normalize import (
    is_prism_central,
    normalize_cluster,
    normalize_host,
    normalize_vm,
    utilization_of,
)

FIXTURES = Path("/work/shared/fixtures/prism")
MIQ = FIXTURES / "v4_manageiq"


def _data(name: str) -> list[dict]:
    return json.loads((MIQ / f"refresher__api_{name}.json").read_text())["data"]


@pytest.fixture(scope="module")
def lookups() -> Lookups:
    return Lookups.build(_data("clustermgmt_v4_0_config_clusters"), _data("clustermgmt_v4_0_config_hosts"), [],
                         _data("clustermgmt_v4_0_config_storage_containers"), [])


@pytest.fixture(scope="module")
def vms(lookups) -> dict[str, list[dict]]:
    return {vm["name"]: normalize_vm("pc", "https://pc:9440", vm_to_v3(vm, lookups))
            for vm in _data("vmm_v4_0_ahv_config_vms")}


def test_every_recorded_vm_normalizes_with_its_names_joined(vms):
    assert len(vms) == 26
    pc_vm = vms["PC-NameOption-1"]
    vm = pc_vm[0]
    assert vm["resource_id"] == "69a6d1c5-79b6-4178-a529-46238569eeb2"
    assert vm["data"]["vcpus"] == 4 and vm["data"]["memory_gib"] == 18.0  # 19327352832 bytes
    assert vm["data"]["cluster"] == {"uuid": "000633d6-6577-7490-6614-ac1f6b3d8797", "name": "Acme"}
    assert vm["data"]["host"] == {"uuid": "ffb769ef-9599-49f7-8608-4b5d10d076e7", "name": "NTNX-20SM6K300373-C"}
    assert vm["data"]["size_known"] and vm["data"]["power_state"] == "ON"
    assert vm["ip_addresses"] == ["192.168.1.150"]  # a learned address (ipv4Info)
    assert vm["data"]["nics"][0]["ip_addresses"] == [{"ip": "192.168.1.150", "type": "LEARNED"}]
    assert vm["data"]["boot_type"] == "LEGACY" and vm["data"]["machine_type"] == "PC"
    disks = [r for r in pc_vm if r["kind"] == "disk"]
    assert len(disks) == 7  # the CD-ROM is listed in data.disks but is no disk resource
    assert [d["device_type"] for d in vm["data"]["disks"]].count("CDROM") == 1
    assert {d["data"]["storage_container"]["name"] for d in disks} == {"default-container-68181097865302"}
    assert round(sum(d["data"]["size_gib"] for d in disks), 3) == vm["data"]["disk_total_gib"]


def test_recorded_uefi_off_and_cloned_vms(vms):
    off = vms["test-windows-2022"][0]
    assert off["data"]["power_state"] == "OFF" and off["data"]["host"] == {"uuid": "", "name": ""}
    assert off["data"]["boot_type"] == "UEFI"
    sources = [d["source"] for r in vms.values() for d in r[0]["data"]["disks"] if d["device_type"] == "DISK"
               and d["source"]["uuid"]]
    assert len(sources) == 21 and {s["kind"] for s in sources} == {"image"}  # backingInfo.dataSource
    glpi = vms["GLPI-CMP"][0]
    assert len(glpi["ip_addresses"]) == 2 and all(n["ip_addresses"][0]["type"] == "ASSIGNED"
                                                  for n in glpi["data"]["nics"])  # ipv4Config


def test_recorded_clusters_and_hosts(lookups):
    clusters = [cluster_to_v3(c, lookups) for c in _data("clustermgmt_v4_0_config_clusters")]
    pcs = [c for c in clusters if is_prism_central(c)]
    assert [c["status"]["name"] for c in pcs] == ["Unnamed"]  # Prism Central lists itself
    acme = normalize_cluster("pc", "https://pc:9440", next(c for c in clusters if not is_prism_central(c)))
    assert acme["name"] == "Acme" and acme["ip_addresses"] == ["192.168.1.148"]
    assert acme["data"]["aos_version"] == "7.0" and acme["data"]["redundancy_factor"] == 2
    assert acme["data"]["num_nodes"] == 4 and acme["data"]["hypervisors"] == ["AHV"]
    assert acme["data"]["hypervisor_versions"] == [{"type": "AHV", "version": "10.0.1"}]
    hosts = [normalize_host("pc", "https://pc:9440", host_to_v3(h, lookups))
             for h in _data("clustermgmt_v4_0_config_hosts")]
    d = next(h for h in hosts if h["name"] == "NTNX-20SM6K300373-D")
    assert d["data"]["cluster"] == {"uuid": "000633d6-6577-7490-6614-ac1f6b3d8797", "name": "Acme"}
    assert d["data"]["num_cpu_cores"] == 40 and d["data"]["cpu_capacity_ghz"] == 84.0  # 40 x 2.1 GHz
    assert d["data"]["memory_gib"] == 692.04 and d["data"]["num_vms"] == 8
    assert d["ip_addresses"] == ["192.168.1.143"] and d["instance_type"] == "NX-3060-G7"


def test_recorded_vm_stats_give_the_latest_utilization():
    body = json.loads((FIXTURES / "v4_datadog_stats" / "vm_stats_f3272103-ea1e-4a90-8318-899636993ed6.json")
                      .read_text())
    uuid, result = stats_to_v3(body["data"])
    assert uuid == "f3272103-ea1e-4a90-8318-899636993ed6"
    series = {col["name"]: col["values"] for col in result["data"]}
    assert len(series) == 8 and all(len(v) == 1 for v in series.values())  # metadata-only tuples add nothing
    assert series["controller_write_io_bandwidth_kBps"][0]["values"] == ["1704"]
    assert utilization_of(result) == {"cpu_percent": 20.114, "memory_percent": 59.0746, "as_of": "2025-10-24T20:22:00Z"}


def test_recorded_list_envelope_and_versions():
    body = json.loads((MIQ / "refresher__api_vmm_v4_0_ahv_config_vms.json").read_text())
    page = parse_v4_page(body, 0, 50, "here")
    assert page.total == 26 and len(page.entities) == 26
    assert parse_v4_page({"metadata": {"totalAvailableResults": 26}}, 1, 50, "here").entities == []
    with pytest.raises(Exception, match="totalAvailableResults"):
        parse_v4_page({"metadata": {}, "data": []}, 1, 50, "here")
    assert [pick_version(v) for v in ("v4.0", "v4.1", "v4.9", "v4.2.b1", "v3.1", "", None, 4)] == \
        ["v4.0", "v4.1", "v4.3", "v4.2", None, None, None, None]


def test_hostile_v4_entities_become_dead_letters_not_crashes(lookups):
    from transforms.stages.normalize import MalformedEntity
    for bad in ({}, {"extId": 3}, {"extId": "69a6d1c5-79b6-4178-a529-46238569eeb2"}, "vm", None,
                {"extId": "69a6d1c5-79b6-4178-a529-46238569eeb2", "name": "x", "cluster": "not a ref"}):
        with pytest.raises(MalformedEntity):
            normalize_vm("pc", "https://pc", vm_to_v3(bad, lookups))  # type: ignore[arg-type]
    weird = {"extId": "69a6d1c5-79b6-4178-a529-46238569eeb2", "name": "x", "cluster": {"extId": "c"},
             "memorySizeBytes": "lots", "disks": [None, {"backingInfo": "no"}], "nics": [7],
             "categories": [{"extId": None}], "bootConfig": []}
    vm = normalize_vm("pc", "https://pc", vm_to_v3(weird, lookups))[0]
    assert vm["data"]["size_known"] is False and vm["tags"] == {}
    assert stats_to_v3({"extId": "a", "stats": [{"timestamp": "yesterday", "memoryUsagePpm": 5}, "x"]}) == \
        ("a", {"entity_id": "a", "data": [{"name": n, "values": []} for n in (
            "hypervisor_cpu_usage_ppm", "memory_usage_ppm", "controller_num_read_iops", "controller_num_write_iops",
            "controller_read_io_bandwidth_kBps", "controller_write_io_bandwidth_kBps",
            "hypervisor_num_received_bytes", "hypervisor_num_transmitted_bytes")]})


def test_a_v4_time_reads_as_v3_writes_it_so_records_do_not_change_with_the_api(lookups):
    """v4 answers microseconds, v3 whole seconds (both recordings): the same instant, the same record."""
    name = "targeted_vm__api_vmm_v4_0_ahv_config_vms_69a6d1c5_79b6_4178_a529_46238569eeb2.json"
    vm = json.loads((MIQ / name).read_text())["data"]
    assert vm["createTime"] == "2025-04-28T14:27:39.495755Z"
    assert vm_to_v3(vm, lookups)["metadata"]["creation_time"] == "2025-04-28T14:27:39Z"
    assert v3_time("2025-04-28T14:27:39.495755+02:00") == "2025-04-28T14:27:39+02:00"
    assert v3_time("2025-06-07T18:23:52Z") == "2025-06-07T18:23:52Z"  # v3's own form is left as it is
