"""CloudForet over gRPC through the real ``spaceone-api`` stubs.

One channel per endpoint per worker process (gRPC multiplexes many calls in
flight on it), a token provider that refreshes before expiry, and error
mapping to :class:`CloudForetError` with a transient flag.
"""
from __future__ import annotations

import base64
import functools
import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, cast

import grpc
from google.protobuf import json_format, struct_pb2
from spaceone.api.core.v2 import query_pb2
from spaceone.api.cost_analysis.v1 import cost_pb2, cost_pb2_grpc
from spaceone.api.cost_analysis.v1 import data_source_pb2_grpc as cost_data_source_pb2_grpc
from spaceone.api.identity.v2 import (
    endpoint_pb2,
    endpoint_pb2_grpc,
    project_pb2,
    project_pb2_grpc,
    provider_pb2,
    provider_pb2_grpc,
    schema_pb2,
    schema_pb2_grpc,
    service_account_pb2,
    service_account_pb2_grpc,
    token_pb2,
    token_pb2_grpc,
)
from spaceone.api.inventory.v1 import (
    cloud_service_pb2,
    cloud_service_pb2_grpc,
    cloud_service_type_pb2,
    cloud_service_type_pb2_grpc,
    collector_pb2_grpc,
    metric_pb2,
    metric_pb2_grpc,
    namespace_pb2,
    namespace_pb2_grpc,
    region_pb2,
    region_pb2_grpc,
)
from spaceone.api.monitoring.v1 import data_source_pb2_grpc as monitoring_data_source_pb2_grpc
from spaceone.api.notification.v1 import notification_pb2, notification_pb2_grpc
from spaceone.api.repository.v1 import plugin_pb2_grpc
from spaceone.api.secret.v1 import secret_pb2, secret_pb2_grpc

from connectors.clock import SYSTEM_CLOCK, Clock
from connectors.errors import CloudForetError, is_transient
from connectors.retry import RetryPolicy, call_with_retries

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
    scope: str = "WORKSPACE"  # a user's grant: WORKSPACE (workspace_id) or DOMAIN (a DOMAIN_ADMIN's domain-wide reads)


@dataclass(frozen=True)
class CloudForetEndpoint:
    """One service's address. ``tls`` None: TLS unless the address is loopback
    (the scheme-less ``host:port`` form); ``grpc://`` and ``grpc+ssl://`` say it."""

    address: str
    tls: bool | None = None
    ca_bundle: str | None = None

    @classmethod
    def parse(cls, value: str, ca_bundle: str | None = None, tls: bool | None = None) -> "CloudForetEndpoint":
        """``grpc://host:port`` (plaintext), ``grpc+ssl://host:port`` (TLS) or ``host:port``."""
        for scheme, scheme_tls in (("grpc+ssl://", True), ("grpc://", False)):
            if value.startswith(scheme):
                return cls(value[len(scheme):].rstrip("/"), scheme_tls if tls is None else tls, ca_bundle)
        return cls(value, tls, ca_bundle)

    @property
    def is_loopback(self) -> bool:
        host = self.address.rsplit(":", 1)[0].strip("[]")
        return host in ("127.0.0.1", "localhost", "::1")

    @property
    def use_tls(self) -> bool:
        if self.tls is not None:
            return self.tls
        return not self.is_loopback

    @property
    def url(self) -> str:
        return f"{'grpc+ssl' if self.use_tls else 'grpc'}://{self.address}"


# The services the collector may call, as config keys; identity's Endpoint.list
# names them with '-' or '_' (``cost-analysis``): both map here.
SERVICES = ("identity", "inventory", "cost_analysis", "monitoring", "notification", "secret", "repository")


