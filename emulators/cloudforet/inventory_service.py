"""inventory.v1 CloudService, CloudServiceType and Region.

Behaviour follows what the real inventory service (cloudforet-io/inventory at
65d4f208) does for the public API: ``create`` validates and never dedupes,
``delete`` only marks the record DELETED, ``update`` merges ``data`` one level
deep. ``tags`` are kept per provider bucket: a create files them under the
record's provider, a public update under ``"custom"`` (replacing that one
bucket whole). A deleted record still answers ``get`` (state DELETED); a second
``delete`` or an ``update`` answers INVALID_ARGUMENT
ERROR_RESOURCE_ALREADY_DELETED; ``list`` leaves it out unless the request
filters on ``state``.
"""
from __future__ import annotations

import grpc
from google.protobuf import empty_pb2
from spaceone.api.inventory.v1 import (
    cloud_service_pb2,
    cloud_service_pb2_grpc,
    cloud_service_type_pb2,
    cloud_service_type_pb2_grpc,
    region_pb2,
    region_pb2_grpc,
)

from . import errors, query
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
from .store import CLOUD_SERVICE_TYPES, CLOUD_SERVICES, DELETED, REGIONS, DuplicateKey

ACTIVE = "ACTIVE"
# CloudServiceInfo's single string fields: a document holds a string there or nothing
STRING_FIELDS = frozenset(f.name for f in cloud_service_pb2.CloudServiceInfo.DESCRIPTOR.fields
                          if f.type == f.TYPE_STRING and not f.is_repeated)
# Update fields merged one level deep instead of replaced. ``reference`` is
# merged too so that sending only ``external_link`` keeps the resource_id.
# ``tags`` are not among them: they go to their bucket (see _file_tags).
_MERGED_ON_UPDATE = ("data", "reference")
# The bucket a public update files tags under. inventory
# service/cloud_service_service.py CloudServiceService._get_provider_from_meta():
# "custom" unless _is_created_by_collector(), i.e. the transaction carries the
# collector_id, job_id, plugin_id and secret.service_account_id that the
# inventory service itself sets when it runs a collector plugin's job. This
# emulator runs no collector jobs, so every call is a public one, whatever
# metadata a client sends: a client cannot pass for a collector job.
CUSTOM = "custom"


def _tag_bucket(tags: dict, provider: str) -> tuple[dict, dict]:
    """``tags`` filed under ``provider``, and its ``tag_keys``: inventory
    CloudServiceService._convert_tags_to_hash() (which also hashes each key; the
    emulator keeps the plain key, which is what every answer shows)."""
    return {provider: dict(tags)}, {provider: list(tags)}


def _file_tags(doc: dict, tags: dict, provider: str) -> None:
    """An update's tags replace the one bucket ``provider`` whole, when it differs:
    inventory CloudServiceService.update_resource() (``_is_different_data`` then
    ``old_tags.update(new_tags)``). Other buckets are never touched."""
    new_tags, new_keys = _tag_bucket(tags, provider)
    held = doc.get("tags") or {}
    if new_tags[provider] != held.get(provider):
        doc["tags"] = {**held, **new_tags}
        doc["tag_keys"] = {**(doc.get("tag_keys") or {}), **new_keys}


def presented(doc: dict) -> dict:
    """A record as CloudServiceInfo shows it: tags by bucket, an empty bucket left
    out (inventory info/cloud_service_info.py _change_tags_without_hash() makes a
    provider's entry only for a tag it holds)."""
    tags = doc.get("tags")
    if isinstance(tags, dict) and any(not v for v in tags.values()):
        doc = {**doc, "tags": {p: b for p, b in tags.items() if b}}
    return doc


def already_deleted(cloud_service_id: str) -> errors.ApiError:
    """inventory model/cloud_service_model.py CloudService.update()/delete() on a
    DELETED record: error/cloud_service.py ERROR_RESOURCE_ALREADY_DELETED (an
    ERROR_INVALID_ARGUMENT), answered by spaceone-core as ``code: message``."""
    return errors.ApiError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"ERROR_RESOURCE_ALREADY_DELETED: CloudService has already been deleted. "
                           f"({cloud_service_id})")


def _workspace(claims: Claims, backend: Backend) -> str:
    return claims.workspace_id or backend.config.workspace_id


