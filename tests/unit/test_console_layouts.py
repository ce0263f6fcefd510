"""The console layouts (schemas/console/<Group>/<Type>.yaml) against the records they show (issue 17).

Every key a layout names (table and search fields, the default sort, tab fields under their
``root_path``, list ``sub_key``s) must exist in the normalized records of the emulated fleet and
of the real v3 recordings in ../shared/fixtures/prism/ (normalized as tests/unit/test_normalize.py
does). The recordings hold no host, and only VMs without messages or stats: there, what sits under
an empty list or mapping cannot be checked, and the emulated fleet (real-world quirks: PENDING and
ERROR VMs, with stats) must hold every key at least once.
"""
from __future__ import annotations

import copy
import json

import pytest

from emulators.prism.fleet import FleetSpec, generate_fleet
from schemas.console import (
    LayoutError,
    cloud_service_type_definitions,
    definition_of,
    layout_keys,
    load_layout,
    missing_layout_keys,
    render_table,
    to_metadata,
)
from tests.helpers import SHARED
from transforms.stages.normalize import (
    TYPES,
    is_prism_central,
    normalize_cluster,
    normalize_host,
    normalize_vm,
)

RECORDINGS = SHARED / "fixtures" / "prism" / "v3_prism_go_client" / "v3_keploy"
BASE = "https://prism.example.com:9440"
SPEC = FleetSpec(seed=13, prism_centrals=1, clusters=2, hosts_per_cluster=2, vms=40, disks_per_vm=2,
                 real_world_quirks=True)
STATS_END_MS = 1_764_547_200_000  # 2025-12-01T00:00Z: an hour of stats before it


