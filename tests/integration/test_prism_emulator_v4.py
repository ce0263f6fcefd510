"""The Prism emulator's v4 API, through real HTTP: the same fleet as v3, shaped like the
real v4.0 recordings (../shared/fixtures/prism/v4_manageiq, v4_datadog_stats)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from emulators.prism.faults import PrismFaults
from emulators.prism.fleet import FleetSpec, generate_fleet
from emulators.prism.server import PrismServer
from emulators.prism.v4 import ext_id

AUTH = ("admin", "nutanix/4u")
RECORDED = Path("/work/shared/fixtures/prism/v4_manageiq")
VMS = "/api/vmm/v4.0/ahv/config/vms"


@pytest.fixture(scope="module")
def server():
    pc = generate_fleet(FleetSpec(vms=250, seed=5))[0]
    with PrismServer(pc, api_key="s3cret-key") as srv:
        yield srv


def get(srv, path, params=None, **kw):
    kw.setdefault("auth", AUTH)
    return requests.get(srv.url + path, params=params, timeout=10, **kw)


def test_version_info_answers_what_the_sdk_negotiates_from(server):
    # ntnx_vmm_py_client ApiClient.negotiate_version: OPTIONS /api/vmm/unversioned/info, reads data
    r = requests.options(server.url + "/api/vmm/unversioned/info", auth=AUTH, timeout=10)
    assert r.status_code == 200 and r.json() == {"data": "v4.0"}


def test_vm_paging_is_odata_with_totals_and_links(server):
    seen = []
    page = 0
    while True:
        body = get(server, VMS, {"$page": page, "$limit": 100}).json()
        meta = body["metadata"]
        assert meta["totalAvailableResults"] == 250
        rels = {link["rel"]: link["href"] for link in meta["links"]}
        assert rels["self"].startswith(server.url) and f"$page={page}" in rels["self"]
        seen += [vm["extId"] for vm in body.get("data", [])]
        if "next" not in rels:
            break
        page += 1
    assert page == 2 and len(seen) == 250 == len(set(seen))
    assert seen == [server.pc.vm_uuid(i) for i in range(250)]  # the v3 fleet's uuids are the extIds
    assert "data" not in get(server, VMS, {"$page": 3, "$limit": 100}).json()
    assert len(get(server, VMS).json()["data"]) == 50  # default $limit


@pytest.mark.parametrize("limit", ["0", "101", "x"])
def test_limit_outside_1_to_100_is_a_v4_error(server, limit):
    r = get(server, VMS, {"$limit": limit})
    assert r.status_code == 400
    err = r.json()["data"]["error"][0]
    assert err["errorGroup"] == "INVALID_ARGUMENT" and "$limit" in err["message"]


def test_vm_has_the_recorded_shape_and_only_ids_as_references(server):
    recorded = json.loads((RECORDED / "refresher__api_vmm_v4_0_ahv_config_vms.json").read_text())["data"][0]
    vm = get(server, VMS, {"$limit": 1}).json()["data"][0]
    shared = {"extId", "name", "numSockets", "numCoresPerSocket", "numThreadsPerCore", "memorySizeBytes",
              "powerState", "cluster", "host", "disks", "nics", "machineType", "protectionType", "bootConfig",
              "ownershipInfo", "createTime", "updateTime", "$objectType"}
    assert shared <= set(recorded) and shared <= set(vm)
    assert set(vm["cluster"]) == set(recorded["cluster"])  # {$reserved, $objectType, extId}: no name
    assert set(vm["disks"][0]["backingInfo"]["storageContainer"]) == {"$reserved", "$objectType", "extId"}
    assert set(vm["nics"][0]["networkInfo"]["subnet"]) == {"$reserved", "$objectType", "extId"}
    v3 = server.pc.vm_entity(0)
    assert vm["memorySizeBytes"] == v3["status"]["resources"]["memory_size_mib"] * 1024 * 1024
    cats = v3["metadata"]["categories"]
    assert [c["extId"] for c in vm.get("categories", [])] == [ext_id("category", k, v) for k, v in sorted(cats.items())]


def test_lookup_lists_name_what_vms_reference(server):
    clusters = get(server, "/api/clustermgmt/v4.0/config/clusters").json()["data"]
    assert any("PRISM_CENTRAL" in c["config"]["clusterFunction"] for c in clusters)
    hosts = get(server, "/api/clustermgmt/v4.0/config/hosts").json()["data"]
    subnets = get(server, "/api/networking/v4.0/config/subnets").json()["data"]
    containers = get(server, "/api/clustermgmt/v4.0/config/storage-containers").json()["data"]
    categories = get(server, "/api/prism/v4.0/config/categories").json()["data"]
    vm = get(server, VMS, {"$limit": 1}).json()["data"][0]
    assert vm["cluster"]["extId"] in {c["extId"] for c in clusters}
    assert vm["host"]["extId"] in {h["extId"] for h in hosts}
    assert vm["nics"][0]["networkInfo"]["subnet"]["extId"] in {s["extId"] for s in subnets}
    assert vm["disks"][0]["backingInfo"]["storageContainer"]["extId"] in {c["containerExtId"] for c in containers}
    assert {c["extId"] for c in vm.get("categories", [])} <= {c["extId"] for c in categories}


def test_vm_stats_list_filters_selects_and_leaves_no_data_out(server):
    pc = server.pc
    on = next(i for i in range(250) if pc.vm_running(i))
    off = next(i for i in range(250) if not pc.vm_running(i))
    ids = [pc.vm_uuid(on), pc.vm_uuid(off)]
    r = get(server, "/api/vmm/v4.0/ahv/stats/vms", {
        "$filter": " or ".join(f"extId eq '{u}'" for u in ids), "$startTime": "2026-12-01T10:00:00Z",
        "$endTime": "2026-12-01T10:15:00Z", "$samplingInterval": "300", "$statType": "AVG",
        "$select": "extId,stats/hypervisorCpuUsagePpm,stats/memoryUsagePpm"})
    assert r.status_code == 200
    body = r.json()
    assert body["metadata"]["totalAvailableResults"] == 2
    by_id = {s["extId"]: s["stats"] for s in body["data"]}
    start_ms = int(datetime(2026, 12, 1, 10, tzinfo=timezone.utc).timestamp() * 1000)
    series = pc.vm_stats(on, start_ms, start_ms + 900_000, 300)
    assert [t["hypervisorCpuUsagePpm"] for t in by_id[ids[0]]] == [
        int(v) for _, v in series["hypervisor_cpu_usage_ppm"]]
    assert set(by_id[ids[0]][1]) == {"timestamp", "hypervisorCpuUsagePpm", "memoryUsagePpm"}
    assert all(set(t) <= {"timestamp", "$objectType", "$reserved"} for t in by_id[ids[1]])  # off: no values


def test_stats_need_a_window(server):
    r = get(server, "/api/vmm/v4.0/ahv/stats/vms", {"$startTime": "2026-12-01T10:00:00Z"})
    assert r.status_code == 400 and "$endTime" in r.json()["data"]["error"][0]["message"]


def test_api_key_and_basic_auth_and_rate_headers(server):
    assert get(server, VMS, {"$limit": 1}, auth=None, headers={"X-ntnx-api-key": "s3cret-key"}).status_code == 200
    assert get(server, VMS, {"$limit": 1}, auth=None, headers={"X-ntnx-api-key": "wrong"}).status_code == 401
    assert get(server, VMS, {"$limit": 1}, auth=("admin", "bad")).status_code == 401
    r = get(server, VMS, {"$limit": 1})
    assert r.headers["X-Ratelimit-Limit"] == "30" and int(r.headers["X-Ratelimit-Remaining"]) < 30
    # the key opens v4 only, as on a real Prism Central
    v3 = requests.post(server.url + "/api/nutanix/v3/vms/list", json={}, headers={"X-ntnx-api-key": "s3cret-key"},
                       timeout=10)
    assert v3.status_code == 401


def test_a_v3_only_prism_central_has_no_v4_routes():
    pc = generate_fleet(FleetSpec(vms=3))[0]
    with PrismServer(pc, apis=("v3",)) as srv:
        assert requests.options(srv.url + "/api/vmm/unversioned/info", auth=AUTH, timeout=10).status_code == 404
        assert get(srv, VMS).status_code == 404
        assert requests.post(srv.url + "/api/nutanix/v3/vms/list", json={}, auth=AUTH, timeout=10).status_code == 200


def test_higher_versions_serve_the_lower_ones_too():
    pc = generate_fleet(FleetSpec(vms=3))[0]
    with PrismServer(pc, v4_version="v4.1") as srv:
        assert requests.options(srv.url + "/api/vmm/unversioned/info", auth=AUTH, timeout=10).json() == {"data": "v4.1"}
        assert get(srv, "/api/vmm/v4.0/ahv/config/vms").status_code == 200
        assert get(srv, "/api/vmm/v4.1/ahv/config/vms").status_code == 200
        assert get(srv, "/api/vmm/v4.2/ahv/config/vms").status_code == 404


def test_rate_limit_faults_take_both_v4_forms():
    pc = generate_fleet(FleetSpec(vms=3))[0]
    with PrismServer(pc, faults=PrismFaults("ratelimit@calls=1,429@calls=2")) as srv:
        first = get(srv, VMS)
        assert first.status_code == 400
        assert first.json()["data"]["error"][0]["errorGroup"] == "RATE_LIMIT_EXCEEDED"
        assert first.headers["X-Ratelimit-Remaining"] == "0"
        second = get(srv, VMS)
        assert second.status_code == 429 and "error" in second.json()["data"]
        assert get(srv, VMS).status_code == 200
