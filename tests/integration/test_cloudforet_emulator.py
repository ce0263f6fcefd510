"""The CloudForet emulator, exercised through real gRPC with the spaceone-api stubs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from google.protobuf import json_format
from spaceone.api.cost_analysis.v1 import cost_pb2, cost_pb2_grpc
from spaceone.api.identity.v2 import service_account_pb2, service_account_pb2_grpc, token_pb2, token_pb2_grpc
from spaceone.api.inventory.v1 import (
    cloud_service_pb2,
    cloud_service_pb2_grpc,
    cloud_service_type_pb2,
    cloud_service_type_pb2_grpc,
    region_pb2,
    region_pb2_grpc,
)
from spaceone.api.notification.v1 import notification_pb2, notification_pb2_grpc
from spaceone.api.secret.v1 import secret_pb2, secret_pb2_grpc

from emulators.cloudforet import base as emulator_base
from emulators.cloudforet import query
from emulators.cloudforet.auth import ACCESS, SCOPE_WORKSPACE, TokenSigner
from emulators.cloudforet.config import EmulatorConfig
from emulators.cloudforet.server import CloudForetEmulator
from tests.helpers import FakeClock

REPO = Path(__file__).resolve().parents[2]
OWNER = ("collector@example.com", "collector-pass")
MEMBER = ("member@example.com", "member-pass")
ADMIN = ("admin@example.com", "admin-pass")


def make_config(**overrides: Any) -> EmulatorConfig:
    base = {
        "users": [
            {"user_id": OWNER[0], "password": OWNER[1], "role_type": "WORKSPACE_OWNER"},
            {"user_id": MEMBER[0], "password": MEMBER[1], "role_type": "WORKSPACE_MEMBER"},
            {"user_id": ADMIN[0], "password": ADMIN[1], "role_type": "DOMAIN_ADMIN"},
        ],
        "secrets": {"secret-pc1": {"nutanix_host": "pc1.local", "nutanix_password": "s3cret"}},
        "service_accounts": [
            {"service_account_id": "sa-pc1", "name": "PC 1", "provider": "nutanix",
             "data": {"nutanix_host": "pc1.local"}, "secret_id": "secret-pc1"},
            {"service_account_id": "sa-aws", "name": "AWS", "provider": "aws", "data": {}},
        ],
    }
    base.update(overrides)
    return EmulatorConfig.from_dict(base)


class Client:
    """Stubs on one channel plus token helpers."""

    def __init__(self, emu: CloudForetEmulator) -> None:
        self.emu = emu
        self.channel = grpc.insecure_channel(emu.endpoint)
        self.token = token_pb2_grpc.TokenStub(self.channel)
        self.cs = cloud_service_pb2_grpc.CloudServiceStub(self.channel)
        self.cst = cloud_service_type_pb2_grpc.CloudServiceTypeStub(self.channel)
        self.region = region_pb2_grpc.RegionStub(self.channel)
        self.cost = cost_pb2_grpc.CostStub(self.channel)
        self.notification = notification_pb2_grpc.NotificationStub(self.channel)
        self.secret = secret_pb2_grpc.SecretStub(self.channel)
        self.sa = service_account_pb2_grpc.ServiceAccountStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def issue(self, user: tuple[str, str], domain_id: str = "domain-nutanix") -> token_pb2.TokenInfo:
        req = token_pb2.IssueTokenRequest(auth_type=token_pb2.IssueTokenRequest.LOCAL, domain_id=domain_id)
        req.credentials.update({"user_id": user[0], "password": user[1]})
        return self.token.issue(req, timeout=5)

    def grant(self, refresh_token: str, workspace_id: str = "workspace-default") -> token_pb2.GrantTokenInfo:
        req = token_pb2.GrantTokenRequest(
            grant_type=token_pb2.GrantTokenRequest.REFRESH_TOKEN, token=refresh_token,
            scope=token_pb2.GrantTokenRequest.WORKSPACE, workspace_id=workspace_id, domain_id="domain-nutanix")
        return self.token.grant(req, timeout=5)

    def workspace_token(self, user: tuple[str, str]) -> str:
        return self.grant(self.issue(user).refresh_token).access_token

    def domain_token(self, user: tuple[str, str] = ADMIN) -> str:
        req = token_pb2.GrantTokenRequest(grant_type=token_pb2.GrantTokenRequest.REFRESH_TOKEN,
                                          token=self.issue(user).refresh_token,
                                          scope=token_pb2.GrantTokenRequest.DOMAIN,
                                          domain_id="domain-nutanix")
        return self.token.grant(req, timeout=5).access_token


def md(token: str) -> tuple[tuple[str, str], ...]:
    return (("token", token),)


def msg(cls: type, d: dict) -> Any:
    return json_format.ParseDict(d, cls())


def to_dict(m: Any) -> dict:
    return json_format.MessageToDict(m, preserving_proto_field_name=True)


def vm(resource_id: str, **extra: Any) -> cloud_service_pb2.CreateServiceRequest:
    d = {"name": f"vm-{resource_id}", "provider": "nutanix", "cloud_service_group": "Compute",
         "cloud_service_type": "VirtualMachine", "reference": {"resource_id": resource_id}, **extra}
    return msg(cloud_service_pb2.CreateServiceRequest, d)


def rpc_error(fn: Any, *args: Any, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, timeout=5, **kwargs)
    return info.value


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[CloudForetEmulator]:
    with CloudForetEmulator(str(tmp_path / "cf.sqlite"), make_config()) as emulator:
        yield emulator


@pytest.fixture
def client(emu: CloudForetEmulator) -> Iterator[Client]:
    c = Client(emu)
    yield c
    c.close()


@pytest.fixture
def app(emu: CloudForetEmulator) -> tuple[tuple[str, str], ...]:
    return md(emu.app_token())


# -- auth ------------------------------------------------------------------------

def test_issue_and_grant_flow(client: Client) -> None:
    issued = client.issue(OWNER)
    assert issued.access_token and issued.refresh_token
    granted = client.grant(issued.refresh_token)
    assert granted.role_type == token_pb2.GrantTokenInfo.WORKSPACE_OWNER
    assert (granted.domain_id, granted.workspace_id) == ("domain-nutanix", "workspace-default")
    info = client.cs.create(vm("u-1"), metadata=md(granted.access_token), timeout=5)
    assert info.workspace_id == "workspace-default"

    # The DOMAIN-scope USER token from issue is not enough for any API call.
    err = rpc_error(client.cs.list, cloud_service_pb2.CloudServiceQuery(), metadata=md(issued.access_token))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "ERROR_PERMISSION_DENIED" in err.details()


def test_issue_and_grant_failures(client: Client) -> None:
    for user, domain in [((OWNER[0], "wrong"), "domain-nutanix"), (("nobody", "x"), "domain-nutanix"),
                         (OWNER, "domain-other")]:
        with pytest.raises(grpc.RpcError) as info:
            client.issue(user, domain)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    issued = client.issue(OWNER)
    with pytest.raises(grpc.RpcError) as info:
        client.grant(issued.access_token)  # not a refresh token
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as info:
        client.grant(issued.refresh_token, workspace_id="workspace-nope")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details().startswith("ERROR_NOT_FOUND")
    # A refresh token cannot call the API itself.
    err = rpc_error(client.cs.list, cloud_service_pb2.CloudServiceQuery(), metadata=md(issued.refresh_token))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_app_token_works(client: Client, app: Any) -> None:
    info = client.cs.create(vm("u-app"), metadata=app, timeout=5)
    assert info.cloud_service_id.startswith("cloud-svc-")
    assert info.domain_id == "domain-nutanix"


def test_bad_tokens_are_unauthenticated(emu: CloudForetEmulator, client: Client) -> None:
    good = emu.app_token()
    header, payload, _sig = good.split(".")
    forged = TokenSigner(TokenSigner.new_key()).issue(
        "app-nutanix-collector", ACCESS, SCOPE_WORKSPACE, "WORKSPACE_OWNER", "domain-nutanix", "workspace-default", 60)
    expired = emu.signer.issue(OWNER[0], ACCESS, SCOPE_WORKSPACE, "WORKSPACE_OWNER", "domain-nutanix",
                               "workspace-default", -10)
    cases = {
        "missing": (),
        "malformed": md("not-a-token"),
        "bad signature": md(f"{header}.{payload}.AAAA"),
        "other key": md(forged),
        "expired": md(expired),
    }
    for name, metadata in cases.items():
        err = rpc_error(client.cs.list, cloud_service_pb2.CloudServiceQuery(), metadata=metadata)
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED, name
        assert err.details().startswith("ERROR_AUTHENTICATE_FAILURE"), name
        for value in metadata:
            assert value[1] not in err.details(), name
    assert "expired" in rpc_error(client.cs.list, cloud_service_pb2.CloudServiceQuery(),
                                  metadata=md(expired)).details()


def test_expired_by_ttl(tmp_path: Path) -> None:
    with CloudForetEmulator(str(tmp_path / "ttl.sqlite"), make_config(access_token_ttl=1)) as emulator:
        clock = FakeClock(time.time())
        emulator.signer.clock = clock.time  # the emulator's clock: exp is written and checked against it
        c = Client(emulator)
        token = c.workspace_token(OWNER)
        c.cs.list(cloud_service_pb2.CloudServiceQuery(), metadata=md(token), timeout=5)
        clock.advance(2.1)
        err = rpc_error(c.cs.list, cloud_service_pb2.CloudServiceQuery(), metadata=md(token))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        c.close()


def test_role_rules(client: Client) -> None:
    member = md(client.workspace_token(MEMBER))
    err = rpc_error(client.cst.create, cloud_service_type_pb2.CreateCloudServiceTypeRequest(
        name="VirtualMachine", provider="nutanix", group="Compute"), metadata=member)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "requires one of ['WORKSPACE_OWNER']" in err.details()
    # A member may write cloud services. Secret.get_data is the secret service's internal API:
    # the real one excludes authentication and authorization, so any caller that reaches it reads.
    client.cs.create(vm("u-member"), metadata=member, timeout=5)
    got = client.secret.get_data(secret_pb2.GetSecretDataRequest(secret_id="secret-pc1", domain_id="domain-nutanix"),
                                 metadata=member, timeout=5)
    assert got.encrypted is False and got.data["nutanix_host"]
    # A domain admin's DOMAIN grant reads but does not write cloud services; its WORKSPACE grant is a
    # WORKSPACE_OWNER (identity 2.0.227 GrantTokenManager.authenticate) and writes.
    admin = md(client.domain_token(ADMIN))
    client.cs.list(cloud_service_pb2.CloudServiceQuery(), metadata=admin, timeout=5)
    err = rpc_error(client.cs.create, vm("u-admin"), metadata=admin)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    client.cs.create(vm("u-admin"), metadata=md(client.workspace_token(ADMIN)), timeout=5)


# -- inventory ---------------------------------------------------------------------

def test_create_validation(client: Client, app: Any) -> None:
    no_ref = cloud_service_pb2.CreateServiceRequest(
        name="x", provider="nutanix", cloud_service_group="Compute", cloud_service_type="VM")
    err = rpc_error(client.cs.create, no_ref, metadata=app)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "ERROR_REQUIRED_PARAMETER: key = reference"
    no_name = vm("u-1")
    no_name.name = ""
    err = rpc_error(client.cs.create, no_name, metadata=app)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "ERROR_REQUIRED_PARAMETER: key = name"


def test_create_never_dedupes(emu: CloudForetEmulator, client: Client, app: Any) -> None:
    a = client.cs.create(vm("u-dup"), metadata=app, timeout=5)
    b = client.cs.create(vm("u-dup"), metadata=app, timeout=5)
    assert a.cloud_service_id != b.cloud_service_id
    assert len([d for d in emu.store.cloud_services() if d["reference"]["resource_id"] == "u-dup"]) == 2
    assert a.state == "ACTIVE" and a.created_at.endswith("Z") and a.created_at == a.updated_at


def test_update_merges_data_and_files_tags_under_custom(client: Client, app: Any, monkeypatch) -> None:
    """inventory service/cloud_service_service.py: create_resource() files the tags under
    the record's provider (_convert_tags_to_hash(tags, provider)); update_resource() under
    _get_provider_from_meta(), "custom" for any call but a collector job's, replacing that
    bucket whole; info/cloud_service_info.py shows them by bucket (_change_tags_without_hash)."""
    created = client.cs.create(vm("u-upd", data={"a": 1, "b": 2}, tags={"x": "1"}, account="acc"),
                               metadata=app, timeout=5)
    assert to_dict(created)["tags"] == {"nutanix": {"x": "1"}}
    assert to_dict(created)["tag_keys"] == {"nutanix": ["x"]}
    clock = FakeClock(time.time() + 1)  # one second after the create, on the emulator's clock
    monkeypatch.setattr(emulator_base, "wall_clock", clock.time)
    req = msg(cloud_service_pb2.UpdateCloudServiceRequest, {
        "cloud_service_id": created.cloud_service_id, "name": "renamed",
        "data": {"b": 3, "c": 4}, "tags": {"y": "2", "x": "changed"}})
    updated = to_dict(client.cs.update(req, metadata=app, timeout=5))
    assert updated["data"] == {"a": 1, "b": 3, "c": 4}
    assert updated["tags"] == {"nutanix": {"x": "1"}, "custom": {"y": "2", "x": "changed"}}
    assert {k: sorted(v) for k, v in updated["tag_keys"].items()} == {"nutanix": ["x"], "custom": ["x", "y"]}
    assert updated["name"] == "renamed" and updated["account"] == "acc"
    assert updated["updated_at"] > updated["created_at"]
    # the custom bucket is replaced whole; an update without tags leaves every bucket as it is
    again = msg(cloud_service_pb2.UpdateCloudServiceRequest, {
        "cloud_service_id": created.cloud_service_id, "tags": {"z": "3"}})
    assert to_dict(client.cs.update(again, metadata=app, timeout=5))["tags"] == {
        "nutanix": {"x": "1"}, "custom": {"z": "3"}}
    untagged = cloud_service_pb2.UpdateCloudServiceRequest(cloud_service_id=created.cloud_service_id, name="n2")
    assert to_dict(client.cs.update(untagged, metadata=app, timeout=5))["tags"] == {
        "nutanix": {"x": "1"}, "custom": {"z": "3"}}
    err = rpc_error(client.cs.update, cloud_service_pb2.UpdateCloudServiceRequest(cloud_service_id="cloud-svc-nope"),
                    metadata=app)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details().startswith("ERROR_NOT_FOUND")


def test_a_client_sending_collector_job_metadata_does_not_pass_for_a_collector_job(client: Client, app: Any) -> None:
    """_is_created_by_collector() reads collector_id, job_id, plugin_id and
    secret.service_account_id from the transaction; the inventory service sets them when it
    runs a collector plugin. A client sending them itself still writes "custom"."""
    created = client.cs.create(vm("u-job", tags={"Env": "Dev"}), metadata=app, timeout=5)
    posing = (*app, ("collector_id", "collector-1"), ("job_id", "job-1"), ("plugin_id", "plugin-1"),
              ("secret.service_account_id", "sa-pc1"), ("secret.provider", "nutanix"))
    req = msg(cloud_service_pb2.UpdateCloudServiceRequest, {
        "cloud_service_id": created.cloud_service_id, "tags": {"Env": "Prod"}})
    assert to_dict(client.cs.update(req, metadata=posing, timeout=5))["tags"] == {
        "nutanix": {"Env": "Dev"}, "custom": {"Env": "Prod"}}


def test_delete_marks_deleted(emu: CloudForetEmulator, client: Client, app: Any) -> None:
    keep = client.cs.create(vm("u-keep"), metadata=app, timeout=5)
    gone = client.cs.create(vm("u-gone"), metadata=app, timeout=5)
    client.cs.delete(cloud_service_pb2.CloudServiceRequest(cloud_service_id=gone.cloud_service_id),
                     metadata=app, timeout=5)
    listed = client.cs.list(cloud_service_pb2.CloudServiceQuery(), metadata=app, timeout=5)
    assert [r.cloud_service_id for r in listed.results] == [keep.cloud_service_id]
    deleted = client.cs.list(cloud_service_pb2.CloudServiceQuery(state="DELETED"), metadata=app, timeout=5)
    assert [r.cloud_service_id for r in deleted.results] == [gone.cloud_service_id]
    assert deleted.results[0].deleted_at
    by_filter = client.cs.list(msg(cloud_service_pb2.CloudServiceQuery, {
        "query": {"filter": [{"k": "state", "v": ["ACTIVE", "DELETED"], "o": "in"}]}}), metadata=app, timeout=5)
    assert by_filter.total_count == 2
    # inventory CloudServiceService.get(): CloudServiceManager.get_cloud_service() does not
    # look at the state, so a deleted record still answers, DELETED
    got = client.cs.get(cloud_service_pb2.CloudServiceRequest(cloud_service_id=gone.cloud_service_id),
                        metadata=app, timeout=5)
    assert got.state == "DELETED" and got.deleted_at and got.reference.resource_id == "u-gone"
    # model/cloud_service_model.py CloudService.delete()/update() on a DELETED record:
    # error/cloud_service.py ERROR_RESOURCE_ALREADY_DELETED, an ERROR_INVALID_ARGUMENT
    for call, req in [(client.cs.delete, cloud_service_pb2.CloudServiceRequest(cloud_service_id=gone.cloud_service_id)),
                      (client.cs.update, cloud_service_pb2.UpdateCloudServiceRequest(
                          cloud_service_id=gone.cloud_service_id, name="x"))]:
        err = rpc_error(call, req, metadata=app)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.details() == (f"ERROR_RESOURCE_ALREADY_DELETED: CloudService has already been deleted. "
                                 f"({gone.cloud_service_id})")
    assert client.cs.get(cloud_service_pb2.CloudServiceRequest(cloud_service_id=gone.cloud_service_id),
                         metadata=app, timeout=5).name == "vm-u-gone"  # the refused update changed nothing
    assert len(emu.store.cloud_services()) == 1
    assert len(emu.store.cloud_services(include_deleted=True)) == 2


def test_list_query(client: Client, app: Any) -> None:
    for i in range(12):
        client.cs.create(vm(f"u-{i:02d}", data={"power_state": "ON" if i % 2 else "OFF", "vcpus": i},
                            tags={"CostCenter": f"cc-{i % 3}"}, region_code="pc1"), metadata=app, timeout=5)
    wanted = [f"u-{i:02d}" for i in range(2, 9)] + ["u-missing"]
    result = client.cs.list(msg(cloud_service_pb2.CloudServiceQuery, {"query": {
        "filter": [{"k": "reference.resource_id", "v": wanted, "o": "in"}],
        "sort": [{"key": "reference.resource_id", "desc": True}],
        "page": {"start": 2, "limit": 3},
        "only": ["reference.resource_id", "name"]}}), metadata=app, timeout=5)
    assert result.total_count == 7
    rows = [to_dict(r) for r in result.results]
    assert [r["reference"]["resource_id"] for r in rows] == ["u-07", "u-06", "u-05"]
    assert all(set(r) == {"cloud_service_id", "reference", "name"} for r in rows)

    def count(q: dict, **top: Any) -> int:
        req = msg(cloud_service_pb2.CloudServiceQuery, {"query": {**q, "count_only": True}, **top})
        res = client.cs.list(req, metadata=app, timeout=5)
        assert not res.results
        return res.total_count

    assert count({"filter": [{"key": "data.power_state", "value": "ON"}]}) == 6
    assert count({"filter": [{"k": "data.vcpus", "v": 9, "o": "gte"}]}) == 3
    # tags are kept per bucket: a filter names the bucket (inventory CloudServiceManager
    # ._change_filter_tags() rewrites tags.<provider>.<key>; "tags.<key>" names no stored tag)
    assert count({"filter": [{"k": "tags.nutanix.CostCenter", "v": "cc-1", "o": "eq"},
                             {"k": "data.power_state", "v": "ON", "o": "not"}]}) == 2
    assert count({"filter": [{"k": "tags.CostCenter", "v": "cc-1", "o": "eq"}]}) == 0
    assert count({"filter_or": [{"k": "reference.resource_id", "v": "u-00"},
                                {"k": "name", "v": "U-11", "o": "contain"}]}) == 2
    assert count({"filter": [{"k": "data.nothing", "v": True, "o": "exists"}]}) == 0
    assert count({"filter": [{"k": "reference.resource_id", "v": ["u-00", "u-01"], "o": "not_in"}]}) == 10
    assert count({}, provider="nutanix", region_code="pc1") == 12
    assert count({}, provider="aws") == 0
    # plain string equalities are counted by SQLite: the same answers as the query engine's
    for i in range(4):
        client.cs.create(vm(f"a-{i}", account="pc-a" if i < 3 else "", region_code="pc1"), metadata=app, timeout=5)
    for q in ({"filter": [{"k": "account", "v": "pc-a"}]}, {"filter": [{"k": "account", "v": ""}]},
              {"filter": [{"k": "account", "v": "pc-a"}, {"k": "name", "v": "vm-a-1"}]},
              {"filter": [{"k": "provider", "v": "nutanix", "o": "eq"}, {"k": "account", "v": "pc-b"}]}):
        listed = client.cs.list(msg(cloud_service_pb2.CloudServiceQuery, {"query": q}), metadata=app, timeout=5)
        assert count(q) == listed.total_count == len(listed.results)
    assert count({"filter": [{"k": "account", "v": "pc-a"}]}) == 3
    assert count({"filter": [{"k": "account", "v": ""}]}) == 13
    err = rpc_error(client.cs.list, msg(cloud_service_pb2.CloudServiceQuery, {
        "query": {"filter": [{"k": "a", "v": 1, "o": "bogus"}]}}), metadata=app)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_paging_a_listing_sees_writes_made_between_pages(client: Client, app: Any) -> None:
    """Pages of one listing are answered from a kept selection, dropped at the next write."""
    for i in range(5):
        client.cs.create(vm(f"p-{i}"), metadata=app, timeout=5)

    def page(start: int) -> tuple[list[str], int]:
        res = client.cs.list(msg(cloud_service_pb2.CloudServiceQuery, {"provider": "nutanix", "query": {
            "sort": [{"key": "reference.resource_id"}], "page": {"start": start, "limit": 2},
            "only": ["reference.resource_id"]}}), metadata=app, timeout=5)
        return [to_dict(r)["reference"]["resource_id"] for r in res.results], res.total_count

    assert page(1) == (["p-0", "p-1"], 5)
    assert page(3) == (["p-2", "p-3"], 5)
    client.cs.create(vm("p-25"), metadata=app, timeout=5)  # sorts between p-2 and p-3
    assert page(3) == (["p-2", "p-25"], 6)
    listed = client.cs.list(msg(cloud_service_pb2.CloudServiceQuery, {"query": {
        "filter": [{"k": "reference.resource_id", "v": "p-4"}], "only": ["cloud_service_id"]}}),
        metadata=app, timeout=5)
    client.cs.delete(cloud_service_pb2.CloudServiceRequest(cloud_service_id=listed.results[0].cloud_service_id),
                     metadata=app, timeout=5)
    assert page(5) == (["p-3"], 5)


def test_types_and_regions(client: Client, app: Any) -> None:
    t = client.cst.create(cloud_service_type_pb2.CreateCloudServiceTypeRequest(
        name="VirtualMachine", provider="nutanix", group="Compute", is_primary=True), metadata=app, timeout=5)
    assert t.cloud_service_type_key == "nutanix.Compute.VirtualMachine"
    assert t.cloud_service_type_id.startswith("cloud-svc-type-")
    err = rpc_error(client.cst.create, cloud_service_type_pb2.CreateCloudServiceTypeRequest(
        name="VirtualMachine", provider="nutanix", group="Compute"), metadata=app)
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert err.details().startswith("ERROR_SAVE_UNIQUE_VALUES")
    listed = client.cst.list(cloud_service_type_pb2.CloudServiceTypeQuery(provider="nutanix"), metadata=app, timeout=5)
    assert listed.total_count == 1
    r = client.region.create(region_pb2.CreateRegionRequest(name="PC 1", region_code="pc1", provider="nutanix"),
                             metadata=app, timeout=5)
    assert r.region_key == "nutanix.pc1"
    assert rpc_error(client.region.create, region_pb2.CreateRegionRequest(
        name="again", region_code="pc1", provider="nutanix"), metadata=app).code() == grpc.StatusCode.ALREADY_EXISTS
    assert rpc_error(client.region.create, region_pb2.CreateRegionRequest(name="x", provider="nutanix"),
                     metadata=app).code() == grpc.StatusCode.INVALID_ARGUMENT
    assert client.region.list(region_pb2.RegionQuery(), metadata=app, timeout=5).total_count == 1


def test_persistence_across_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "persist.sqlite")
    with CloudForetEmulator(db, make_config()) as first:
        c = Client(first)
        user_token = c.workspace_token(OWNER)
        app_token = first.app_token()
        created = c.cs.create(vm("u-persist", data={"k": "v"}), metadata=md(user_token), timeout=5)
        c.cost.create(cost_pb2.CreateCostRequest(cost=1.5, data_source_id="ds-nutanix", billed_date="2026-11-01",
                                                 project_id="project-nutanix"), metadata=md(app_token), timeout=5)
        req = notification_pb2.CreateNotificationRequest(resource_type="identity.User", resource_id=OWNER[0],
                                                         topic="t")
        c.notification.create(req, metadata=md(app_token), timeout=5)
        c.close()
    with CloudForetEmulator(db, make_config()) as second:
        c = Client(second)
        got = c.cs.get(cloud_service_pb2.CloudServiceRequest(cloud_service_id=created.cloud_service_id),
                       metadata=md(user_token), timeout=5)
        assert to_dict(got)["data"] == {"k": "v"}
        assert c.cost.list(cost_pb2.CostQuery(data_source_id="ds-nutanix"), metadata=md(c.domain_token()),
                           timeout=5).total_count == 1
        assert c.notification.list(notification_pb2.NotificationQuery(), metadata=md(user_token),
                                   timeout=5).total_count == 1  # the user's own inbox
        assert len(second.store.costs()) == 1 and len(second.store.notifications()) == 1
        c.close()


# -- cost, notification, secret, service account --------------------------------------

def test_cost_create_list_stat(client: Client, app: Any, emu: CloudForetEmulator) -> None:
    rows = [("vm-a", "2026-10-31", 1.0), ("vm-a", "2026-11-01", 2.0), ("vm-b", "2026-11-01", 3.0),
            ("vm-b", "2026-11-01", 3.0)]
    for resource, day, amount in rows:
        info = client.cost.create(cost_pb2.CreateCostRequest(
            cost=amount, usage_quantity=24, usage_unit=1.0, provider="nutanix", region_code="pc1",
            product="VM", resource=resource, data_source_id="ds-nutanix", billed_date=day,
            project_id="project-nutanix"), metadata=app, timeout=5)
        assert info.cost_id.startswith("cost-")
    assert len(emu.store.costs()) == 4  # identical rows are not deduped
    assert info.billed_month == "2026-11" and info.billed_year == "2026" and info.region_key == "nutanix.pc1"
    assert client.cost.get(cost_pb2.CostRequest(cost_id=info.cost_id), metadata=app, timeout=5).cost == 3.0

    domain = md(client.domain_token())
    november = client.cost.list(cost_pb2.CostQuery(billed_month="2026-11", data_source_id="ds-nutanix"),
                                metadata=domain, timeout=5)
    assert november.total_count == 3
    big = client.cost.list(msg(cost_pb2.CostQuery, {"data_source_id": "ds-nutanix",
                                                    "query": {"filter": [{"k": "cost", "v": 2, "o": "gte"}]}}),
                           metadata=domain, timeout=5)
    assert big.total_count == 3

    stat = client.cost.stat(msg(cost_pb2.CostStatQuery, {"query": {
        "distinct": "resource", "filter": [{"k": "billed_date", "v": "2026-11-01"}]}}), metadata=app, timeout=5)
    assert to_dict(stat) == {"results": ["vm-a", "vm-b"], "total_count": 2}
    err = rpc_error(client.cost.stat, cost_pb2.CostStatQuery(), metadata=app)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_cost_api_as_cost_analysis_2_0_108(client: Client, app: Any, emu: CloudForetEmulator) -> None:
    """spaceone-cost-analysis 2.0.108 CostService.create/list/delete and CostManager._change_filter_v_workspace_id
    (the same answers tests/conformance gets from the real service)."""
    def create(token, **fields):
        req = cost_pb2.CreateCostRequest(**{"cost": 1.0, "provider": "nutanix", "resource": "vm-z",
                                            "usage_type": "vcpu", "data_source_id": "ds-nutanix",
                                            "billed_date": "2026-11-02", "project_id": "project-nutanix", **fields})
        return client.cost.create(req, metadata=token, timeout=5)

    assert "key = project_id" in rpc_error(client.cost.create, cost_pb2.CreateCostRequest(
        cost=1.0, data_source_id="ds-nutanix", billed_date="2026-11-02"), metadata=app).details()
    err = rpc_error(client.cost.create, cost_pb2.CreateCostRequest(
        cost=1.0, data_source_id="ds-nutanix", billed_date="2026-11-02", project_id="project-nope"), metadata=app)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    domain = md(client.domain_token())
    assert rpc_error(client.cost.create, cost_pb2.CreateCostRequest(
        cost=1.0, data_source_id="ds-nutanix", billed_date="2026-11-02", project_id="project-nutanix"),
        metadata=domain).code() == grpc.StatusCode.PERMISSION_DENIED
    admin_in_workspace = md(client.workspace_token(ADMIN))  # a DOMAIN_ADMIN's workspace grant: WORKSPACE_OWNER
    made = create(admin_in_workspace)
    only_ds_in_filter = msg(cost_pb2.CostQuery, {"query": {"filter": [{"k": "data_source_id", "v": "ds-nutanix"}]}})
    assert "key = data_source_id" in rpc_error(client.cost.list, only_ds_in_filter, metadata=domain).details()
    mine = cost_pb2.CostQuery(data_source_id="ds-nutanix", resource="vm-z")
    assert client.cost.list(mine, metadata=app, timeout=5).total_count == 0  # workspace scope: no account mapping
    assert [c.cost_id for c in client.cost.list(mine, metadata=domain, timeout=5).results] == [made.cost_id]
    client.cost.delete(cost_pb2.CostRequest(cost_id=made.cost_id), metadata=admin_in_workspace, timeout=5)
    assert client.cost.list(mine, metadata=domain, timeout=5).total_count == 0

    bad_ds = rpc_error(client.cost.create, cost_pb2.CreateCostRequest(
        cost=1, data_source_id="ds-unknown", billed_date="2026-11-01", project_id="project-nutanix"), metadata=app)
    assert bad_ds.code() == grpc.StatusCode.NOT_FOUND
    for day in ["", "2026-13-01", "2026-11-1"]:
        bad = rpc_error(client.cost.create, cost_pb2.CreateCostRequest(
            cost=1, data_source_id="ds-nutanix", billed_date=day, project_id="project-nutanix"), metadata=app)
        assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT, day


def test_cost_create_unsupported(tmp_path: Path) -> None:
    with CloudForetEmulator(str(tmp_path / "c.sqlite"), make_config(cost_create_unsupported=True)) as emulator:
        c = Client(emulator)
        err = rpc_error(c.cost.create, cost_pb2.CreateCostRequest(
            cost=1, data_source_id="ds-nutanix", billed_date="2026-11-01"), metadata=md(emulator.app_token()))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert err.details().startswith("ERROR_NOT_SUPPORT_API")
        assert emulator.store.costs() == []
        c.close()


def test_notifications(client: Client, app: Any) -> None:
    """Apps may create; only a user lists, and only their own inbox (notification at cb8ef5a:
    Notification.list has role_types ["USER"], which python-core refuses to APP owners)."""
    for run_id, ntype in [("run-1", "ERROR"), ("run-2", "INFO")]:
        client.notification.create(msg(notification_pb2.CreateNotificationRequest, {
            "resource_type": "identity.User", "resource_id": OWNER[0], "topic": "nutanix.collector",
            "message": {"title": f"{run_id} done", "run_id": run_id, "tags": [{"key": "k", "value": "v"}]},
            "notification_type": ntype, "notification_level": "LV1"}), metadata=app, timeout=5)
    err = rpc_error(client.notification.create, notification_pb2.CreateNotificationRequest(
        resource_type="inventory.CloudService"), metadata=app)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = rpc_error(client.notification.list, notification_pb2.NotificationQuery(), metadata=app)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    app = md(client.workspace_token(OWNER))  # from here on: the user whose inbox it is
    assert client.notification.list(notification_pb2.NotificationQuery(),
                                    metadata=md(client.workspace_token(MEMBER)), timeout=5).total_count == 0
    found = client.notification.list(msg(notification_pb2.NotificationQuery, {
        "query": {"filter": [{"k": "message.run_id", "v": "run-1"}]}}), metadata=app, timeout=5)
    assert found.total_count == 1
    note = to_dict(found.results[0])
    assert note["notification_type"] == "ERROR" and note["message"]["title"] == "run-1 done"
    assert note["notification_id"].startswith("notification-")
    by_type = client.notification.list(notification_pb2.NotificationQuery(
        notification_type=notification_pb2.NotificationQuery.INFO), metadata=app, timeout=5)
    assert by_type.total_count == 1
    assert client.notification.list(msg(notification_pb2.NotificationQuery, {
        "query": {"filter": [{"k": "message.tags.key", "v": "k"}]}}), metadata=app, timeout=5).total_count == 2


def test_secret_get_data(client: Client, app: Any) -> None:
    data = client.secret.get_data(secret_pb2.GetSecretDataRequest(secret_id="secret-pc1", domain_id="domain-nutanix"),
                                  metadata=app, timeout=5)
    assert data.encrypted is False
    assert to_dict(data)["data"] == {"nutanix_host": "pc1.local", "nutanix_password": "s3cret"}
    err = rpc_error(client.secret.get_data, secret_pb2.GetSecretDataRequest(secret_id="secret-x",
                                                                          domain_id="domain-nutanix"), metadata=app)
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_service_accounts(client: Client, app: Any) -> None:
    nutanix = client.sa.list(service_account_pb2.ServiceAccountSearchQuery(provider="nutanix"), metadata=app,
                             timeout=5)
    assert nutanix.total_count == 1
    assert nutanix.results[0].secret_id == "secret-pc1"
    assert to_dict(nutanix.results[0])["data"] == {"nutanix_host": "pc1.local"}
    everything = client.sa.list(msg(service_account_pb2.ServiceAccountSearchQuery, {
        "query": {"sort": [{"key": "name"}]}}), metadata=app, timeout=5)
    assert [r.name for r in everything.results] == ["AWS", "PC 1"]
    got = client.sa.get(service_account_pb2.ServiceAccountRequest(service_account_id="sa-aws"), metadata=app,
                        timeout=5)
    assert got.provider == "aws"


def test_latency(tmp_path: Path) -> None:
    with CloudForetEmulator(str(tmp_path / "l.sqlite"), make_config(latency_ms=80)) as emulator:
        waits: list[float] = []
        emulator.backend.sleep = waits.append  # the emulator's waits, recorded instead of slept
        c = Client(emulator)
        c.cs.list(cloud_service_pb2.CloudServiceQuery(), metadata=md(emulator.app_token()), timeout=5)
        assert waits == [0.08]  # each call answered 80 ms late
        c.close()


# -- query engine (unit) --------------------------------------------------------------------

def test_query_engine_semantics() -> None:
    docs = [
        {"id": "1", "n": 5, "s": "Alpha", "l": ["a", "b"], "t": [{"key": "k1"}], "at": "2026-01-02T00:00:00.000Z"},
        {"id": "2", "n": 1.5, "s": "beta", "l": [], "at": "2026-01-01T00:00:00.000Z"},
        {"id": "3", "s": None},
    ]

    def ids(filters: list[dict], **q: Any) -> list[str]:
        results, _ = query.run(docs, query.parse({"filter": filters, **q}), "id")
        return [d["id"] for d in results]

    assert ids([{"k": "l", "v": "b"}]) == ["1"]
    assert ids([{"k": "t.key", "v": ["k1", "x"], "o": "in"}]) == ["1"]
    assert ids([{"k": "n", "v": 2, "o": "lt"}]) == ["2"]
    assert ids([{"k": "s", "v": "ALP", "o": "contain"}]) == ["1"]
    assert ids([{"k": "n", "v": False, "o": "exists"}]) == ["3"]
    assert ids([{"k": "at", "v": "2026-01-01T12:00:00Z", "o": "datetime_gt"}]) == ["1"]
    assert ids([], sort=[{"key": "n", "desc": True}]) == ["1", "2", "3"]
    assert ids([], sort=[{"key": "n"}], page={"start": 2, "limit": 1}) == ["2"]
    values, total = query.distinct(docs, query.parse({"distinct": "l"}))
    assert (values, total) == (["a", "b"], 2)


# -- CLI ----------------------------------------------------------------------------------------

def test_cli_ready_file_and_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready" / "cf.json"
    cfg = tmp_path / "cf.yaml"
    cfg.write_text("domain_id: domain-cli\ncost_data_sources: [ds-a]\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulators.cloudforet", "--db", str(tmp_path / "cli.sqlite"), "--port", "0",
         "--config", str(cfg), "--cost-create-unsupported", "--ready-file", str(ready)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        info = json.loads(line)
        assert json.loads(ready.read_text()) == info
        assert info["domain_id"] == "domain-cli" and info["workspace_id"] == "workspace-default"
        token = info["app_tokens"]["app-nutanix-collector"]
        with grpc.insecure_channel(info["endpoint"]) as channel:
            stub = cost_pb2_grpc.CostStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                stub.create(cost_pb2.CreateCostRequest(data_source_id="ds-a", billed_date="2026-11-01"),
                            metadata=md(token), timeout=5)
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_string_equalities_by_set_answer_as_the_general_matcher() -> None:
    docs = [{"s": "a", "l": ["a", "b"], "n": 1, "b": True, "d": {"s": "a"}, "ld": [{"s": "b"}, {"s": 2}]},
            {"s": "b", "l": [], "n": "1", "b": "True", "d": {"s": ["a", "c"]}, "ld": []},
            {"s": None, "l": [["a"]], "d": {}}, {}]
    values = ["a", "b", "1", "True", 1, True, None, ["a"], ["a", "b"], ["x"], [], ["a", 1]]
    for key in ("s", "l", "n", "b", "d.s", "ld.s", "missing"):
        for op in ("eq", "in", "not", "not_in"):
            for value in values:
                cond = query.Condition(key=key, value=value, op=op)
                assert [query.predicate(cond)(d) for d in docs] == [query.matches(d, cond) for d in docs], cond
