"""Fault injection in both emulators, observed by plain clients (requests / gRPC stubs)."""
from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
import requests
from google.protobuf import json_format
from spaceone.api.identity.v2 import token_pb2, token_pb2_grpc
from spaceone.api.inventory.v1 import cloud_service_pb2, cloud_service_pb2_grpc

from emulators.cloudforet.config import EmulatorConfig
from emulators.cloudforet.faults import CloudForetFaults
from emulators.cloudforet.server import CloudForetEmulator
from emulators.faultspec import FaultRule
from emulators.prism.faults import PrismFaults
from emulators.prism.fleet import FleetSpec, generate_fleet
from emulators.prism.server import PrismServer

AUTH = ("admin", "nutanix/4u")
V3 = "/api/nutanix/v3"


# ================================================================== spec grammar
def test_spec_grammar_example_parses() -> None:
    rules = PrismFaults.parse("503:0.02,429:0.01@retry_after=1,reset:0.005,slow:0.01@delay=5,"
                              "truncated:0.01,malformed:0.01,churn@calls=3,5,delete=2,add=1,401@after=40")
    kinds = [r.kind for r in rules]
    assert kinds == ["503", "429", "reset", "slow", "truncated", "malformed", "churn", "401"]
    assert rules[0].rate == 0.02 and rules[1].params == {"retry_after": 1.0}
    assert rules[3].params == {"delay": 5.0}
    churn = rules[6]
    assert churn.calls == {3, 5} and churn.params == {"delete": 2, "add": 1} and churn.rate is None
    assert rules[7].after == 40
    cf = CloudForetFaults.parse("invalid_argument@method=CloudService.create@match=vm-7|vm-9,"
                                "DEADLINE_EXCEEDED_AFTER@calls=2+4,RESTART@after=10@down=0.5")
    assert cf[0] == FaultRule("INVALID_ARGUMENT", methods=("CloudService.create",), match=("vm-7", "vm-9"))
    assert cf[1].calls == {2, 4} and cf[2].after == 10 and cf[2].params == {"down": 0.5}


@pytest.mark.parametrize("spec, bad", [
    ("503:0.1,bogus:0.1", "bogus:0.1"),
    ("503:1.5", "503:1.5"),
    ("429@retry_after=soon", "429@retry_after=soon"),
    ("slow@nope=1", "slow@nope=1"),
    ("delete=2", "delete=2"),
    ("churn@calls=0", "churn@calls=0"),
    ("401@after=-1", "401@after=-1"),
    ("malformed@shape=weird", "malformed@shape=weird"),
    ("503@calls=2,7x", "7x"),
])
def test_bad_spec_names_the_bad_part(spec: str, bad: str) -> None:
    with pytest.raises(ValueError) as info:
        PrismFaults.parse(spec)
    assert repr(bad) in str(info.value)


def test_cloudforet_kinds_are_validated() -> None:
    with pytest.raises(ValueError, match="'UNAVAILABLE@path=/x'"):
        CloudForetFaults("UNAVAILABLE@path=/x")  # path= is a Prism selector
    with pytest.raises(ValueError, match="unknown fault kind"):
        CloudForetFaults("503")


# ================================================================== Prism
@pytest.fixture()
def prism():
    pc = generate_fleet(FleetSpec(vms=30, seed=11))[0]
    with PrismServer(pc, max_page=10, faults=PrismFaults(seed=5)) as srv:
        yield srv


def post(srv: PrismServer, path: str = "/vms/list", body: Any = None, timeout: float = 5,
         **kw: Any) -> requests.Response:
    return requests.post(srv.url + V3 + path, json=body if body is not None else {"length": 10},
                         auth=AUTH, timeout=timeout, **kw)


def test_prism_429_with_retry_after(prism) -> None:
    prism.faults.set("429@calls=1@retry_after=3")
    r = post(prism)
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    assert r.json()["code"] == 429 and r.json()["message_list"][0]["reason"] == "TOO_MANY_REQUESTS"
    assert post(prism).status_code == 200
    assert prism.faults.injected == {"429": 1} and prism.faults.requests_seen == 2


