"""identity.v2 Token (issue, grant), Provider and Schema (create, update, get, list),
ServiceAccount (create, update, update_secret_data, get, list), Endpoint (list) and Project (get).

Provider, Schema and ServiceAccount follow spaceone-identity 2.0.227 (service/provider_service.py,
schema_service.py, service_account_service.py and their managers): the roles of each method,
the unique keys (provider and schema_id per domain, a service account's name per domain, workspace
and project), ServiceAccount.create checking ``data`` against the provider's SERVICE_ACCOUNT schema
and ``secret_data`` against ``secret_schema_id`` (jsonschema ``validate``), and the secret made by the
secret service (here: the emulator's own secret store, which Secret.get_data reads). The managed
providers and schemas (aws, azure, google_cloud, kubernetes) that identity adds on a list are not
emulated. Service accounts of the emulator's configuration are there from the start.
"""
from __future__ import annotations

import hmac
from typing import Any, Callable

import grpc
import jsonschema
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

from . import auth, errors, query
from .auth import Claims
from .base import (
    Backend,
    in_scope,
    new_id,
    now_iso,
    query_dict,
    request_filters,
    require,
    rpc,
    scope_filters,
    to_dict,
    to_msg,
)
from .store import PROVIDERS, SCHEMAS, SECRETS, SERVICE_ACCOUNTS, DuplicateKey


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


def _db_query_error(reason: str) -> errors.ApiError:
    """A document mongoengine refuses to save: spaceone-core MongoModel.create/update wrap any save
    exception in ERROR_DB_QUERY, an ERROR_UNKNOWN (status INTERNAL)."""
    return errors.ApiError(grpc.StatusCode.INTERNAL, f"ERROR_DB_QUERY: Database query failed. (reason = {reason})")


def _max_length(doc: dict, limits: dict[str, int]) -> None:
    """mongoengine's StringField(max_length) of identity's models."""
    for key, limit in limits.items():
        value = doc.get(key)
        if isinstance(value, str) and len(value) > limit:
            raise _db_query_error(f"ValidationError (String value is too long: ['{key}'])")


def _storable_keys(value: Any, key: str) -> None:
    """mongoengine DictField.validate: no key may start with '$' or contain '.'."""
    if isinstance(value, dict):
        for k, v in value.items():
            if str(k).startswith("$") or "." in str(k):
                raise _db_query_error(f"ValidationError (Invalid dictionary key name - keys may not startswith "
                                      f"'$' or contain '.': ['{key}'])")
            _storable_keys(v, key)
    elif isinstance(value, list):
        for v in value:
            _storable_keys(v, key)


def _domain_filters(claims: Claims) -> list[dict]:
    return [{"k": "domain_id", "v": claims.domain_id, "o": "eq"}]


