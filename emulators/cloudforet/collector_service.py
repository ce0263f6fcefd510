"""inventory.v1 Collector (create, get, list, update, delete, verify_plugin, collect), Job and JobTask.

Followed from cloudforet-io/inventory (65d4f208) ``service/collector_service.py``,
``service/job_service.py`` and ``service/job_task_service.py``:
``Collector.create`` needs ``name`` and ``plugin_info.plugin_id``, at most two
schedule hours, a workspace for ``resource_group WORKSPACE`` (``"*"`` for
DOMAIN), calls the plugin's ``Collector.init`` and stores its metadata in
``plugin_info.metadata``; a workspace caller sees its workspace's collectors
and the domain's (``"*"``). ``Collector.collect`` makes a Job and runs it
(``collecting.py``) and answers the Job while it is IN_PROGRESS. ``delete``
takes the collector's jobs, job tasks and collection states with it. Jobs and
JobTasks are listed newest first (their models' ``ordering: -created_at``).

``create`` takes the plugin from the repository (``_get_plugin_from_repository``:
its capability; ``_get_plugin_providers``: the request's provider, which must
be one of capability ``supported_providers`` when the plugin lists them, else
the plugin's own provider) and its endpoint from the plugin service
(``PluginManager.get_endpoint``, upgrade_mode AUTO unless given), keeping the
version the plugin service resolved; ``collect`` asks the plugin service again
before it makes the job (``plugin_service``).
"""
from __future__ import annotations

from typing import Any

from google.protobuf import empty_pb2
from spaceone.api.inventory.v1 import (
    collector_pb2,
    collector_pb2_grpc,
    job_pb2,
    job_pb2_grpc,
    job_task_pb2,
    job_task_pb2_grpc,
)

from . import auth, errors, query
from .auth import Claims
from .base import Backend, new_id, query_dict, request_filters, require, rpc, to_dict, to_msg
from .collecting import CollectorJobs, collector_workspace, iso, provider_secrets, selected
from .plugin_service import PluginEndpoints
from .store import COLLECTORS, JOB_TASKS, JOBS, SCHEMAS

ALL_WORKSPACES = "*"


def _visible(doc: dict, claims: Claims) -> bool:
    """change_value_by_rule("APPEND", "workspace_id", "*"): a workspace caller also sees the domain's."""
    if doc.get("domain_id") != claims.domain_id:
        return False
    return claims.scope != auth.SCOPE_WORKSPACE or doc.get("workspace_id") in (claims.workspace_id, ALL_WORKSPACES)


def _listed(docs: list[dict], request: Any, claims: Claims, id_key: str, rename: dict | None = None,
            newest_first: bool = False) -> tuple[list[dict], int]:
    spec = query.parse(query_dict(request), request_filters(request, rename=rename))
    docs = [d for d in docs if _visible(d, claims)]
    if newest_first:
        docs = sorted(docs, key=lambda d: d.get("created_at", ""), reverse=True)
    return query.run(docs, spec, id_key)


