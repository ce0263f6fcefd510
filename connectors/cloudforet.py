"""CloudForet over gRPC through the real ``spaceone-api`` stubs.

One channel per endpoint per worker process (gRPC multiplexes many calls in
flight on it), a token provider that refreshes before expiry, and error
mapping to :class:`CloudForetError` with a transient flag.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import grpc
from google.protobuf import json_format, struct_pb2
from spaceone.api.core.v2 import query_pb2
from spaceone.api.cost_analysis.v1 import cost_pb2, cost_pb2_grpc
from spaceone.api.identity.v2 import service_account_pb2, service_account_pb2_grpc, token_pb2, token_pb2_grpc
from spaceone.api.inventory.v1 import (cloud_service_pb2, cloud_service_pb2_grpc, cloud_service_type_pb2,
                                       cloud_service_type_pb2_grpc, region_pb2, region_pb2_grpc)
from spaceone.api.notification.v1 import notification_pb2, notification_pb2_grpc
from spaceone.api.secret.v1 import secret_pb2, secret_pb2_grpc

from connectors.errors import CloudForetError
from connectors.retry import Deadline, RetryPolicy

log = logging.getLogger(__name__)

# CANCELLED: we never cancel a call ourselves, so it is the server going away (a restart).
TRANSIENT_CODES = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL", "UNKNOWN",
                   "CANCELLED"}
REFRESH_MARGIN_S = 300  # refresh a token five minutes before it expires
DEFAULT_ACCESS_TTL_S = 1800
LIST_PAGES_IN_FLIGHT = 4  # the pages after the first of one listing, asked for at once


@dataclass(frozen=True)
class CloudForetAuth:
    """Either an app token (client secret) or user credentials, by reference.

    Holds the *names* of environment variables, never the secrets, so it can be
    pickled into a pipeline safely.
    """

    domain_id: str
    workspace_id: str
    token_env: str | None = None
    user_id: str | None = None
    password_env: str | None = None


@dataclass(frozen=True)
class CloudForetEndpoint:
    address: str
    tls: bool | None = None  # None: TLS unless the address is loopback
    ca_bundle: str | None = None

    @property
    def use_tls(self) -> bool:
        if self.tls is not None:
            return self.tls
        host = self.address.rsplit(":", 1)[0].strip("[]")
        return host not in ("127.0.0.1", "localhost", "::1")


_channels: dict[tuple, grpc.Channel] = {}
_channels_lock = threading.Lock()


def shared_channel(endpoint: CloudForetEndpoint) -> grpc.Channel:
    """One channel per endpoint per process, reused by every DoFn instance."""
    key = (endpoint.address, endpoint.use_tls, endpoint.ca_bundle, os.getpid())
    with _channels_lock:
        channel = _channels.get(key)
        if channel is None:
            options = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                       ("grpc.keepalive_time_ms", 60_000)]
            if endpoint.use_tls:
                root = open(endpoint.ca_bundle, "rb").read() if endpoint.ca_bundle else None
                channel = grpc.secure_channel(endpoint.address, grpc.ssl_channel_credentials(root), options)
            else:
                channel = grpc.insecure_channel(endpoint.address, options)
            _channels[key] = channel
        return channel


def to_struct(value: dict | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if value:
        s.update(value)
    return s


def to_dict(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def make_query(filters: list[tuple[str, Any, str]] = (), page: tuple[int, int] | None = None,
               only: list[str] | None = None, count_only: bool = False) -> query_pb2.Query:
    q = query_pb2.Query()
    for key, value, op in filters:
        f = q.filter.add()
        f.k, f.o = key, op
        f.v.CopyFrom(json_format.ParseDict(value, struct_pb2.Value()))
    if page:
        q.page.start, q.page.limit = page
    if only:
        q.only.extend(only)
    q.count_only = count_only
    return q


def _jwt_exp(token: str) -> float | None:
    """Reads ``exp`` from a JWT payload without verifying it (the server does)."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        exp = json.loads(base64.urlsafe_b64decode(payload)).get("exp")
        return float(exp) if exp else None
    except Exception:
        return None


