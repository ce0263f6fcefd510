"""inventory.v1 Metric Explorer: Namespace, Metric (create/update/delete/get/list/run/test), MetricData.

As the real inventory service (cloudforet-io/inventory at 65d4f208) does it:

- ``Namespace`` and ``Metric`` are unique by id per domain; ``resource_group`` DOMAIN stores
  ``workspace_id "*"``, WORKSPACE the caller's workspace (service/namespace_service.py and
  metric_service.py ``create``); writes need DOMAIN_ADMIN or WORKSPACE_OWNER; a workspace token
  reads its workspace's and the domain's (``change_value_by_rule("APPEND", "workspace_id", "*")``);
  a managed one (``is_managed``) cannot be changed.
- A metric is an analyze query over the cloud services of ``resource_type``
  (``inventory.CloudService:<provider>.<group>.<type>``): manager/metric_manager.py
  ``analyze_resource`` / ``_analyze_cloud_service`` filter by domain, provider, group and type
  (and the metric's workspace for WORKSPACE ones), leave DELETED records out, and group by
  ``collection_info.service_account_id``, ``project_id``, ``workspace_id`` before the metric's own
  ``group_by``; each ``group_by`` result is named by its ``name`` (python-core MongoModel
  ``_make_group_keys``). ``create``, ``update`` and ``run`` compute today's data at once
  (``run_metric_query``): one MetricData per group, ``labels`` holding the metric's groups by name,
  replacing what an earlier job wrote for the same day (``_delete_changed_metric_data``); a GAUGE
  also replaces its month's row (``MonthlyMetricData``). An ``update`` of ``query_options`` deletes
  the metric's data first. COUNTER metrics count what was created the day before (``date_field``).
- ``MetricData.list`` and ``analyze`` read DONE data (``_append_status_filter``); ``analyze``
  needs granularity, start, end and fields (service/metric_data_service.py ``_check_required``)
  and reads ``created_date`` / ``created_month`` / ``created_year`` by granularity.

Not emulated: ``unwind``, ``select`` and ``lookup`` in a metric's query options (refused with
INVALID_ARGUMENT), managed namespaces and metrics, the daily scheduler (call ``Metric.run``).
"""
from __future__ import annotations

import copy
import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import grpc
from google.protobuf import empty_pb2, struct_pb2
from spaceone.api.inventory.v1 import (
    metric_data_pb2,
    metric_data_pb2_grpc,
    metric_pb2,
    metric_pb2_grpc,
    namespace_pb2,
    namespace_pb2_grpc,
)

from . import base, errors, query
from .auth import SCOPE_WORKSPACE, Claims
from .base import Backend, new_id, now_iso, query_dict, request_filters, require, rpc, to_dict, to_msg
from .cost_analyze import aggregate, analyze, check_fields
from .errors import ApiError
from .store import CLOUD_SERVICES, METRIC_DATA, METRICS, MONTHLY_METRIC_DATA, NAMESPACES, DuplicateKey

CATEGORIES = ("ASSET", "SECURITY", "INFORMATION", "RECOMMENDATION")
DATE_FIELDS = {"DAILY": "created_date", "MONTHLY": "created_month", "YEARLY": "created_year"}
# metric_manager._analyze_cloud_service: what every cloud-service metric groups by first
DEFAULT_GROUPS = (("collection_info.service_account_id", "service_account_id"), ("project_id", "project_id"),
                  ("workspace_id", "workspace_id"))
# metric_manager._get_labels_info: the labels every metric has before its own
BASE_LABELS = [
    {"key": "workspace_id", "name": "Workspace",
     "reference": {"resource_type": "identity.Workspace", "reference_key": "workspace_id"}},
    {"key": "project_id", "name": "Project",
     "reference": {"resource_type": "identity.Project", "reference_key": "project_id"}},
    {"key": "service_account_id", "name": "Service Account", "search_key": "collection_info.service_account_id",
     "reference": {"resource_type": "identity.ServiceAccount", "reference_key": "service_account_id"}},
]
NOT_EMULATED = ("unwind", "select", "lookup", "add_fields")
log = logging.getLogger(__name__)
Rows = list[dict]  # (the services' ``list`` methods shadow the builtin in their class bodies)


def wrong_query(query_options: dict) -> ApiError:
    """inventory error/metric.py ERROR_WRONG_QUERY_OPTIONS, what metric_manager.analyze_resource answers
    for any failure of a metric's query: it names the query, never the reason."""
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, "ERROR_WRONG_QUERY_OPTIONS: Wrong query options. "
                    f"(query_options = {json.dumps(query_options)})")


