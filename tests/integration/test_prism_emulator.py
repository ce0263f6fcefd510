"""Tests of the Prism Central v3 emulator, through real HTTP where behaviour is HTTP."""
from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from emulators.prism.fleet import STATS_ATTRIBUTES, FleetSpec, generate_fleet
from emulators.prism.server import PrismServer
from tests.helpers import wait_for_ready_file

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = Path("/work/shared/fixtures/prism/v3_prism_go_client/v3_keploy")
AUTH = ("admin", "nutanix/4u")
V3 = "/api/nutanix/v3"


def post(srv: PrismServer, path: str, body: object = None, auth=AUTH, **kw) -> requests.Response:
    return requests.post(srv.url + V3 + path, json=body, auth=auth, timeout=10, **kw)


@pytest.fixture(scope="module")
def server():
    pc = generate_fleet(FleetSpec(vms=1200))[0]
    with PrismServer(pc) as srv:
        yield srv


@pytest.fixture()
def small_server():
    """A fresh, mutable fleet per test (delete/add tests must not leak)."""
    pc = generate_fleet(FleetSpec(vms=30, seed=11))[0]
    with PrismServer(pc, max_page=7) as srv:
        yield srv


# ------------------------------------------------------------------ paging
def test_default_page_is_20_and_headers_look_real(server):
    r = post(server, "/vms/list", {"kind": "vm"})
    assert r.status_code == 200
    body = r.json()
    assert body["api_version"] == "3.1"
    assert body["metadata"] == {"kind": "vm", "total_matches": 1200, "length": 20, "offset": 0}
    assert len(body["entities"]) == 20
    assert r.headers["Server"] == "envoy"
    assert r.headers["X-Ntnx-Product"] == "pc.2024.3.0.1"
    assert r.headers["X-Ntnx-Env"] == "pc"
    assert r.headers["Content-Type"] == "application/json"
    assert int(r.headers["Content-Length"]) == len(r.content)


def test_length_capped_at_500_and_offsets(server):
    r = post(server, "/vms/list", {"kind": "vm", "offset": 0, "length": 1000}).json()
    assert r["metadata"]["length"] == 500 and len(r["entities"]) == 500
    tail = post(server, "/vms/list", {"kind": "vm", "offset": 1190, "length": 50}).json()
    assert tail["metadata"] == {"kind": "vm", "total_matches": 1200, "length": 10, "offset": 1190}
    assert tail["entities"][0]["spec"]["name"] == server.pc.vm_name(1190)
    past = post(server, "/vms/list", {"kind": "vm", "offset": 5000}).json()
    assert past["entities"] == [] and past["metadata"]["total_matches"] == 1200


def test_full_listing_by_loop_has_unique_uuids(server):
    session = requests.Session()
    session.auth = AUTH
    seen, offset = [], 0
    while True:
        r = session.post(server.url + V3 + "/vms/list", json={"offset": offset, "length": 500}).json()
        seen += [e["metadata"]["uuid"] for e in r["entities"]]
        offset += r["metadata"]["length"]
        if offset >= r["metadata"]["total_matches"]:
            break
    assert len(seen) == len(set(seen)) == 1200


def test_short_server_page(small_server):
    r = post(small_server, "/vms/list", {"kind": "vm", "offset": 0, "length": 20}).json()
    assert r["metadata"]["length"] == 7 and len(r["entities"]) == 7
    assert r["metadata"]["total_matches"] == 30
    names, offset = [], 0
    while offset < 30:
        page = post(small_server, "/vms/list", {"offset": offset, "length": 20}).json()
        names += [e["spec"]["name"] for e in page["entities"]]
        offset += page["metadata"]["length"]
    assert names == [small_server.pc.vm_name(i) for i in range(30)]


def test_clusters_include_prism_central_pseudo_cluster(server):
    r = post(server, "/clusters/list", {}).json()
    assert r["metadata"]["total_matches"] == 3 == len(r["entities"])
    first = r["entities"][0]
    assert first["status"]["resources"]["config"]["service_list"] == ["PRISM_CENTRAL"]
    assert first["metadata"]["uuid"] == server.pc.uuid
    for c in r["entities"][1:]:
        assert c["status"]["resources"]["config"]["service_list"] == ["AOS"]
        assert len(c["status"]["resources"]["nodes"]["hypervisor_server_list"]) == 3