class TokenProvider:
    """Gives a valid token; re-issues or re-grants shortly before expiry."""

    def __init__(self, channel: grpc.Channel, auth: CloudForetAuth, timeout_s: float = 30.0,
                 endpoint: CloudForetEndpoint | None = None):
        self.auth = auth
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._token_stub = token_pb2_grpc.TokenStub(channel)
        self._lock = threading.Lock()
        self._access: str | None = None
        self._access_exp = 0.0
        self._refresh: str | None = None
        self._refresh_exp = 0.0

    def token(self) -> str:
        with self._lock:
            if self._access and time.time() < self._access_exp - REFRESH_MARGIN_S:
                return self._access
            if self.auth.token_env:
                self._load_app_token()
            else:
                self._grant_user_token()
            return self._access  # type: ignore[return-value]

    def invalidate(self) -> None:
        """Called after UNAUTHENTICATED: the next call gets a fresh token."""
        with self._lock:
            self._access_exp = 0.0

    def _load_app_token(self) -> None:
        value = os.environ.get(self.auth.token_env or "", "")
        if not value:
            raise CloudForetError(
                f"CloudForet app token: environment variable {self.auth.token_env} is empty or unset. "
                "Export the app's client secret in it.", code="UNAUTHENTICATED")
        self._access = value.strip()
        # An app token is not refreshable: re-read the variable when it nears expiry.
        self._access_exp = _jwt_exp(self._access) or time.time() + 365 * 86400

    def _grant_user_token(self) -> None:
        had_refresh = self._refresh is not None
        try:
            self._grant_once()
        except CloudForetError as err:
            if err.code != "UNAUTHENTICATED" or not had_refresh:
                raise
            # The refresh token itself was refused (expired, revoked): log in again.
            self._grant_once()

    def _grant_once(self) -> None:
        now = time.time()
        try:
            if not self._refresh or now > self._refresh_exp - REFRESH_MARGIN_S:
                password = os.environ.get(self.auth.password_env or "", "")
                if not password:
                    raise CloudForetError(
                        f"CloudForet login: environment variable {self.auth.password_env} is empty or unset.",
                        code="UNAUTHENTICATED")
                creds = to_struct({"user_id": self.auth.user_id, "password": password})
                issued = self._token_stub.issue(
                    token_pb2.IssueTokenRequest(credentials=creds, auth_type="LOCAL",
                                                domain_id=self.auth.domain_id), timeout=self.timeout_s)
                self._refresh = issued.refresh_token
                self._refresh_exp = _jwt_exp(issued.refresh_token) or now + 10800
            granted = self._token_stub.grant(
                token_pb2.GrantTokenRequest(grant_type="REFRESH_TOKEN", token=self._refresh, scope="WORKSPACE",
                                            workspace_id=self.auth.workspace_id, domain_id=self.auth.domain_id),
                timeout=self.timeout_s)
        except grpc.RpcError as exc:
            self._refresh = None
            raise tls_hint(map_rpc_error(exc, f"CloudForet login as {self.auth.user_id}"), self.endpoint) from None
        self._access = granted.access_token
        self._access_exp = _jwt_exp(granted.access_token) or now + DEFAULT_ACCESS_TTL_S


def map_rpc_error(exc: grpc.RpcError, what: str) -> CloudForetError:
    code = exc.code().name if hasattr(exc, "code") and exc.code() else "UNKNOWN"
    details = (exc.details() if hasattr(exc, "details") else str(exc)) or ""
    details = details.replace("\n", " ")[:500]
    hint = ""
    if code == "PERMISSION_DENIED":
        hint = " The token's role lacks this permission: the collector needs a WORKSPACE_OWNER token " \
               "(WORKSPACE_MEMBER is enough for cloud services only)."
    elif code == "UNAUTHENTICATED":
        hint = " Check the CloudForet token or user credentials."
    return CloudForetError(f"{what}: {code}: {details}.{hint}", code=code, transient=code in TRANSIENT_CODES)