class CloudServiceService(cloud_service_pb2_grpc.CloudServiceServicer):
    """Cloud service records with the real server's create/update/delete semantics."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store

    def _load(self, cloud_service_id: str, claims: Claims) -> dict:
        """The record, deleted or not, or NOT_FOUND: inventory
        CloudServiceManager.get_cloud_service() looks it up by id, domain and
        workspace only, not by state."""
        require({"cloud_service_id": cloud_service_id}, "cloud_service_id")
        doc = self.store.get(CLOUD_SERVICES, cloud_service_id)
        if doc is None or not in_scope(doc, claims):
            raise errors.not_found("cloud_service_id", cloud_service_id)
        return doc

    def _load_live(self, cloud_service_id: str, claims: Claims) -> dict:
        """The record to change; a DELETED one answers ERROR_RESOURCE_ALREADY_DELETED."""
        doc = self._load(cloud_service_id, claims)
        if doc.get("state") == DELETED:
            raise already_deleted(cloud_service_id)
        return doc

    @rpc("CloudService.create")
    def create(self, request: cloud_service_pb2.CreateServiceRequest,
               claims: Claims) -> cloud_service_pb2.CloudServiceInfo:
        doc = to_dict(request, with_defaults=True)
        resource_id = (doc.get("reference") or {}).get("resource_id")
        if not resource_id:
            raise errors.required("reference")
        require(doc, "cloud_service_type", "cloud_service_group", "provider", "name")
        # a create files the request's tags under the record's provider:
        # inventory CloudServiceService.create_resource() -> _convert_tags_to_hash(tags, provider)
        tags, tag_keys = _tag_bucket(doc.pop("tags"), doc["provider"]) if "tags" in doc else ({}, {})
        now = now_iso()
        doc = {
            "cloud_service_id": new_id("cloud-svc"),
            "state": ACTIVE,
            "data": {},
            "metadata": {},
            **doc,
            "tags": tags,
            "tag_keys": tag_keys,
            "domain_id": claims.domain_id,
            "workspace_id": _workspace(claims, self.backend),
            "created_at": now,
            "updated_at": now,
        }
        self.store.insert(CLOUD_SERVICES, doc["cloud_service_id"], doc, ACTIVE, ref_resource_id=resource_id)
        return to_msg(presented(doc), cloud_service_pb2.CloudServiceInfo)

    @rpc("CloudService.update")
    def update(self, request: cloud_service_pb2.UpdateCloudServiceRequest,
               claims: Claims) -> cloud_service_pb2.CloudServiceInfo:
        doc = self._load_live(request.cloud_service_id, claims)
        given = to_dict(request)  # proto3: only non-default fields count as "present"
        given.pop("cloud_service_id", None)
        if "tags" in given:
            _file_tags(doc, given.pop("tags"), CUSTOM)
        for key in _MERGED_ON_UPDATE:
            if key in given:
                doc[key] = {**(doc.get(key) or {}), **given.pop(key)}
        doc.update(given)
        doc["updated_at"] = now_iso()
        resource_id = (doc.get("reference") or {}).get("resource_id")
        self.store.replace(CLOUD_SERVICES, doc["cloud_service_id"], doc, doc["state"], ref_resource_id=resource_id)
        return to_msg(presented(doc), cloud_service_pb2.CloudServiceInfo)

    @rpc("CloudService.delete")
    def delete(self, request: cloud_service_pb2.CloudServiceRequest, claims: Claims) -> empty_pb2.Empty:
        doc = self._load_live(request.cloud_service_id, claims)
        doc["state"] = DELETED
        doc["deleted_at"] = now_iso()
        self.store.replace(CLOUD_SERVICES, doc["cloud_service_id"], doc, DELETED,
                           ref_resource_id=(doc.get("reference") or {}).get("resource_id"))
        return empty_pb2.Empty()

    @rpc("CloudService.get")
    def get(self, request: cloud_service_pb2.CloudServiceRequest,
            claims: Claims) -> cloud_service_pb2.CloudServiceInfo:
        # a deleted record still answers, with its state DELETED (inventory CloudServiceService.get)
        return to_msg(presented(self._load(request.cloud_service_id, claims)), cloud_service_pb2.CloudServiceInfo)

    @rpc("CloudService.list")
    def list(self, request: cloud_service_pb2.CloudServiceQuery,
             claims: Claims) -> cloud_service_pb2.CloudServicesInfo:
        extra = request_filters(request, rename={"ip_address": "ip_addresses"}, skip=("project_group_id",))
        spec = query.parse(query_dict(request), [*scope_filters(claims), *extra])
        include_deleted = spec.mentions("state")
        ref_ids = spec.lookup_values("reference.resource_id")
        counted = query.plain_eq(spec, STRING_FIELDS) if spec.count_only else None
        if counted is not None:
            return cloud_service_pb2.CloudServicesInfo(
                total_count=self.store.count_eq(CLOUD_SERVICES, include_deleted, counted))
        if ref_ids is not None:
            docs = self.store.cloud_services_by_ref(ref_ids, include_deleted=include_deleted)
            results, total = query.run(docs, spec, "cloud_service_id")
        else:  # a listing, often paged: the selection is kept until the next write
            selected = self.store.scan_selected(CLOUD_SERVICES, include_deleted, query.selection_key(spec),
                                                lambda docs: query.select_sorted(docs, spec))
            results, total = query.run((), spec, "cloud_service_id", selected=selected)
        return cloud_service_pb2.CloudServicesInfo(
            results=[to_msg(presented(d), cloud_service_pb2.CloudServiceInfo) for d in results], total_count=total)


# inventory model/cloud_service_type_model.py CloudServiceType.meta["updatable_fields"] (of the request's)
_TYPE_UPDATABLE = ("service_code", "is_primary", "is_major", "resource_type", "metadata", "labels", "tags")


class CloudServiceTypeService(cloud_service_type_pb2_grpc.CloudServiceTypeServicer):
    """Cloud service types, unique by ``provider.group.name`` per workspace."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store

    @rpc("CloudServiceType.create")
    def create(self, request: cloud_service_type_pb2.CreateCloudServiceTypeRequest,
               claims: Claims) -> cloud_service_type_pb2.CloudServiceTypeInfo:
        doc = to_dict(request, with_defaults=True)
        require(doc, "name", "provider", "group")
        key = f"{doc['provider']}.{doc['group']}.{doc['name']}"
        now = now_iso()
        workspace_id = _workspace(claims, self.backend)
        doc = {
            "cloud_service_type_id": new_id("cloud-svc-type"),
            "cloud_service_type_key": key,
            "metadata": {},
            "tags": {},
            "labels": [],
            **doc,
            "domain_id": claims.domain_id,
            "workspace_id": workspace_id,
            "created_at": now,
            "updated_at": now,
        }
        try:
            self.store.insert(CLOUD_SERVICE_TYPES, doc["cloud_service_type_id"], doc,
                              ukey=f"{claims.domain_id}|{workspace_id}|{key}")
        except DuplicateKey:
            raise errors.already_exists("cloud_service_type_key", key) from None
        return to_msg(doc, cloud_service_type_pb2.CloudServiceTypeInfo)

    def _load(self, cloud_service_type_id: str, claims: Claims, in_workspace: bool = True) -> dict:
        """inventory CloudServiceTypeManager.get_cloud_service_type(id, domain_id[, workspace_id])."""
        require({"cloud_service_type_id": cloud_service_type_id}, "cloud_service_type_id")
        doc = self.store.get(CLOUD_SERVICE_TYPES, cloud_service_type_id)
        scope = scope_filters(claims) if in_workspace else scope_filters(claims)[:1]
        if doc is None or not all(query.matches(doc, query.condition(i)) for i in scope):
            raise errors.not_found("cloud_service_type_id", cloud_service_type_id)
        return doc

    @rpc("CloudServiceType.update")
    def update(self, request: cloud_service_type_pb2.UpdateCloudServiceTypeRequest,
               claims: Claims) -> cloud_service_type_pb2.CloudServiceTypeInfo:
        """inventory service/cloud_service_type_service.py CloudServiceTypeService.update_resource():
        the type is looked up by id in the domain, and each field the request holds replaces the
        stored one whole (the model's updatable_fields: service_code, is_primary, is_major,
        resource_type, metadata, labels, tags). proto3: a field left at its default is not sent
        (python-core's grpc layer reads requests with MessageToDict), so False cannot be set."""
        doc = self._load(request.cloud_service_type_id, claims, in_workspace=False)
        given = to_dict(request)
        given.pop("cloud_service_type_id", None)
        doc.update({k: v for k, v in given.items() if k in _TYPE_UPDATABLE})
        doc["updated_at"] = now_iso()
        self.store.replace(CLOUD_SERVICE_TYPES, doc["cloud_service_type_id"], doc)
        return to_msg(doc, cloud_service_type_pb2.CloudServiceTypeInfo)

    @rpc("CloudServiceType.get")
    def get(self, request: cloud_service_type_pb2.CloudServiceTypeRequest,
            claims: Claims) -> cloud_service_type_pb2.CloudServiceTypeInfo:
        return to_msg(self._load(request.cloud_service_type_id, claims), cloud_service_type_pb2.CloudServiceTypeInfo)

    @rpc("CloudServiceType.delete")
    def delete(self, request: cloud_service_type_pb2.CloudServiceTypeRequest, claims: Claims) -> empty_pb2.Empty:
        doc = self._load(request.cloud_service_type_id, claims)
        self.store.delete(CLOUD_SERVICE_TYPES, doc["cloud_service_type_id"])
        return empty_pb2.Empty()

    @rpc("CloudServiceType.list")
    def list(self, request: cloud_service_type_pb2.CloudServiceTypeQuery,
             claims: Claims) -> cloud_service_type_pb2.CloudServiceTypesInfo:
        spec = query.parse(query_dict(request), [*scope_filters(claims), *request_filters(request)])
        results, total = query.run(self.store.scan(CLOUD_SERVICE_TYPES), spec, "cloud_service_type_id")
        return cloud_service_type_pb2.CloudServiceTypesInfo(
            results=[to_msg(d, cloud_service_type_pb2.CloudServiceTypeInfo) for d in results], total_count=total)