class ProviderService(provider_pb2_grpc.ProviderServicer):
    """identity ProviderService: create/update need DOMAIN_ADMIN; ``provider`` is unique per domain."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store

    def _load(self, provider: str, claims: Claims) -> dict:
        require({"provider": provider}, "provider")
        doc = self.store.get(PROVIDERS, f"{claims.domain_id}/{provider}")
        if doc is None:
            raise errors.not_found("provider", provider)
        return doc

    @rpc("Provider.create")
    def create(self, request: provider_pb2.CreateProviderRequest, claims: Claims) -> provider_pb2.ProviderInfo:
        fields = to_dict(request)
        require(fields, "provider", "name")
        _max_length(fields, {"provider": 40, "name": 40, "alias": 40, "color": 7})
        if fields.get("order", 10) < 1:  # IntField(min_value=1)
            raise _db_query_error("ValidationError (Integer value is too small: ['order'])")
        now = now_iso()
        doc = {"order": 10, "options": {}, "tags": {}, **fields, "is_managed": False,
               "domain_id": claims.domain_id, "created_at": now, "updated_at": now}
        try:
            self.store.insert(PROVIDERS, f"{claims.domain_id}/{doc['provider']}", doc,
                              ukey=f"{claims.domain_id}/{doc['provider']}")
        except DuplicateKey:
            raise errors.already_exists("provider, domain_id", doc["provider"]) from None
        return to_msg(doc, provider_pb2.ProviderInfo)

    @rpc("Provider.update")
    def update(self, request: provider_pb2.UpdateProviderRequest, claims: Claims) -> provider_pb2.ProviderInfo:
        doc = self._load(request.provider, claims)
        if doc.get("is_managed"):
            raise errors.permission_denied("Provider.update of a managed provider", ("none",), claims.role_type)
        fields = to_dict(request)
        _max_length(fields, {"name": 40, "alias": 40, "color": 7})
        doc.update({k: v for k, v in fields.items() if k != "provider"}, updated_at=now_iso())
        self.store.replace(PROVIDERS, f"{claims.domain_id}/{doc['provider']}", doc)
        return to_msg(doc, provider_pb2.ProviderInfo)

    @rpc("Provider.get")
    def get(self, request: provider_pb2.ProviderRequest, claims: Claims) -> provider_pb2.ProviderInfo:
        return to_msg(self._load(request.provider, claims), provider_pb2.ProviderInfo)

    @rpc("Provider.list")
    def list(self, request: provider_pb2.ProviderSearchQuery, claims: Claims) -> provider_pb2.ProvidersInfo:
        spec = query.parse(query_dict(request), [*_domain_filters(claims), *request_filters(request)])
        results, total = query.run(self.store.scan(PROVIDERS), spec, "provider")
        return provider_pb2.ProvidersInfo(results=[to_msg(d, provider_pb2.ProviderInfo) for d in results],
                                          total_count=total)


SCHEMA_TYPES = ("SERVICE_ACCOUNT", "TRUSTED_ACCOUNT", "SECRET", "TRUSTING_SECRET")


class SchemaService(schema_pb2_grpc.SchemaServicer):
    """identity SchemaService: create/update need DOMAIN_ADMIN; ``schema_id`` is unique per domain."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store

    def _load(self, schema_id: str, claims: Claims) -> dict:
        require({"schema_id": schema_id}, "schema_id")
        doc = self.store.get(SCHEMAS, f"{claims.domain_id}/{schema_id}")
        if doc is None:
            raise errors.not_found("schema_id", schema_id)
        return doc

    @rpc("Schema.create")
    def create(self, request: schema_pb2.CreateSchemaRequest, claims: Claims) -> schema_pb2.SchemaInfo:
        fields = to_dict(request)
        require(fields, "schema_id", "name", "schema_type", "provider")
        if fields["schema_type"] not in SCHEMA_TYPES:  # SchemaCreateRequest.schema_type: SchemaType (Literal)
            raise errors.invalid("schema_type", f"unexpected value; permitted: {', '.join(SCHEMA_TYPES)}")
        _max_length(fields, {"schema_id": 40, "name": 40, "provider": 40})
        _storable_keys(fields.get("schema"), "schema")
        now = now_iso()
        doc = {"schema": {}, "related_schemas": [], "options": {}, "tags": {}, **fields, "is_managed": False,
               "domain_id": claims.domain_id, "created_at": now, "updated_at": now}
        key = f"{claims.domain_id}/{doc['schema_id']}"
        try:
            self.store.insert(SCHEMAS, key, doc, ukey=key)
        except DuplicateKey:
            raise errors.already_exists("schema_id, domain_id", doc["schema_id"]) from None
        return to_msg(doc, schema_pb2.SchemaInfo)

    @rpc("Schema.update")
    def update(self, request: schema_pb2.UpdateSchemaRequest, claims: Claims) -> schema_pb2.SchemaInfo:
        doc = self._load(request.schema_id, claims)
        if doc.get("is_managed"):
            raise errors.permission_denied("Schema.update of a managed schema", ("none",), claims.role_type)
        fields = to_dict(request)
        _max_length(fields, {"name": 40})
        _storable_keys(fields.get("schema"), "schema")
        doc.update({k: v for k, v in fields.items() if k != "schema_id"}, updated_at=now_iso())
        self.store.replace(SCHEMAS, f"{claims.domain_id}/{doc['schema_id']}", doc)
        return to_msg(doc, schema_pb2.SchemaInfo)

    @rpc("Schema.get")
    def get(self, request: schema_pb2.SchemaRequest, claims: Claims) -> schema_pb2.SchemaInfo:
        return to_msg(self._load(request.schema_id, claims), schema_pb2.SchemaInfo)

    @rpc("Schema.list")
    def list(self, request: schema_pb2.SchemaSearchQuery, claims: Claims) -> schema_pb2.SchemasInfo:
        extra = request_filters(request, rename={"related_schema_id": "related_schemas"})
        spec = query.parse(query_dict(request), [*_domain_filters(claims), *extra])
        results, total = query.run(self.store.scan(SCHEMAS), spec, "schema_id")
        return schema_pb2.SchemasInfo(results=[to_msg(d, schema_pb2.SchemaInfo) for d in results], total_count=total)


