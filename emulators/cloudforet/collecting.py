"""Collector jobs run the way the real Inventory runs them.

Followed from cloudforet-io/inventory (65d4f208):

- ``service/collector_service.py`` ``CollectorService.collect`` / ``_get_tasks``:
  the collector's plugin is asked ``Job.get_tasks`` once per secret of its
  provider (a failing call leaves that secret with no sub-tasks: the error is
  swallowed, and the secret is collected by one ``collect`` without
  task_options); IN_PROGRESS jobs of the same collector and secret request
  become CANCELED; one Job (total_tasks = secrets) and one JobTask per secret
  (``total_sub_tasks`` = its tasks, at least 1) are made and every sub-task is
  queued to the workers; a job without tasks is SUCCESS at once;
- ``manager/collecting_manager.py`` ``collecting_resources`` and
  ``_upsert_collecting_resources`` / ``_upsert_resource`` /
  ``_query_with_match_rules``: a sub-task makes its JobTask IN_PROGRESS, calls
  ``Collector.collect`` and upserts every ResourceInfo by its match rules
  (rule keys in order, an empty value dropped from the query, DELETED records
  excluded; 0 matches create, 1 updates, more is a failure); ``state FAILURE``,
  no match rule or an exception is a failure with an error on the JobTask;
  CloudServiceTypes and Regions are not counted, Namespaces and Metrics
  neither. The writes are the collector's (``_set_transaction_meta``): tags go
  to the secret's provider bucket, records get ``collection_info`` and a
  collection state, the secret's project is the record's;
- ``manager/job_task_manager.py`` ``decrease_remained_sub_tasks`` and
  ``manager/cleanup_manager.py``: when the last sub-task ends and the JobTask
  is still IN_PROGRESS, every collection state of the collector and secret
  the task did not touch and older than 1 h gets ``disconnected_count + 1``,
  the collector's cloud services at ``DEFAULT_DISCONNECTED_STATE_DELETE_POLICY``
  (3) are marked DELETED (their states removed), ``disconnected_count`` is
  reported net of the deleted ones, and the task is SUCCESS; a task that
  failed anywhere is FAILURE and cleans nothing. ``job_manager.py``: the Job
  is FAILURE if any task failed, else SUCCESS, when its last task ends.

Time (job times, collection states' ages) comes from ``Backend.clock`` so a
test can step hours. Sub-tasks run on a pool of ``EmulatorConfig``
``collector_workers`` threads (the real service: its worker processes).
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Iterable

import grpc

from . import errors, query
from .base import Backend, new_id
from .inventory_service import (
    insert_cloud_service,
    mark_deleted,
    new_cloud_service,
    new_cloud_service_type,
    new_region,
    update_cloud_service,
)
from .metric_explorer_service import labels_info
from .plugin_service import PluginEndpoints
from .secret_service import secret_data
from .store import (
    CLOUD_SERVICE_TYPES,
    CLOUD_SERVICES,
    DELETED,
    JOB_TASKS,
    JOBS,
    METRICS,
    NAMESPACES,
    REGIONS,
    DuplicateKey,
)

log = logging.getLogger(__name__)

NOT_COUNT, CREATED, UPDATED, ERROR = 0, 1, 2, 3  # inventory conf/collector_conf.py
DISCONNECTED_DELETE_POLICY = 3  # DEFAULT_DISCONNECTED_STATE_DELETE_POLICY
DISCONNECT_AFTER_S = 3600  # cleanup_manager: states updated more than 1 hour ago
COUNT_KEYS = ("created_count", "updated_count", "failure_count", "deleted_count", "disconnected_count")
MAX_MESSAGE_LENGTH = 2000


def collector_workspace(collector: dict) -> str | None:
    """The workspace a collector's secrets must be in (CollectorService.collect): a WORKSPACE collector's."""
    return collector.get("workspace_id") if collector.get("resource_group", "WORKSPACE") == "WORKSPACE" else None


def iso(t: float) -> str:
    now = datetime.fromtimestamp(t, timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def provider_secrets(backend: Backend, provider: str, secret_id: str = "") -> list[dict]:
    """The secrets of a provider's service accounts, as ``_get_secret_ids_from_filter`` and
    ``SecretManager.get_secret`` / ``get_secret_data`` find them: the emulated identity's service
    accounts (the configuration's and those ServiceAccount.create made) and their secrets."""
    cfg = backend.config
    out = []
    # identity's service accounts: the configuration's (seeded into the store) and those ServiceAccount.create made
    for sa in sorted(backend.store.service_accounts(), key=lambda a: a.get("service_account_id", "")):
        sid = sa.get("secret_id")
        if sa.get("provider") != provider or not sid or sa.get("state", "ACTIVE") != "ACTIVE":
            continue
        if secret_id and sid != secret_id:
            continue
        data = secret_data(backend, sid)
        if data is None:
            continue
        out.append({"secret_id": sid, "service_account_id": sa.get("service_account_id", ""),
                    "project_id": sa.get("project_id", ""), "workspace_id": sa.get("workspace_id") or cfg.workspace_id,
                    "provider": provider, "data": dict(data)})
    return out


# The Secret.list answer to inventory's filter on ``schema``: cloudforet-io/secret's Secret model has
# ``schema_id`` and no ``schema`` field, and mongoengine refuses a query on a field a document lacks
# (0.29.3, the one spaceone-identity 2.0.227 installs: ``InvalidQueryError: Cannot resolve field "schema"``),
# which mongo_model's query answers ERROR_DB_QUERY.
SCHEMA_FILTER_REFUSED = 'ERROR_DB_QUERY: Database query failed. (reason = Cannot resolve field "schema")'


def selected(secrets: list[dict], secret_filter: dict, workspace_id: str | None = None) -> list[dict]:
    """collector_service.py _make_secret_filter: a WORKSPACE collector's own workspace only; an ENABLED
    secret_filter keeps the listed secrets and service accounts and drops the excluded ones. Its
    ``schemas`` and ``exclude_schemas`` become a filter on ``schema``, which Secret.list refuses."""
    if workspace_id:
        secrets = [s for s in secrets if s.get("workspace_id") == workspace_id]
    if secret_filter.get("state") != "ENABLED":
        return secrets
    if secret_filter.get("schemas") or secret_filter.get("exclude_schemas"):
        raise errors.ApiError(grpc.StatusCode.INTERNAL, SCHEMA_FILTER_REFUSED)
    keep = []
    for s in secrets:
        if secret_filter.get("secrets") and s["secret_id"] not in secret_filter["secrets"]:
            continue
        if secret_filter.get("service_accounts") and s["service_account_id"] not in secret_filter["service_accounts"]:
            continue
        if s["secret_id"] in (secret_filter.get("exclude_secrets") or ()):
            continue
        if s["service_account_id"] in (secret_filter.get("exclude_service_accounts") or ()):
            continue
        keep.append(s)
    return keep


class CollectorJobs:
    """Jobs and JobTasks of one emulator: made by Collector.collect, run by a worker pool."""

    def __init__(self, backend: Backend, workers: int = 4, endpoints: PluginEndpoints | None = None) -> None:
        self.backend = backend
        self.endpoints = endpoints
        self.store = backend.store
        self._lock = threading.RLock()
        self._done = threading.Condition(self._lock)
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="cloudforet-collect")

    def now(self) -> float:
        return self.backend.clock.time()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- Collector.collect ------------------------------------------------------
    def collect(self, collector: dict, secret_id: str = "") -> dict:
        plugin_info = collector.get("plugin_info") or {}
        options = plugin_info.get("options") or {}
        # CollectorService.collect: PluginManager.get_endpoint before any job is made
        endpoint = self.endpoint(collector)
        plugin = self.backend.plugin_clients.connect(endpoint)
        params = {"options": options}
        tasks = []
        for secret in selected(provider_secrets(self.backend, collector.get("provider", ""), secret_id),
                               collector.get("secret_filter") or {}, collector_workspace(collector)):
            sub_tasks: list[dict] = []
            try:
                answer = plugin.dispatch("Job.get_tasks", {**params, "secret_data": secret["data"]})
                sub_tasks = list(dict(answer).get("tasks", []))  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - _get_tasks: "except Exception as e: pass"
                log.debug("Job.get_tasks of %s failed: %s", secret["secret_id"], exc)
            tasks.append((secret, sub_tasks))
        now = self.now()
        with self._lock:
            for old in self._jobs_of(collector["collector_id"], "IN_PROGRESS", secret_id):
                self._set_job(old, status="CANCELED", finished_at=iso(now))
            job = {"job_id": new_id("job"), "status": "IN_PROGRESS", "total_tasks": len(tasks),
                   "remained_tasks": len(tasks), "success_tasks": 0, "failure_tasks": 0,
                   "collector_id": collector["collector_id"], "request_secret_id": secret_id,
                   "request_workspace_id": "", "plugin_id": plugin_info.get("plugin_id", ""),
                   "resource_group": collector.get("resource_group", "WORKSPACE"),
                   "workspace_id": collector.get("workspace_id", ""), "domain_id": collector["domain_id"],
                   "created_at": iso(now), "updated_at": iso(now), "finished_at": ""}
            if not tasks:
                job.update(status="SUCCESS", finished_at=iso(now))
            self.store.insert(JOBS, job["job_id"], job, job["status"])
            queued = []
            for secret, sub_tasks in tasks:
                task = {"job_task_id": new_id("job-task"), "status": "PENDING", "provider": secret["provider"],
                        "total_sub_tasks": max(1, len(sub_tasks)), "remained_sub_tasks": max(1, len(sub_tasks)),
                        **{k: 0 for k in COUNT_KEYS}, "errors": [], "job_id": job["job_id"],
                        "secret_id": secret["secret_id"], "collector_id": collector["collector_id"],
                        "service_account_id": secret["service_account_id"], "project_id": secret["project_id"],
                        "workspace_id": secret["workspace_id"], "domain_id": collector["domain_id"],
                        "created_at": iso(now), "started_at": "", "finished_at": ""}
                self.store.insert(JOB_TASKS, task["job_task_id"], task, task["status"])
                for sub in sub_tasks or [{}]:
                    queued.append((task["job_task_id"], secret, dict(sub).get("task_options")))
        for job_task_id, secret, task_options in queued:
            self._pool.submit(self._run_sub_task, collector, job["job_id"], job_task_id, secret, task_options,
                              endpoint)
        return job

    def endpoint(self, collector: dict) -> str:
        """Where the collector's plugin runs, as the plugin service answers (plugin_service)."""
        if self.endpoints is None:
            raise RuntimeError("CollectorJobs needs the plugin service's look-up (PluginEndpoints)")
        endpoint, _ = self.endpoints.for_plugin_info(collector.get("plugin_info") or {}, collector["domain_id"])
        return endpoint

    def wait(self, job_id: str, timeout: float | None = None) -> dict:
        """Block until the job is no longer IN_PROGRESS (tests and in-process callers); its record."""
        with self._done:
            self._done.wait_for(lambda: (self.store.get(JOBS, job_id) or {}).get("status") != "IN_PROGRESS",
                                timeout)
            return self.store.get(JOBS, job_id) or {}

    # -- a sub-task (collecting_manager.collecting_resources) -------------------
    def _run_sub_task(self, collector: dict, job_id: str, job_task_id: str, secret: dict,
                      task_options: dict | None, endpoint: str) -> None:
        try:
            self._collect_sub_task(collector, job_id, job_task_id, secret, task_options, endpoint)
        except Exception:  # noqa: BLE001 - a worker never dies of one task
            log.exception("sub-task of %s failed", job_task_id)

    def _collect_sub_task(self, collector: dict, job_id: str, job_task_id: str, secret: dict,
                          task_options: dict | None, endpoint: str) -> None:
        with self._lock:
            if (self.store.get(JOBS, job_id) or {}).get("status") == "CANCELED":
                self._add_error(job_task_id, "ERROR_COLLECT_CANCELED", "The job has been canceled.")
                self._make_failure(job_task_id, {})
                return
            task = self.store.get(JOB_TASKS, job_task_id) or {}
            if task.get("status") == "PENDING":
                self._set_task(task, status="IN_PROGRESS", started_at=iso(self.now()))
        options = (collector.get("plugin_info") or {}).get("options") or {}
        params: dict[str, Any] = {"options": options, "secret_data": secret["data"], "filter": {}}
        if task_options:
            params["task_options"] = task_options
        try:
            resources = self.backend.plugin_clients.connect(endpoint).dispatch("Collector.collect", params)
        except Exception as exc:  # noqa: BLE001 - "plugin collecting error"
            self._add_error(job_task_id, "ERROR_COLLECTOR_PLUGIN", _message(exc))
            self._make_failure(job_task_id, {"failure_count": 1})
            return
        status = "SUCCESS"
        try:
            counts = self._upsert_all(resources, collector, job_task_id, secret)
            if counts["failure_count"] > 0:
                status = "FAILURE"
        except Exception as exc:  # noqa: BLE001 - "upsert resources error" (a broken stream lands here)
            self._add_error(job_task_id, "ERROR_COLLECTOR_PLUGIN", _message(exc))
            status, counts = "FAILURE", {"failure_count": 1}
        if status == "SUCCESS":
            self._decrease_remained_sub_tasks(job_task_id, counts)
        else:
            self._make_failure(job_task_id, counts)

    def _upsert_all(self, resources: Iterable[dict], collector: dict, job_task_id: str, secret: dict) -> dict:
        counts = {"created_count": 0, "updated_count": 0, "failure_count": 0}
        for resource_info in resources:
            resource_type = resource_info.get("resource_type", "")
            try:
                if resource_type in ("inventory.Namespace", "inventory.Metric"):
                    self._upsert_metric_and_namespace(resource_info, collector)
                    continue
                result = self._upsert_resource(resource_info, collector, job_task_id, secret)
            except Exception as exc:  # noqa: BLE001 - "failed to upsert {resource_type}"
                self._add_error(job_task_id, "ERROR_UNKNOWN", f"failed to upsert {resource_type}: {_message(exc)}",
                                {"resource_type": resource_type})
                result = ERROR
            if result == CREATED:
                counts["created_count"] += 1
            elif result == UPDATED:
                counts["updated_count"] += 1
            elif result == ERROR:
                counts["failure_count"] += 1
        return counts

    def _upsert_metric_and_namespace(self, resource_info: dict, collector: dict) -> None:
        """_upsert_metric_and_namespace: managed, domain-wide, made when missing and replaced when the
        plugin ships another ``version``; kept where the emulated Namespace and Metric services keep them."""
        domain_id = collector["domain_id"]
        request = {**dict(resource_info.get("resource") or {}), "domain_id": domain_id,
                   "plugin_id": (collector.get("plugin_info") or {}).get("plugin_id", ""), "is_managed": True,
                   "resource_group": "DOMAIN", "workspace_id": "*"}
        namespace = resource_info.get("resource_type") == "inventory.Namespace"
        collection, id_key = (NAMESPACES, "namespace_id") if namespace else (METRICS, "metric_id")
        key = f"{domain_id}|{request.get(id_key, '')}"
        held = self.store.get(collection, key)
        now = iso(self.now())
        if not namespace:
            request = {"unit": "", "tags": {}, "status": "DONE", **request,
                       "labels_info": labels_info(request.get("query_options") or {})}
        if held is None:  # look up, then create, as the real manager does: a concurrent create of the same
            try:          # one fails as mongo_model ``create`` fails it (ERROR_SAVE_UNIQUE_VALUES)
                self.store.insert(collection, key, {**request, "created_at": now, "updated_at": now}, ukey=key)
            except DuplicateKey:
                raise errors.already_exists(id_key, str(request.get(id_key, ""))) from None
        elif held.get("version") != request.get("version"):
            self.store.replace(collection, key, {**held, **request, "updated_at": now})

    def _upsert_resource(self, resource_info: dict, collector: dict, job_task_id: str, secret: dict) -> int:
        resource_type = resource_info.get("resource_type", "")
        request = dict(resource_info.get("resource") or {})
        domain_id, workspace_id = collector["domain_id"], secret["workspace_id"]
        if resource_type not in RESOURCE_TYPES:
            raise ValueError(f"ERROR_UNSUPPORTED_RESOURCE_TYPE: resource_type = {resource_type}")
        if resource_info.get("state") == "FAILURE":
            self._add_error(job_task_id, "ERROR_PLUGIN", str(resource_info.get("message") or "Unknown error."),
                            request)
            return ERROR
        rules = resource_info.get("match_rules") or {}
        if not rules:
            self._add_error(job_task_id, "ERROR_MATCH_RULE", "Match rule is not defined.",
                            {"resource_type": resource_type})
            return ERROR
        found = self._match(resource_type, request, rules, domain_id, workspace_id)
        if found is None:
            self._add_error(job_task_id, "ERROR_TOO_MANY_MATCH", "Too many resources match the match rules.",
                            {"resource_type": resource_type})
            return ERROR
        if resource_type == "inventory.CloudService":
            return self._upsert_cloud_service(request, found, collector, job_task_id, secret)
        self._upsert_type_or_region(resource_type, request, found, domain_id, workspace_id)
        return NOT_COUNT

    def _match(self, resource_type: str, request: dict, rules: dict, domain_id: str,
               workspace_id: str) -> list[dict] | None:
        """_query_with_match_rules: the records the first rule with one match finds; None: too many."""
        collection = RESOURCE_TYPES[resource_type]
        matched: list[dict] = []
        for order in sorted(rules, key=lambda k: int(k) if str(k).isdigit() else str(k)):
            conditions = [query.Condition("domain_id", domain_id, "eq"),
                          query.Condition("workspace_id", workspace_id, "eq")]
            for key in rules[order]:
                value = _find(request, key)
                if value:  # rule_matcher.make_query: an empty value is dropped from the query
                    conditions.append(query.Condition(key, value, "eq"))
            ref = next((c.value for c in conditions if c.key == "reference.resource_id"), None)
            if collection == CLOUD_SERVICES and isinstance(ref, str):
                docs = self.store.cloud_services_by_ref([ref], include_deleted=False)
            else:
                docs = [d for d in self.store.scan(collection) if d.get("state") != DELETED]
            matched = [d for d in docs if all(query.matches(d, c) for c in conditions)]
            if len(matched) > 1 and request.get("data"):
                return None
            if len(matched) == 1:
                return matched
        return matched if len(matched) <= 1 else None

    def _upsert_cloud_service(self, request: dict, found: list[dict], collector: dict, job_task_id: str,
                              secret: dict) -> int:
        """create_resource / update_resource as a collector job makes them."""
        now = self.now()
        info = {"collector_id": collector["collector_id"], "secret_id": secret["secret_id"],
                "service_account_id": secret["service_account_id"], "last_collected_at": iso(now)}
        for key in ("cloud_service_type", "cloud_service_group", "provider"):
            if not request.get(key):
                raise ValueError(f"ERROR_REQUIRED_PARAMETER: key = {key}")
        if "data" not in request:
            raise ValueError("ERROR_REQUIRED_PARAMETER: key = data")
        if secret["project_id"]:
            request.setdefault("project_id", secret["project_id"])
        if not found:
            doc = new_cloud_service(request, collector["domain_id"], secret["workspace_id"], collection_info=info)
            insert_cloud_service(self.store, doc)
            result = CREATED
        else:
            doc = found[0]
            # _get_provider_from_meta(): a collector job's tags go to the secret's provider bucket
            update_cloud_service(self.store, doc, request, secret["provider"], collection_info=info)
            result = UPDATED
        self.store.touch_collection_state(collector["collector_id"], secret["secret_id"], doc["cloud_service_id"],
                                          job_task_id, collector["domain_id"], now)
        return result

    def _upsert_type_or_region(self, resource_type: str, request: dict, found: list[dict], domain_id: str,
                               workspace_id: str) -> None:
        collection = RESOURCE_TYPES[resource_type]
        if found:
            doc = {**found[0], **request, "updated_at": iso(self.now())}
            id_key = "cloud_service_type_id" if collection == CLOUD_SERVICE_TYPES else "region_id"
            self.store.replace(collection, doc[id_key], doc)
            return
        make = new_cloud_service_type if collection == CLOUD_SERVICE_TYPES else new_region
        doc, ukey = make(request, domain_id, workspace_id)
        id_key, key_name = (("cloud_service_type_id", "cloud_service_type_key") if collection == CLOUD_SERVICE_TYPES
                            else ("region_id", "region_key"))
        try:
            self.store.insert(collection, doc[id_key], doc, ukey=ukey)
        except DuplicateKey:  # as the public create answers it (inventory_service)
            raise errors.already_exists(key_name, ukey) from None

    # -- JobTask and Job state (job_task_manager.py, job_manager.py) ----------
    def _add_error(self, job_task_id: str, error_code: str, message: str, additional: dict | None = None) -> None:
        error: dict[str, Any] = {"error_code": error_code, "message": str(message).strip()[:MAX_MESSAGE_LENGTH]}
        if additional:
            error["additional"] = additional
        with self._lock:
            task = self.store.get(JOB_TASKS, job_task_id)
            if task is not None:
                self._set_task(task, errors=[*task.get("errors", []), error])

    def _make_failure(self, job_task_id: str, counts: dict) -> None:
        with self._lock:
            task = self.store.get(JOB_TASKS, job_task_id)
            if task is None:
                return
            self._set_task(task, status="FAILURE", finished_at=iso(self.now()))
            self._decrease_remained_sub_tasks(job_task_id, counts)

    def _decrease_remained_sub_tasks(self, job_task_id: str, counts: dict) -> None:
        with self._lock:
            task = self.store.get(JOB_TASKS, job_task_id)
            if task is None:
                return
            changes = {k: task.get(k, 0) + v for k, v in counts.items() if isinstance(v, int) and v > 0}
            changes["remained_sub_tasks"] = task["remained_sub_tasks"] - 1
            self._set_task(task, **changes)
            if task["remained_sub_tasks"] != 0:
                return
            if task["status"] == "IN_PROGRESS":
                cleaned = self._clean_up(task)
                self._set_task(task, **{k: task.get(k, 0) + v for k, v in cleaned.items() if v > 0},
                               status="SUCCESS", finished_at=iso(self.now()))
                self._task_ended(task["job_id"], "success_tasks")
            else:
                self._task_ended(task["job_id"], "failure_tasks")

    def _clean_up(self, task: dict) -> dict:
        """cleanup_manager.update_disconnected_and_deleted_count."""
        collector_id, domain_id = task["collector_id"], task["domain_id"]
        disconnected = self.store.disconnect_collection_states(
            collector_id, task["secret_id"], task["job_task_id"], domain_id, self.now() - DISCONNECT_AFTER_S)
        ids = self.store.disconnected_cloud_services(collector_id, domain_id, DISCONNECTED_DELETE_POLICY)
        deleted = 0
        for doc in self.store.get_many(CLOUD_SERVICES, ids):
            if doc.get("state") != DELETED and doc.get("domain_id") == domain_id:
                mark_deleted(self.store, doc)
                deleted += 1
        self.store.delete_collection_states(ids)
        return {"disconnected_count": disconnected - deleted, "deleted_count": deleted}

    def _task_ended(self, job_id: str, counter: str) -> None:
        job = self.store.get(JOBS, job_id)
        if job is None:
            return
        changes: dict[str, Any] = {counter: job.get(counter, 0) + 1, "remained_tasks": job["remained_tasks"] - 1}
        if changes["remained_tasks"] == 0 and job["status"] == "IN_PROGRESS":
            failed = changes.get("failure_tasks", job.get("failure_tasks", 0)) > 0
            changes.update(status="FAILURE" if failed else "SUCCESS", finished_at=iso(self.now()))
        self._set_job(job, **changes)

    def _set_task(self, task: dict, **changes: Any) -> None:
        task.update(changes)
        self.store.replace(JOB_TASKS, task["job_task_id"], task, task["status"])

    def _set_job(self, job: dict, **changes: Any) -> None:
        job.update(changes, updated_at=iso(self.now()))
        self.store.replace(JOBS, job["job_id"], job, job["status"])
        self._done.notify_all()

    def _jobs_of(self, collector_id: str, status: str, secret_id: str) -> list[dict]:
        return [j for j in self.store.scan(JOBS) if j.get("collector_id") == collector_id
                and j.get("status") == status and (j.get("request_secret_id") or "") == (secret_id or "")]

    def delete_collector(self, collector_id: str) -> None:
        """CollectorService.delete: the collector's collection states, jobs and job tasks go with it."""
        with self._lock:
            self.store.delete_collection_states(collector_id=collector_id)
            for job in self.store.scan(JOBS):
                if job.get("collector_id") == collector_id:
                    self.store.delete(JOBS, job["job_id"])
            for task in self.store.scan(JOB_TASKS):
                if task.get("collector_id") == collector_id:
                    self.store.delete(JOB_TASKS, task["job_task_id"])


RESOURCE_TYPES = {"inventory.CloudService": CLOUD_SERVICES, "inventory.CloudServiceType": CLOUD_SERVICE_TYPES,
                  "inventory.Region": REGIONS, "inventory.ErrorResource": ""}


def _find(data: Any, key: str) -> Any:
    """rule_matcher.find_data: a dotted key's value, None when absent."""
    for part in key.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _message(exc: BaseException) -> str:
    return getattr(exc, "message", None) or str(exc)