def test_hosts_count_running_vms(server):
    r = post(server, "/hosts/list", {"kind": "host", "length": 100}).json()
    assert r["metadata"]["total_matches"] == 6
    by_uuid = {h["metadata"]["uuid"]: h for h in r["entities"]}
    running: dict[str, int] = {}
    for e in server.pc.vm_entities(0, 2000):
        ref = e["status"]["resources"].get("host_reference")
        if ref:
            running[ref["uuid"]] = running.get(ref["uuid"], 0) + 1
    for uuid, n in running.items():
        assert by_uuid[uuid]["status"]["resources"]["hypervisor"]["num_vms"] == n
    h = r["entities"][0]
    assert h["metadata"]["kind"] == "host"
    assert h["status"]["resources"]["block"]["block_model"] == "NX-3060-G7"
    assert h["status"]["cluster_reference"]["kind"] == "cluster"


# ------------------------------------------------------------------ errors and auth
@pytest.mark.parametrize("auth", [None, ("admin", "wrong"), ("root", "nutanix/4u")])
def test_bad_credentials_get_401_with_empty_body(server, auth):
    r = post(server, "/vms/list", {}, auth=auth)
    assert r.status_code == 401
    assert r.content == b""
    assert r.headers["WWW-Authenticate"] == 'Basic realm="Intent Gateway"'


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'{"offset": -1}', b'{"length": "x"}',
                                 b'{"length": 0}', b'{"offset": 1.5}', b'{"kind": "cluster"}'])