class CollectorService(collector_pb2_grpc.CollectorServicer):
    def __init__(self, backend: Backend, jobs: CollectorJobs, endpoints: PluginEndpoints) -> None:
        self.backend = backend
        self.store = backend.store
        self.jobs = jobs
        self.endpoints = endpoints

    @staticmethod
    def _provider(given: str, plugin: dict) -> str:
        """CollectorService._get_plugin_providers."""
        supported = (plugin.get("capability") or {}).get("supported_providers") or []
        if supported:
            if given in supported:
                return given
            raise errors.invalid("provider", f"Not supported provider: {given}")
        return given or plugin.get("provider") or ""

    def _secret_filter(self, given: dict | None, provider: str, domain_id: str) -> dict:
        """CollectorService.create/update: an ENABLED filter is checked (_validate_secret_filter: the
        schemas it names must be the provider's, ``_check_schemas``), any other is DISABLED."""
        if not given or given.get("state") != "ENABLED":
            return {"state": "DISABLED"}
        for key in ("schemas", "exclude_schemas"):
            ids = [str(i) for i in given.get(key) or []]
            held = [i for i in ids if (self.store.get(SCHEMAS, f"{domain_id}/{i}") or {}).get("provider") == provider]
            if len(held) != len(ids):
                raise errors.invalid("secret_filter.schemas", f"schemas are not found: {', '.join(ids)}")
        return given

    def _load(self, collector_id: str, claims: Claims) -> dict:
        require({"collector_id": collector_id}, "collector_id")
        doc = self.store.get(COLLECTORS, collector_id)
        if doc is None or not _visible(doc, claims):
            raise errors.not_found("collector_id", collector_id)
        return doc

    @staticmethod
    def _check_schedule(schedule: dict) -> None:
        if schedule.get("state") == "ENABLED" and len(schedule.get("hours") or []) > 2:
            raise errors.invalid("schedule.hours", "Maximum 2 hours can be set.")

    @rpc("Collector.create")
    def create(self, request: collector_pb2.CreateCollectorRequest, claims: Claims) -> collector_pb2.CollectorInfo:
        given = to_dict(request)
        plugin_info = dict(given.get("plugin_info") or {})
        require({"name": given.get("name"), "plugin_info": plugin_info}, "name", "plugin_info")
        require({"plugin_info.plugin_id": plugin_info.get("plugin_id")}, "plugin_info.plugin_id")
        resource_group = given.get("resource_group", "WORKSPACE")
        if resource_group == "WORKSPACE":
            workspace_id = claims.workspace_id or given.get("workspace_id") or ""
            require({"workspace_id": workspace_id}, "workspace_id")
        else:
            workspace_id = ALL_WORKSPACES
        schedule = dict(given.get("schedule") or {"state": "DISABLED", "hours": []})
        self._check_schedule(schedule)
        plugin = self.endpoints.repository.get(plugin_info["plugin_id"], claims.domain_id)
        provider = self._provider(str(given.get("provider") or ""), plugin)
        plugin_info.setdefault("upgrade_mode", "AUTO")
        endpoint, version = self.endpoints.for_plugin_info(plugin_info, claims.domain_id)
        options = dict(plugin_info.get("options") or {})
        # init_plugin: the plugin's metadata (it answers the plugin's own errors, as the real service does)
        answer = self.backend.plugin_clients.connect(endpoint).dispatch("Collector.init", {"options": options})
        plugin_info.update(options=options, metadata=dict(answer).get("metadata", {}),  # type: ignore[arg-type]
                           version=version)
        doc = {"collector_id": new_id("collector"), "name": given["name"], "provider": provider,
               "capability": dict(plugin.get("capability") or {}), "plugin_info": plugin_info, "schedule": schedule,
               "secret_filter": self._secret_filter(given.get("secret_filter"), provider, claims.domain_id),
               "tags": given.get("tags", {}),
               "resource_group": resource_group, "domain_id": claims.domain_id, "workspace_id": workspace_id,
               "created_at": iso(self.backend.clock.time()), "last_collected_at": ""}
        self.store.insert(COLLECTORS, doc["collector_id"], doc)
        return to_msg(doc, collector_pb2.CollectorInfo)

    @rpc("Collector.update")
    def update(self, request: collector_pb2.UpdateCollectorRequest, claims: Claims) -> collector_pb2.CollectorInfo:
        doc = self._load(request.collector_id, claims)
        given = to_dict(request)
        given.pop("collector_id", None)
        if "schedule" in given:
            self._check_schedule(given["schedule"])
        if "secret_filter" in given:
            given["secret_filter"] = self._secret_filter(given["secret_filter"], doc.get("provider", ""),
                                                         doc["domain_id"])
        for key in ("name", "schedule", "secret_filter", "tags"):  # Collector meta updatable_fields
            if key in given:
                doc[key] = given[key]
        self.store.replace(COLLECTORS, doc["collector_id"], doc)
        return to_msg(doc, collector_pb2.CollectorInfo)

    @rpc("Collector.delete")
    def delete(self, request: collector_pb2.CollectorRequest, claims: Claims) -> empty_pb2.Empty:
        doc = self._load(request.collector_id, claims)
        self.jobs.delete_collector(doc["collector_id"])
        self.store.delete(COLLECTORS, doc["collector_id"])
        return empty_pb2.Empty()

    @rpc("Collector.get")
    def get(self, request: collector_pb2.CollectorRequest, claims: Claims) -> collector_pb2.CollectorInfo:
        return to_msg(self._load(request.collector_id, claims), collector_pb2.CollectorInfo)

    @rpc("Collector.list")
    def list(self, request: collector_pb2.CollectorQuery, claims: Claims) -> collector_pb2.CollectorsInfo:
        results, total = _listed(self.store.scan(COLLECTORS), request, claims, "collector_id",
                                 rename={"plugin_id": "plugin_info.plugin_id",
                                         "secret_filter_state": "secret_filter.state",
                                         "schedule_state": "schedule.state"})
        return collector_pb2.CollectorsInfo(results=[to_msg(d, collector_pb2.CollectorInfo) for d in results],
                                            total_count=total)

    @rpc("Collector.verify_plugin")
    def verify_plugin(self, request: collector_pb2.VerifyPluginRequest, claims: Claims) -> empty_pb2.Empty:
        """verify_plugin: the plugin's Collector.verify with the first secret of the collector's provider
        (or the one named); the plugin's error is the answer."""
        doc = self._load(request.collector_id, claims)
        options = (doc.get("plugin_info") or {}).get("options") or {}
        secrets = selected(provider_secrets(self.backend, doc.get("provider", ""), request.secret_id),
                           doc.get("secret_filter") or {}, collector_workspace(doc))
        if secrets:  # CollectorService.verify_plugin: the endpoint from the plugin service first
            endpoint, _ = self.endpoints.for_plugin_info(doc.get("plugin_info") or {}, doc["domain_id"])
            self.backend.plugin_clients.connect(endpoint).dispatch("Collector.verify", {
                "options": options, "secret_data": secrets[0]["data"]})
        return empty_pb2.Empty()

    @rpc("Collector.collect")
    def collect(self, request: collector_pb2.CollectRequest, claims: Claims) -> job_pb2.JobInfo:
        doc = self._load(request.collector_id, claims)
        job = self.jobs.collect(doc, request.secret_id)
        if job["total_tasks"]:  # CollectorService.collect: update_last_collected_time only when there are tasks
            doc["last_collected_at"] = job["created_at"]
            self.store.replace(COLLECTORS, doc["collector_id"], doc)
        return to_msg(job, job_pb2.JobInfo)