def tls_hint(err: CloudForetError, endpoint: CloudForetEndpoint | None) -> CloudForetError:
    """gRPC reports a refused certificate as a bare UNAVAILABLE whose text is the last address it tried
    (often an unrelated "connection refused" on ::1): say what to check when TLS is in use."""
    if err.code != "UNAVAILABLE" or endpoint is None or not endpoint.use_tls:
        return err
    if endpoint.ca_bundle:
        hint = (f" The endpoint is reached over TLS: check that cloudforet.ca_bundle ({endpoint.ca_bundle}) "
                "is the CA that signed the server's certificate.")
    else:
        hint = (" The endpoint is reached over TLS, trusting the system CAs: if the server's certificate is "
                "signed by a private CA, set cloudforet.ca_bundle to it (tls: false only for a plaintext endpoint).")
    return CloudForetError(f"{err}{hint}", code=err.code, transient=err.transient)


class CloudForetClient:
    """Typed access to the services the collector uses, with auth attached."""

    def __init__(self, endpoint: CloudForetEndpoint, auth: CloudForetAuth, timeout_s: float = 30.0,
                 retry: RetryPolicy | None = None):
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.retries_made = 0
        channel = shared_channel(endpoint)
        self.tokens = TokenProvider(channel, auth, timeout_s, endpoint)
        self.cloud_service = cloud_service_pb2_grpc.CloudServiceStub(channel)
        self.cloud_service_type = cloud_service_type_pb2_grpc.CloudServiceTypeStub(channel)
        self.region = region_pb2_grpc.RegionStub(channel)
        self.cost = cost_pb2_grpc.CostStub(channel)
        self.notification = notification_pb2_grpc.NotificationStub(channel)
        self.secret = secret_pb2_grpc.SecretStub(channel)
        self.service_account = service_account_pb2_grpc.ServiceAccountStub(channel)
        self.auth = auth

    def _metadata(self) -> tuple:
        return (("token", self.tokens.token()),)

    def call(self, method: Callable, request, what: str, timeout_s: float | None = None):
        """A unary call, retried with backoff while the failure is transient;
        on UNAUTHENTICATED the token is renewed once. Use it for reads and for
        writes that are idempotent: the sinks retry their writes themselves,
        looking the record up again first."""
        deadline = Deadline(self.retry.max_total_s)
        renewed = False
        attempt = 0
        while True:
            attempt += 1
            try:
                return method(request, metadata=self._metadata(), timeout=timeout_s or self.timeout_s)
            except grpc.RpcError as exc:
                err = map_rpc_error(exc, what)
            except CloudForetError as exc:  # the login itself failed (it may be transient too)
                err = exc
            if err.code == "UNAUTHENTICATED" and not renewed:
                self.tokens.invalidate()
                renewed = True
                continue
            delay = self.retry.delay(attempt)
            if not err.transient or attempt >= self.retry.max_attempts or not deadline.allows(delay):
                raise tls_hint(err, self.endpoint)
            self.retries_made += 1
            log.debug("retrying %s in %.2fs after %s", what, delay, err.code)
            time.sleep(delay)

    def future(self, method, request, timeout_s: float | None = None) -> grpc.Future:
        """Starts a unary call without waiting: many in flight on one channel."""
        return method.future(request, metadata=self._metadata(), timeout=timeout_s or self.timeout_s)

    # -- convenience wrappers used by the pipeline ------------------------
    def secret_data(self, secret_id: str) -> dict:
        info = self.call(self.secret.get_data,
                         secret_pb2.GetSecretDataRequest(secret_id=secret_id, domain_id=self.auth.domain_id),
                         f"Secret.get_data({secret_id})")
        return to_dict(info.data) if info.HasField("data") else {}

    def list_service_accounts(self, provider: str) -> list[dict]:
        info = self.call(self.service_account.list,
                         service_account_pb2.ServiceAccountSearchQuery(provider=provider),
                         "ServiceAccount.list")
        return [to_dict(r) for r in info.results]

    def list_cloud_services(self, filters: list[tuple[str, Any, str]], only: list[str] | None = None,
                            limit: int = 1000, decode: Callable | None = to_dict) -> list:
        """All matches of ``filters``, following pages; ``decode=None`` keeps the messages."""
        return self._list_all(self.cloud_service.list, cloud_service_pb2.CloudServiceQuery, "CloudService.list",
                              filters, only, limit, decode)

    def count_cloud_services(self, filters: list[tuple[str, Any, str]]) -> int:
        """How many match, without sending any of them (``count_only``)."""
        info = self.call(self.cloud_service.list,
                         cloud_service_pb2.CloudServiceQuery(query=make_query(filters, count_only=True)),
                         "CloudService.list")
        return int(info.total_count)

    def list_costs(self, filters: list[tuple[str, Any, str]], only: list[str] | None = None,
                   limit: int = 1000, decode: Callable | None = to_dict) -> list:
        return self._list_all(self.cost.list, cost_pb2.CostQuery, "Cost.list", filters, only, limit, decode)

    def _list_all(self, method: Callable, query_type: Callable, what: str, filters: list, only: list[str] | None,
                  limit: int, decode: Callable | None = to_dict) -> list:
        """The first page says how many match; the other pages are then asked for at once
        (a reconciliation lists every cloud service of an account: 15 pages at 15k)."""
        def page(start: int):
            return self.call(method, query_type(query=make_query(filters, page=(start, limit), only=only)), what)

        decode = decode or (lambda message: message)
        first = page(1)
        results = [decode(r) for r in first.results]
        if len(first.results) < limit or len(results) >= first.total_count:
            return results
        starts = range(1 + limit, first.total_count + 1, limit)
        with ThreadPoolExecutor(min(LIST_PAGES_IN_FLIGHT, len(starts)), thread_name_prefix="cf-list") as pool:
            for info in pool.map(page, starts):
                results.extend(decode(r) for r in info.results)
        return results

    def create_notification(self, resource_type: str, resource_id: str, topic: str, message: dict,
                            notification_type: str, level: str = "LV1") -> None:
        req = notification_pb2.CreateNotificationRequest(
            resource_type=resource_type, resource_id=resource_id, topic=topic, message=to_struct(message),
            notification_type=notification_type, notification_level=level)
        self.call(self.notification.create, req, "Notification.create")

    def list_notifications(self, topic: str) -> list[dict]:
        info = self.call(self.notification.list, notification_pb2.NotificationQuery(topic=topic),
                         "Notification.list")
        return [to_dict(r) for r in info.results]

    def ensure_cloud_service_types(self, types: list[dict]) -> int:
        """Creates the types that are missing; returns how many were created."""
        created = 0
        for t in types:
            existing = self.call(self.cloud_service_type.list, cloud_service_type_pb2.CloudServiceTypeQuery(
                provider=t["provider"], group=t["group"], name=t["name"]), "CloudServiceType.list")
            if existing.total_count:
                continue
            req = cloud_service_type_pb2.CreateCloudServiceTypeRequest(
                name=t["name"], provider=t["provider"], group=t["group"], service_code=t.get("service_code", ""),
                is_primary=t.get("is_primary", False), is_major=t.get("is_major", False),
                resource_type="inventory.CloudService", metadata=to_struct(t.get("metadata")),
                tags=to_struct(t.get("tags")))
            try:
                self.call(self.cloud_service_type.create, req, "CloudServiceType.create")
                created += 1
            except CloudForetError as err:
                if err.code != "ALREADY_EXISTS":  # a concurrent worker made it: fine
                    raise
        return created

    def ensure_regions(self, provider: str, regions: dict[str, str]) -> int:
        """``regions`` maps region_code -> name; creates the missing ones."""
        if not regions:
            return 0
        query = make_query([("region_code", sorted(regions), "in"), ("provider", provider, "eq")],
                           page=(1, len(regions)))
        existing = self.call(self.region.list, region_pb2.RegionQuery(query=query), "Region.list")
        have = {r.region_code for r in existing.results}
        created = 0
        for code, name in sorted(regions.items()):
            if code in have:
                continue
            try:
                self.call(self.region.create, region_pb2.CreateRegionRequest(
                    name=name, region_code=code, provider=provider), "Region.create")
                created += 1
            except CloudForetError as err:
                if err.code != "ALREADY_EXISTS":
                    raise
        return created