def test_prism_5xx_bodies(prism) -> None:
    prism.faults.set("500@calls=1,502@calls=2,503@calls=3@retry_after=1,504@calls=4")
    got = [post(prism) for _ in range(5)]
    assert [r.status_code for r in got] == [500, 502, 503, 504, 200]
    assert got[0].json()["code"] == 500 and got[2].json()["code"] == 503
    assert got[2].headers["Retry-After"] == "1"
    assert got[1].content == b"" and got[3].content == b""
    assert prism.requests[V3 + "/vms/list"] == 5  # faulted requests are still counted


def test_prism_slow_response_exceeds_client_timeout(prism) -> None:
    prism.faults.set("slow@calls=1@delay=1.0")
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(prism, timeout=0.3)
    assert post(prism, timeout=5).status_code == 200
    assert prism.faults.injected["slow"] == 1


def test_prism_reset_mid_body(prism) -> None:
    prism.faults.set("reset@calls=1")
    with requests.Session() as s:
        with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
            s.post(prism.url + V3 + "/vms/list", json={"length": 10}, auth=AUTH, timeout=5)
        r = s.post(prism.url + V3 + "/vms/list", json={"length": 10}, auth=AUTH, timeout=5)
    assert r.status_code == 200 and len(r.json()["entities"]) == 10


def test_prism_truncated_json(prism) -> None:
    prism.faults.set("truncated@calls=1")
    r = post(prism)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(r.content)
    with pytest.raises(ValueError):
        json.loads(r.content)
    assert post(prism).json()["metadata"]["length"] == 10


def test_prism_malformed_entity(prism) -> None:
    prism.faults.set("malformed@calls=2@shape=no_uuid")
    first = post(prism).json()["entities"]
    assert all("uuid" in e["metadata"] for e in first)
    page = post(prism, body={"offset": 10, "length": 10}).json()["entities"]
    broken = [i for i, e in enumerate(page) if "uuid" not in e["metadata"]]
    assert broken == [prism.faults.last_malformed["index"]]
    # without a fixed shape the choice is random but seeded: same seed, same damage
    seen = []
    for _ in range(2):
        prism.faults.set("malformed@calls=1", seed=99)
        seen.append((post(prism).content, dict(prism.faults.last_malformed)))
    assert seen[0] == seen[1]


def test_prism_churn_between_pages(prism) -> None:
    prism.faults.set("churn@calls=2@delete=3@add=1")
    p1 = post(prism, body={"offset": 0, "length": 10}).json()
    p2 = post(prism, body={"offset": 10, "length": 10}).json()
    assert p1["metadata"]["total_matches"] == 30 and p2["metadata"]["total_matches"] == 28
    churn = prism.faults.last_churn
    assert len(churn["deleted"]) == 3 and len(churn["added"]) == 1
    uuids = {e["metadata"]["uuid"] for off in range(0, 30, 10)
             for e in post(prism, body={"offset": off, "length": 10}).json()["entities"]}
    assert len(uuids) == 28
    assert not uuids & set(churn["deleted"]) and set(churn["added"]) <= uuids
    # churn only counts vms/list: other endpoints do not advance it
    prism.faults.set("churn@calls=1")
    post(prism, "/clusters/list", {})
    assert prism.faults.injected["churn"] == 0


def test_prism_401_after_n_requests(prism) -> None:
    prism.faults.set("401@after=3")
    codes = [post(prism).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 401, 401]
    r = post(prism)
    assert r.content == b"" and r.headers["WWW-Authenticate"].startswith("Basic")
    prism.faults.clear()
    assert post(prism).status_code == 200


def test_prism_path_and_method_selectors(prism) -> None:
    prism.faults.set("503@path=/hosts/list")
    assert post(prism).status_code == 200
    assert post(prism, "/hosts/list", {}).status_code == 503
    prism.faults.set("500@method=GET")
    assert post(prism).status_code == 200
    assert requests.get(prism.url + V3 + "/vms/list", auth=AUTH, timeout=5).status_code == 500