def validate_by_schema(backend: Backend, key: str, data: dict, schema_type: str, domain_id: str, *,
                       provider: str = "", schema_id: str = "") -> None:
    """identity SchemaManager.validate_data_by_schema (the provider's first schema of the type) and
    validate_secret_data_by_schema_id: jsonschema ``validate``; its message is the reason, as the
    real service answers it (which may quote the value: the collector never logs these answers)."""
    schemas = [d for d in backend.store.scan(SCHEMAS) if d.get("domain_id") == domain_id
               and d.get("schema_type") == schema_type
               and (d.get("provider") == provider if provider else d.get("schema_id") == schema_id)]
    if not schemas:
        what = f"provider={provider}" if provider else f"schema_id={schema_id}"
        code = "ERROR_SCHEMA_IS_NOT_DEFINED" if provider else "ERROR_SCHEMA_ID_IS_NOT_DEFINED"
        raise errors.ApiError(grpc.StatusCode.INVALID_ARGUMENT,
                              f"{code}: Schema{' ID' if schema_id else ''} is not defined. "
                              f"({what}, schema_type={schema_type})")
    try:
        jsonschema.validate(instance=data, schema=schemas[0].get("schema") or {})
    except jsonschema.ValidationError as exc:
        raise errors.invalid(key, exc.message) from None


