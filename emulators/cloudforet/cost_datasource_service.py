"""cost_analysis.v1 DataSource: register / get / list / sync, pulling costs from the plugin.

``sync`` runs the job the real service runs, synchronously: ``Job.get_tasks``
(with ``start`` and the data source's ``last_synchronized_at``), one
``Cost.get_data`` stream per task, then the new costs are stored and the old
costs of this data source inside the ``changed`` windows are deleted, in one
transaction. A plugin failure stores nothing (the real job rolls its costs
back) and returns the job with status FAILURE. The plugin is called as the
real service calls it (reflection, short names), at the endpoint the plugin
service gives for the data source's ``plugin_info`` (``plugin_service``).

``register`` as cloudforet-io/cost-analysis ``service/data_source_service.py``
``register`` (DOMAIN_ADMIN or WORKSPACE_OWNER) does for an EXTERNAL data
source: ``_validate_plugin_info`` (plugin_id; a version for upgrade_mode
MANUAL; ``secret_data`` present for secret_type MANUAL, ``provider`` for
USE_SERVICE_ACCOUNT_SECRET), ``_check_plugin`` (the repository has it),
``resource_group`` WORKSPACE checks the workspace (a DOMAIN one is
``workspace_id "*"``), a schedule (default ENABLED at hour 16; ENABLED needs an
hour), the endpoint and resolved version from the plugin service, then
``DataSource.init``. ``name`` is unique in the domain. Secret data given with
MANUAL is verified by the plugin and kept as the data source's secret (the
real service creates a Secret and keeps its id), never answered.
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
from .plugin_service import PluginEndpoints
from .plugin_store import COST_DATA_SOURCES, COST_JOBS, PluginStore

DATA_SOURCE_SYNC_HOUR = 16  # the DATA_SOURCE_SYNC_HOUR global's default

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


def validate_plugin_info(info: dict, secret_type: str) -> None:
    """DataSourceService._validate_plugin_info."""
    if not info.get("plugin_id"):
        raise errors.required("plugin_info.plugin_id")
    if (info.get("upgrade_mode") or "AUTO") == "MANUAL" and not info.get("version"):
        raise errors.required("plugin_info.version")
    if secret_type == "MANUAL" and info.get("secret_data") is None:
        raise errors.required("plugin_info.secret_data")


def checked_schedule(schedule: dict | None) -> dict:
    """The default schedule, or ``_check_schedule``'s: ENABLED needs an hour."""
    if not schedule:
        return {"state": "ENABLED", "hour": DATA_SOURCE_SYNC_HOUR}
    if schedule.get("state", "ENABLED") == "ENABLED" and not schedule.get("hour"):
        raise errors.invalid("schedule.hour", "Need to set an hour when the state is ENABLED.")
    return dict(schedule)