class JobService(job_pb2_grpc.JobServicer):
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store

    def _load(self, job_id: str, claims: Claims) -> dict:
        require({"job_id": job_id}, "job_id")
        doc = self.store.get(JOBS, job_id)
        if doc is None or not _visible(doc, claims):
            raise errors.not_found("job_id", job_id)
        return doc

    @rpc("Job.get")
    def get(self, request: job_pb2.JobRequest, claims: Claims) -> job_pb2.JobInfo:
        return to_msg(self._load(request.job_id, claims), job_pb2.JobInfo)

    @rpc("Job.list")
    def list(self, request: job_pb2.JobsQuery, claims: Claims) -> job_pb2.JobsInfo:
        results, total = _listed(self.store.scan(JOBS), request, claims, "job_id", newest_first=True)
        return job_pb2.JobsInfo(results=[to_msg(d, job_pb2.JobInfo) for d in results], total_count=total)

    @rpc("Job.delete")
    def delete(self, request: job_pb2.JobRequest, claims: Claims) -> empty_pb2.Empty:
        doc = self._load(request.job_id, claims)
        self.store.delete(JOBS, doc["job_id"])
        return empty_pb2.Empty()


class JobTaskService(job_task_pb2_grpc.JobTaskServicer):
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = backend.store

    def _load(self, job_task_id: str, claims: Claims) -> dict:
        require({"job_task_id": job_task_id}, "job_task_id")
        doc = self.store.get(JOB_TASKS, job_task_id)
        if doc is None or not _visible(doc, claims):
            raise errors.not_found("job_task_id", job_task_id)
        return doc

    @rpc("JobTask.get")
    def get(self, request: job_task_pb2.JobTaskRequest, claims: Claims) -> job_task_pb2.JobTaskInfo:
        return to_msg(self._load(request.job_task_id, claims), job_task_pb2.JobTaskInfo)

    @rpc("JobTask.list")
    def list(self, request: job_task_pb2.JobTaskQuery, claims: Claims) -> job_task_pb2.JobTasksInfo:
        results, total = _listed(self.store.scan(JOB_TASKS), request, claims, "job_task_id", newest_first=True)
        return job_task_pb2.JobTasksInfo(results=[to_msg(d, job_task_pb2.JobTaskInfo) for d in results],
                                         total_count=total)

    @rpc("JobTask.delete")
    def delete(self, request: job_task_pb2.JobTaskRequest, claims: Claims) -> empty_pb2.Empty:
        doc = self._load(request.job_task_id, claims)
        self.store.delete(JOB_TASKS, doc["job_task_id"])
        return empty_pb2.Empty()
