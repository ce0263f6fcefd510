"""identity.v2 Token (issue, grant), ServiceAccount (list, get), Endpoint (list) and Project (get)."""
from __future__ import annotations

import hmac
from typing import Callable

from spaceone.api.identity.v2 import (
    endpoint_pb2,
    endpoint_pb2_grpc,
    project_pb2,
    project_pb2_grpc,
    service_account_pb2,
    service_account_pb2_grpc,
    token_pb2,
    token_pb2_grpc,
)

from . import auth, errors, query
from .auth import Claims
from .base import Backend, in_scope, now_iso, query_dict, request_filters, require, rpc, scope_filters, to_dict, to_msg


class TokenService(token_pb2_grpc.TokenServicer):
    """Local-password login and refresh-token grant (both authenticate by body)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @rpc("Token.issue")
    def issue(self, request: token_pb2.IssueTokenRequest, claims: Claims | None) -> token_pb2.TokenInfo:
        cfg = self.backend.config
        if request.auth_type not in (token_pb2.IssueTokenRequest.LOCAL, token_pb2.IssueTokenRequest.NONE):
            raise errors.unauthenticated("only auth_type LOCAL is supported")
        require({"domain_id": request.domain_id}, "domain_id")
        credentials = to_dict(request.credentials) if request.HasField("credentials") else {}
        user_id = str(credentials.get("user_id") or "")
        password = str(credentials.get("password") or "")
        user = cfg.user(user_id)
        if request.domain_id != cfg.domain_id or user is None or not hmac.compare_digest(
                password.encode(), str(user["password"]).encode()):
            raise errors.unauthenticated("wrong domain_id, user_id or password")
        signer = self.backend.signer
        return token_pb2.TokenInfo(
            access_token=signer.issue(user_id, auth.ACCESS, auth.SCOPE_DOMAIN, "USER", cfg.domain_id, "",
                                      cfg.access_token_ttl),
            refresh_token=signer.issue(user_id, auth.REFRESH, auth.SCOPE_DOMAIN, "USER", cfg.domain_id, "",
                                       cfg.refresh_token_ttl),
        )

    @rpc("Token.grant")
    def grant(self, request: token_pb2.GrantTokenRequest, claims: Claims | None) -> token_pb2.GrantTokenInfo:
        cfg = self.backend.config
        req = token_pb2.GrantTokenRequest
        if request.grant_type != req.REFRESH_TOKEN:
            raise errors.invalid("grant_type", "only REFRESH_TOKEN is supported")
        refresh = self.backend.signer.verify(request.token)
        if refresh.typ != auth.REFRESH:
            raise errors.unauthenticated("grant needs a refresh token")
        user = cfg.user(refresh.sub)
        if user is None or refresh.domain_id != cfg.domain_id:
            raise errors.unauthenticated("the token's user no longer exists")
        if request.domain_id and request.domain_id != cfg.domain_id:
            raise errors.not_found("domain_id", request.domain_id)
        role = str(user["role_type"])
        if request.scope == req.WORKSPACE:
            require({"workspace_id": request.workspace_id}, "workspace_id")
            if request.workspace_id != cfg.workspace_id:
                raise errors.not_found("workspace_id", request.workspace_id)
            scope, workspace_id = auth.SCOPE_WORKSPACE, cfg.workspace_id
            if role == "DOMAIN_ADMIN":  # identity 2.0.227 GrantTokenManager.authenticate
                role = "WORKSPACE_OWNER"
        elif request.scope == req.DOMAIN:
            if role != "DOMAIN_ADMIN":
                raise errors.permission_denied("Token.grant(scope=DOMAIN)", ("DOMAIN_ADMIN",), role)
            scope, workspace_id = auth.SCOPE_DOMAIN, ""
        else:
            raise errors.invalid("scope", "only WORKSPACE and DOMAIN are supported")
        token = self.backend.signer.issue(refresh.sub, auth.ACCESS, scope, role, cfg.domain_id, workspace_id,
                                          cfg.access_token_ttl)
        return token_pb2.GrantTokenInfo(access_token=token, role_type=role, domain_id=cfg.domain_id,
                                        workspace_id=workspace_id)


class ProjectService(project_pb2_grpc.ProjectServicer):
    """Project.get over the configured projects: what cost-analysis checks Cost.create's project_id with.
    A workspace token sees its workspace's projects only (NOT_FOUND otherwise, as identity answers)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @rpc("Project.get")
    def get(self, request: project_pb2.ProjectRequest, claims: Claims) -> project_pb2.ProjectInfo:
        require({"project_id": request.project_id}, "project_id")
        workspace = claims.workspace_id if claims.scope == auth.SCOPE_WORKSPACE else None
        project = self.backend.config.project(request.project_id, workspace)
        if project is None:
            raise errors.not_found("project_id", request.project_id)
        return to_msg({"project_type": "PUBLIC", "created_at": now_iso(), **project}, project_pb2.ProjectInfo)


class ServiceAccountService(service_account_pb2_grpc.ServiceAccountServicer):
    """Read-only service accounts taken from the configuration."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        cfg = backend.config
        created_at = now_iso()
        self._docs = [
            {
                "state": "ACTIVE",
                "data": {},
                "tags": {},
                "domain_id": cfg.domain_id,
                "workspace_id": cfg.workspace_id,
                "created_at": created_at,
                **sa,
            }
            for sa in cfg.service_accounts
        ]

    @rpc("ServiceAccount.list")
    def list(self, request: service_account_pb2.ServiceAccountSearchQuery,
             claims: Claims) -> service_account_pb2.ServiceAccountsInfo:
        extra = request_filters(request, special={
            "has_secret": lambda v: {"k": "secret_id", "v": bool(v), "o": "exists"}})
        spec = query.parse(query_dict(request), [*scope_filters(claims), *extra])
        results, total = query.run(self._docs, spec, "service_account_id")
        return service_account_pb2.ServiceAccountsInfo(
            results=[to_msg(d, service_account_pb2.ServiceAccountInfo) for d in results], total_count=total)

    @rpc("ServiceAccount.get")
    def get(self, request: service_account_pb2.ServiceAccountRequest,
            claims: Claims) -> service_account_pb2.ServiceAccountInfo:
        require({"service_account_id": request.service_account_id}, "service_account_id")
        for doc in self._docs:
            if doc.get("service_account_id") == request.service_account_id and in_scope(doc, claims):
                return to_msg(doc, service_account_pb2.ServiceAccountInfo)
        raise errors.not_found("service_account_id", request.service_account_id)


class EndpointService(endpoint_pb2_grpc.EndpointServicer):
    """``Endpoint.list`` as spaceone-identity 2.0.227 answers it (EndpointManager.list_endpoints):
    the ``ENDPOINTS`` global, filtered by ``service`` only (``endpoint_type`` is not read),
    no authentication. A stock install has none."""

    def __init__(self, backend: Backend, endpoints: Callable[[], list[dict]]) -> None:
        self.backend = backend
        self._endpoints = endpoints  # () -> list of {service, name, endpoint, state}

    @rpc("Endpoint.list")
    def list(self, request: endpoint_pb2.EndpointSearchQuery, claims: Claims | None) -> endpoint_pb2.EndpointsInfo:
        found = [e for e in self._endpoints() if not request.service or e.get("service") == request.service]
        return endpoint_pb2.EndpointsInfo(results=[to_msg(e, endpoint_pb2.EndpointInfo) for e in found],
                                          total_count=len(found))
