"""SQLite persistence: one table per collection of JSON documents.

Documents are stored whole as JSON; the query engine filters them in Python.
The hot lookups have indexes: cloud services by ``reference.resource_id`` (what an
upserting collector does for every resource, a dedicated column) and costs by
``resource`` (what a collector checks before ``Cost.create``, an expression index),
and ``ukey`` enforces the unique keys of types and regions.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any, Callable, Iterable

import orjson

CLOUD_SERVICES = "cloud_services"
CLOUD_SERVICE_TYPES = "cloud_service_types"
REGIONS = "regions"
COSTS = "costs"
NOTIFICATIONS = "notifications"
COLLECTORS = "collectors"
JOBS = "jobs"
JOB_TASKS = "job_tasks"
PROVIDERS = "providers"
SCHEMAS = "schemas"
SERVICE_ACCOUNTS = "service_accounts"
SECRETS = "secrets"
# inventory's Metric Explorer: namespaces and metrics (unique per domain), the data a metric run writes
NAMESPACES = "namespaces"
METRICS = "metrics"
METRIC_DATA = "metric_data"
MONTHLY_METRIC_DATA = "monthly_metric_data"

DELETED = "DELETED"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS {CLOUD_SERVICES} (
    id TEXT PRIMARY KEY, state TEXT, ref_resource_id TEXT, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_cloud_services_ref ON {CLOUD_SERVICES} (ref_resource_id);
CREATE TABLE IF NOT EXISTS {CLOUD_SERVICE_TYPES} (
    id TEXT PRIMARY KEY, state TEXT, ukey TEXT UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {REGIONS} (
    id TEXT PRIMARY KEY, state TEXT, ukey TEXT UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {COSTS} (id TEXT PRIMARY KEY, state TEXT, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_costs_resource ON {COSTS} (json_extract(doc, '$.resource'));
CREATE TABLE IF NOT EXISTS {NOTIFICATIONS} (id TEXT PRIMARY KEY, state TEXT, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {COLLECTORS} (id TEXT PRIMARY KEY, state TEXT, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {JOBS} (id TEXT PRIMARY KEY, state TEXT, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {JOB_TASKS} (id TEXT PRIMARY KEY, state TEXT, doc TEXT NOT NULL);
-- inventory model/collection_state_model.py CollectionState: which collector and secret last saw a cloud service
CREATE TABLE IF NOT EXISTS collection_states (
    collector_id TEXT NOT NULL, secret_id TEXT NOT NULL, cloud_service_id TEXT NOT NULL, job_task_id TEXT,
    disconnected_count INTEGER NOT NULL DEFAULT 0, domain_id TEXT, updated_at REAL NOT NULL,
    PRIMARY KEY (collector_id, secret_id, cloud_service_id));
CREATE INDEX IF NOT EXISTS idx_collection_states_cs ON collection_states (cloud_service_id);
CREATE TABLE IF NOT EXISTS {PROVIDERS} (id TEXT PRIMARY KEY, state TEXT, ukey TEXT UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {SCHEMAS} (id TEXT PRIMARY KEY, state TEXT, ukey TEXT UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {SERVICE_ACCOUNTS} (
    id TEXT PRIMARY KEY, state TEXT, ukey TEXT UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {SECRETS} (id TEXT PRIMARY KEY, state TEXT, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {NAMESPACES} (id TEXT PRIMARY KEY, state TEXT, ukey TEXT UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {METRICS} (id TEXT PRIMARY KEY, state TEXT, ukey TEXT UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {METRIC_DATA} (id TEXT PRIMARY KEY, state TEXT, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {MONTHLY_METRIC_DATA} (id TEXT PRIMARY KEY, state TEXT, doc TEXT NOT NULL);
"""

# SQLite's bound-parameter limit is large in modern builds but keep chunks modest.
_IN_CHUNK = 500


class DuplicateKey(Exception):
    """Raised when a unique key (``ukey``) already exists."""