def _by_type(records: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        out.setdefault((r["cloud_service_group"], r["cloud_service_type"]), []).append(r)
    return out


def fleet_records() -> dict[tuple[str, str], list[dict]]:
    """The emulated fleet normalized, each VM with its latest utilization from the emulated stats."""
    records: list[dict] = []
    pc = generate_fleet(SPEC)[0]
    for i in pc.iter_live_indices():
        raw = pc.vm_stats(i, STATS_END_MS - 3_600_000, STATS_END_MS)
        stats = {a: [(t, int(v)) for t, v in points] for a, points in raw.items()}
        records += normalize_vm(pc.name, BASE, pc.vm_entity(i), stats)
    records += [normalize_cluster(pc.name, BASE, c) for c in pc.cluster_entities() if not is_prism_central(c)]
    records += [normalize_host(pc.name, BASE, h) for h in pc.host_entities()]
    return _by_type(records)


def recorded_records() -> dict[tuple[str, str], list[dict]]:
    records: list[dict] = []
    for name in ("ListVM.response.json", "GetVM.response.json"):
        body = json.loads((RECORDINGS / name).read_text())
        for entity in body.get("entities") or [body]:
            records += normalize_vm("pc-recorded", BASE, entity)
    for name in ("ListCluster.response.json", "GetCluster.response.json"):
        body = json.loads((RECORDINGS / name).read_text())
        records += [normalize_cluster("pc-recorded", BASE, e) for e in body.get("entities") or [body]
                    if not is_prism_central(e)]
    return _by_type(records)


@pytest.fixture(scope="module")
def definitions() -> list[dict]:
    return cloud_service_type_definitions()


def test_there_is_a_layout_for_every_type_the_collector_writes(definitions):
    assert {(d["group"], d["name"]) for d in definitions} == set(TYPES.values())
    for d in definitions:
        view = d["metadata"]["view"]
        assert view["search"] and view["table"]["layout"]["options"]["fields"] and view["sub_data"]["layouts"]
        assert d["tags"]["spaceone:icon"].startswith("data:image/svg+xml;base64,") and d["labels"]
        assert d["resource_type"] == "inventory.CloudService" and d["provider"] == "nutanix"


@pytest.mark.parametrize("source", ["fleet", "recordings"])
def test_every_key_a_layout_names_is_in_the_normalized_records(definitions, source):
    records = fleet_records() if source == "fleet" else recorded_records()
    if source == "recordings":  # what the recordings hold: VMs, their disks, clusters (no host)
        assert {k for k, v in records.items() if v} == {("Compute", "Instance"), ("Storage", "Disk"),
                                                         ("Cluster", "Cluster")}
    problems = []
    for d in definitions:
        have = records.get((d["group"], d["name"]), [])
        problems += [f"{d['group']}/{d['name']}: {p}"
                     for p in missing_layout_keys(d["metadata"], have, require_seen=source == "fleet")]
    assert problems == []


def test_the_fleet_holds_what_the_recordings_leave_empty():
    """The keys under an empty list or mapping in the recordings are really checked on the fleet."""
    vms = fleet_records()[("Compute", "Instance")]
    assert any(vm["data"]["prism_messages"] for vm in vms)
    assert any(vm["data"]["utilization"] for vm in vms) and any(not vm["data"]["utilization"] for vm in vms)


def _vm_layout_with(extra: dict) -> dict:
    layout = copy.deepcopy(load_layout("Compute", "Instance"))
    for path, field in extra.items():
        section = layout
        for part in path.split("/"):
            section = section[part]
        section.append(field)
    return to_metadata(layout)


@pytest.mark.parametrize("extra,named", [
    ({"table/fields": {"Bogus": "data.no_such_key"}}, "data.no_such_key"),
    ({"search/fields": {"Typo": "data.power_stat"}}, "data.power_stat"),
    ({"tabs.2/fields": {"Gateway": "gateway"}}, "data.nics[].gateway"),  # a NIC has no gateway
    ({"tabs.5/items": {"name": "Events", "type": "table", "root_path": "data.events",
                       "fields": [{"Event": "event"}]}}, "data.events"),
    ({"tabs.4/fields": {"Disk (%)": "data.utilization.disk_percent"}}, "data.utilization.disk_percent"),
])
def test_a_layout_naming_a_missing_key_fails_the_check(extra, named):
    metadata = _vm_layout_with(extra)
    vms = fleet_records()[("Compute", "Instance")]
    problems = missing_layout_keys(metadata, vms)
    assert problems and all(named in p for p in problems), problems


def test_the_converter_writes_cloudforets_view_shape(definitions):
    """As MetadataGenerator (cloudforet-io/inventory plugin/collector/lib/metadata_generator.py) writes it."""
    vm = definition_of(definitions, "Compute", "Instance")["metadata"]["view"]
    table = vm["table"]["layout"]
    assert (table["name"], table["type"]) == ("Main Table", "query-search-table")
    assert table["options"]["default_sort"] == {"key": "name", "desc": False}
    fields = {f["name"]: f for f in table["options"]["fields"]}
    power = fields["Power State"]
    assert power["type"] == "enum" and power["options"]["ON"] == {
        "type": "state", "options": {"icon": {"image": "ic_circle-filled", "color": "green.500"}}}
    assert power["options"]["OFF"]["options"]["text_color"] == "red.500"
    assert fields["Prism State"]["options"]["ERROR"] == {"type": "badge", "options": {"outline_color": "red.500"}}
    assert fields["Memory"] == {"name": "Memory", "key": "data.memory_gib", "type": "size",
                                "options": {"source_unit": "GB", "display_unit": "GB"}}
    assert fields["Created"]["type"] == "datetime" and fields["Created"]["options"] == {
        "is_optional": True, "source_type": "iso8601"}
    assert fields["Guest OS"]["options"] == {"is_optional": True}
    search = {f["name"]: f for f in vm["search"]}
    assert search["Power State"]["enums"]["ON"] == {"label": "ON"} and search["vCPUs"]["data_type"] == "integer"
    tabs = [t["name"] for t in vm["sub_data"]["layouts"]]
    assert tabs == ["Virtual Machine", "Disks", "NICs", "Categories", "Utilization", "State"]
    nics = vm["sub_data"]["layouts"][2]
    assert nics["type"] == "table" and nics["options"]["root_path"] == "data.nics"
    state = vm["sub_data"]["layouts"][5]
    assert state["type"] == "list" and [x["type"] for x in state["options"]["layouts"]] == ["item", "table"]
    assert ("tab NICs/NICs: IP Addresses (sub_key)", "ip", "data.nics.ip_addresses") in layout_keys({"view": vm})


@pytest.mark.parametrize("bad,says", [
    ({"table": {"fields": [{"X": "name", "type": "chart"}]}}, "type 'chart'"),
    ({"table": {"fields": [{"X": "name", "type": "size", "source_unit": "GiB"}]}}, "source_unit 'GiB'"),
    ({"table": {"fields": [{"X": "name", "type": "enum", "enums": [{"A": "pink.500"}]}]}}, "colour 'pink.500'"),
    ({"table": {"fields": [{"X": "name", "colour": "red"}]}}, "unknown field options ['colour']"),
    ({"tab.0": {}}, "unknown top-level keys"),
])
def test_a_layout_the_converter_cannot_convert_is_named(bad, says):
    with pytest.raises(LayoutError, match=f".*{says.replace('[', '.').replace(']', '.')}"):
        to_metadata({"search": {"fields": []}, **bad}, "schemas/console/X/Y.yaml")


def test_render_table_shows_the_layout_columns_and_values(definitions):
    vm_def = definition_of(definitions, "Compute", "Instance")
    vms = sorted(fleet_records()[("Compute", "Instance")], key=lambda r: r["name"])
    text = render_table(vm_def, vms, rows=3)
    lines = text.splitlines()
    assert lines[0] == f"nutanix Compute / Instance: {len(vms)} resources"
    header = lines[1].split()
    assert header[:4] == ["Name", "Power", "State", "Cluster"] and "Optional" not in text
    assert len(lines) == 3 + 3
    first = vms[0]
    assert lines[3].startswith(first["name"]) and first["data"]["power_state"] in lines[3]
    assert f"{first['data']['memory_gib']:g} GB" in lines[3] and first["data"]["cluster"]["name"] in lines[3]
