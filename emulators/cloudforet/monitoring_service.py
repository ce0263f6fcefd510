"""monitoring.v1 DataSource (register/get/list) and Metric (list/get_data), proxied to the plugin.

As the real Monitoring service does (cloudforet-io/monitoring
``service/data_source_service.py``, ``service/metric_service.py``,
``manager/secret_manager.py``):
- ``register`` (DOMAIN_ADMIN) takes the ``plugin_info`` of a plugin in the
  repository: ``_check_plugin_info`` (plugin_id; a version for upgrade_mode
  MANUAL; secret_id or provider), the capability and provider come from the
  repository's plugin (``_check_plugin_capability``: monitoring_type METRIC|LOG
  and supported_schema), the endpoint from the plugin service (the version it
  resolved is kept), then the plugin's ``DataSource.init`` metadata. There is
  no register by host and port.
- ``Metric.list`` looks the resources (cloud_service_ids) up in inventory,
  takes each one's query at the plugin's ``required_keys[0]`` and merges the
  plugin's answers into ``{cloud_service_id: query}`` metric queries;
  ``Metric.get_data`` sends the metric query (with ``region_name``) to the
  plugin in chunks and merges the values. Both ask the plugin service for the
  endpoint first and pass the secret data of ``plugin_info.secret_id`` (or,
  with capability ``use_resource_secret``, of the resource's
  ``collection_info.secret_id``): without one the secret service refuses the
  empty secret_id, so the call fails.
The plugin is called as the real service calls it (reflection, short names:
see ``plugin_client``). Stand-in: a resource may also be named by its
``reference.resource_id`` (the VM uuid) instead of its cloud_service_id.
"""
from __future__ import annotations

import logging
from typing import cast

import grpc
from spaceone.api.monitoring.v1 import data_source_pb2, data_source_pb2_grpc, metric_pb2, metric_pb2_grpc

from . import errors, plugin_client, query
from .auth import Claims
from .base import Backend, in_scope, new_id, now_iso, query_dict, request_filters, require, rpc, to_dict, to_msg
from .errors import ApiError
from .plugin_service import PluginEndpoints
from .plugin_store import MON_DATA_SOURCES, PluginStore
from .store import CLOUD_SERVICES, DELETED

log = logging.getLogger(__name__)

MAX_REQUEST_LIMIT = 200  # resources per plugin call, like the real service's chunks


def load_data_source(backend: Backend, data_source_id: str, claims: Claims) -> dict:
    require({"data_source_id": data_source_id}, "data_source_id")
    doc = backend.store.get(MON_DATA_SOURCES, data_source_id)
    if doc is None or doc.get("domain_id") != claims.domain_id:
        raise errors.not_found("data_source_id", data_source_id)
    if doc.get("state") == "DISABLED":
        raise ApiError(grpc.StatusCode.FAILED_PRECONDITION,
                       f"ERROR_DATA_SOURCE_STATE_DISABLED: data_source_id = {data_source_id}")
    return doc


def check_plugin_info(info: dict) -> None:
    """DataSourceService._check_plugin_info."""
    if not info.get("plugin_id"):
        raise errors.required("plugin_info.plugin_id")
    if (info.get("upgrade_mode") or "AUTO") == "MANUAL" and not info.get("version"):
        raise errors.required("plugin_info.version")
    if not info.get("secret_id") and not info.get("provider"):
        raise errors.required("plugin_info.[secret_id | provider]")


def check_capability(capability: dict) -> None:
    """DataSourceService._check_plugin_capability."""
    if capability.get("monitoring_type") not in ("METRIC", "LOG"):
        raise ApiError(grpc.StatusCode.INTERNAL, "ERROR_WRONG_PLUGIN_SETTINGS: The plugin settings is incorrect. "
                                                 "(key = capability.monitoring_type)")
    if "supported_schema" not in capability:
        raise ApiError(grpc.StatusCode.INTERNAL, "ERROR_WRONG_PLUGIN_SETTINGS: The plugin settings is incorrect. "
                                                 "(key = capability.supported_schema)")


def secret_of(plugins: PluginStore, ds: dict, resource: dict, domain_id: str) -> dict:
    """SecretManager.get_secret_from_resource, then get_secret_data."""
    secret_id = ds["plugin_info"].get("secret_id") or ""
    if not secret_id and ds.get("capability", {}).get("use_resource_secret"):
        secret_id = (resource.get("collection_info") or {}).get("secret_id") or ""
        if not secret_id:
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, "ERROR_RESOURCE_SECRETS_NOT_EXISTS: There are no "
                           f"secrets in the resources. (resource_id = {resource.get('cloud_service_id')})")
    return plugins.secret(secret_id, domain_id)  # SecretManager.get_secret_data