def _dumps(doc: dict) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _loads(text: str) -> Any:
    """orjson reads a stored document 3-4x faster; what it refuses (NaN, integers
    beyond 64 bits, both of which json.dumps writes) the standard parser reads."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


class Store:
    """Thread-safe document store over a single SQLite connection."""

    def __init__(self, path: str) -> None:
        self.path = path
        # Autocommit mode: every write is its own short transaction, which in
        # WAL with synchronous=NORMAL costs no fsync per call.
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, cached_statements=256)
        self._lock = threading.Lock()
        self._selected: dict[tuple, tuple[int, list[dict]]] = {}
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @property
    def changes(self) -> int:
        """Rows written since the store was opened (a cheap 'has anything been written' probe)."""
        with self._lock:
            return self._conn.total_changes

    # -- meta ---------------------------------------------------------------
    def meta_get_or_set(self, key: str, default: bytes) -> bytes:
        """The stored value for ``key``, storing ``default`` first if absent."""
        with self._lock:
            self._conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, default))
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return bytes(row[0])

    # -- writes -------------------------------------------------------------
    def insert(self, collection: str, doc_id: str, doc: dict, state: str = "", *,
               ref_resource_id: str | None = None, ukey: str | None = None) -> None:
        """Insert a new document; ``DuplicateKey`` if ``ukey`` is taken."""
        data = _dumps(doc)
        try:
            with self._lock:
                if collection == CLOUD_SERVICES:
                    self._conn.execute(
                        f"INSERT INTO {CLOUD_SERVICES} (id, state, ref_resource_id, doc) VALUES (?, ?, ?, ?)",
                        (doc_id, state, ref_resource_id, data))
                elif ukey is not None:
                    self._conn.execute(
                        f"INSERT INTO {collection} (id, state, ukey, doc) VALUES (?, ?, ?, ?)",
                        (doc_id, state, ukey, data))
                else:
                    self._conn.execute(
                        f"INSERT INTO {collection} (id, state, doc) VALUES (?, ?, ?)", (doc_id, state, data))
        except sqlite3.IntegrityError as exc:
            raise DuplicateKey(str(exc)) from exc

    def replace(self, collection: str, doc_id: str, doc: dict, state: str = "", *,
                ref_resource_id: str | None = None, ukey: str | None = None) -> None:
        """Overwrite an existing document (same id); a new ``ukey`` too (``DuplicateKey`` if taken)."""
        data = _dumps(doc)
        with self._lock:
            if collection == CLOUD_SERVICES:
                self._conn.execute(
                    f"UPDATE {CLOUD_SERVICES} SET state = ?, ref_resource_id = ?, doc = ? WHERE id = ?",
                    (state, ref_resource_id, data, doc_id))
            elif ukey is not None:
                try:
                    self._conn.execute(f"UPDATE {collection} SET state = ?, ukey = ?, doc = ? WHERE id = ?",
                                       (state, ukey, data, doc_id))
                except sqlite3.IntegrityError as exc:
                    raise DuplicateKey(str(exc)) from exc
            else:
                self._conn.execute(f"UPDATE {collection} SET state = ?, doc = ? WHERE id = ?",
                                   (state, data, doc_id))

    def delete(self, collection: str, doc_id: str) -> None:
        """Remove a document for good (a Cost.delete: costs have no DELETED state)."""
        with self._lock:
            self._conn.execute(f"DELETE FROM {collection} WHERE id = ?", (doc_id,))

    # -- reads --------------------------------------------------------------
    def get(self, collection: str, doc_id: str) -> dict | None:
        with self._lock:
            row = self._conn.execute(f"SELECT doc FROM {collection} WHERE id = ?", (doc_id,)).fetchone()
        return _loads(row[0]) if row else None

    def scan(self, collection: str, include_deleted: bool = True) -> list[dict]:
        """All documents of a collection in insertion order."""
        sql = f"SELECT doc FROM {collection}"
        if not include_deleted:
            sql += f" WHERE state IS NOT '{DELETED}'"
        sql += " ORDER BY rowid"
        with self._lock:
            rows = self._conn.execute(sql).fetchall()
        return [_loads(r[0]) for r in rows]

    def scan_with_ids(self, collection: str) -> list[tuple[str, dict]]:
        """(id, document) of every document, in insertion order (to delete some by id)."""
        with self._lock:
            rows = self._conn.execute(f"SELECT id, doc FROM {collection} ORDER BY rowid").fetchall()
        return [(r[0], _loads(r[1])) for r in rows]

    def count_eq(self, collection: str, include_deleted: bool, eq: list[tuple[str, str]]) -> int:
        """How many documents have each top-level string field equal to its value, counted
        by SQLite without decoding any (an account's 15k cloud services took 0.6 s to decode)."""
        sql = f"SELECT COUNT(*) FROM {collection} WHERE 1"
        if not include_deleted:
            sql += f" AND state IS NOT '{DELETED}'"
        args: list[str] = []
        for key, value in eq:
            sql += " AND json_extract(doc, ?) = ?"
            args += [f'$."{key}"', value]
        with self._lock:
            return int(self._conn.execute(sql, args).fetchone()[0])

    def scan_selected(self, collection: str, include_deleted: bool, key: str,
                      select: Callable[[list[dict]], list[dict]]) -> list[dict]:
        """``select(scan(...))``, remembered until the next write.

        A client paging through a large listing asks the same query once per
        page; a database answers each page from its index, and this store from
        the first page's result instead of decoding every document again.
        """
        cache_key = (collection, include_deleted, key)
        with self._lock:
            version = self._conn.total_changes
            hit = self._selected.get(cache_key)
        if hit is not None and hit[0] == version:
            return hit[1]
        selected = select(self.scan(collection, include_deleted))
        with self._lock:
            if self._conn.total_changes == version:
                if len(self._selected) >= 8:
                    self._selected.pop(next(iter(self._selected)))
                self._selected[cache_key] = (version, selected)
        return selected

    def _where_in(self, sql: str, values: Iterable[Any]) -> list[dict]:
        """Documents from ``sql`` (ending in ``IN ({marks})``) for every value, in insertion order."""
        ids = sorted({str(i) for i in values if i is not None})
        rows: list[tuple[int, str]] = []
        with self._lock:
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start:start + _IN_CHUNK]
                rows.extend(self._conn.execute(sql.format(marks=",".join("?" * len(chunk))), chunk).fetchall())
        rows.sort(key=lambda r: r[0])
        return [_loads(r[1]) for r in rows]

    def get_many(self, collection: str, doc_ids: Iterable[str]) -> list[dict]:
        """The documents with these ids (those that exist), in insertion order."""
        return self._where_in(f"SELECT rowid, doc FROM {collection} WHERE id IN ({{marks}})", doc_ids)

    def cloud_services_by_ref(self, resource_ids: Iterable[Any], include_deleted: bool = True) -> list[dict]:
        """Cloud services whose ``reference.resource_id`` is one of ``resource_ids`` (indexed)."""
        state_sql = "" if include_deleted else f" AND state IS NOT '{DELETED}'"
        return self._where_in(f"SELECT rowid, doc FROM {CLOUD_SERVICES} WHERE ref_resource_id IN ({{marks}})"
                              f"{state_sql}", resource_ids)

    def costs_by_resource(self, resources: Iterable[Any]) -> list[dict]:
        """Costs whose ``resource`` is one of ``resources`` (expression index)."""
        return self._where_in(f"SELECT rowid, doc FROM {COSTS} WHERE json_extract(doc, '$.resource') IN ({{marks}})",
                              resources)

    # -- collection states (inventory manager/collection_state_manager.py) -----
    def touch_collection_state(self, collector_id: str, secret_id: str, cloud_service_id: str, job_task_id: str,
                               domain_id: str, now: float) -> None:
        """create_collection_state, or reset_collection_state (disconnected_count 0, this task, updated now)."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO collection_states (collector_id, secret_id, cloud_service_id, job_task_id, "
                "disconnected_count, domain_id, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?) "
                "ON CONFLICT (collector_id, secret_id, cloud_service_id) DO UPDATE SET "
                "job_task_id = excluded.job_task_id, disconnected_count = 0, updated_at = excluded.updated_at",
                (collector_id, secret_id, cloud_service_id, job_task_id, domain_id, now))

    def disconnect_collection_states(self, collector_id: str, secret_id: str, job_task_id: str, domain_id: str,
                                     older_than: float) -> int:
        """cleanup_manager _increment_disconnected_count_by_collector: every state of the collector and
        secret not touched by ``job_task_id`` and updated before ``older_than`` gets disconnected_count + 1
        (a raw increment: its updated_at stays); returns how many."""
        with self._lock:
            cur = self._conn.execute(
                "UPDATE collection_states SET disconnected_count = disconnected_count + 1 WHERE collector_id = ? "
                "AND secret_id = ? AND (job_task_id IS NOT ? ) AND domain_id = ? AND updated_at < ?",
                (collector_id, secret_id, job_task_id, domain_id, older_than))
            return cur.rowcount

    def disconnected_cloud_services(self, collector_id: str, domain_id: str, at_least: int) -> list[str]:
        """cleanup_manager _delete_resources_by_collector: the cloud services of the collector's states
        at ``disconnected_count >= at_least`` (any secret)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT DISTINCT cloud_service_id FROM collection_states WHERE collector_id = ? AND domain_id = ? "
                "AND disconnected_count >= ?", (collector_id, domain_id, at_least)).fetchall()
        return [r[0] for r in rows]

    def delete_collection_states(self, cloud_service_ids: Iterable[str] = (), collector_id: str | None = None) -> None:
        """Of these cloud services (deleted ones), or of a collector (Collector.delete)."""
        with self._lock:
            if collector_id is not None:
                self._conn.execute("DELETE FROM collection_states WHERE collector_id = ?", (collector_id,))
            ids = list(cloud_service_ids)
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start:start + _IN_CHUNK]
                self._conn.execute(f"DELETE FROM collection_states WHERE cloud_service_id IN "
                                   f"({','.join('?' * len(chunk))})", chunk)

    def collection_states(self, collector_id: str | None = None) -> list[dict]:
        """The states as rows (tests and the demo read them)."""
        sql = ("SELECT collector_id, secret_id, cloud_service_id, job_task_id, disconnected_count, domain_id, "
               "updated_at FROM collection_states")
        args: tuple = ()
        if collector_id is not None:
            sql, args = sql + " WHERE collector_id = ?", (collector_id,)
        keys = ("collector_id", "secret_id", "cloud_service_id", "job_task_id", "disconnected_count", "domain_id",
                "updated_at")
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY rowid", args).fetchall()
        return [dict(zip(keys, r)) for r in rows]

    # -- read helpers for tests ----------------------------------------------
    def cloud_services(self, include_deleted: bool = False) -> list[dict]:
        return self.scan(CLOUD_SERVICES, include_deleted=include_deleted)

    def cloud_service_types(self) -> list[dict]:
        return self.scan(CLOUD_SERVICE_TYPES)

    def regions(self) -> list[dict]:
        return self.scan(REGIONS)

    def costs(self) -> list[dict]:
        return self.scan(COSTS)

    def notifications(self) -> list[dict]:
        return self.scan(NOTIFICATIONS)

    def providers(self) -> list[dict]:
        return self.scan(PROVIDERS)

    def schemas(self) -> list[dict]:
        return self.scan(SCHEMAS)

    def service_accounts(self) -> list[dict]:
        return self.scan(SERVICE_ACCOUNTS)

    def secrets(self) -> list[dict]:
        return self.scan(SECRETS)

    def metric_data(self) -> list[dict]:
        return self.scan(METRIC_DATA)
