"""Prism answers are untrusted input.

A tiny HTTP server (``http.server`` in a thread on 127.0.0.1:0) answers exactly
what each test wants, so the real ``PrismClient`` talks real HTTP; what it
returns then goes through the pipeline's own page splitting and normalization
(``split_page``, ``NormalizeVm``, ``parse_stats_*``), called directly.
"""
from __future__ import annotations

import copy
import json
import re
import threading
import tracemalloc
import unicodedata
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from apache_beam.pvalue import TaggedOutput

import connectors.prism as prism
from connectors.errors import PrismAuthError, PrismError, PrismResponseError
from connectors.prism import PrismClient, PrismCredentials
from connectors.retry import RetryPolicy
from emulators.prism.fleet import FleetSpec, generate_fleet
from tests.helpers import FakeClock
from transforms.elements import DEAD_LETTER, VmRead
from transforms.sources.prism import (
    INFRA,
    STATS_ATTRIBUTES,
    VM_WITH_STATS,
    parse_stats_entity,
    parse_stats_page,
    split_page,
)
from transforms.stages.normalize import (
    MAX_NAME,
    MAX_STR,
    NormalizeVm,
    normalize_cluster,
    normalize_host,
    normalize_vm,
)

ACCOUNT = "hostile-pc"
C0 = re.compile(r"[\x00-\x1f\x7f]")
ANSI = "\x1b[2J\x1b[31;1mFAKE ERROR\x1b[0m"


# ----------------------------------------------------------------------------- the hostile server
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        self.server.bodies.append(self.rfile.read(n))  # type: ignore[attr-defined]
        try:
            self.server.respond(self)  # type: ignore[attr-defined]
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.server.answered.set()  # type: ignore[attr-defined]


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[bytes] = []
        self.respond: Callable[[BaseHTTPRequestHandler], None] = lambda h: send_json(h, {})
        self.sent_all = False
        self.answered = threading.Event()  # an answer was sent whole, or the client hung up on it
        self.release = threading.Event()  # lets a handler holding its answer back finish

    def handle_error(self, request: Any, client_address: Any) -> None:  # clients hanging up are routine
        pass

    @property
    def hits(self) -> int:
        return len(self.bodies)

    def client(self, **kwargs: Any) -> PrismClient:
        creds = PrismCredentials(host="127.0.0.1", port=self.server_address[1], username="admin",
                                 password="pw", scheme="http")
        retry = kwargs.pop("retry", RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02,
                                                max_total_s=10))
        return PrismClient(ACCOUNT, creds, timeout_s=5, rate_per_s=1000, retry=retry, **kwargs)


def send_raw(h: BaseHTTPRequestHandler, body: bytes, status: int = 200, content_length: int | None = None,
             headers: dict | None = None) -> None:
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body) if content_length is None else content_length))
    h.end_headers()
    h.wfile.write(body)
    h.wfile.flush()


def send_json(h: BaseHTTPRequestHandler, obj: Any, status: int = 200) -> None:
    send_raw(h, json.dumps(obj).encode(), status)


def list_answer(entities: Any, **meta: Any) -> dict:
    return {"api_version": "3.1", "metadata": {"kind": "vm", "total_matches": 1, "offset": 0, **meta},
            "entities": entities}


@pytest.fixture
def server() -> Iterator[HostileServer]:
    srv = HostileServer()
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()
    t.join(timeout=5)


@pytest.fixture(scope="module")
def good_vm() -> dict:
    pc = generate_fleet(FleetSpec(vms=2, clusters=1, hosts_per_cluster=1))[0]
    return pc.vm_entity(next(iter(pc.iter_live_indices())))


@pytest.fixture(scope="module")
def good_infra() -> tuple[dict, dict]:
    """A workload cluster and a host as the emulator serves them."""
    import requests

    from emulators.prism.server import PrismServer

    pc = generate_fleet(FleetSpec(vms=1, clusters=1, hosts_per_cluster=1))[0]
    with PrismServer(pc, password="pw") as srv:
        def get(kind: str) -> list:
            return requests.post(f"{srv.url}/api/nutanix/v3/{kind}/list", json={"kind": kind[:-1]},
                                 auth=("admin", "pw"), timeout=5).json()["entities"]
        clusters, hosts = get("clusters"), get("hosts")
    cluster = next(c for c in clusters if "PRISM_CENTRAL" not in
                   c["status"]["resources"]["config"].get("service_list", []))
    return cluster, hosts[0]


