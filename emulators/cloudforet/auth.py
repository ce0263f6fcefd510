"""Token signing/verification and the per-method role table.

Tokens are compact HS256 JWTs signed with a key kept in the database, so
tokens issued before a restart stay valid afterwards (as they do against a
real CloudForet whose key does not change).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable

from . import errors

ACCESS = "ACCESS"
REFRESH = "REFRESH"
CLIENT_SECRET = "CLIENT_SECRET"
SCOPE_DOMAIN = "DOMAIN"
SCOPE_WORKSPACE = "WORKSPACE"

APP_TOKEN_TTL = 365 * 24 * 3600

_OWNER_MEMBER = ("WORKSPACE_OWNER", "WORKSPACE_MEMBER")
_READERS = ("WORKSPACE_OWNER", "WORKSPACE_MEMBER", "DOMAIN_ADMIN")
_REGISTRARS = ("WORKSPACE_OWNER", "DOMAIN_ADMIN")
USER_ONLY = ("USER",)  # any token a user owns (never an app's), whatever its role

# Which role_type a token needs for each method. A method that is not listed
# here (other than the public ones) is refused: new RPCs must be added here.
ROLE_RULES: dict[str, tuple[str, ...]] = {
    "CloudService.create": _OWNER_MEMBER,
    "CloudService.update": _OWNER_MEMBER,
    "CloudService.delete": _OWNER_MEMBER,
    "CloudService.get": _READERS,
    "CloudService.list": _READERS,
    "CloudServiceType.create": ("WORKSPACE_OWNER",),
    "CloudServiceType.list": _READERS,
    "Region.create": ("WORKSPACE_OWNER",),
    "Region.list": _READERS,
    # inventory CloudServiceTypeService.update/delete and RegionService.update: role_types=["WORKSPACE_OWNER"]
    "CloudServiceType.update": ("WORKSPACE_OWNER",),
    "CloudServiceType.delete": ("WORKSPACE_OWNER",),
    "CloudServiceType.get": _READERS,
    "Region.update": ("WORKSPACE_OWNER",),
    # inventory Metric Explorer (service/namespace_service.py, metric_service.py, metric_data_service.py)
    "Namespace.create": _REGISTRARS,
    "Namespace.update": _REGISTRARS,
    "Namespace.delete": _REGISTRARS,
    "Namespace.get": _READERS,
    "Namespace.list": _READERS,
    "Metric.create": _REGISTRARS,
    "Metric.update": _REGISTRARS,
    "Metric.delete": _REGISTRARS,
    "Metric.run": _REGISTRARS,
    "Metric.test": _REGISTRARS,
    "Metric.get": _READERS,
    "Metric.list": _READERS,
    "MetricData.list": _READERS,
    "MetricData.analyze": _READERS,
    # cost-analysis 2.0.108 CostService.create/delete: role_types=["WORKSPACE_OWNER"]
    "Cost.create": ("WORKSPACE_OWNER",),
    "Cost.delete": ("WORKSPACE_OWNER",),
    "Project.get": _READERS,
    "Cost.get": _READERS,
    "Cost.list": _READERS,
    "Cost.stat": _READERS,
    "Notification.create": _READERS,
    # A user's own inbox: role_types ["USER"] in the real notification service, which
    # python-core's SpaceONEAuthorizationHandler._check_role_type refuses to APP owners
    # and filters to the calling user (authorization.set_user_id).
    "Notification.list": USER_ONLY,
    # spaceone-identity 2.0.227 service/provider_service.py, schema_service.py and
    # service_account_service.py: each method's @transaction(role_types=...)
    "Provider.create": ("DOMAIN_ADMIN",),
    "Provider.update": ("DOMAIN_ADMIN",),
    "Provider.get": _READERS,
    "Provider.list": _READERS,
    "Schema.create": ("DOMAIN_ADMIN",),
    "Schema.update": ("DOMAIN_ADMIN",),
    "Schema.get": _READERS,
    "Schema.list": _READERS,
    "ServiceAccount.create": _OWNER_MEMBER,
    "ServiceAccount.update": _OWNER_MEMBER,
    "ServiceAccount.update_secret_data": _READERS,
    "ServiceAccount.list": _READERS,
    "ServiceAccount.get": _READERS,
    # Data-source plugins (DataSource exists in both services, hence the prefixes).
    "Cost.analyze": _READERS,
    # monitoring DataSourceService.register: role_types ["DOMAIN_ADMIN"]
    "monitoring.DataSource.register": ("DOMAIN_ADMIN",),
    "monitoring.DataSource.get": _READERS,
    "monitoring.DataSource.list": _READERS,
    "monitoring.Metric.list": _READERS,
    "monitoring.Metric.get_data": _READERS,
    "cost_analysis.DataSource.register": _REGISTRARS,
    "cost_analysis.DataSource.sync": _REGISTRARS,
    "cost_analysis.DataSource.get": _READERS,
    "cost_analysis.DataSource.list": _READERS,
    # cloudforet-io/repository service/plugin_service.py: register/update/enable/disable/deregister
    # role_types ["DOMAIN_ADMIN"]; get_versions adds the workspace roles, get and list also USER
    "repository.Plugin.register": ("DOMAIN_ADMIN",),
    "repository.Plugin.update": ("DOMAIN_ADMIN",),
    "repository.Plugin.deregister": ("DOMAIN_ADMIN",),
    "repository.Plugin.get_versions": _READERS,
    "repository.Plugin.get": (*_READERS, "USER"),
    "repository.Plugin.list": (*_READERS, "USER"),
    # inventory service/collector_service.py, job_service.py, job_task_service.py role_types
    "Collector.create": _REGISTRARS,
    "Collector.update": _REGISTRARS,
    "Collector.delete": _REGISTRARS,
    "Collector.get": _READERS,
    "Collector.list": _READERS,
    "Collector.collect": _READERS,
    "Collector.verify_plugin": _REGISTRARS,
    "Job.get": _READERS,
    "Job.list": _READERS,
    "Job.delete": _REGISTRARS,
    "JobTask.get": _READERS,
    "JobTask.list": _READERS,
    "JobTask.delete": _REGISTRARS,
}

# Methods without authentication: Token.issue/grant authenticate by their body;
# identity's EndpointService has no @authentication_handler (spaceone-identity
# 2.0.227 service/endpoint_service.py); Secret.get_data is the secret service's
# internal API, excluded from authentication and authorization (deployments keep
# it inside the cluster).
PUBLIC_METHODS = frozenset({"Token.issue", "Token.grant", "Endpoint.list", "Secret.get_data",
                            # cloudforet-io/plugin PluginService.get_plugin_endpoint:
                            # @transaction(exclude=["authentication", "authorization", "mutation"])
                            "plugin.Plugin.get_plugin_endpoint"})


@dataclass(frozen=True)
class Claims:
    """The verified content of a token."""

    sub: str
    typ: str
    scope: str
    role_type: str
    domain_id: str
    workspace_id: str
    exp: int
    jti: str


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER = _b64e(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


class TokenSigner:
    """Issues and verifies HS256 tokens with one secret key."""

    _CACHE_MAX = 4096

    def __init__(self, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self.clock = clock  # epoch seconds: what ``exp`` is written and checked against (tests pass a fake)
        # Verified signatures are cached: the pipeline reuses one token for
        # thousands of calls and HMAC + JSON per call is measurable.
        self._cache: dict[str, Claims] = {}
        self._lock = threading.Lock()

    @staticmethod
    def new_key() -> bytes:
        return secrets.token_bytes(32)

    def _sign(self, signing_input: str) -> str:
        return _b64e(hmac.new(self._key, signing_input.encode("ascii"), hashlib.sha256).digest())

    def issue(
        self,
        sub: str,
        typ: str,
        scope: str,
        role_type: str,
        domain_id: str,
        workspace_id: str,
        ttl: float,
    ) -> str:
        """A signed token valid for ``ttl`` seconds (negative ttl: already expired, for tests)."""
        claims = {
            "sub": sub,
            "typ": typ,
            "scope": scope,
            "role_type": role_type,
            "domain_id": domain_id,
            "workspace_id": workspace_id,
            "exp": int(self.clock() + ttl),
            "jti": secrets.token_hex(8),
            # the claims identity 2.0.227 writes, which clients read (unverified) to know a token's role
            "rol": role_type, "did": domain_id, "own": "APP" if typ == CLIENT_SECRET else "USER",
        }
        if workspace_id:
            claims["wid"] = workspace_id
        payload = _b64e(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{_HEADER}.{payload}"
        return f"{signing_input}.{self._sign(signing_input)}"

    def verify(self, token: str | None) -> Claims:
        """Claims of a genuine, unexpired token, else an UNAUTHENTICATED ApiError.

        The token itself is never put into the error message.
        """
        if not token:
            raise errors.unauthenticated("token is missing")
        claims = self._cache.get(token)
        if claims is None:
            claims = self._verify_signature(token)
            with self._lock:
                if len(self._cache) >= self._CACHE_MAX:
                    self._cache.clear()
                self._cache[token] = claims
        if claims.exp <= self.clock():
            raise errors.unauthenticated("token is expired")
        return claims

    def verify_api_token(self, token: str | None) -> Claims:
        """Like ``verify`` but only for tokens meant for API calls (not refresh tokens)."""
        claims = self.verify(token)
        if claims.typ not in (ACCESS, CLIENT_SECRET):
            raise errors.unauthenticated(f"a {claims.typ} token cannot be used to call the API")
        return claims

    def _verify_signature(self, token: str) -> Claims:
        parts = token.split(".")
        if len(parts) != 3:
            raise errors.unauthenticated("token is malformed")
        header, payload, signature = parts
        if not hmac.compare_digest(self._sign(f"{header}.{payload}"), signature):
            raise errors.unauthenticated("token signature is invalid")
        try:
            data = json.loads(_b64d(payload))
            return Claims(
                sub=str(data["sub"]),
                typ=str(data["typ"]),
                scope=str(data["scope"]),
                role_type=str(data["role_type"]),
                domain_id=str(data["domain_id"]),
                workspace_id=str(data.get("workspace_id") or ""),
                exp=int(data["exp"]),
                jti=str(data.get("jti", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise errors.unauthenticated("token payload is malformed") from exc


def check_role(method: str, claims: Claims) -> None:
    """Raise PERMISSION_DENIED unless ``claims`` may call ``method``."""
    roles = ROLE_RULES.get(method, ())
    if roles == USER_ONLY:
        if claims.typ == CLIENT_SECRET:
            raise errors.permission_denied(method, roles, f"{claims.role_type} (an app)")
        return
    if claims.role_type not in roles:
        raise errors.permission_denied(method, roles, claims.role_type)
