"""Persistence for the data-source additions: registered data sources, cost jobs, synced costs.

Tables live in the emulator's SQLite file next to the core ones. This module
keeps its own connection so a sync stores its new costs and deletes the
``changed`` windows' old costs in one transaction (readers never see a day
doubled or missing); the core ``Store`` reads the same tables.
"""
from __future__ import annotations

import json
import sqlite3
import threading

from . import errors
from .store import COSTS, Store

MON_DATA_SOURCES = "monitoring_data_sources"
COST_DATA_SOURCES = "cost_data_sources"
COST_JOBS = "cost_jobs"
# the secret service's secrets (identity's ServiceAccount.create and cost-analysis's register of a
# MANUAL data source with secret_data make them); the core Store declares the same table
SECRETS = "secrets"
REPO_PLUGINS = "repository_plugins"  # repository.v1 Plugin (id: domain_id/plugin_id, unique as the real model)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {MON_DATA_SOURCES} (id TEXT PRIMARY KEY, state TEXT, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {COST_DATA_SOURCES} (id TEXT PRIMARY KEY, state TEXT, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {COST_JOBS} (id TEXT PRIMARY KEY, state TEXT, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {SECRETS} (id TEXT PRIMARY KEY, state TEXT, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {REPO_PLUGINS} (id TEXT PRIMARY KEY, state TEXT, doc TEXT NOT NULL);
"""


def _json_path(key: str) -> str:
    return "$" + "".join(f'."{part}"' for part in key.split("."))


class PluginStore:
    """Data-source tables plus the cost replacement of a sync."""

    def __init__(self, store: Store, config_secrets: dict[str, dict] | None = None, domain_id: str = "") -> None:
        self.store = store
        self.store_config_secrets = config_secrets if config_secrets is not None else {}  # read at each call
        self.domain_id = domain_id
        self._conn = sqlite3.connect(store.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def keep_secret(self, secret_id: str, data: dict, domain_id: str) -> None:
        """The secret a data source's registration made (Secret.create in the real service)."""
        self.store.insert(SECRETS, secret_id, {"secret_id": secret_id, "data": data, "domain_id": domain_id})

    def secret(self, secret_id: str, domain_id: str) -> dict:
        """Secret.get_data's data: a configured secret or a stored one; ERROR_NOT_FOUND otherwise."""
        if not secret_id:
            raise errors.required("secret_id")  # what the secret service answers for an empty secret_id
        data = self.store_config_secrets.get(secret_id)
        if data is None:
            doc = self.store.get(SECRETS, secret_id)
            data = doc.get("data") if doc else None
        if data is None or domain_id != self.domain_id:
            raise errors.not_found("secret_id", secret_id)
        return dict(data)

    def replace_costs(self, docs: list[dict], changed: list[dict], data_source_id: str, domain_id: str,
                      job_id: str) -> int:
        """Store ``docs`` and delete this data source's older costs in the ``changed`` windows.

        As the cost-analysis service does at job close: a window ``{start, end, filter}``
        selects ``billed_month`` (YYYY-MM) or ``billed_date`` (YYYY-MM-DD) >= start and
        <= end, plus ``filter`` equalities; costs of the current job are kept.
        Returns the number of deleted costs.
        """
        deleted = 0
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.executemany(f"INSERT INTO {COSTS} (id, state, doc) VALUES (?, '', ?)",
                                [(d["cost_id"], json.dumps(d, separators=(",", ":"), ensure_ascii=False))
                                 for d in docs])
                for window in changed:
                    start = str(window.get("start") or "")
                    end = str(window.get("end") or "")
                    field = "billed_month" if len(start) == 7 else "billed_date"
                    sql = (f"DELETE FROM {COSTS} WHERE json_extract(doc, '$.data_source_id') = ? "
                           f"AND json_extract(doc, '$.domain_id') = ? "
                           f"AND IFNULL(json_extract(doc, '$.job_id'), '') != ? "
                           f"AND json_extract(doc, '$.{field}') >= ?")
                    args: list = [data_source_id, domain_id, job_id, start]
                    if end:
                        sql += f" AND json_extract(doc, '$.{field}') <= ?"
                        args.append(end)
                    for key, value in (window.get("filter") or {}).items():
                        sql += " AND json_extract(doc, ?) = ?"
                        args.extend([_json_path(key), value])
                    deleted += cur.execute(sql, args).rowcount
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return deleted


__all__ = ["PluginStore", "MON_DATA_SOURCES", "COST_DATA_SOURCES", "COST_JOBS", "REPO_PLUGINS"]