def test_prism_rate_faults_are_reproducible(prism) -> None:
    def failing(seed: int) -> list[int]:
        prism.faults.set("503:0.3", seed=seed)
        return [i for i in range(30) if post(prism, "/clusters/list", {}).status_code == 503]

    a, b, c = failing(1), failing(1), failing(2)
    assert a == b and a != c
    assert 2 <= len(a) <= 20


# ================================================================== CloudForet
APP = "app-nutanix-collector"
USER = ("collector@example.com", "collector-pass")


@pytest.fixture()
def cf(tmp_path):
    emu = CloudForetEmulator(str(tmp_path / "cf.db"), EmulatorConfig(), faults=CloudForetFaults(seed=3)).start()
    channel = grpc.insecure_channel(emu.endpoint)
    yield emu, cloud_service_pb2_grpc.CloudServiceStub(channel), token_pb2_grpc.TokenStub(channel)
    channel.close()
    emu.faults.join(5)
    emu.stop()


def vm(resource_id: str) -> cloud_service_pb2.CreateServiceRequest:
    return json_format.ParseDict({
        "name": f"vm-{resource_id}", "provider": "nutanix", "cloud_service_group": "Compute",
        "cloud_service_type": "VirtualMachine", "reference": {"resource_id": resource_id}},
        cloud_service_pb2.CreateServiceRequest())


def md(token: str) -> tuple[tuple[str, str], ...]:
    return (("token", token),)


def code_of(fn: Any, *args: Any, **kw: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kw)
    return info.value.code()


def resource_ids(emu: CloudForetEmulator, cs: Any, token: str) -> list[str]:
    got = cs.list(cloud_service_pb2.CloudServiceQuery(), metadata=md(token), timeout=5)
    return sorted(r.reference.resource_id for r in got.results)


@pytest.mark.parametrize("kind, code", [
    ("UNAVAILABLE", grpc.StatusCode.UNAVAILABLE),
    ("DEADLINE_EXCEEDED", grpc.StatusCode.DEADLINE_EXCEEDED),
    ("RESOURCE_EXHAUSTED", grpc.StatusCode.RESOURCE_EXHAUSTED),
    ("PERMISSION_DENIED", grpc.StatusCode.PERMISSION_DENIED),
])
def test_cloudforet_status_faults_before_the_write(cf, kind: str, code: grpc.StatusCode) -> None:
    emu, cs, _ = cf
    token = emu.app_token(APP)
    emu.faults.set(f"{kind}@calls=1@method=CloudService.create")
    assert code_of(cs.create, vm("a"), metadata=md(token), timeout=5) == code
    cs.create(vm("b"), metadata=md(token), timeout=5)
    assert resource_ids(emu, cs, token) == ["b"]  # the failed call wrote nothing
    assert emu.faults.injected == {kind: 1}


def test_cloudforet_resource_exhausted_retry_after(cf) -> None:
    emu, cs, _ = cf
    emu.faults.set("RESOURCE_EXHAUSTED@calls=1@retry_after=2")
    with pytest.raises(grpc.RpcError) as info:
        cs.list(cloud_service_pb2.CloudServiceQuery(), metadata=md(emu.app_token(APP)), timeout=5)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert ("retry-after", "2") in tuple(info.value.trailing_metadata())


def test_cloudforet_deadline_exceeded_after_the_write(cf) -> None:
    emu, cs, _ = cf
    token = emu.app_token(APP)
    emu.faults.set("DEADLINE_EXCEEDED_AFTER@calls=1@method=CloudService.create")
    assert code_of(cs.create, vm("lost-answer"), metadata=md(token), timeout=5) == \
        grpc.StatusCode.DEADLINE_EXCEEDED
    assert resource_ids(emu, cs, token) == ["lost-answer"]  # applied although the call failed
    assert emu.faults.injected["DEADLINE_EXCEEDED_AFTER"] == 1