def _failed(reason: str) -> ApiError:
    """A failure inside a metric's query (logged; answered as ``wrong_query``)."""
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, reason)


def _readable(claims: Claims) -> list[dict]:
    """Domain, and for a workspace token its workspace or the domain's ("*")."""
    items: list[dict[str, Any]] = [{"k": "domain_id", "v": claims.domain_id, "o": "eq"}]
    if claims.scope == SCOPE_WORKSPACE and claims.workspace_id:
        items.append({"k": "workspace_id", "v": [claims.workspace_id, "*"], "o": "in"})
    return items


def _visible(doc: dict | None, claims: Claims) -> bool:
    return doc is not None and all(query.matches(doc, query.condition(i)) for i in _readable(claims))


def _workspace_for(resource_group: str, claims: Claims) -> str:
    if resource_group == "WORKSPACE":
        if not claims.workspace_id:
            raise errors.required("workspace_id")
        return claims.workspace_id
    if resource_group != "DOMAIN":
        raise errors.invalid("resource_group", "must be DOMAIN or WORKSPACE")
    return "*"


def _struct(value: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


class NamespaceService(namespace_pb2_grpc.NamespaceServicer):
    def __init__(self, backend: Backend) -> None:
        self.backend, self.store = backend, backend.store

    def _load(self, namespace_id: str, claims: Claims) -> dict:
        require({"namespace_id": namespace_id}, "namespace_id")
        doc = self.store.get(NAMESPACES, f"{claims.domain_id}|{namespace_id}")
        if not _visible(doc, claims):
            raise errors.not_found("namespace_id", namespace_id)
        return doc  # type: ignore[return-value]

    @rpc("Namespace.create")
    def create(self, request: namespace_pb2.CreateNamespaceRequest, claims: Claims) -> namespace_pb2.NamespaceInfo:
        doc = to_dict(request)
        require(doc, "name", "category", "resource_type", "resource_group")
        if doc["category"] not in CATEGORIES:
            raise errors.invalid("category", f"must be one of {list(CATEGORIES)}")
        now = now_iso()
        doc = {"namespace_id": doc.get("namespace_id") or new_id("ns"), "group": "etc", "icon": "", "tags": {},
               **doc, "is_managed": False, "workspace_id": _workspace_for(doc["resource_group"], claims),
               "domain_id": claims.domain_id, "created_at": now, "updated_at": now}
        key = f"{claims.domain_id}|{doc['namespace_id']}"
        try:
            self.store.insert(NAMESPACES, key, doc, ukey=key)
        except DuplicateKey:
            raise errors.already_exists("namespace_id", doc["namespace_id"]) from None
        return to_msg(doc, namespace_pb2.NamespaceInfo)

    @rpc("Namespace.update")
    def update(self, request: namespace_pb2.UpdateNamespaceRequest, claims: Claims) -> namespace_pb2.NamespaceInfo:
        doc = self._load(request.namespace_id, claims)
        if doc.get("is_managed"):
            raise errors.permission_denied("Namespace.update", ["(not a managed namespace)"], claims.role_type)
        given = to_dict(request)
        doc.update({k: v for k, v in given.items() if k in ("name", "icon", "tags")})
        doc["updated_at"] = now_iso()
        self.store.replace(NAMESPACES, f"{claims.domain_id}|{doc['namespace_id']}", doc)
        return to_msg(doc, namespace_pb2.NamespaceInfo)

    @rpc("Namespace.delete")
    def delete(self, request: namespace_pb2.NamespaceRequest, claims: Claims) -> empty_pb2.Empty:
        doc = self._load(request.namespace_id, claims)
        self.store.delete(NAMESPACES, f"{claims.domain_id}|{doc['namespace_id']}")
        return empty_pb2.Empty()

    @rpc("Namespace.get")
    def get(self, request: namespace_pb2.NamespaceRequest, claims: Claims) -> namespace_pb2.NamespaceInfo:
        return to_msg(self._load(request.namespace_id, claims), namespace_pb2.NamespaceInfo)

    @rpc("Namespace.list")
    def list(self, request: namespace_pb2.NamespaceQuery, claims: Claims) -> namespace_pb2.NamespacesInfo:
        spec = query.parse(query_dict(request), [*_readable(claims), *request_filters(request)])
        results, total = query.run(self.store.scan(NAMESPACES), spec, "namespace_id")
        return namespace_pb2.NamespacesInfo(results=[to_msg(d, namespace_pb2.NamespaceInfo) for d in results],
                                            total_count=total)


def labels_info(query_options: dict) -> list[dict]:
    """metric_manager._get_labels_info: the base labels, then each group_by as ``labels.<name>``."""
    out = copy.deepcopy(BASE_LABELS)
    for g in query_options.get("group_by", []):
        label = dict(g) if isinstance(g, dict) else {"key": g, "name": str(g).rsplit(".", 1)[-1]}
        key = label.get("key")  # .get, as the real one: a group without a name fails in the query instead
        if key not in ("service_account_id", "project_id", "workspace_id"):
            label["key"] = f"labels.{label.get('name')}"
        label.setdefault("search_key", key)
        out.append(label)
    return out


def _groups(group_by: Any) -> list[tuple[str, str]]:
    """python-core MongoModel._make_group_keys: a key names itself by its last part; a dict needs both."""
    defaults = {k for k, _ in DEFAULT_GROUPS}
    out = list(DEFAULT_GROUPS)
    for g in group_by or []:
        if isinstance(g, dict):
            if not (g.get("key") and g.get("name")):
                raise _failed("group_by option requires a key and name.")
            key, name = str(g["key"]), str(g["name"])
        elif isinstance(g, str):
            key, name = g, g.rsplit(".", 1)[-1]
        else:
            raise _failed("group_by option should be dict or str type.")
        if key not in defaults:
            out.append((key, name))
    return out


def _today() -> datetime:
    return datetime.fromtimestamp(base.wall_clock(), timezone.utc)


class MetricService(metric_pb2_grpc.MetricServicer):
    def __init__(self, backend: Backend) -> None:
        self.backend, self.store = backend, backend.store

    def _key(self, claims: Claims, metric_id: str) -> str:
        return f"{claims.domain_id}|{metric_id}"

    def _load(self, metric_id: str, claims: Claims) -> dict:
        require({"metric_id": metric_id}, "metric_id")
        doc = self.store.get(METRICS, self._key(claims, metric_id))
        if not _visible(doc, claims):
            raise errors.not_found("metric_id", metric_id)
        return doc  # type: ignore[return-value]

    def _writable(self, metric_id: str, claims: Claims, method: str) -> dict:
        doc = self._load(metric_id, claims)
        if doc.get("is_managed"):
            raise errors.permission_denied(method, ["(not a managed metric)"], claims.role_type)
        return doc

    @rpc("Metric.create")
    def create(self, request: metric_pb2.CreateMetricRequest, claims: Claims) -> metric_pb2.MetricInfo:
        doc = to_dict(request)
        require(doc, "name", "metric_type", "query_options", "namespace_id", "resource_group")
        workspace_id = _workspace_for(doc["resource_group"], claims)
        if not doc.get("resource_type"):  # metric_service._get_resource_type_from_namespace
            ns = self.store.get(NAMESPACES, f"{claims.domain_id}|{doc['namespace_id']}")
            if ns is None:
                raise errors.required("resource_type")
            doc["resource_type"] = ns["resource_type"]
        if doc["metric_type"] == "COUNTER":
            doc["date_field"] = doc.get("date_field") or "created_at"
        now = now_iso()
        doc = {"metric_id": doc.get("metric_id") or new_id("metric"), "unit": "", "tags": {}, **doc,
               "labels_info": labels_info(doc["query_options"]), "is_managed": False, "status": "DONE",
               "workspace_id": workspace_id, "domain_id": claims.domain_id, "created_at": now, "updated_at": now}
        self._analyze(doc)  # a query the service cannot run is refused before anything is stored
        key = self._key(claims, doc["metric_id"])
        try:
            self.store.insert(METRICS, key, doc, ukey=key)
        except DuplicateKey:
            raise errors.already_exists("metric_id", doc["metric_id"]) from None
        self._run(doc)
        return to_msg(doc, metric_pb2.MetricInfo)

    @rpc("Metric.update")
    def update(self, request: metric_pb2.UpdateMetricRequest, claims: Claims) -> metric_pb2.MetricInfo:
        doc = self._writable(request.metric_id, claims, "Metric.update")
        given = {k: v for k, v in to_dict(request).items()
                 if k in ("name", "query_options", "date_field", "unit", "tags")}
        if "query_options" in given:
            self._analyze({**doc, **given})
            given["labels_info"] = labels_info(given["query_options"])
            self._delete_data(doc)  # metric_manager.update_metric_by_vo: the old query's data goes
        doc.update(given)
        doc["updated_at"] = now_iso()
        self.store.replace(METRICS, self._key(claims, doc["metric_id"]), doc)
        self._run(doc)
        return to_msg(doc, metric_pb2.MetricInfo)

    @rpc("Metric.delete")
    def delete(self, request: metric_pb2.MetricRequest, claims: Claims) -> empty_pb2.Empty:
        doc = self._writable(request.metric_id, claims, "Metric.delete")
        self.store.delete(METRICS, self._key(claims, doc["metric_id"]))
        self._delete_data(doc)
        return empty_pb2.Empty()

    @rpc("Metric.run")
    def run(self, request: metric_pb2.MetricRequest, claims: Claims) -> empty_pb2.Empty:
        self._run(self._load(request.metric_id, claims))
        return empty_pb2.Empty()

    @rpc("Metric.test")
    def test(self, request: metric_pb2.MetricTestRequest, claims: Claims) -> struct_pb2.Struct:
        doc = self._load(request.metric_id, claims)
        options = to_dict(request).get("query_options") or doc["query_options"]
        return _struct({"results": self._analyze({**doc, "query_options": options}), "more": False})

    @rpc("Metric.get")
    def get(self, request: metric_pb2.MetricRequest, claims: Claims) -> metric_pb2.MetricInfo:
        return to_msg(self._load(request.metric_id, claims), metric_pb2.MetricInfo)

    @rpc("Metric.list")
    def list(self, request: metric_pb2.MetricQuery, claims: Claims) -> metric_pb2.MetricsInfo:
        spec = query.parse(query_dict(request), [*_readable(claims), *request_filters(request)])
        results, total = query.run(self.store.scan(METRICS), spec, "metric_id")
        return metric_pb2.MetricsInfo(results=[to_msg(d, metric_pb2.MetricInfo) for d in results], total_count=total)

    # -- the query -------------------------------------------------------------------
    def _analyze(self, metric: dict) -> Rows:
        """metric_manager.analyze_resource + _analyze_cloud_service, over the stored cloud services: any
        failure is ERROR_WRONG_QUERY_OPTIONS of the metric's query_options, as analyze_resource answers."""
        for key in NOT_EMULATED:  # not a failure of the query: a limit of the emulator, said as such
            if metric["query_options"].get(key):
                raise ApiError(grpc.StatusCode.UNIMPLEMENTED, f"the emulator does not run query_options.{key}")
        try:
            return self._analyze_cloud_service(metric)
        except ApiError as err:
            log.info("metric %s: query failed: %s", metric["metric_id"], err.message)
            raise wrong_query(metric["query_options"]) from None

    def _analyze_cloud_service(self, metric: dict) -> Rows:
        options = copy.deepcopy(metric["query_options"])
        resource_type = str(metric.get("resource_type") or "")
        filters = list(options.get("filter") or [])
        filters += [{"k": "domain_id", "v": metric["domain_id"], "o": "eq"}]
        if resource_type.startswith("inventory.CloudService:"):
            parts = resource_type.split(":", 1)[1].split(".")
            if len(parts) != 3:
                raise _failed(f"Not support resource type. (resource_type = {resource_type})")
            filters += [{"k": k, "v": v, "o": "eq"}
                        for k, v in zip(("provider", "cloud_service_group", "cloud_service_type"), parts)]
        elif resource_type != "inventory.CloudService":
            raise _failed(f"Not support resource type. (resource_type = {resource_type})")
        if metric.get("resource_group") == "WORKSPACE":
            filters.append({"k": "workspace_id", "v": metric["workspace_id"], "o": "eq"})
        if metric.get("metric_type") == "COUNTER":  # metric_manager._append_datetime_filter: the day before
            end = _today().replace(hour=0, minute=0, second=0, microsecond=0)
            start = end - timedelta(days=1)
            date_field = metric.get("date_field") or "created_at"
            filters += [{"k": date_field, "v": start.strftime("%Y-%m-%dT%H:%M:%S"), "o": "gte"},
                        {"k": date_field, "v": end.strftime("%Y-%m-%dT%H:%M:%S"), "o": "lt"}]
        fields = check_fields(options.get("fields"))
        if "value" not in fields:
            raise _failed("query_options.fields must hold 'value' (what each MetricData keeps)")
        spec = query.parse({"filter": filters, "filter_or": options.get("filter_or", [])})
        live = self.store.scan(CLOUD_SERVICES, include_deleted=False)  # _append_state_query: no DELETED
        return aggregate(query.select(live, spec), _groups(options.get("group_by")), fields)

    def _run(self, metric: dict) -> None:
        """metric_manager.run_metric_query: today's MetricData (and a GAUGE's month) from the query."""
        results = self._analyze(metric)
        job = new_id("metric-job")
        now = _today()
        day, month, year = now.strftime("%Y-%m-%d"), now.strftime("%Y-%m"), now.strftime("%Y")
        for r in results:
            data = {"metric_id": metric["metric_id"], "metric_job_id": job, "status": "DONE",
                    "value": float(r.get("value") or 0), "unit": metric.get("unit", ""),
                    "labels": {k: v for k, v in r.items()
                               if k not in ("service_account_id", "project_id", "workspace_id", "domain_id", "value")},
                    "namespace_id": metric["namespace_id"], "service_account_id": r.get("service_account_id"),
                    "project_id": r.get("project_id"), "workspace_id": r.get("workspace_id"),
                    "domain_id": metric["domain_id"], "created_year": year, "created_month": month,
                    "created_date": day}
            self.store.insert(METRIC_DATA, new_id("metric-data"), data, "DONE")
            if metric.get("metric_type") == "GAUGE":
                self.store.insert(MONTHLY_METRIC_DATA, new_id("metric-monthly"), data, "DONE")
        # _delete_changed_metric_data / _delete_changed_monthly_metric_data: the day's (month's) earlier jobs
        self._delete_data(metric, lambda d: d["created_date"] == day and d["metric_job_id"] != job,
                          lambda d: d["created_month"] == month and d["metric_job_id"] != job)

    def _delete_data(self, metric: dict, daily=lambda d: True, monthly=lambda d: True) -> None:
        for table, keep_out in ((METRIC_DATA, daily), (MONTHLY_METRIC_DATA, monthly)):
            for row_id, d in self.store.scan_with_ids(table):
                if d["metric_id"] == metric["metric_id"] and d["domain_id"] == metric["domain_id"] and keep_out(d):
                    self.store.delete(table, row_id)


class MetricDataService(metric_data_pb2_grpc.MetricDataServicer):
    def __init__(self, backend: Backend) -> None:
        self.backend, self.store = backend, backend.store

    def _scope(self, request: Any, claims: Claims) -> Rows:
        items = [{"k": "domain_id", "v": claims.domain_id, "o": "eq"}, {"k": "status", "v": "DONE", "o": "eq"}]
        if claims.scope == SCOPE_WORKSPACE and claims.workspace_id:
            items.append({"k": "workspace_id", "v": claims.workspace_id, "o": "eq"})
        return [*items, *request_filters(request)]

    @rpc("MetricData.list")
    def list(self, request: metric_data_pb2.MetricDataQuery, claims: Claims) -> metric_data_pb2.MetricDatasInfo:
        spec = query.parse(query_dict(request), self._scope(request, claims))
        results, total = query.run(self.store.scan(METRIC_DATA), spec, "metric_id")
        return metric_data_pb2.MetricDatasInfo(
            results=[to_msg(d, metric_data_pb2.MetricDataInfo) for d in results], total_count=total)

    @rpc("MetricData.analyze")
    def analyze(self, request: metric_data_pb2.MetricDataAnalyzeQuery, claims: Claims) -> struct_pb2.Struct:
        qd = query_dict(request)
        for key in ("granularity", "start", "end", "fields"):  # MetricDataService._check_required
            if not qd.get(key):
                raise errors.required(key)
        start, end = str(qd["start"]), str(qd["end"])
        # metric_data_manager._check_date_range: one format, and the end (inclusive) not before the start
        if len(start) != len(end) or start > end:
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"ERROR_INVALID_DATE_RANGE: start = {start}, end = {end}, reason = "
                           + ("Start date and end date must be the same format." if len(start) != len(end)
                              else "End date must be greater than start date."))
        table = METRIC_DATA if qd["granularity"] == "DAILY" else MONTHLY_METRIC_DATA
        return _struct(analyze(self.store.scan(table), qd, self._scope(request, claims), DATE_FIELDS))