class MonitoringDataSourceService(data_source_pb2_grpc.DataSourceServicer):
    def __init__(self, backend: Backend, plugins: PluginStore, endpoints: PluginEndpoints) -> None:
        self.backend, self.store, self.plugins, self.endpoints = backend, backend.store, plugins, endpoints

    @rpc("monitoring.DataSource.register")
    def register(self, request: data_source_pb2.RegisterDataSourceRequest, claims: Claims
                 ) -> data_source_pb2.DataSourceInfo:
        doc = to_dict(request)
        require(doc, "name", "plugin_info")
        info = dict(doc["plugin_info"])
        check_plugin_info(info)
        plugin = self.endpoints.repository.get(info["plugin_id"], claims.domain_id)  # RepositoryManager.get_plugin
        capability = dict(plugin.get("capability") or {})
        check_capability(capability)
        if any(d.get("name") == doc["name"] and d.get("domain_id") == claims.domain_id
               for d in self.store.scan(MON_DATA_SOURCES)):
            raise errors.already_exists("name, domain_id", doc["name"])  # name unique_with domain_id
        endpoint, version = self.endpoints.for_plugin_info(info, claims.domain_id)
        info["version"] = version
        options = info.get("options", {})
        # DataSourcePluginManager.init_plugin: dispatch("DataSource.init", {"options": options})
        init = cast(dict, self.backend.plugin_clients.connect(endpoint).dispatch(  # a unary method: a dict
            "DataSource.init", {"options": options}))
        ds = {
            "data_source_id": new_id("ds"),
            "name": doc["name"],
            "state": "ENABLED",
            "monitoring_type": capability["monitoring_type"],
            "provider": plugin.get("provider") or "",
            "capability": capability,
            "plugin_info": {**info, "metadata": init.get("metadata", {})},
            "tags": doc.get("tags", {}),
            "domain_id": claims.domain_id,
            "created_at": now_iso(),
        }
        self.store.insert(MON_DATA_SOURCES, ds["data_source_id"], ds, "ENABLED")
        return to_msg(ds, data_source_pb2.DataSourceInfo)

    @rpc("monitoring.DataSource.get")
    def get(self, request: data_source_pb2.DataSourceRequest, claims: Claims) -> data_source_pb2.DataSourceInfo:
        return to_msg(load_data_source(self.backend, request.data_source_id, claims), data_source_pb2.DataSourceInfo)

    @rpc("monitoring.DataSource.list")
    def list(self, request: data_source_pb2.DataSourceQuery, claims: Claims) -> data_source_pb2.DataSourcesInfo:
        spec = query.parse(query_dict(request), [{"k": "domain_id", "v": claims.domain_id, "o": "eq"},
                                                 *request_filters(request)])
        results, total = query.run(self.store.scan(MON_DATA_SOURCES), spec, "data_source_id")
        return data_source_pb2.DataSourcesInfo(results=[to_msg(d, data_source_pb2.DataSourceInfo) for d in results],
                                               total_count=total)


