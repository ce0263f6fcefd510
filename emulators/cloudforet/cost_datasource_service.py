"""cost_analysis.v1 DataSource: register / get / list / sync, pulling costs from the plugin.

``sync`` runs the job the real service runs, synchronously: ``Job.get_tasks``
(with ``start`` and the data source's ``last_synchronized_at``), one
``Cost.get_data`` stream per task, then the new costs are stored and the old
costs of this data source inside the ``changed`` windows are deleted, in one
transaction. A plugin failure stores nothing (the real job rolls its costs
back) and returns the job with status FAILURE. The plugin is called as the
real service calls it (reflection, short names); its endpoint comes from
``plugin_info.options.endpoint`` (see ``plugin_client``).
"""
from __future__ import annotations

import logging
from typing import cast

import grpc
from spaceone.api.cost_analysis.v1 import data_source_pb2, data_source_pb2_grpc, job_pb2

from . import errors, plugin_client, query
from .auth import Claims
from .base import Backend, new_id, now_iso, query_dict, request_filters, require, rpc, to_dict, to_msg
from .errors import ApiError
from .plugin_store import COST_DATA_SOURCES, COST_JOBS, PluginStore

log = logging.getLogger(__name__)


def cost_doc(raw: dict, ds: dict, job_id: str, claims: Claims) -> dict:
    """A plugin CostInfo as the service stores it (billed_date required)."""
    billed_date = str(raw.get("billed_date") or "")
    if len(billed_date) != 10:
        raise ApiError(grpc.StatusCode.INVALID_ARGUMENT,
                       f"ERROR_REQUIRED_PARAMETER: key = plugin_cost_data.billed_date (got {billed_date!r})")
    provider, region = raw.get("provider") or ds.get("provider", ""), raw.get("region_code", "")
    return {
        "cost_id": new_id("cost"),
        "cost": float(raw.get("cost", 0.0)),
        "usage_quantity": float(raw.get("usage_quantity", 0.0)),
        "usage_unit": raw.get("usage_unit", ""),
        "provider": provider,
        "region_code": region,
        "region_key": f"{provider}.{region}" if provider and region else "",
        "product": raw.get("product", ""),
        "usage_type": raw.get("usage_type", ""),
        "resource": raw.get("resource", ""),
        "tags": raw.get("tags", {}),
        "additional_info": raw.get("additional_info", {}),
        "data": raw.get("data", {}),
        "billed_date": billed_date,
        "billed_month": billed_date[:7],
        "billed_year": billed_date[:4],
        "data_source_id": ds["data_source_id"],
        "job_id": job_id,
        "domain_id": claims.domain_id,
        "workspace_id": ds.get("workspace_id") or claims.workspace_id,
        "created_at": now_iso(),
    }