class ServiceAccountService(service_account_pb2_grpc.ServiceAccountServicer):
    """Service accounts: those of the configuration, and those created through the API."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store
        cfg = backend.config
        created_at = now_iso()
        for sa in cfg.service_accounts:  # there from the start (a restart keeps what was stored)
            doc = {"state": "ACTIVE", "data": {}, "tags": {}, "domain_id": cfg.domain_id,
                   "workspace_id": cfg.workspace_id, "created_at": created_at, **sa}
            try:
                self.store.insert(SERVICE_ACCOUNTS, doc["service_account_id"], doc, ukey=self._ukey(doc))
            except DuplicateKey:
                pass

    @staticmethod
    def _ukey(doc: dict) -> str:
        """ServiceAccount.name: unique_with domain_id, workspace_id, project_id."""
        return "/".join(str(doc.get(k) or "") for k in ("domain_id", "workspace_id", "project_id", "name"))

    def _load(self, service_account_id: str, claims: Claims) -> dict:
        """ServiceAccountManager.get_service_account: by id and domain, and the workspace when the token
        has one (a WORKSPACE_MEMBER's ``user_projects`` are not emulated)."""
        require({"service_account_id": service_account_id}, "service_account_id")
        doc = self.store.get(SERVICE_ACCOUNTS, service_account_id)
        if doc is None or not in_scope(doc, claims):
            raise errors.not_found("service_account_id", service_account_id)
        return doc

    def _create_secret(self, doc: dict, secret_schema_id: str, secret_data: dict) -> str:
        """SecretManager.create_secret: the secret service's Secret.create{name '<sa>-secret', data,
        schema_id, service_account_id, resource_group PROJECT}."""
        secret_id = new_id("secret")
        self.store.insert(SECRETS, secret_id, {
            "secret_id": secret_id, "name": f"{doc['service_account_id']}-secret", "data": secret_data,
            "schema_id": secret_schema_id, "service_account_id": doc["service_account_id"],
            "resource_group": "PROJECT", "provider": doc.get("provider"), "project_id": doc.get("project_id"),
            "workspace_id": doc.get("workspace_id"), "domain_id": doc.get("domain_id"), "created_at": now_iso()})
        return secret_id

    @rpc("ServiceAccount.create")
    def create(self, request: service_account_pb2.CreateServiceAccountRequest,
               claims: Claims) -> service_account_pb2.ServiceAccountInfo:
        fields = to_dict(request)
        require(fields, "name", "provider")
        if not request.HasField("data"):  # ServiceAccountCreateRequest.data: dict (required)
            raise errors.required("data")
        require(fields, "project_id")
        data = fields.get("data") or {}
        validate_by_schema(self.backend, "data", data, "SERVICE_ACCOUNT", claims.domain_id,
                           provider=fields["provider"])
        if self.backend.config.project(fields["project_id"], claims.workspace_id) is None:
            raise errors.not_found("project_id", fields["project_id"])
        secret_data = fields.pop("secret_data", None)
        _max_length(fields, {"name": 255, "provider": 40})
        doc: dict[str, Any] = {
            "service_account_id": new_id("sa"), "name": fields["name"], "state": "ACTIVE", "data": data,
            "provider": fields["provider"], "tags": fields.get("tags") or {}, "is_managed": False,
            "project_id": fields["project_id"], "workspace_id": claims.workspace_id, "domain_id": claims.domain_id,
            "created_at": now_iso()}
        if fields.get("secret_schema_id"):
            doc["secret_schema_id"] = fields["secret_schema_id"]
        try:  # the account is saved first (the unique name), the secret checked after it
            self.store.insert(SERVICE_ACCOUNTS, doc["service_account_id"], doc, ukey=self._ukey(doc))
        except DuplicateKey:
            raise errors.already_exists("name, domain_id, workspace_id, project_id", doc["name"]) from None
        if secret_data:
            try:
                if not fields.get("secret_schema_id"):
                    raise errors.required("secret_schema_id")
                validate_by_schema(self.backend, "secret_data", secret_data, "SECRET", claims.domain_id,
                                   schema_id=fields["secret_schema_id"])
            except errors.ApiError:
                self.store.delete(SERVICE_ACCOUNTS, doc["service_account_id"])  # the transaction's rollback
                raise
            doc["secret_id"] = self._create_secret(doc, fields["secret_schema_id"], secret_data)
            self.store.replace(SERVICE_ACCOUNTS, doc["service_account_id"], doc)
        return to_msg(doc, service_account_pb2.ServiceAccountInfo)

    @rpc("ServiceAccount.update")
    def update(self, request: service_account_pb2.UpdateServiceAccountRequest,
               claims: Claims) -> service_account_pb2.ServiceAccountInfo:
        doc = self._load(request.service_account_id, claims)
        fields = to_dict(request)
        if fields.get("data"):
            validate_by_schema(self.backend, "data", fields["data"], "SERVICE_ACCOUNT", claims.domain_id,
                               provider=str(doc.get("provider")))
        if fields.get("project_id") and self.backend.config.project(fields["project_id"],
                                                                    claims.workspace_id) is None:
            raise errors.not_found("project_id", fields["project_id"])
        doc.update({k: fields[k] for k in ("name", "data", "tags", "project_id") if k in fields})
        try:  # MongoModel.update checks the unique fields against the other documents
            self.store.replace(SERVICE_ACCOUNTS, doc["service_account_id"], doc, ukey=self._ukey(doc))
        except DuplicateKey:
            raise errors.already_exists("name, domain_id, workspace_id, project_id", doc["name"]) from None
        return to_msg(doc, service_account_pb2.ServiceAccountInfo)

    @rpc("ServiceAccount.update_secret_data")
    def update_secret_data(self, request: service_account_pb2.UpdateServiceAccountSecretRequest,
                           claims: Claims) -> service_account_pb2.ServiceAccountInfo:
        """The old secret deleted, a new one created, its id set on the account. A DOMAIN_ADMIN token
        gets no workspace_id injected (spaceone-core SpaceONEMutationHandler), which
        ServiceAccountUpdateSecretRequest requires."""
        if not claims.workspace_id:
            raise errors.required("workspace_id")
        fields = to_dict(request)
        require(fields, "service_account_id", "secret_schema_id")
        if not fields.get("secret_data"):
            raise errors.required("secret_data")
        doc = self._load(request.service_account_id, claims)
        validate_by_schema(self.backend, "secret_data", fields["secret_data"], "SECRET", claims.domain_id,
                           schema_id=fields["secret_schema_id"])
        if doc.get("secret_id"):
            self.store.delete(SECRETS, doc["secret_id"])
        doc["secret_id"] = self._create_secret(doc, fields["secret_schema_id"], fields["secret_data"])
        doc["secret_schema_id"] = fields["secret_schema_id"]
        self.store.replace(SERVICE_ACCOUNTS, doc["service_account_id"], doc)
        return to_msg(doc, service_account_pb2.ServiceAccountInfo)

    @rpc("ServiceAccount.list")
    def list(self, request: service_account_pb2.ServiceAccountSearchQuery,
             claims: Claims) -> service_account_pb2.ServiceAccountsInfo:
        extra = request_filters(request, special={
            "has_secret": lambda v: {"k": "secret_id", "v": bool(v), "o": "exists"}})
        spec = query.parse(query_dict(request), [*scope_filters(claims), *extra])
        results, total = query.run(self.store.scan(SERVICE_ACCOUNTS), spec, "service_account_id")
        return service_account_pb2.ServiceAccountsInfo(
            results=[to_msg(d, service_account_pb2.ServiceAccountInfo) for d in results], total_count=total)

    @rpc("ServiceAccount.get")
    def get(self, request: service_account_pb2.ServiceAccountRequest,
            claims: Claims) -> service_account_pb2.ServiceAccountInfo:
        return to_msg(self._load(request.service_account_id, claims), service_account_pb2.ServiceAccountInfo)


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