class RegionService(region_pb2_grpc.RegionServicer):
    """Regions, unique by ``provider.region_code`` per workspace."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store

    @rpc("Region.create")
    def create(self, request: region_pb2.CreateRegionRequest, claims: Claims) -> region_pb2.RegionInfo:
        doc = to_dict(request, with_defaults=True)
        require(doc, "name", "region_code", "provider")
        key = f"{doc['provider']}.{doc['region_code']}"
        now = now_iso()
        workspace_id = _workspace(claims, self.backend)
        doc = {
            "region_id": new_id("region"),
            "region_key": key,
            "tags": {},
            **doc,
            "domain_id": claims.domain_id,
            "workspace_id": workspace_id,
            "created_at": now,
            "updated_at": now,
        }
        try:
            self.store.insert(REGIONS, doc["region_id"], doc, ukey=f"{claims.domain_id}|{workspace_id}|{key}")
        except DuplicateKey:
            raise errors.already_exists("region_key", key) from None
        return to_msg(doc, region_pb2.RegionInfo)

    @rpc("Region.update")
    def update(self, request: region_pb2.UpdateRegionRequest, claims: Claims) -> region_pb2.RegionInfo:
        """inventory service/region_service.py RegionService.update_resource(): looked up by id in the
        caller's workspace; ``name`` and ``tags`` (replaced whole) when the request holds them."""
        require({"region_id": request.region_id}, "region_id")
        doc = self.store.get(REGIONS, request.region_id)
        if doc is None or not in_scope(doc, claims):
            raise errors.not_found("region_id", request.region_id)
        given = to_dict(request)
        doc.update({k: v for k, v in given.items() if k in ("name", "tags")})
        doc["updated_at"] = now_iso()
        self.store.replace(REGIONS, doc["region_id"], doc)
        return to_msg(doc, region_pb2.RegionInfo)

    @rpc("Region.list")
    def list(self, request: region_pb2.RegionQuery, claims: Claims) -> region_pb2.RegionsInfo:
        spec = query.parse(query_dict(request), [*scope_filters(claims), *request_filters(request)])
        results, total = query.run(self.store.scan(REGIONS), spec, "region_id")
        return region_pb2.RegionsInfo(results=[to_msg(d, region_pb2.RegionInfo) for d in results],
                                      total_count=total)