@dataclass(frozen=True)
class CloudForetEndpoints:
    """Where each CloudForet service is: a real deployment serves each on its own
    address (``cloudforet.endpoints``); ``default`` is "every service here"
    (``cloudforet.endpoint``, the emulator's all-in-one port)."""

    services: tuple[tuple[str, CloudForetEndpoint], ...] = ()
    default: CloudForetEndpoint | None = None

    @classmethod
    def single(cls, endpoint: CloudForetEndpoint) -> "CloudForetEndpoints":
        return cls((), endpoint)

    def get(self, service: str) -> CloudForetEndpoint | None:
        return dict(self.services).get(service) or self.default

    def __getitem__(self, service: str) -> CloudForetEndpoint:
        endpoint = self.get(service)
        if endpoint is None:
            raise CloudForetError(
                f"no endpoint for the CloudForet {service} service: set cloudforet.endpoints.{service} "
                "(grpc://host:port or grpc+ssl://host:port), or cloudforet.endpoint for one address serving "
                "every service", code="FAILED_PRECONDITION")
        return endpoint

    def missing(self, needed: Iterable[str]) -> list[str]:
        return [s for s in needed if self.get(s) is None]

    def with_services(self, found: dict[str, CloudForetEndpoint]) -> "CloudForetEndpoints":
        """These endpoints, plus ``found`` for the services they do not name."""
        have = dict(self.services)
        merged = {**{k: v for k, v in found.items() if self.get(k) is None}, **have}
        return CloudForetEndpoints(tuple(sorted(merged.items())), self.default)

    def describe(self) -> str:
        if not self.services and self.default:
            return self.default.address
        return ", ".join(f"{s}={e.address}" for s, e in self.services) + (
            f", others={self.default.address}" if self.default else "")


def as_endpoints(endpoints: "CloudForetEndpoints | CloudForetEndpoint") -> CloudForetEndpoints:
    return endpoints if isinstance(endpoints, CloudForetEndpoints) else CloudForetEndpoints.single(endpoints)


def service_key(name: str) -> str:
    """identity's Endpoint.list names services freely ("cost-analysis"): the config key."""
    return name.strip().lower().replace("-", "_")


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
                root = None
                if endpoint.ca_bundle:
                    with open(endpoint.ca_bundle, "rb") as fh:
                        root = fh.read()
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