def test_bad_body_gets_400_envelope(server, raw):
    r = requests.post(server.url + V3 + "/vms/list", data=raw, auth=AUTH, timeout=10,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    body = r.json()
    assert body["api_version"] == "3.1" and body["code"] == 400 and body["state"] == "ERROR"
    assert body["kind"] == "vm"
    assert body["message_list"][0]["reason"] == "INVALID_REQUEST"
    assert body["message_list"][0]["details"] == {}


def test_unknown_path_404_and_wrong_method_405(server):
    r = post(server, "/nothing/list", {})
    assert r.status_code == 404 and r.json()["state"] == "ERROR"
    r = requests.get(server.url + V3 + "/vms/list", auth=AUTH, timeout=10)
    assert r.status_code == 405 and r.json()["code"] == 405


def test_request_counter(small_server):
    for _ in range(3):
        post(small_server, "/vms/list", {})
    post(small_server, "/clusters/list", {}, auth=None)
    assert small_server.requests[V3 + "/vms/list"] == 3
    assert small_server.requests[V3 + "/clusters/list"] == 1


# ------------------------------------------------------------------ determinism and shape
def test_determinism_across_fleets_and_pages():
    spec = FleetSpec(vms=60, prism_centrals=2, seed=3)
    a, b = generate_fleet(spec), generate_fleet(spec)
    assert [p.uuid for p in a] == [p.uuid for p in b]
    assert a[1].vm_entities(0, 30) == b[1].vm_entities(0, 30)
    assert a[0].cluster_entities() == b[0].cluster_entities()
    assert a[0].host_entities() == b[0].host_entities()
    assert a[0].vm_entities(10, 5)[2] == a[0].vm_entity(12)
    assert generate_fleet(FleetSpec(vms=60, prism_centrals=2, seed=4))[0].vm_entity(0) != a[0].vm_entity(0)
    assert a[0].vm_count() == a[1].vm_count() == 30


def test_entity_identical_whatever_page(server):
    a = post(server, "/vms/list", {"offset": 40, "length": 20}).json()["entities"][5]
    b = post(server, "/vms/list", {"offset": 45, "length": 3}).json()["entities"][0]
    assert a == b == server.pc.vm_entity(45)


def _recorded_vm() -> dict:
    return json.loads((RECORDINGS / "ListVM.response.json").read_text())["entities"][0]


def test_vm_shape_matches_recording(server):
    rec = _recorded_vm()
    for e in server.pc.vm_entities(0, 8):
        assert set(rec) <= set(e)
        assert set(rec["metadata"]) <= set(e["metadata"])
        assert set(rec["spec"]) <= set(e["spec"])
        assert set(rec["status"]) <= set(e["status"])
        assert set(rec["spec"]["resources"]) <= set(e["spec"]["resources"])
        assert set(rec["status"]["resources"]) <= set(e["status"]["resources"])
        assert set(rec["status"]["resources"]["disk_list"][0]) <= set(e["status"]["resources"]["disk_list"][0])
        assert set(rec["spec"]["resources"]["nic_list"][0]) <= set(e["spec"]["resources"]["nic_list"][0])
        assert e["metadata"]["kind"] == "vm" and e["status"]["state"] == "COMPLETE"


def test_vm_content_rules():
    spec = FleetSpec(vms=200, disks_per_vm=3, power_on_ratio=0.8)
    pc = generate_fleet(spec)[0]
    vms = pc.vm_entities(0, 200)
    on = [v for v in vms if v["spec"]["resources"]["power_state"] == "ON"]
    assert abs(len(on) - 160) <= 2
    ngt = 0
    for i, v in enumerate(vms):
        res = v["status"]["resources"]
        assert ("host_reference" in res) == (res["power_state"] == "ON")
        assert res["hypervisor_type"] == "AHV"
        disks = res["disk_list"]
        kinds = [d["device_properties"]["device_type"] for d in disks]
        assert kinds.count("DISK") == 3 and kinds.count("CDROM") == (1 if i % 4 == 0 else 0)
        for d in disks:
            if d["device_properties"]["device_type"] == "DISK":
                assert d["disk_size_bytes"] == d["disk_size_mib"] * 1024 * 1024
                assert d["device_properties"]["disk_address"]["adapter_type"] == "SCSI"
            else:
                assert d["device_properties"]["disk_address"]["adapter_type"] == "IDE"
                assert d.get("disk_size_bytes", 0) == 0
        assert res["memory_size_mib"] in (1024, 2048, 4096, 8192, 16384)
        assert 1 <= res["num_sockets"] <= 4 and 1 <= res["num_vcpus_per_socket"] <= 2
        assert 1 <= len(res["nic_list"]) <= 2
        ngt += "guest_tools" in res
        if "host_reference" in res:
            assert res["host_reference"]["kind"] == "host"
    assert 60 <= ngt <= 140


# ------------------------------------------------------------------ groups (metrics)
def test_groups_time_series(server):
    step_ms = 300_000
    start = 1_700_000_000_000 // step_ms * step_ms + 1  # just after a boundary
    end = start + 4 * step_ms
    body = {"entity_type": "mh_vm", "group_member_count": 50, "group_member_offset": 0,
            "group_member_attributes": [{"attribute": "vm_name"}] +
                                       [{"attribute": a} for a in STATS_ATTRIBUTES],
            "interval_start_ms": start, "interval_end_ms": end, "downsampling_interval": 300}
    r = post(server, "/groups", body)
    assert r.status_code == 200
    g = r.json()
    assert g["total_entity_count"] == 1200 and g["filtered_group_count"] == 1
    results = g["group_results"][0]["entity_results"]
    assert len(results) == 50
    pc = server.pc
    saw_off = saw_on = False
    for i, er in enumerate(results):
        assert er["entity_id"] == pc.vm_uuid(i)
        data = {d["name"]: d["values"] for d in er["data"]}
        assert data["vm_name"][0]["values"] == [pc.vm_name(i)]
        expected = pc.vm_stats(i, start, end, 300)
        for attr in STATS_ATTRIBUTES:
            values = data[attr]
            assert len(values) == 4
            assert [v["time"] for v in values] == [(start - 1 + k * step_ms) * 1000 for k in range(1, 5)]
            assert [(v["time"], v["values"][0]) for v in values] == expected[attr]
            assert all(isinstance(v["values"][0], str) for v in values)
        cpu = [int(v["values"][0]) for v in data["hypervisor_cpu_usage_ppm"]]
        if pc.vm_power_on(i):
            saw_on = True
            assert all(50_000 <= c <= 900_000 for c in cpu)
        else:
            saw_off = True
            assert all(v["values"] == ["-1"] for a in STATS_ATTRIBUTES for v in data[a])
    assert saw_on and saw_off


def test_groups_paging_and_errors(small_server):
    body = {"entity_type": "mh_vm", "group_member_attributes": [{"attribute": "memory_usage_ppm"}],
            "group_member_offset": 5, "group_member_count": 100}
    g = post(small_server, "/groups", body).json()
    results = g["group_results"][0]["entity_results"]
    assert len(results) == 7  # capped at max_page
    assert results[0]["entity_id"] == small_server.pc.vm_uuid(5)
    assert len(results[0]["data"][0]["values"]) == 1  # no interval: latest point only
    r = post(small_server, "/groups", {"entity_type": "storage_container"})
    assert r.status_code == 400 and r.json()["state"] == "ERROR"


def test_stats_consistency():
    pc = generate_fleet(FleetSpec(vms=10, power_on_ratio=1.0))[0]
    s = pc.vm_stats(3, 0, 3_600_000, 60)
    assert len(s["controller_num_iops"]) == 60
    for k in range(60):
        assert int(s["controller_num_iops"][k][1]) == (
            int(s["controller_num_read_iops"][k][1]) + int(s["controller_num_write_iops"][k][1]))
        assert 0 <= int(s["memory_usage_ppm"][k][1]) <= 1_000_000


# ------------------------------------------------------------------ mutations
def test_delete_and_add_vms_change_listing(small_server):
    pc = small_server.pc
    uuids_before = [pc.vm_uuid(i) for i in range(30)]
    pc.delete_vms([0, 6, 7, 29])
    added = pc.add_vms(3)
    assert added == [30, 31, 32]
    names, offset = [], 0
    while True:
        page = post(small_server, "/vms/list", {"offset": offset, "length": 7}).json()
        names += [e["spec"]["name"] for e in page["entities"]]
        offset += page["metadata"]["length"]
        if offset >= page["metadata"]["total_matches"]:
            break
    expected = [pc.vm_name(i) for i in range(33) if i not in {0, 6, 7, 29}]
    assert names == expected and page["metadata"]["total_matches"] == 29 == pc.vm_count()
    # surviving VMs keep their identity
    assert pc.vm_uuid(1) == uuids_before[1]
    assert pc.vm_index_of(uuids_before[0]) is None and pc.vm_index_of(pc.vm_uuid(31)) == 31
    with pytest.raises(IndexError):
        pc.delete_vms([99])


# ------------------------------------------------------------------ CLI
@pytest.mark.parametrize("quirks", [False, True], ids=["default", "real-world-quirks"])
def test_cli_serves_until_sigterm(tmp_path, quirks):
    ready = tmp_path / "ready.json"
    env = dict(os.environ, PRISM_PASSWORD="s3cret-pw")
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulators.prism", "--vms", "50", "--port", "0",
         "--prism-centrals", "2", "--ready-file", str(ready)] + (["--real-world-quirks"] if quirks else []),
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_ready_file(ready, proc)
        info = json.loads(ready.read_text())
        assert "s3cret-pw" not in ready.read_text()
        pcs = info["prism_centrals"]
        assert [p["vms"] for p in pcs] == [25, 25]
        total, states = 0, set()
        for p in pcs:
            assert p["url"] == f"http://127.0.0.1:{p['port']}"
            r = requests.post(p["url"] + V3 + "/vms/list", json={"length": 100},
                              auth=("admin", "s3cret-pw"), timeout=10)
            assert r.status_code == 200
            total += len(r.json()["entities"])
            states |= {e["status"]["state"] for e in r.json()["entities"]}
        assert total == 50
        assert states == ({"COMPLETE", "PENDING", "ERROR"} if quirks else {"COMPLETE"})
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert json.loads(out.strip().splitlines()[0]) == info
        assert "s3cret-pw" not in out + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_rejects_bad_arguments():
    r = subprocess.run([sys.executable, "-m", "emulators.prism", "--vms", "-5"], cwd=ROOT,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "--vms" in r.stderr


# ------------------------------------------------------------------ transport
def test_keep_alive_and_stop_closes_connections():
    import base64
    import http.client

    pc = generate_fleet(FleetSpec(vms=5))[0]
    srv = PrismServer(pc).start()
    headers = {"Authorization": "Basic " + base64.b64encode(b"admin:nutanix/4u").decode(),
               "Content-Type": "application/json"}
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    try:
        for _ in range(3):  # same socket, three requests
            conn.request("POST", V3 + "/vms/list", body=b"{}", headers=headers)
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["metadata"]["total_matches"] == 5
        sock = conn.sock
        conn.request("POST", V3 + "/vms/list", body=b"{}", headers={})  # 401 keeps framing
        resp = conn.getresponse()
        assert resp.status == 401 and resp.read() == b"" and conn.sock is sock
        srv.stop()
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            conn.request("POST", V3 + "/vms/list", body=b"{}", headers=headers)
            conn.getresponse()
    finally:
        conn.close()
        srv.stop()


def test_twenty_concurrent_clients(server):
    from concurrent.futures import ThreadPoolExecutor

    def client(k: int) -> list[str]:
        s = requests.Session()
        s.auth = AUTH
        out = []
        for j in range(3):
            r = s.post(server.url + V3 + "/vms/list", json={"offset": (k * 3 + j) * 20, "length": 20},
                       timeout=20)
            assert r.status_code == 200
            out += [e["metadata"]["uuid"] for e in r.json()["entities"]]
        return out

    with ThreadPoolExecutor(20) as pool:
        uuids = [u for chunk in pool.map(client, range(20)) for u in chunk]
    assert len(uuids) == len(set(uuids)) == 1200


def test_groups_entity_ids(server):
    wanted = [server.pc.vm_uuid(i) for i in (7, 3)] + ["00000000-0000-4000-8000-000000000000"]
    g = post(server, "/groups", {"entity_type": "mh_vm", "entity_ids": wanted,
                                 "group_member_attributes": [{"attribute": "vm_name"}]}).json()
    assert g["filtered_entity_count"] == 2
    assert [e["entity_id"] for e in g["group_results"][0]["entity_results"]] == wanted[:2]


def test_tls_is_pluggable(tmp_path):
    crypto = pytest.importorskip("cryptography")  # noqa: F841
    import datetime
    import ssl
    import warnings

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    with PrismServer(generate_fleet(FleetSpec(vms=3))[0], ssl_context=ctx) as srv:
        assert srv.url.startswith("https://")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = post(srv, "/clusters/list", {}, verify=False)
        assert r.status_code == 200 and r.json()["metadata"]["total_matches"] == 3


# ------------------------------------------------------------------ real-world shapes (issue 15)
SWAGGER = RECORDINGS.parent / "v3_swagger.json"


@functools.lru_cache(maxsize=None)
def _definitions() -> dict:
    return json.loads(SWAGGER.read_text())["definitions"]


def _props(name: str) -> dict:
    return _definitions()[name]["properties"]


def _enum(definition: str, field: str) -> list:
    return _props(definition)[field]["x-ntnx-enum"]


def test_operator_fields_are_shaped_like_the_v3_swagger():
    pc = generate_fleet(FleetSpec(vms=200))[0]
    boot_types, gpus, vtpms, protected = set(), 0, 0, 0
    for v in pc.vm_entities(0, 200):
        res, spec_res = v["status"]["resources"], v["spec"]["resources"]
        assert set(v["metadata"]["owner_reference"]) == {"kind", "uuid", "name"}
        assert v["metadata"]["last_update_time"] >= v["metadata"]["creation_time"]
        boot = res["boot_config"]["boot_type"]
        assert boot in _enum("vm_boot_config", "boot_type") and spec_res["boot_config"] == res["boot_config"]
        boot_types.add(boot)
        assert res["machine_type"] in _enum("vm_resources_def_status", "machine_type")
        assert (res["machine_type"] == "Q35") == (boot == "SECURE_BOOT")  # secure boot needs Q35
        assert res["protection_type"] in _enum("vm_resources_def_status", "protection_type")
        protected += res["protection_type"] == "RULE_PROTECTED"
        if "vtpm_config" in res:
            vtpms += 1
            assert set(res["vtpm_config"]) <= set(_props("vm_vtpm_status"))
            assert set(spec_res["vtpm_config"]) <= set(_props("vm_vtpm_config")) - {"vtpm_secret"}
        for g in res["gpu_list"]:
            gpus += 1
            assert set(g) <= set(_props("vm_gpu_output_status"))
            assert g["vendor"] in _enum("vm_gpu_output_status", "vendor")
        assert all(set(g) <= set(_props("vm_gpu")) for g in spec_res["gpu_list"])
        first = res["disk_list"][0]
        assert first["data_source_reference"]["kind"] == "image"
    assert boot_types == {"LEGACY", "UEFI", "SECURE_BOOT"}
    assert 0 < gpus < 30 and vtpms > 0 and 0 < protected < 100


def test_default_fleet_has_none_of_the_real_world_quirks(server):
    pc = server.pc
    for v in pc.vm_entities(0, 300):
        assert v["status"]["state"] == "COMPLETE" and "memory_size_mib" in v["status"]["resources"]
        for nic in v["status"]["resources"]["nic_list"]:
            ips = [e["ip"] for e in nic["ip_endpoint_list"]]
            assert len(ips) == len(set(ips)) and not any(ip.startswith(("169.254.", "fe80:")) for ip in ips)
    assert all(h["status"].get("name") for h in pc.host_entities())


def test_real_world_quirks_look_like_real_answers():
    pc = generate_fleet(FleetSpec(vms=60, clusters=2, hosts_per_cluster=2, real_world_quirks=True))[0]
    vms = pc.vm_entities(0, 60)
    states = [v["status"]["state"] for v in vms]
    assert states.count("PENDING") == 6 and states.count("ERROR") == 3  # 2 + 1 per 20 VMs
    reasons = set(_enum("message_resource", "reason"))
    for i, v in enumerate(vms):
        st = v["status"]
        if st["state"] == "ERROR":
            assert "resources" not in st and st["message_list"]
            assert all({"message", "reason"} <= set(m) and m["reason"] in reasons for m in st["message_list"])
        elif st["state"] == "PENDING" and not st["resources"]:  # being created: spec only, disks without uuid
            assert "name" not in st and all("uuid" not in d for d in v["spec"]["resources"]["disk_list"])
        elif st["state"] == "PENDING":  # being changed: status lacks what changes
            assert "memory_size_mib" not in st["resources"] and "num_sockets" in st["resources"]
        if i % 3 == 0 and "resources" in st and st["resources"].get("nic_list"):
            ips = [(e["ip"], e["type"]) for e in st["resources"]["nic_list"][0]["ip_endpoint_list"]]
            if ips:
                assert (ips[0][0], "LEARNED") in ips and ips[0][1] == "ASSIGNED"
    learned = [e["ip"] for v in vms for n in v["status"].get("resources", {}).get("nic_list", [])
               for e in n["ip_endpoint_list"]]
    assert any(ip.startswith("169.254.") for ip in learned) and any(ip.startswith("fe80:") for ip in learned)
    hosts = pc.host_entities()
    nameless = [h for h in hosts if "name" not in h["status"]]
    assert len(nameless) == 1 and "name" not in nameless[0]["spec"]
    running: dict = {}
    for v in vms:  # hosts still count exactly the VMs that name them
        ref = v["status"].get("resources", {}).get("host_reference")
        if ref:
            running[ref["uuid"]] = running.get(ref["uuid"], 0) + 1
    assert {h["metadata"]["uuid"]: h["status"]["resources"]["hypervisor"]["num_vms"] for h in hosts
            if h["status"]["resources"]["hypervisor"]["num_vms"]} == running
    nodes = pc.cluster_entities()[1]["status"]["resources"]["nodes"]["hypervisor_server_list"]
    assert {"ip": "127.0.0.1", "type": "AHV", "version": ""} in nodes
    for i, v in enumerate(vms):  # a VM being created or in error runs nowhere: its stats are "no data"
        values = {x for series in pc.vm_stats(i, 0, 900_000).values() for _, x in series}
        assert (values == {"-1"}) == ("host_reference" not in v["status"].get("resources", {})), i