class MonitoringMetricService(metric_pb2_grpc.MetricServicer):
    def __init__(self, backend: Backend, plugins: PluginStore, endpoints: PluginEndpoints) -> None:
        self.backend, self.store, self.plugins, self.endpoints = backend, backend.store, plugins, endpoints

    def _plugin(self, ds: dict) -> plugin_client.PluginConnector:
        """The plugin's client at the endpoint the plugin service gives now (PluginManager.get_plugin_endpoint)."""
        endpoint, _ = self.endpoints.for_plugin_info(ds["plugin_info"], ds["domain_id"])
        return self.backend.plugin_clients.connect(endpoint)

    def _resources(self, ids: list[str], claims: Claims) -> dict[str, dict]:
        """id as given -> live cloud service in scope (by cloud_service_id, else by reference.resource_id)."""
        found: dict[str, dict] = {}
        by_ref = {(d.get("reference") or {}).get("resource_id"): d
                  for d in self.store.cloud_services_by_ref(ids, include_deleted=False) if in_scope(d, claims)}
        for rid in ids:
            doc = self.store.get(CLOUD_SERVICES, rid)
            if doc is None or doc.get("state") == DELETED or not in_scope(doc, claims):
                doc = by_ref.get(rid)
            if doc is not None:
                found[rid] = doc
        return found

    @staticmethod
    def _required_key(ds: dict) -> str:
        keys = (ds["plugin_info"].get("metadata") or {}).get("required_keys") or []
        if not keys:
            raise ApiError(grpc.StatusCode.FAILED_PRECONDITION,
                           f"ERROR_NOT_FOUND_REQUIRED_KEY: data_source_id = {ds['data_source_id']}")
        return str(keys[0])

    @rpc("monitoring.Metric.list")
    def list(self, request: metric_pb2.MetricRequest, claims: Claims) -> metric_pb2.MetricsInfo:
        ds = load_data_source(self.backend, request.data_source_id, claims)
        require({"resources": list(request.resources)}, "resources")
        key = self._required_key(ds)
        plugin = self._plugin(ds)
        options = ds["plugin_info"].get("options", {})
        available = {rid: False for rid in request.resources}
        per_resource: dict[str, list[dict]] = {}
        for rid, cs in self._resources(list(request.resources), claims).items():
            found = query.get_values(cs, key)
            q = found[0] if found and isinstance(found[0], dict) else {}
            secret = secret_of(self.plugins, ds, cs, claims.domain_id)
            try:  # DataSourcePluginManager.list_metrics
                answer = cast(dict, plugin.dispatch(  # a unary method: a dict
                    "Metric.list", {"options": options, "secret_data": secret, "query": q}))
            except plugin_client.PluginCallError as exc:  # the real service logs and skips the resource
                log.warning("Metric.list of %s failed: %s", rid, exc.message)
                continue
            available[rid] = True
            per_resource[cs["cloud_service_id"]] = list(answer.get("metrics", []))
        # Keep the metrics every available resource has; metric_query maps each resource to its query.
        merged: dict[str, dict] = {}
        common: set[str] | None = None
        for csid, metrics in per_resource.items():
            keys = {m["key"] for m in metrics}
            common = keys if common is None else common & keys
            for m in metrics:
                entry = merged.setdefault(m["key"], {**m, "metric_query": {}})
                entry["metric_query"][csid] = m.get("metric_query", {})
        metrics = [merged[k] for k in merged if common and k in common]
        return to_msg({"metrics": metrics, "available_resources": available, "domain_id": claims.domain_id},
                      metric_pb2.MetricsInfo)

    @rpc("monitoring.Metric.get_data")
    def get_data(self, request: metric_pb2.MetricDataRequest, claims: Claims) -> metric_pb2.MetricDataInfo:
        doc = to_dict(request)
        require(doc, "data_source_id", "metric_query", "metric", "start", "end")
        ds = load_data_source(self.backend, request.data_source_id, claims)
        self._required_key(ds)
        supported = (ds["plugin_info"].get("metadata") or {}).get("supported_stat")
        if request.stat and supported and request.stat not in supported:
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"ERROR_NOT_SUPPORT_METRIC_STAT: stat = {request.stat}, supported = {supported}")
        metric_query: dict = doc["metric_query"]
        resources = self._resources(list(metric_query), claims)
        chunks: dict[str, list[dict]] = {}
        secrets: dict[str, dict] = {}  # region -> the secret data of its chunks (one secret per data source here)
        for key, cs in resources.items():
            q = dict(metric_query[key]) if isinstance(metric_query[key], dict) else {}
            q.setdefault("resource_id", (cs.get("reference") or {}).get("resource_id", ""))
            q["region_name"] = cs.get("region_code", "")
            secrets.setdefault(cs.get("region_code", ""), secret_of(self.plugins, ds, cs, claims.domain_id))
            region_chunks = chunks.setdefault(cs.get("region_code", ""), [{}])
            if len(region_chunks[-1]) >= MAX_REQUEST_LIMIT:
                region_chunks.append({})
            region_chunks[-1][key] = q
        plugin = self._plugin(ds)
        options = ds["plugin_info"].get("options", {})
        labels: list = []
        values: dict = {}
        for region, region_chunks in chunks.items():
            for chunk in region_chunks:
                params = {"options": options, "secret_data": secrets[region], "metric_query": chunk,
                          "metric": request.metric,
                          "start": request.start, "end": request.end, "period": request.period,
                          "stat": request.stat}
                try:  # DataSourcePluginManager.get_metric_data
                    answer = cast(dict, plugin.dispatch("Metric.get_data", params))  # a unary method: a dict
                except plugin_client.PluginCallError as exc:
                    # The real service swallows plugin errors here (empty answer); we surface
                    # INVALID_ARGUMENT so a caller learns why, and swallow the rest like it does.
                    if exc.code == grpc.StatusCode.INVALID_ARGUMENT:
                        raise
                    log.warning("Metric.get_data failed: %s", exc.message)
                    continue
                if not labels and answer.get("labels"):
                    labels = list(answer["labels"])
                values.update(answer.get("values", {}))
        out = metric_pb2.MetricDataInfo(domain_id=claims.domain_id)
        out.labels.SetInParent()
        out.labels.extend(labels)
        out.values.SetInParent()
        out.values.update(values)
        return out