class CostDataSourceService(data_source_pb2_grpc.DataSourceServicer):
    def __init__(self, backend: Backend, plugins: PluginStore) -> None:
        self.backend, self.store, self.plugins = backend, backend.store, plugins

    def _load(self, data_source_id: str, claims: Claims) -> dict:
        require({"data_source_id": data_source_id}, "data_source_id")
        doc = self.store.get(COST_DATA_SOURCES, data_source_id)
        if doc is None or doc.get("domain_id") != claims.domain_id:
            raise errors.not_found("data_source_id", data_source_id)
        return doc

    @rpc("cost_analysis.DataSource.register")
    def register(self, request: data_source_pb2.RegisterDataSourceRequest, claims: Claims
                 ) -> data_source_pb2.DataSourceInfo:
        doc = to_dict(request)
        require(doc, "name", "plugin_info")
        info = doc["plugin_info"]
        options = info.get("options", {})
        # DataSourcePluginConnector.init: dispatch("DataSource.init", {"options", "domain_id"})
        init = cast(dict, self.backend.plugin_clients.dispatch(options, "DataSource.init", {  # unary: a dict
            "options": plugin_client.plugin_options(options), "domain_id": claims.domain_id}))
        ds_type = doc.get("data_source_type", "NONE")
        now = now_iso()
        ds = {
            "data_source_id": new_id("ds"),
            "name": doc["name"],
            "data_source_type": "EXTERNAL" if ds_type in ("NONE", "TYPE_NONE") else ds_type,
            "provider": doc.get("provider", ""),
            "secret_type": doc.get("secret_type", "MANUAL"),
            "plugin_info": {**info, "metadata": init.get("metadata", {})},
            "template": doc.get("template", {}),
            "tags": doc.get("tags", {}),
            "cost_tag_keys": [],
            "cost_additional_info_keys": [],
            "resource_group": doc.get("resource_group", "WORKSPACE"),
            "domain_id": claims.domain_id,
            "workspace_id": doc.get("workspace_id") or claims.workspace_id,
            "created_at": now,
            "updated_at": now,
            "last_synchronized_at": "",
        }
        ds["plugin_info"].pop("secret_data", None)  # never stored or echoed in clear
        self.store.insert(COST_DATA_SOURCES, ds["data_source_id"], ds, "ENABLED")
        return to_msg(ds, data_source_pb2.DataSourceInfo)

    @rpc("cost_analysis.DataSource.get")
    def get(self, request: data_source_pb2.DataSourceRequest, claims: Claims) -> data_source_pb2.DataSourceInfo:
        return to_msg(self._load(request.data_source_id, claims), data_source_pb2.DataSourceInfo)

    @rpc("cost_analysis.DataSource.list")
    def list(self, request: data_source_pb2.DataSourceQuery, claims: Claims) -> data_source_pb2.DataSourcesInfo:
        spec = query.parse(query_dict(request), [{"k": "domain_id", "v": claims.domain_id, "o": "eq"},
                                                 *request_filters(request)])
        results, total = query.run(self.store.scan(COST_DATA_SOURCES), spec, "data_source_id")
        return data_source_pb2.DataSourcesInfo(results=[to_msg(d, data_source_pb2.DataSourceInfo) for d in results],
                                               total_count=total)

    @rpc("cost_analysis.DataSource.sync")
    def sync(self, request: data_source_pb2.SyncDataSourceRequest, claims: Claims) -> job_pb2.JobInfo:
        ds = self._load(request.data_source_id, claims)
        if ds.get("data_source_type") != "EXTERNAL":
            raise ApiError(grpc.StatusCode.FAILED_PRECONDITION,
                           f"ERROR_NOT_ALLOW_SYNC_COMMAND: data_source_type = {ds.get('data_source_type')}")
        options = ds["plugin_info"].get("options", {})
        plugin_opts = plugin_client.plugin_options(options)
        job = {"job_id": new_id("job"), "status": "IN_PROGRESS", "options": {}, "error_code": "",
               "error_message": "", "total_tasks": 0, "remained_tasks": 0, "changed": [],
               "resource_group": ds.get("resource_group", "WORKSPACE"), "domain_id": claims.domain_id,
               "workspace_id": ds.get("workspace_id", ""), "data_source_id": ds["data_source_id"],
               "created_at": now_iso()}
        try:
            plugin = self.backend.plugin_clients.connect(plugin_client.endpoint_of(options))
            # DataSourcePluginConnector.get_tasks / get_cost_data
            answer = cast(dict, plugin.dispatch("Job.get_tasks", {  # a unary method: a dict
                "options": plugin_opts, "secret_data": {}, "start": request.start or None,
                "last_synchronized_at": ds.get("last_synchronized_at") or None, "domain_id": claims.domain_id}))
            tasks = list(answer.get("tasks", []))
            job["changed"] = list(answer.get("changed", []))
            job["total_tasks"] = len(tasks)
            docs: list[dict] = []
            for task in tasks:
                stream = plugin.dispatch("Cost.get_data", {
                    "options": plugin_opts, "secret_data": {}, "task_options": task.get("task_options", {}),
                    "domain_id": claims.domain_id})
                for batch in stream:
                    docs.extend(cost_doc(c, ds, job["job_id"], claims) for c in batch.get("results", []))
            self.plugins.replace_costs(docs, job["changed"], ds["data_source_id"], claims.domain_id, job["job_id"])
            job["status"] = "SUCCESS"
            ds["last_synchronized_at"] = job["created_at"]
            ds["cost_tag_keys"] = sorted({k for d in docs for k in d["tags"]} | set(ds.get("cost_tag_keys", [])))
            ds["cost_additional_info_keys"] = sorted({k for d in docs for k in d["additional_info"]}
                                                     | set(ds.get("cost_additional_info_keys", [])))
            ds["updated_at"] = now_iso()
            self.store.replace(COST_DATA_SOURCES, ds["data_source_id"], ds, "ENABLED")
        except plugin_client.PluginCallError as exc:  # JobManager.change_error_status: e.error_code, e.message
            job.update(status="FAILURE", error_code=exc.error_code, error_message=exc.error_message)
        except ApiError as exc:
            job.update(status="FAILURE", error_code=exc.message.split(":", 1)[0], error_message=exc.message)
        job["updated_at"] = job["finished_at"] = now_iso()
        self.store.insert(COST_JOBS, job["job_id"], job, job["status"])
        return to_msg(job, job_pb2.JobInfo)