def test_cloudforet_invalid_argument_for_one_record(cf) -> None:
    emu, cs, _ = cf
    token = emu.app_token(APP)
    emu.faults.set("INVALID_ARGUMENT@method=CloudService.create@match=vm-bad-7")
    for rid in ("vm-good-1", "vm-bad-7", "vm-good-2"):
        if rid == "vm-bad-7":
            assert code_of(cs.create, vm(rid), metadata=md(token), timeout=5) == grpc.StatusCode.INVALID_ARGUMENT
        else:
            cs.create(vm(rid), metadata=md(token), timeout=5)
    assert resource_ids(emu, cs, token) == ["vm-good-1", "vm-good-2"]
    assert emu.faults.injected == {"INVALID_ARGUMENT": 1}


def test_cloudforet_token_expires_mid_run_and_refresh_works(cf) -> None:
    emu, cs, tok = cf
    req = token_pb2.IssueTokenRequest(auth_type=token_pb2.IssueTokenRequest.LOCAL, domain_id="domain-nutanix")
    req.credentials.update({"user_id": USER[0], "password": USER[1]})
    issued = tok.issue(req, timeout=5)

    def grant() -> str:
        return tok.grant(token_pb2.GrantTokenRequest(
            grant_type=token_pb2.GrantTokenRequest.REFRESH_TOKEN, token=issued.refresh_token,
            scope=token_pb2.GrantTokenRequest.WORKSPACE, workspace_id="workspace-default"), timeout=5).access_token

    user_token, app_token = grant(), emu.app_token(APP)
    emu.faults.set("UNAUTHENTICATED@after=2")
    cs.create(vm("1"), metadata=md(user_token), timeout=5)
    cs.create(vm("2"), metadata=md(app_token), timeout=5)
    for token in (user_token, app_token, user_token):  # expired from call 3 on, and stays so
        assert code_of(cs.create, vm("x"), metadata=md(token), timeout=5) == grpc.StatusCode.UNAUTHENTICATED
    fresh_user = grant()  # the refresh token still works (Token.* is never refused)
    cs.create(vm("3"), metadata=md(fresh_user), timeout=5)
    cs.create(vm("4"), metadata=md(emu.app_token(APP)), timeout=5)  # operator re-issued app token
    assert resource_ids(emu, cs, fresh_user) == ["1", "2", "3", "4"]
    assert emu.faults.injected["UNAUTHENTICATED"] == 3


def test_cloudforet_restart_on_same_port_keeps_data(cf) -> None:
    emu, cs, _ = cf
    token = emu.app_token(APP)
    cs.create(vm("before"), metadata=md(token), timeout=5)
    port = emu.port
    emu.restart()
    assert emu.port == port
    with grpc.insecure_channel(emu.endpoint) as ch:
        stub = cloud_service_pb2_grpc.CloudServiceStub(ch)
        assert resource_ids(emu, stub, token) == ["before"]  # data and signing key survived


def test_cloudforet_restart_fault_mid_run(cf) -> None:
    emu, cs, _ = cf
    token = emu.app_token(APP)
    emu.faults.set("RESTART@after=2@down=0.6")
    cs.create(vm("1"), metadata=md(token), timeout=5)
    cs.create(vm("2"), metadata=md(token), timeout=5)
    cs.create(vm("3"), metadata=md(token), timeout=5)  # triggers the restart, still answered
    assert emu.faults.went_down.wait(5)
    with pytest.raises(grpc.RpcError):  # the server is down for a moment
        cs.create(vm("down"), metadata=md(token), timeout=0.2)
    assert emu.faults.join(5)
    cs.create(vm("4"), metadata=md(token), timeout=5, wait_for_ready=True)  # the channel reconnects
    assert resource_ids(emu, cs, token) == ["1", "2", "3", "4"]
    assert emu.faults.injected == {"RESTART": 1}


def test_cloudforet_rate_faults_are_reproducible(cf) -> None:
    emu, cs, _ = cf
    token = emu.app_token(APP)

    def failing(seed: int) -> list[int]:
        emu.faults.set("UNAVAILABLE:0.3", seed=seed)
        out = []
        for i in range(20):
            try:
                cs.list(cloud_service_pb2.CloudServiceQuery(), metadata=md(token), timeout=5)
            except grpc.RpcError:
                out.append(i)
        return out

    a, b, c = failing(4), failing(4), failing(5)
    assert a == b and a != c and a
