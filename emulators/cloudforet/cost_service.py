"""cost_analysis.v1 Cost: create, delete, get, list and stat (distinct only), as cost-analysis 2.0.108.

What 2.0.108 does and this follows (spaceone-cost-analysis 2.0.108, service/cost_service.py and
manager/cost_manager.py; proven against the real service by tests/conformance):
- ``create``: ``@check_required(["cost", "data_source_id", "billed_date", "project_id", "domain_id"])``,
  ``role_types=["WORKSPACE_OWNER"]``, the project checked with identity ``Project.get`` (NOT_FOUND);
  two identical creates store two rows. ``delete``: WORKSPACE_OWNER, within its workspace.
- ``list``: ``@check_required(["data_source_id", "domain_id"])`` (the request's own field; in the
  filter only it is ERROR_REQUIRED_PARAMETER), and ``CostManager._change_filter_v_workspace_id``: a
  workspace token's ``workspace_id`` filter becomes ``workspace_id in [v_workspace_id of the data
  source's DataSourceAccounts]``. This emulator keeps no DataSourceAccount (they come from account
  routing, which the collector's plugin does not use), so a workspace-scoped list finds nothing;
  domain scope sees every row.
``create`` can be switched to answer ERROR_NOT_SUPPORT_API, as servers
released from 2025 on do, so the collector's fallback path can be tested.
"""
from __future__ import annotations

from datetime import datetime

import grpc
from google.protobuf import empty_pb2, struct_pb2
from spaceone.api.cost_analysis.v1 import cost_pb2, cost_pb2_grpc

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
from .errors import ApiError
from .store import COSTS

NOT_SUPPORTED_MESSAGE = "ERROR_NOT_SUPPORT_API: Cost.create is not supported. Use a cost data source plugin."


def _usage_unit(value: float | str) -> str:
    """``usage_unit`` is a float in CreateCostRequest (a proto mistake) but a string in CostInfo."""
    if isinstance(value, str):
        return value
    return "" if not value else f"{value:g}"


class CostService(cost_pb2_grpc.CostServicer):
    """Stores costs as rows; never dedupes, like the real 2.0.108 server."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store

    @rpc("Cost.create")
    def create(self, request: cost_pb2.CreateCostRequest, claims: Claims) -> cost_pb2.CostInfo:
        cfg = self.backend.config
        if cfg.cost_create_unsupported:
            raise ApiError(grpc.StatusCode.FAILED_PRECONDITION, NOT_SUPPORTED_MESSAGE)
        doc = to_dict(request, with_defaults=True)
        require(doc, "data_source_id", "billed_date", "project_id")
        workspace = claims.workspace_id or cfg.workspace_id
        if cfg.project(doc["project_id"], workspace) is None:  # IdentityManager.get_project
            raise errors.not_found("project_id", doc["project_id"])
        billed_date = doc["billed_date"]
        try:
            if len(billed_date) != 10:
                raise ValueError(billed_date)
            datetime.strptime(billed_date, "%Y-%m-%d")
        except ValueError:
            raise errors.invalid("billed_date", "expected YYYY-MM-DD") from None
        if doc["data_source_id"] not in cfg.cost_data_sources:
            raise errors.not_found("data_source_id", doc["data_source_id"])
        region_key = f"{doc['provider']}.{doc['region_code']}" if doc["provider"] and doc["region_code"] else ""
        doc = {
            "cost_id": new_id("cost"),
            "tags": {},
            "additional_info": {},
            "data": {},
            **doc,
            "usage_unit": _usage_unit(doc.get("usage_unit", 0.0)),
            "region_key": region_key,
            "billed_year": billed_date[:4],
            "billed_month": billed_date[:7],
            "domain_id": claims.domain_id,
            "workspace_id": workspace,
            "created_at": now_iso(),
        }
        self.store.insert(COSTS, doc["cost_id"], doc)
        return to_msg(doc, cost_pb2.CostInfo)

    @rpc("Cost.get")
    def get(self, request: cost_pb2.CostRequest, claims: Claims) -> cost_pb2.CostInfo:
        require({"cost_id": request.cost_id}, "cost_id")
        doc = self.store.get(COSTS, request.cost_id)
        if doc is None or not in_scope(doc, claims):
            raise errors.not_found("cost_id", request.cost_id)
        return to_msg(doc, cost_pb2.CostInfo)

    @rpc("Cost.delete")
    def delete(self, request: cost_pb2.CostRequest, claims: Claims) -> empty_pb2.Empty:
        require({"cost_id": request.cost_id}, "cost_id")
        doc = self.store.get(COSTS, request.cost_id)
        if doc is None or not in_scope(doc, claims):
            raise errors.not_found("cost_id", request.cost_id)
        self.store.delete(COSTS, request.cost_id)
        return empty_pb2.Empty()

    @rpc("Cost.list")
    def list(self, request: cost_pb2.CostQuery, claims: Claims) -> cost_pb2.CostsInfo:
        require({"data_source_id": request.data_source_id}, "data_source_id")
        scope = scope_filters(claims)
        if claims.scope == auth.SCOPE_WORKSPACE:  # through the data source's accounts: none here
            scope = [f for f in scope if f["k"] != "workspace_id"] + [{"k": "workspace_id", "v": [], "o": "in"}]
        spec = query.parse(query_dict(request), [*scope, *request_filters(request, skip=("project_group_id",))])
        resources = spec.lookup_values("resource")
        if resources is not None:
            results, total = query.run(self.store.costs_by_resource(resources), spec, "cost_id")
        else:  # a listing, often paged: the selection is kept until the next write
            selected = self.store.scan_selected(COSTS, True, query.selection_key(spec),
                                                lambda docs: query.select_sorted(docs, spec))
            results, total = query.run((), spec, "cost_id", selected=selected)
        return cost_pb2.CostsInfo(results=[to_msg(d, cost_pb2.CostInfo) for d in results], total_count=total)

    @rpc("Cost.stat")
    def stat(self, request: cost_pb2.CostStatQuery, claims: Claims) -> struct_pb2.Struct:
        qd = query_dict(request)
        if not qd.get("distinct"):
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT,
                           "ERROR_NOT_SUPPORT_QUERY_OPTION: Cost.stat supports only query.distinct")
        spec = query.parse(qd, [*scope_filters(claims), *request_filters(request)])
        values, total = query.distinct(self.store.scan(COSTS), spec)
        out = struct_pb2.Struct()
        out.update({"results": values, "total_count": total})
        return out