def split(page_entities: list, kind: str = "vm") -> tuple[list, list]:
    """Runs split_page on one fetched page: (entities routed to `kind`, dead letters)."""
    page = {"account": ACCOUNT, "kind": kind, "base_url": "http://pc", "offset": 0, "count": len(page_entities),
            "total": len(page_entities), "entities": page_entities, "answered_length": len(page_entities)}
    out = split_page(page)
    routed = [o.value for o in out if getattr(o, "tag", None) in (VM_WITH_STATS, INFRA)]
    dead = [o.value for o in out if getattr(o, "tag", None) == DEAD_LETTER]
    return routed, dead


def normalize_through_dofn(account: str, uuid: str, entity: Any) -> tuple[list, list]:
    """NormalizeVm as the pipeline runs it: (resources, dead letters). An exception is a crash of the run."""
    out = list(NormalizeVm().process(((account, uuid), VmRead("http://pc", entity, {}))))
    resources = [o for o in out if not isinstance(o, TaggedOutput)]
    dead = [o.value for o in out if isinstance(o, TaggedOutput) and o.tag == DEAD_LETTER]
    return resources, dead


def strings_in(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}.<key>", str(k)
            yield from strings_in(v, f"{path}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from strings_in(v, f"{path}[{i}]")


# ----------------------------------------------------------------------------- oversized bodies
def test_declared_oversized_body_is_refused_without_reading_it(server, monkeypatch):
    monkeypatch.setattr(prism, "MAX_BODY_BYTES", 1000)
    server.respond = lambda h: send_raw(h, b"[" + b"0," * 2499 + b"]")  # 5000 bytes, declared
    with pytest.raises(PrismResponseError) as info:
        server.client().list_page("vm", 0, 20)
    msg = str(info.value)
    assert f"'{ACCOUNT}'" in msg and "5000 bytes exceeds the 1000 byte limit" in msg
    assert server.hits == 1  # not retried: a second try would answer the same


def test_absurd_declared_length_with_the_real_limit_fails_fast(server):
    def respond(h):  # claims 10 GiB, sends 64 KiB and then nothing until the test is done
        send_raw(h, b" " * 65536, content_length=10 * 1024 ** 3)
        server.release.wait(30)
    server.respond = respond
    with pytest.raises(PrismResponseError) as info:
        server.client().list_page("vm", 0, 20)
    # refused on the header while the server holds the rest back (waiting for the body would end in
    # the client's read timeout, not in this error)
    assert server.hits == 1 and not server.answered.is_set()
    assert f"'{ACCOUNT}'" in str(info.value) and "byte limit" in str(info.value)


def test_chunked_body_over_the_limit_is_cut_off_without_buffering_it(server, monkeypatch):
    monkeypatch.setattr(prism, "MAX_BODY_BYTES", 256 * 1024)
    chunk = b"x" * 65536
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"

    def respond(h):  # 64 MiB chunked, no Content-Length
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for _ in range(1024):
            h.wfile.write(frame)
        h.wfile.write(b"0\r\n\r\n")
        server.sent_all = True

    server.respond = respond
    tracemalloc.start()
    try:
        with pytest.raises(PrismResponseError) as info:
            server.client().list_page("vm", 0, 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"'{ACCOUNT}'" in str(info.value) and "exceeds the 262144 byte limit" in str(info.value)
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while reading a capped answer"
    assert server.answered.wait(30), "the server is still sending: the client did not hang up"
    assert not server.sent_all  # the client hung up instead of draining 64 MiB
    assert server.hits == 1


def test_oversized_error_answer_is_capped_too(server, monkeypatch):
    monkeypatch.setattr(prism, "MAX_BODY_BYTES", 1000)
    server.respond = lambda h: send_raw(h, b"e" * 5000, status=500)
    with pytest.raises(PrismResponseError):
        server.client().list_page("vm", 0, 20)
    assert server.hits == 1


# ----------------------------------------------------------------------------- absurd counts
@pytest.mark.parametrize("total, words", [
    (10 ** 12, "not plausible"), (-1, "not a count"), ("100", "not a count"), (2.5, "not a count"),
    (True, "not a count"), (None, "missing"), ("<absent>", "missing"),
])
def test_absurd_total_matches(server, total, words):
    answer = list_answer([])
    if total == "<absent>":
        del answer["metadata"]["total_matches"]
    else:
        answer["metadata"]["total_matches"] = total
    server.respond = lambda h: send_json(h, answer)
    with pytest.raises(PrismResponseError) as info:
        server.client().list_page("vm", 0, 20)
    msg = str(info.value)
    assert "metadata.total_matches" in msg and words in msg and f"'{ACCOUNT}'" in msg
    assert server.hits == 1


@pytest.mark.parametrize("length", ["20", None, -5, [1], {"n": 1}, 1.5, True])
def test_length_of_the_wrong_type_is_tolerated(server, good_vm, length):
    server.respond = lambda h: send_json(h, list_answer([good_vm, good_vm], length=length, total_matches=2))
    page = server.client().list_page("vm", 0, 20)
    assert page.length == 2 and page.total_matches == 2 and len(page.entities) == 2


# ----------------------------------------------------------------------------- wrong types
@pytest.mark.parametrize("answer", [
    [], "a string", None, 42,
    {"metadata": {"total_matches": 1}, "entities": {"0": {}}},
    {"metadata": {"total_matches": 1}, "entities": "abc"},
    {"metadata": {"total_matches": 1}, "entities": None},
    {"metadata": "x", "entities": []},
    {"metadata": [], "entities": []},
    {"entities": []},
], ids=lambda a: json.dumps(a)[:40])
def test_list_envelope_of_the_wrong_shape_fails_the_page_cleanly(server, answer):
    server.respond = lambda h: send_json(h, answer)
    with pytest.raises(PrismResponseError) as info:
        server.client().list_page("vm", 0, 20)
    assert f"'{ACCOUNT}'" in str(info.value) and not info.value.transient


@pytest.mark.parametrize("answer", [[], "x", None, {"group_results": {}}, {"group_results": "abc"}],
                         ids=repr)
def test_groups_answer_of_the_wrong_shape_fails_cleanly(server, answer):
    server.respond = lambda h: send_json(h, answer)
    with pytest.raises(PrismResponseError):
        server.client().vm_stats(0, 10, STATS_ATTRIBUTES, 0, 1000, 300)


def test_entities_of_the_wrong_type_become_dead_letters(server, good_vm):
    uuid_int = copy.deepcopy(good_vm)
    uuid_int["metadata"]["uuid"] = 12345
    not_a_uuid = copy.deepcopy(good_vm)
    not_a_uuid["metadata"]["uuid"] = "x" * 100_000
    no_name = copy.deepcopy(good_vm)
    no_name["metadata"]["uuid"] = "aaaaaaaa-0000-0000-0000-000000000001"
    no_name["status"]["name"], no_name["spec"]["name"] = None, {"a": "dict, not a name"}
    hostile = ["a string", None, 17, [], {"metadata": {"uuid": ""}}, uuid_int, not_a_uuid, no_name, good_vm]
    server.respond = lambda h: send_json(h, list_answer(hostile, total_matches=len(hostile)))
    page = server.client().list_page("vm", 0, 20)
    routed, dead = split(page.entities)
    assert len(dead) == 6 and all(d["reason"] == "entity without metadata.uuid" for d in dead)
    assert [k for k, _ in routed] == [(ACCOUNT, "x" * 100_000), (ACCOUNT, no_name["metadata"]["uuid"]),
                                      (ACCOUNT, good_vm["metadata"]["uuid"])]
    results = [normalize_through_dofn(*key, vm.entity) for key, vm in routed]
    (r0, d0), (r1, d1), (r2, d2) = results
    assert not r0 and d0[0]["reason"] == "metadata.uuid is missing or not a uuid" and len(d0[0]["id"]) <= 128
    assert not r1 and d1[0]["reason"] == "entity has no name"
    assert r2 and not d2 and r2[0]["resource_id"] == good_vm["metadata"]["uuid"]


@pytest.mark.parametrize("metadata", ["a string", None, [1, 2]])
def test_entity_whose_metadata_is_not_an_object_is_a_dead_letter(metadata):
    routed, dead = split([{"metadata": metadata, "status": {"name": "x"}}])
    assert not routed and len(dead) == 1


def test_structurally_wrong_vm_fields_are_tolerated(good_vm):
    e = copy.deepcopy(good_vm)
    res = e["status"]["resources"]
    res.update(disk_list="abc", nic_list=[None, 5, "nic", {"ip_endpoint_list": [{"ip": {"a": 1}}, "x"]}],
               num_sockets="two", memory_size_mib=[1], power_state={"on": True}, host_reference="h")
    e["metadata"]["categories"] = ["not", "a", "dict"]
    resources, dead = normalize_through_dofn(ACCOUNT, e["metadata"]["uuid"], e)
    assert not dead and len(resources) == 1
    vm = resources[0]
    assert vm["data"]["vcpus"] == 0 and vm["data"]["memory_gib"] == 0 and vm["tags"] == {}
    assert vm["data"]["power_state"] == "UNKNOWN"
    cut = copy.deepcopy(good_vm)
    cut["status"]["cluster_reference"] = cut["spec"]["cluster_reference"] = "cluster-as-a-string"
    resources, dead = normalize_through_dofn(ACCOUNT, cut["metadata"]["uuid"], cut)
    assert not resources and dead[0]["reason"] == "VM has no cluster_reference"


ABSURD_NUMBERS = {
    "sockets 10**200": lambda r: r.update(num_sockets=10 ** 200, num_vcpus_per_socket=10 ** 200),
    "memory 10**400": lambda r: r.update(memory_size_mib=10 ** 400),
    "sockets 1e999 (JSON inf)": lambda r: r.update(num_sockets=json.loads("1e999")),
    "sockets 5000-digit string": lambda r: r.update(num_sockets="9" * 5000),
    "disk size 1e999": lambda r: [d.update(disk_size_bytes=json.loads("1e999")) for d in r["disk_list"]],
}


@pytest.mark.parametrize("mutate", ABSURD_NUMBERS.values(), ids=ABSURD_NUMBERS.keys())
def test_absurd_numbers_in_an_entity_do_not_crash_the_run(good_vm, mutate):
    e = copy.deepcopy(good_vm)
    mutate(e["status"]["resources"])
    resources, dead = normalize_through_dofn(ACCOUNT, e["metadata"]["uuid"], e)
    assert resources or dead


def test_nan_in_an_entity_is_harmless(good_vm):
    e = copy.deepcopy(good_vm)
    e["status"]["resources"]["num_sockets"] = json.loads("NaN")
    resources, dead = normalize_through_dofn(ACCOUNT, e["metadata"]["uuid"], e)
    assert resources and resources[0]["data"]["vcpus"] == 0


def test_stats_of_the_wrong_shape_are_skipped():
    total, ents = parse_stats_page({"total_entity_count": "lots", "group_results": [
        None, "x", {"entity_results": [None, "e", {"entity_id": 5}, {"entity_id": ""}, {"entity_id": "vm-1"}]}]})
    assert total == 0 and [u for u, _ in ents] == ["vm-1"]
    series = parse_stats_entity({"entity_id": "vm-1", "data": [
        None, "x", {"name": "not_an_attribute", "values": []},
        {"name": "memory_usage_ppm", "values": [None, {"time": "t", "values": ["1"]}, {"time": 1, "values": []},
                                                {"time": 2, "values": ["-1"]}, {"time": 3, "values": ["nan"]},
                                                {"time": 4, "values": ["inf"]}, {"time": 5, "values": [None]},
                                                {"time": 6, "values": ["500000"]}]}]})
    assert series == {"memory_usage_ppm": [(6, 500000.0)]}
    assert parse_stats_entity("not a dict") == {} and parse_stats_entity({"data": "x"}) == {}


@pytest.mark.parametrize("case", ["entity_results int", "values int", "values dict"])
def test_stats_with_scalar_where_a_list_belongs_are_skipped(case):
    if case == "entity_results int":
        assert parse_stats_page({"group_results": [{"entity_results": 5}]}) == (0, [])
    elif case == "values int":
        assert parse_stats_entity({"data": [{"name": "memory_usage_ppm", "values": 5}]}) == {"memory_usage_ppm": []}
    else:
        ent = {"data": [{"name": "memory_usage_ppm", "values": [{"time": 1, "values": {"a": 1}}]}]}
        assert parse_stats_entity(ent) == {"memory_usage_ppm": []}


# ----------------------------------------------------------------------------- hostile strings
def hostile_vm(good_vm: dict) -> dict:
    e = copy.deepcopy(good_vm)
    long = "N" * 100_000
    e["status"]["name"] = e["spec"]["name"] = f"vm\x00\r\nINFO fake log line{ANSI}\x07\x7f" + long
    e["status"]["description"] = "d\x1b]0;title\x07" * 200_000
    e["status"]["cluster_reference"]["name"] = "c\n" * 10_000
    e["metadata"]["categories"] = {f"Key{i}\x1b[1m" + "k" * 1000: "v\t\x00" + "V" * 100_000 for i in range(50)}
    e["metadata"]["creation_time"] = "2026\x00" * 10_000
    res = e["status"]["resources"]
    res["power_state"] = "ON\x1b[0m" * 1000
    res["guest_tools"] = {"nutanix_guest_tools": {"guest_os_version": "Linux\r\n" * 50_000}}
    for d in res["disk_list"]:
        d["device_properties"]["disk_address"]["adapter_type"] = "SCSI\x1b[5m" * 100
    for n in res.get("nic_list", []):
        n["mac_address"] = "aa:bb\x00" * 1000
        for ip in n.get("ip_endpoint_list", []):
            ip["ip"] = "10.0.0.1\n" * 1000
    return e


def test_hostile_strings_are_cleaned_and_bounded(server, good_vm):
    entity = hostile_vm(good_vm)
    server.respond = lambda h: send_json(h, list_answer([entity], total_matches=1))
    page = server.client().list_page("vm", 0, 20)  # ~30 MB of JSON: under the real limit, parsed
    routed, dead = split(page.entities)
    assert not dead and len(routed) == 1
    resources, dead = normalize_through_dofn(*routed[0][0], routed[0][1][1])
    assert not dead and [r["kind"] for r in resources].count("vm") == 1
    vm = resources[0]
    assert vm["name"].startswith("vmINFO fake log line[2J[31;1mFAKE ERROR[0m") and len(vm["name"]) == MAX_NAME
    assert len(vm["tags"]) == 50 and all(len(k) <= 128 and len(v) <= 256 for k, v in vm["tags"].items())
    for r in resources:
        for path, s in strings_in(r):
            assert not C0.search(s), f"{r['kind']}{path} has a control character: {s[:40]!r}"
            assert len(s) <= MAX_STR, f"{r['kind']}{path} is {len(s)} characters"
    assert len(json.dumps(resources)) < 200_000  # bounded, whatever Prism sent (~30 MB here)


def test_hostile_strings_in_clusters_and_hosts(good_infra):
    cluster, host = copy.deepcopy(good_infra[0]), copy.deepcopy(good_infra[1])
    for e in (cluster, host):
        e["status"]["name"] = "n\x1b[31m\r\n" + "x" * 100_000
        e["metadata"]["categories"] = {"k\x00": "v\n" * 100_000}
    cluster["status"]["resources"]["config"]["service_list"] = ["AOS\n" * 1000, 5, None]
    cluster["status"]["resources"]["config"]["timezone"] = "UTC\x00" * 10_000
    host["status"]["resources"]["serial_number"] = "S\x07" * 100_000
    for r in (normalize_cluster(ACCOUNT, "http://pc", cluster), normalize_host(ACCOUNT, "http://pc", host)):
        assert len(r["name"]) <= MAX_NAME
        for path, s in strings_in(r):
            assert not C0.search(s) and len(s) <= MAX_STR, (r["kind"], path)


def test_disk_names_are_bounded_too(good_vm):
    e = copy.deepcopy(good_vm)
    e["status"]["name"] = "N" * 100_000
    for d in e["status"]["resources"]["disk_list"]:
        d["device_properties"]["disk_address"].update(adapter_type="S" * 100, device_index=10 ** 30)
    resources = normalize_vm(ACCOUNT, "http://pc", e)
    assert len(resources) > 1
    assert all(len(r["name"]) <= MAX_NAME for r in resources), [len(r["name"]) for r in resources]


def test_c1_controls_and_bidi_overrides_are_removed(good_vm):
    e = copy.deepcopy(good_vm)
    e["status"]["name"] = "vm\x85INFO injected\x9b31m\u202etxt.exe"
    vm = normalize_vm(ACCOUNT, "http://pc", e)[0]
    assert not [c for c in vm["name"] if unicodedata.category(c) in ("Cc", "Cf")], repr(vm["name"])


def test_hostile_error_message_is_cleaned_and_bounded(server):
    message = "denied\r\n2026-01-01 INFO forged line" + ANSI + "\u202e\x85" + "z" * 10_000
    body = {"api_version": "3.1", "code": 400, "state": "ERROR",
            "message_list": [{"message": message, "reason": "INVALID_REQUEST"}]}
    server.respond = lambda h: send_json(h, body, status=400)
    with pytest.raises(PrismError) as info:
        server.client().list_page("vm", 0, 20)
    msg = str(info.value)
    assert "HTTP 400: denied" in msg and "forged line" in msg
    assert not [c for c in msg if unicodedata.category(c) in ("Cc", "Cf")], repr(msg[:200])
    assert len(msg) < 600 and "z" * 301 not in msg


# ----------------------------------------------------------------------------- invalid JSON
BODY_MARK = "BODYMARK-7f3a9c1e"


@pytest.mark.parametrize("body", [
    b'{"metadata": {"total_matches": 1}, "entities": [{"name": "' + BODY_MARK.encode(),  # truncated
    b"<html>" + BODY_MARK.encode() + b"</html>",                                          # not JSON
    b'{"metadata": ' + BODY_MARK.encode() + b"}",                                         # invalid JSON
    b"\xff\xfe" + BODY_MARK.encode(),                                                     # not UTF-8
    b'{"n": ' + b"9" * 5000 + b', "m": "' + BODY_MARK.encode() + b'"}',                  # absurd number
], ids=["truncated", "html", "invalid", "binary", "5000-digit-number"])
def test_invalid_json_is_transient_and_never_quoted(server, body):
    server.respond = lambda h: send_raw(h, body)
    with pytest.raises(PrismError) as info:
        server.client().list_page("vm", 0, 20)
    err = info.value
    assert err.transient and server.hits == 3
    msg = str(err)
    assert "invalid or truncated JSON" in msg and "gave up after 3 attempts" in msg and f"'{ACCOUNT}'" in msg
    assert BODY_MARK not in msg


@pytest.mark.parametrize("body", [
    b"\xef\xbb\xbf" + json.dumps({"metadata": {"total_matches": 1}, "entities": []}).encode(),  # BOM
    b'{"metadata": {"total_matches": 1}, "entities": [], "api_version": NaN}',              # NaN
], ids=["bom", "nan"])
def test_json_the_fast_parser_refuses_still_parses(server, body):
    """Answers orjson refuses but the standard parser took before still read as a page."""
    server.respond = lambda h: send_raw(h, body)
    page = server.client().list_page("vm", 0, 20)
    assert page.total_matches == 1 and page.entities == [] and server.hits == 1


def test_recorded_answers_parse_as_the_standard_parser_does():
    recorded = sorted((Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "prism").rglob("*.json"))
    assert recorded
    for path in recorded:
        raw = path.read_bytes()
        assert prism._json_loads(raw) == json.loads(raw), path.name


def test_body_cut_short_by_the_server_is_transient(server):
    def respond(h):  # declares 1000 bytes, sends 100, hangs up
        send_raw(h, b'{"entities": ["' + BODY_MARK.encode() + b'"' + b" " * 68, content_length=1000)
        h.close_connection = True
    server.respond = respond
    with pytest.raises(PrismError) as info:
        server.client().list_page("vm", 0, 20)
    assert info.value.transient and server.hits == 3 and BODY_MARK not in str(info.value)


def test_absurd_retry_after_does_not_park_the_worker(server):
    server.respond = lambda h: send_raw(h, b"{}", status=503, headers={"Retry-After": "99999999999"})
    clock = FakeClock()
    with pytest.raises(PrismError) as info:
        server.client(retry=RetryPolicy(max_attempts=6, max_total_s=30, clock=clock)).list_page("vm", 0, 20)
    assert clock.slept == [] and server.hits == 1  # capped at 300 s, over the budget: gave up at once
    assert info.value.transient and "HTTP 503" in str(info.value)


def test_auth_rejection_is_not_retried_and_does_not_echo_the_body(server):
    server.respond = lambda h: send_raw(h, BODY_MARK.encode(), status=401)
    with pytest.raises(PrismAuthError) as info:
        server.client().list_page("vm", 0, 20)
    assert server.hits == 1 and BODY_MARK not in str(info.value) and "pw" not in str(info.value).split()