class CostDataSourceService(data_source_pb2_grpc.DataSourceServicer):
    def __init__(self, backend: Backend, plugins: PluginStore, endpoints: PluginEndpoints) -> None:
        self.backend, self.store, self.plugins, self.endpoints = backend, backend.store, plugins, endpoints

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
        require(doc, "name")
        ds_type = doc.get("data_source_type", "NONE")
        if ds_type != "EXTERNAL":
            raise errors.invalid("data_source_type", "the emulator serves EXTERNAL data sources (a plugin) only")
        resource_group = doc.get("resource_group") or "WORKSPACE"
        if resource_group == "WORKSPACE":
            workspace_id = doc.get("workspace_id") or claims.workspace_id
            if not workspace_id:  # IdentityManager.check_workspace
                raise errors.required("workspace_id")
            if workspace_id != self.backend.config.workspace_id:
                raise errors.not_found("workspace_id", workspace_id)
        else:
            workspace_id = "*"
        schedule = checked_schedule(doc.get("schedule"))
        secret_type = doc.get("secret_type") or "MANUAL"
        if secret_type == "USE_SERVICE_ACCOUNT_SECRET" and not doc.get("provider"):
            raise errors.required("provider")
        info = dict(doc.get("plugin_info") or {})
        if request.HasField("plugin_info") and request.plugin_info.HasField("secret_data"):
            info.setdefault("secret_data", {})  # a set, empty Struct is given (not None)
        validate_plugin_info(info, secret_type)
        self.endpoints.repository.get(info["plugin_id"], claims.domain_id)  # _check_plugin
        if any(d.get("name") == doc["name"] and d.get("domain_id") == claims.domain_id
               for d in self.store.scan(COST_DATA_SOURCES)):
            raise errors.already_exists("name, domain_id", doc["name"])  # name unique_with domain_id
        endpoint, version = self.endpoints.for_plugin_info(info, claims.domain_id)
        info["version"] = version
        plugin = self.backend.plugin_clients.connect(endpoint)
        options = info.get("options", {})
        # DataSourcePluginConnector.init: dispatch("DataSource.init", {"options", "domain_id"})
        init = cast(dict, plugin.dispatch("DataSource.init", {  # unary: a dict
            "options": options, "domain_id": claims.domain_id}))
        secret = info.pop("secret_data", None) or {}
        if secret_type == "MANUAL" and secret:  # _verify_plugin, then SecretManager.create_secret
            plugin.dispatch("DataSource.verify", {"options": options, "secret_data": secret,
                                                  "domain_id": claims.domain_id})
            info["secret_id"] = new_id("secret")
        now = now_iso()
        ds = {
            "data_source_id": new_id("ds"),
            "name": doc["name"],
            "data_source_type": "EXTERNAL",
            "provider": doc.get("provider", ""),
            "secret_type": secret_type,
            "secret_filter": doc.get("secret_filter", {}),
            "plugin_info": {**info, "metadata": init.get("metadata", {})},
            "schedule": schedule,
            "template": {},
            "tags": doc.get("tags", {}),
            "cost_tag_keys": [],
            "cost_additional_info_keys": [],
            "resource_group": resource_group,
            "domain_id": claims.domain_id,
            "workspace_id": workspace_id,
            "created_at": now,
            "updated_at": now,
            "last_synchronized_at": "",
        }
        self.store.insert(COST_DATA_SOURCES, ds["data_source_id"], ds, "ENABLED")
        if secret:
            self.plugins.keep_secret(info["secret_id"], secret, claims.domain_id)  # never in the data source's document
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
        plugin_opts = ds["plugin_info"].get("options", {})
        secret_id = ds["plugin_info"].get("secret_id") or ""
        job = {"job_id": new_id("job"), "status": "IN_PROGRESS", "options": {}, "error_code": "",
               "error_message": "", "total_tasks": 0, "remained_tasks": 0, "changed": [],
               "resource_group": ds.get("resource_group", "WORKSPACE"), "domain_id": claims.domain_id,
               "workspace_id": ds.get("workspace_id", ""), "data_source_id": ds["data_source_id"],
               "created_at": now_iso()}
        try:
            # DataSourceService._get_secret_data: Secret.get_data of the data source's secret, else {}
            secret = self.plugins.secret(secret_id, claims.domain_id) if secret_id else {}
            endpoint, _ = self.endpoints.for_plugin_info(ds["plugin_info"], ds["domain_id"])
            plugin = self.backend.plugin_clients.connect(endpoint)
            # DataSourcePluginConnector.get_tasks / get_cost_data
            answer = cast(dict, plugin.dispatch("Job.get_tasks", {  # a unary method: a dict
                "options": plugin_opts, "secret_data": secret, "start": request.start or None,
                "last_synchronized_at": ds.get("last_synchronized_at") or None, "domain_id": claims.domain_id}))
            tasks = list(answer.get("tasks", []))
            job["changed"] = list(answer.get("changed", []))
            job["total_tasks"] = len(tasks)
            docs: list[dict] = []
            for task in tasks:
                stream = plugin.dispatch("Cost.get_data", {
                    "options": plugin_opts, "secret_data": secret, "task_options": task.get("task_options", {}),
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