def make_query(filters: Iterable[tuple[str, Any, str]] = (), page: tuple[int, int] | None = None,
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


def jwt_claims(token: str) -> dict:
    """A JWT's payload, not verified (the server does): e.g. ``rol`` (role type), ``wid``
    (workspace), ``own`` (USER or APP), ``exp``, as CloudForet's identity writes them."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        return claims if isinstance(claims, dict) else {}
    except Exception:
        return {}


def _jwt_exp(token: str) -> float | None:
    """Reads ``exp`` from a JWT payload without verifying it (the server does)."""
    try:
        exp = jwt_claims(token).get("exp")
        return float(exp) if exp else None
    except (TypeError, ValueError):
        return None


class TokenProvider:
    """Gives a valid token; re-issues or re-grants shortly before expiry.

    One per process per identity endpoint and credential (:func:`shared_tokens`):
    every client of the process shares its login and its refreshes."""

    def __init__(self, endpoints: "CloudForetEndpoints | CloudForetEndpoint", auth: CloudForetAuth,
                 timeout_s: float = 30.0, clock: Clock = SYSTEM_CLOCK):
        self.auth = auth
        self.clock = clock  # the wall clock token expiries are read against
        self.endpoints = as_endpoints(endpoints)
        self.timeout_s = timeout_s
        # opened on the first login: an app token needs no identity call
        self._token_stub: token_pb2_grpc.TokenStub | None = None
        self._lock = threading.Lock()
        self._access: str | None = None
        self._access_exp = 0.0
        self._refresh: str | None = None
        self._refresh_exp = 0.0
        self.logins = 0  # Token.issue calls made (the tests count them)
        self.grants = 0

    @property
    def identity(self) -> CloudForetEndpoint:
        return self.endpoints["identity"]

    def token(self) -> str:
        with self._lock:
            if self.auth.token_env:
                return self._load_app_token()
            if self._access and self.clock.time() < self._access_exp - REFRESH_MARGIN_S:
                return self._access
            self._grant_user_token()
            return self._access  # type: ignore[return-value]

    def invalidate(self, token: str | None = None) -> None:
        """Called after UNAUTHENTICATED: the next call gets a fresh token (once for
        all the clients that were refused the same ``token``)."""
        with self._lock:
            if token is None or token == self._access:
                self._access_exp = 0.0

    def app_token_expiry(self) -> float | None:
        """When the app's client secret expires (epoch seconds); None for user logins
        or a secret without ``exp``. Apps have no refresh token: it must be renewed by hand."""
        if not self.auth.token_env:
            return None
        return _jwt_exp(os.environ.get(self.auth.token_env, "").strip())

    def _load_app_token(self) -> str:
        """An app token is not refreshable: it is what the variable holds now
        (replaced there when the app's secret is renewed)."""
        value = os.environ.get(self.auth.token_env or "", "").strip()
        if not value:
            raise CloudForetError(
                f"CloudForet app token: environment variable {self.auth.token_env} is empty or unset. "
                "Export the app's client secret in it.", code="UNAUTHENTICATED")
        self._access = value
        return value

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
        now = self.clock.time()
        if self._token_stub is None:
            self._token_stub = token_pb2_grpc.TokenStub(shared_channel(self.identity))
        try:
            if not self._refresh or now > self._refresh_exp - REFRESH_MARGIN_S:
                password = os.environ.get(self.auth.password_env or "", "")
                if not password:
                    raise CloudForetError(
                        f"CloudForet login: environment variable {self.auth.password_env} is empty or unset.",
                        code="UNAUTHENTICATED")
                creds = to_struct({"user_id": self.auth.user_id, "password": password})
                self.logins += 1
                issued = self._token_stub.issue(
                    token_pb2.IssueTokenRequest(credentials=creds, auth_type="LOCAL",
                                                domain_id=self.auth.domain_id), timeout=self.timeout_s)
                self._refresh = issued.refresh_token
                self._refresh_exp = _jwt_exp(issued.refresh_token) or now + 10800
            self.grants += 1
            grant = token_pb2.GrantTokenRequest(grant_type="REFRESH_TOKEN", token=self._refresh,
                                                scope=self.auth.scope, domain_id=self.auth.domain_id)
            if self.auth.scope == "WORKSPACE":
                grant.workspace_id = self.auth.workspace_id
            granted = self._token_stub.grant(grant, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            self._refresh = None
            raise tls_hint(map_rpc_error(exc, f"CloudForet login as {self.auth.user_id}"), self.identity) from None
        self._access = granted.access_token
        self._access_exp = _jwt_exp(granted.access_token) or now + DEFAULT_ACCESS_TTL_S


_token_providers: dict[tuple, TokenProvider] = {}
_token_providers_lock = threading.Lock()


def shared_tokens(endpoints: "CloudForetEndpoints | CloudForetEndpoint", auth: CloudForetAuth,
                  timeout_s: float = 30.0) -> TokenProvider:
    """The process's token provider for this identity endpoint and credential."""
    endpoints = as_endpoints(endpoints)
    identity = None if auth.token_env else endpoints.get("identity")
    key = (identity, auth, os.getpid())
    with _token_providers_lock:
        provider = _token_providers.get(key)
        if provider is None:
            provider = _token_providers[key] = TokenProvider(endpoints, auth, timeout_s)
        return provider


def map_rpc_error(exc: grpc.RpcError, what: str, endpoint: CloudForetEndpoint | None = None) -> CloudForetError:
    code = exc.code().name if hasattr(exc, "code") and exc.code() else "UNKNOWN"
    details = (exc.details() if hasattr(exc, "details") else str(exc)) or ""
    details = details.replace("\n", " ")[:500]
    hint = ""
    if code == "PERMISSION_DENIED":
        hint = " The token's role lacks this permission: the collector needs a WORKSPACE_OWNER token " \
               "(WORKSPACE_MEMBER is enough for cloud services only)."
    elif code == "UNAUTHENTICATED":
        hint = " Check the CloudForet token or user credentials."
    elif code == "UNIMPLEMENTED":
        service = service_of(what)
        where = f" at {endpoint.address}" if endpoint else ""
        hint = (f" The address given for the {service} service{where} does not serve it: each CloudForet "
                f"service has an address of its own; set cloudforet.endpoints.{service}.")
    return CloudForetError(f"{what}: {code}: {details}.{hint}", code=code, transient=code in TRANSIENT_CODES)


def tls_hint(err: CloudForetError, endpoint: CloudForetEndpoint | None) -> CloudForetError:
    """gRPC reports a refused certificate as a bare UNAVAILABLE whose text is the last address it tried
    (often an unrelated "connection refused" on ::1): say what to check when TLS is in use."""
    if err.code != "UNAVAILABLE" or endpoint is None or not endpoint.use_tls:
        return err
    if endpoint.ca_bundle:
        hint = (f" {endpoint.address} is reached over TLS: check that its CA bundle ({endpoint.ca_bundle}) "
                "is the CA that signed the server's certificate.")
    else:
        hint = (f" {endpoint.address} is reached over TLS, trusting the system CAs: if the server's certificate "
                "is signed by a private CA, set cloudforet.ca_bundle to it (grpc:// only for a plaintext endpoint).")
    return CloudForetError(f"{err}{hint}", code=err.code, transient=err.transient)


# The service each stub belongs to: the key of its address in cloudforet.endpoints.
_STUBS: dict[str, tuple[str, Callable]] = {
    "cloud_service": ("inventory", cloud_service_pb2_grpc.CloudServiceStub),
    "cloud_service_type": ("inventory", cloud_service_type_pb2_grpc.CloudServiceTypeStub),
    "region": ("inventory", region_pb2_grpc.RegionStub),
    "namespace": ("inventory", namespace_pb2_grpc.NamespaceStub),
    "metric": ("inventory", metric_pb2_grpc.MetricStub),
    "cost": ("cost_analysis", cost_pb2_grpc.CostStub),
    "notification": ("notification", notification_pb2_grpc.NotificationStub),
    "secret": ("secret", secret_pb2_grpc.SecretStub),
    "service_account": ("identity", service_account_pb2_grpc.ServiceAccountStub),
    "endpoint": ("identity", endpoint_pb2_grpc.EndpointStub),
    "project": ("identity", project_pb2_grpc.ProjectStub),
    "provider": ("identity", provider_pb2_grpc.ProviderStub),
    "schema": ("identity", schema_pb2_grpc.SchemaStub),
    "collector": ("inventory", collector_pb2_grpc.CollectorStub),
    "repository_plugin": ("repository", plugin_pb2_grpc.PluginStub),
    "monitoring_data_source": ("monitoring", monitoring_data_source_pb2_grpc.DataSourceStub),
    "cost_data_source": ("cost_analysis", cost_data_source_pb2_grpc.DataSourceStub),
}
_SERVICE_OF_RESOURCE = {"CloudService": "inventory", "CloudServiceType": "inventory", "Region": "inventory",
                        "Namespace": "inventory", "Metric": "inventory", "MetricData": "inventory",
                        "Cost": "cost_analysis", "Notification": "notification", "Secret": "secret",
                        "ServiceAccount": "identity", "Token": "identity", "Endpoint": "identity",
                        "Project": "identity", "Provider": "identity", "Schema": "identity",
                        "Collector": "inventory", "Plugin": "repository"}
# Names shared by several services ("DataSource") say whose in a word before: "monitoring DataSource.list".
_SERVICE_OF_PREFIX = {"monitoring": "monitoring", "cost": "cost_analysis", "inventory": "inventory"}


def _provider_request(message: Callable, fields: dict):
    """Only the fields given: an update must not blank what it does not name."""
    kwargs: dict[str, Any] = {k: fields[k] for k in ("provider", "name", "alias", "color", "icon") if k in fields}
    if "order" in fields:
        kwargs["order"] = int(fields["order"])
    kwargs.update({k: to_struct(fields[k]) for k in ("options", "tags") if k in fields})
    return message(**kwargs)


def _schema_request(message: Callable, fields: dict):
    kwargs: dict[str, Any] = {k: fields[k] for k in ("schema_id", "name", "schema_type", "provider",
                                                     "related_schemas") if k in fields}
    kwargs.update({k: to_struct(fields[k]) for k in ("schema", "options", "tags") if k in fields})
    return message(**kwargs)


def service_of(what: str) -> str:
    """"CloudService.list" -> "inventory": whose address a failed call used."""
    words = what.split(".", 1)[0].split(" ")
    if len(words) > 1 and words[-2] in _SERVICE_OF_PREFIX:
        return _SERVICE_OF_PREFIX[words[-2]]
    return _SERVICE_OF_RESOURCE.get(words[-1], "identity")


class CloudForetClient:
    """Typed access to the services the collector uses, with auth attached.

    Each service's stub is opened on first use, on the shared channel of that
    service's endpoint; the token comes from the process's shared provider."""

    def __init__(self, endpoints: "CloudForetEndpoints | CloudForetEndpoint", auth: CloudForetAuth,
                 timeout_s: float = 30.0, retry: RetryPolicy | None = None):
        self.endpoints = as_endpoints(endpoints)
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.tokens = shared_tokens(self.endpoints, auth, timeout_s)
        self.auth = auth
        self.retries_made = 0  # published as a Beam counter by the sinks
        self._retries_lock = threading.Lock()

    def __getattr__(self, name: str):
        spec = _STUBS.get(name)
        if spec is None:
            raise AttributeError(name)
        service, stub_type = spec
        stub = stub_type(shared_channel(self.endpoints[service]))
        setattr(self, name, stub)  # later look-ups find the attribute: no second stub
        return stub

    def _metadata(self) -> tuple:
        return (("token", self.tokens.token()),)

    def call(self, method: Callable, request, what: str, timeout_s: float | None = None):
        """A unary call, retried with backoff while the failure is transient;
        on UNAUTHENTICATED the token is renewed once. Use it for reads and for
        writes that are idempotent: the sinks retry their writes themselves,
        looking the record up again first."""
        endpoint = self.endpoints.get(service_of(what))
        renewed = False

        def attempt():
            nonlocal renewed
            while True:
                token = None
                try:
                    metadata = self._metadata()
                    token = metadata[0][1]
                    return method(request, metadata=metadata, timeout=timeout_s or self.timeout_s)
                except grpc.RpcError as exc:
                    err = map_rpc_error(exc, what, endpoint)
                except CloudForetError as exc:  # the login itself failed (it may be transient too)
                    err = exc
                if err.code == "UNAUTHENTICATED" and not renewed and token is not None:
                    self.tokens.invalidate(token)  # renewed once, at once: not counted as a retry
                    renewed = True
                    continue
                raise err if err.transient else tls_hint(err, endpoint)

        return call_with_retries(attempt, self.retry, is_transient,
                                 on_retry=lambda err, delay: self._count_retry(what, err, delay),
                                 # only CloudForetError is transient (attempt raises no other)
                                 give_up=lambda err, attempts: tls_hint(cast(CloudForetError, err), endpoint))

    def _count_retry(self, what: str, err: Exception, delay: float) -> None:
        with self._retries_lock:  # calls run in the sinks' threads
            self.retries_made += 1
        log.debug("retrying %s in %.2fs after %s", what, delay, getattr(err, "code", err))

    def future(self, method, request, timeout_s: float | None = None) -> grpc.Future:
        """Starts a unary call without waiting: many in flight on one channel."""
        return method.future(request, metadata=self._metadata(), timeout=timeout_s or self.timeout_s)

    # -- convenience wrappers used by the pipeline ------------------------
    def secret_data(self, secret_id: str) -> dict:
        """A secret's data. ``Secret.get_data`` is the secret service's internal API
        (no authentication: deployments keep it inside the cluster); an encrypted
        secret cannot be used as plain credentials."""
        info = self.call(self.secret.get_data,
                         secret_pb2.GetSecretDataRequest(secret_id=secret_id, domain_id=self.auth.domain_id),
                         f"Secret.get_data({secret_id})")
        if info.encrypted:
            raise CloudForetError(
                f"secret {secret_id} is stored encrypted (the secret service's encryptor is on): the collector "
                "cannot use its data as credentials. Give the account host, username and password_env "
                "instead, or run the collector plugin, to which CloudForet passes the decrypted secret.",
                code="FAILED_PRECONDITION")
        return to_dict(info.data) if info.HasField("data") else {}

    def discover_endpoints(self) -> dict[str, CloudForetEndpoint]:
        """identity.v2 ``Endpoint.list`` (no authentication; empty on a stock install):
        the services' public addresses by config key."""
        try:
            info = self.endpoint.list(endpoint_pb2.EndpointSearchQuery(endpoint_type="PUBLIC"),
                                      timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise tls_hint(map_rpc_error(exc, "Endpoint.list", self.endpoints.get("identity")),
                           self.endpoints.get("identity")) from None
        found: dict[str, CloudForetEndpoint] = {}
        for e in info.results:
            key = service_key(e.service)
            inactive = e.state == endpoint_pb2.EndpointInfo.EndpointState.Value("INACTIVE")
            if key in SERVICES and e.endpoint and key not in found and not inactive:
                found[key] = CloudForetEndpoint.parse(e.endpoint, self.endpoints["identity"].ca_bundle)
        return found

    def count_cloud_services_of(self, provider: str) -> int:
        """A read every credential that may write cloud services may make (apps included)."""
        return self.count_cloud_services([("provider", provider, "eq")])

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

    def list_costs(self, data_source_id: str, filters: list[tuple[str, Any, str]], only: list[str] | None = None,
                   limit: int = 1000, decode: Callable | None = to_dict) -> list:
        """A data source's costs. cost-analysis 2.0.108 ``CostService.list`` requires the request's own
        ``data_source_id`` (``@check_required(["data_source_id", "domain_id"])``): in ``query.filter``
        alone it is INVALID_ARGUMENT ERROR_REQUIRED_PARAMETER."""
        return self._list_all(self.cost.list, functools.partial(cost_pb2.CostQuery, data_source_id=data_source_id),
                              "Cost.list", filters, only, limit, decode)

    def get_project(self, project_id: str) -> dict:
        """identity ``Project.get``: what cost-analysis 2.0.108 ``CostService.create`` checks ``project_id`` with."""
        return to_dict(self.call(self.project.get, project_pb2.ProjectRequest(project_id=project_id),
                                 f"Project.get({project_id})"))

    # -- identity objects of a provider (python -m pipeline setup) ----------
    def _get_or_none(self, method: Callable, request, what: str) -> dict | None:
        try:
            return to_dict(self.call(method, request, what))
        except CloudForetError as err:
            if err.code == "NOT_FOUND":
                return None
            raise

    def get_provider(self, provider: str) -> dict | None:
        """identity.v2 ``Provider.get``; None when the domain has no such provider."""
        return self._get_or_none(self.provider.get, provider_pb2.ProviderRequest(provider=provider),
                                 f"Provider.get({provider})")

    def create_provider(self, fields: dict) -> dict:
        return to_dict(self.call(self.provider.create, _provider_request(provider_pb2.CreateProviderRequest, fields),
                                 f"Provider.create({fields['provider']})"))

    def update_provider(self, fields: dict) -> dict:
        return to_dict(self.call(self.provider.update, _provider_request(provider_pb2.UpdateProviderRequest, fields),
                                 f"Provider.update({fields['provider']})"))

    def get_schema(self, schema_id: str) -> dict | None:
        """identity.v2 ``Schema.get``; None when the domain has no such schema."""
        return self._get_or_none(self.schema.get, schema_pb2.SchemaRequest(schema_id=schema_id),
                                 f"Schema.get({schema_id})")

    def create_schema(self, fields: dict) -> dict:
        return to_dict(self.call(self.schema.create, _schema_request(schema_pb2.CreateSchemaRequest, fields),
                                 f"Schema.create({fields['schema_id']})"))

    def update_schema(self, fields: dict) -> dict:
        """identity SchemaService.update: name, schema, related_schemas, options, tags (not the type or provider)."""
        fields = {k: v for k, v in fields.items() if k not in ("schema_type", "provider")}
        return to_dict(self.call(self.schema.update, _schema_request(schema_pb2.UpdateSchemaRequest, fields),
                                 f"Schema.update({fields['schema_id']})"))

    def list_service_accounts(self, provider: str, project_id: str = "", state: str = "") -> list[dict]:
        """identity.v2 ``ServiceAccount.list`` of a provider (in the token's workspace), following pages."""
        query_type = functools.partial(service_account_pb2.ServiceAccountSearchQuery, provider=provider,
                                       project_id=project_id, state=state)
        return self._list_all(self.service_account.list, query_type, "ServiceAccount.list", [], None, 1000)

    def create_service_account(self, name: str, provider: str, data: dict, project_id: str,
                               secret_schema_id: str = "", secret_data: dict | None = None,
                               tags: dict | None = None) -> dict:
        """identity ServiceAccountService.create: checks ``data`` against the provider's SERVICE_ACCOUNT
        schema and ``secret_data`` against ``secret_schema_id``, then has the secret service create the
        secret itself (WORKSPACE_OWNER or WORKSPACE_MEMBER)."""
        req = service_account_pb2.CreateServiceAccountRequest(
            name=name, provider=provider, data=to_struct(data), project_id=project_id,
            secret_schema_id=secret_schema_id, tags=to_struct(tags))
        if secret_data:
            req.secret_data.CopyFrom(to_struct(secret_data))
        return to_dict(self.call(self.service_account.create, req, f"ServiceAccount.create({name})"))

    def update_service_account_secret(self, service_account_id: str, secret_schema_id: str,
                                      secret_data: dict) -> dict:
        """identity ServiceAccountService.update_secret_data: the old secret is deleted and a new one
        created from ``secret_data`` (checked against the schema), its id set on the account."""
        req = service_account_pb2.UpdateServiceAccountSecretRequest(
            service_account_id=service_account_id, secret_schema_id=secret_schema_id,
            secret_data=to_struct(secret_data))
        return to_dict(self.call(self.service_account.update_secret_data, req,
                                 f"ServiceAccount.update_secret_data({service_account_id})"))

    def token_claims(self) -> dict:
        """The current token's role (``rol``), workspace (``wid``) and owner type (``own``)."""
        return jwt_claims(self.tokens.token())

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

    def ensure_cloud_service_types(self, types: list[dict]) -> dict[str, int]:
        """Creates the types that are missing and updates those whose metadata, labels, tags or
        flags differ from ``types`` (schemas/console.py ``cloud_service_type_definitions``).

        inventory CloudServiceTypeService.update replaces each field it is sent whole; proto3
        cannot send False, so a flag turned off stays on (said in the log)."""
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        for t in types:
            existing = self.call(self.cloud_service_type.list, cloud_service_type_pb2.CloudServiceTypeQuery(
                provider=t["provider"], group=t["group"], name=t["name"]), "CloudServiceType.list")
            if not existing.total_count:
                try:
                    self.call(self.cloud_service_type.create, cloud_service_type_pb2.CreateCloudServiceTypeRequest(
                        name=t["name"], provider=t["provider"], group=t["group"], **_type_fields(t)),
                        "CloudServiceType.create")
                    counts["created"] += 1
                except CloudForetError as err:
                    if err.code != "ALREADY_EXISTS":  # a concurrent worker made it: the same definition
                        raise
                    counts["unchanged"] += 1
                continue
            held = to_dict(existing.results[0])
            changed = type_changes(held, t)
            if not changed:
                counts["unchanged"] += 1
                continue
            self.call(self.cloud_service_type.update, cloud_service_type_pb2.UpdateCloudServiceTypeRequest(
                cloud_service_type_id=held["cloud_service_type_id"], **_type_fields(t, changed)),
                "CloudServiceType.update")
            counts["updated"] += 1
        return counts

    def ensure_regions(self, provider: str, regions: dict[str, str],
                       tags: dict[str, dict] | None = None) -> dict[str, int]:
        """``regions`` maps region_code -> name; ``tags`` region_code -> the tags it should carry
        (the console's map: continent, latitude, longitude). Creates the missing regions and
        updates a region whose name differs or lacks one of its tags (Region.update replaces the
        tags whole: the tags it holds besides ours are sent back with them)."""
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        if not regions:
            return counts
        tags = tags or {}
        query = make_query([("region_code", sorted(regions), "in"), ("provider", provider, "eq")],
                           page=(1, len(regions)))
        existing = self.call(self.region.list, region_pb2.RegionQuery(query=query), "Region.list")
        have = {r.region_code: to_dict(r) for r in existing.results}
        for code, name in sorted(regions.items()):
            wanted = {k: str(v) for k, v in (tags.get(code) or {}).items()}
            held = have.get(code)
            if held is None:
                try:
                    self.call(self.region.create, region_pb2.CreateRegionRequest(
                        name=name, region_code=code, provider=provider, tags=to_struct(wanted)), "Region.create")
                    counts["created"] += 1
                except CloudForetError as err:
                    if err.code != "ALREADY_EXISTS":
                        raise
                    counts["unchanged"] += 1
                continue
            merged = {**(held.get("tags") or {}), **wanted}
            if held.get("name") == name and merged == (held.get("tags") or {}):
                counts["unchanged"] += 1
                continue
            self.call(self.region.update, region_pb2.UpdateRegionRequest(
                region_id=held["region_id"], name=name, tags=to_struct(merged)), "Region.update")
            counts["updated"] += 1
        return counts

    def ensure_metric_explorer(self, namespace: dict, metrics: list[dict]) -> dict[str, int]:
        """The Metric Explorer namespace and metrics (schemas/metric_explorer.py): created when
        missing, updated where an updatable field differs (a namespace's name, icon, tags; a
        metric's name, query_options, date_field, unit, tags). The server computes a metric's
        data on create and update (inventory MetricService.create/update -> run_metric_query);
        the other fields cannot be updated, and a difference there is logged."""
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        outcome = self._ensure_one(
            namespace, "Namespace", "namespace_id", self.namespace, namespace_pb2.NamespaceQuery,
            namespace_pb2.CreateNamespaceRequest, namespace_pb2.UpdateNamespaceRequest, NAMESPACE_UPDATABLE)
        counts[outcome] += 1
        for m in metrics:
            outcome = self._ensure_one(m, "Metric", "metric_id", self.metric, metric_pb2.MetricQuery,
                                       metric_pb2.CreateMetricRequest, metric_pb2.UpdateMetricRequest,
                                       METRIC_UPDATABLE)
            counts[outcome] += 1
        return counts

    def _ensure_one(self, want: dict, kind: str, id_key: str, stub, query_type, create_type, update_type,
                    updatable: tuple[str, ...]) -> str:
        found = self.call(stub.list, query_type(**{id_key: want[id_key]}), f"{kind}.list")
        if not found.total_count:
            try:
                self.call(stub.create, json_format.ParseDict(want, create_type()), f"{kind}.create")
                return "created"
            except CloudForetError as err:
                if err.code != "ALREADY_EXISTS":
                    raise
                return "unchanged"
        held = to_dict(found.results[0])
        changed = {k: want[k] for k in updatable if k in want and not same_as_held(held.get(k), want[k])}
        fixed = [k for k in want if k not in updatable and k != id_key and k in held
                 and not same_as_held(held.get(k), want[k])]
        if fixed:
            log.warning("%s %s: %s differ from the definition and cannot be updated (delete it to recreate)",
                        kind, want[id_key], ", ".join(sorted(fixed)))
        if not changed:
            return "unchanged"
        self.call(stub.update, json_format.ParseDict({id_key: want[id_key], **changed}, update_type()),
                  f"{kind}.update")
        return "updated"

    def run_metrics(self, metric_ids: Iterable[str]) -> int:
        """``Metric.run`` each: today's MetricData now, not at the daily schedule (DOMAIN_ADMIN or
        WORKSPACE_OWNER)."""
        ran = 0
        for metric_id in metric_ids:
            self.call(self.metric.run, metric_pb2.MetricRequest(metric_id=metric_id), f"Metric.run({metric_id})")
            ran += 1
        return ran


# The fields an update may change (inventory model/*: updatable_fields of the request's).
TYPE_UPDATABLE = ("service_code", "is_primary", "is_major", "resource_type", "metadata", "labels", "tags")
NAMESPACE_UPDATABLE = ("name", "icon", "tags")
METRIC_UPDATABLE = ("name", "query_options", "date_field", "unit", "tags")


def same_as_held(held: Any, want: Any) -> bool:
    """``want`` as CloudForet would hold it (through a protobuf Struct: numbers as floats) equals ``held``."""
    return _as_struct_value(held) == _as_struct_value(want)


def _as_struct_value(value: Any) -> Any:
    """An empty string, list or mapping is "not set": proto3 answers may leave it out."""
    if value is None or (isinstance(value, (str, list, dict)) and not value):
        return None
    return json_format.MessageToDict(json_format.ParseDict(value, struct_pb2.Value()))


def type_changes(held: dict, want: dict) -> list[str]:
    """The fields of a CloudServiceType definition that differ from what CloudForet holds; a flag
    wanted False is not one (an update cannot send it)."""
    changed = []
    for key in TYPE_UPDATABLE:
        if key not in want:
            continue
        value = want[key]
        if isinstance(value, bool):
            if value and not held.get(key):
                changed.append(key)
        elif not same_as_held(held.get(key, _EMPTY.get(key)), value):
            changed.append(key)
    for key in ("is_primary", "is_major"):
        if want.get(key) is False and held.get(key):
            log.warning("CloudServiceType %s.%s: %s is on in CloudForet and cannot be turned off by an update",
                        want["group"], want["name"], key)
    return changed


_EMPTY: dict[str, Any] = {"metadata": {}, "labels": [], "tags": {}, "service_code": "", "resource_type": ""}


def _type_fields(t: dict, only: list[str] | None = None) -> dict:
    """A definition's fields as Create/UpdateCloudServiceTypeRequest takes them."""
    fields: dict[str, Any] = {
        "service_code": t.get("service_code", ""), "is_primary": t.get("is_primary", False),
        "is_major": t.get("is_major", False), "resource_type": t.get("resource_type", "inventory.CloudService"),
        "metadata": to_struct(t.get("metadata")), "tags": to_struct(t.get("tags")),
        "labels": _list_value(t.get("labels") or []),
    }
    return fields if only is None else {k: v for k, v in fields.items() if k in only}


def _list_value(items: list) -> struct_pb2.ListValue:
    out = struct_pb2.ListValue()
    out.extend(items)
    return out
