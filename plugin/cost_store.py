"""Read side of the cost store (``transforms.sinks.files.cost_store``) and the sync plan built from it.

``changed`` detection: a day changed when anything under its ``billed_date=``
directory (the directory itself, an ``account=`` directory or a file) has an
mtime at or after ``last_synchronized_at``. Directory mtimes matter: the
writer moves staged files (which keep their older mtime) into the partition
at commit time, and that rename updates the directory's mtime.
"""
from __future__ import annotations

import json
import posixpath
import re
from datetime import datetime, timezone
from typing import Iterator

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from schemas.parquet import COST_RECORD

from .errors import internal, invalid
from .storage import StoreFiles, hidden

DAY_PREFIX = "billed_date="
ACCOUNT_PREFIX = "account="
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_RUN_FILE = re.compile(r"^(?P<run>.+)-\d{5}\.parquet$")


def normalize_day(value: str, key: str) -> str:
    """'' | YYYY-MM | YYYY-MM-DD | ISO datetime -> '' or YYYY-MM-DD (a month means its first day)."""
    value = (value or "").strip()
    if not value:
        return ""
    if _MONTH.match(value):
        return value + "-01"
    if _DAY.match(value):
        return value
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        raise invalid(f"{key} = {value!r} is not YYYY-MM, YYYY-MM-DD or an ISO-8601 time") from None


def to_epoch_ns(value: str, key: str) -> int | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"{key} = {value!r} is not an ISO-8601 time") from None
    dt = dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1_000_000) * 1000


class CostStore:
    """``{root}/billed_date=D/account=A/<run_id>-NNNNN.parquet``, one run's files per partition."""

    def __init__(self, root: str, fs: pafs.FileSystem | None = None) -> None:
        """``root``: a local path or a URI the pipeline's writers accept (gs://, s3://, file://, ...)."""
        self.store = StoreFiles(root, fs)
        self.root = self.store.root

    def exists(self) -> bool:
        return self.store.exists()

    def days(self) -> dict[str, int]:
        """billed_date -> newest mtime (ns) under its directory (object stores give no
        directory mtimes: there the files' own count)."""
        out: dict[str, int] = {}
        for entry in self.store.dirs(self.store.base, DAY_PREFIX):
            day = entry.base_name[len(DAY_PREFIX):]
            if not _DAY.match(day):
                continue
            newest = entry.mtime_ns or 0
            for info in self.store.entries(entry.path, recursive=True):
                inside = posixpath.relpath(info.path, entry.path).split("/")
                if any(hidden(d) for d in inside[:-1]) or (info.type == pafs.FileType.Directory
                                                           and hidden(inside[-1])):
                    continue
                newest = max(newest, info.mtime_ns or 0)
            out[day] = newest
        return dict(sorted(out.items()))

    def files(self, day: str) -> list[str]:
        """The files of each account partition, from its greatest run_id only.

        A partition holds one run's files; while a commit replaces it, two runs'
        files can coexist for a moment, and only the newer run counts.
        """
        out: list[str] = []
        accounts = sorted(self.store.dirs(self.store.path(DAY_PREFIX + day), ACCOUNT_PREFIX), key=lambda e: e.path)
        for account_dir in accounts:
            by_run: dict[str, list[str]] = {}
            for info in self.store.files(account_dir.path):
                m = _RUN_FILE.match(info.base_name)
                if m:
                    by_run.setdefault(m.group("run"), []).append(info.path)
            if by_run:
                out.extend(sorted(by_run[max(by_run)]))
        return out

    def read_day(self, day: str) -> pa.Table:
        tables = []
        for path in self.files(day):
            try:
                tables.append(pq.read_table(path, schema=COST_RECORD, filesystem=self.store.fs))
            except Exception as exc:  # noqa: BLE001 - a bad file is named, never crashes the server
                raise internal(f"cost store file {path} is unreadable: {exc}") from exc
        return pa.concat_tables(tables) if tables else COST_RECORD.empty_table()

    def currency(self) -> str:
        """The currency of the newest day's records ('' if the store is empty)."""
        for day in reversed(list(self.days())):
            table = self.read_day(day)
            for value in table["currency"].to_pylist():
                if value:
                    return value
        return ""

    def records(self, first: str, last: str) -> Iterator[dict]:
        """Cost records (plugin CostInfo shape) billed in [first, last]."""
        for day in self.days():
            if first <= day <= last:
                for row in self.read_day(day).to_pylist():
                    yield {
                        "cost": row["cost"],
                        "usage_quantity": row["usage_quantity"],
                        "usage_unit": row["usage_unit"] or "",
                        "provider": row["provider"],
                        "region_code": row["region_code"] or "",
                        "product": row["product"] or "",
                        "usage_type": row["usage_type"] or "",
                        "resource": row["resource"],
                        "tags": json.loads(row["tags"] or "{}"),
                        "additional_info": json.loads(row["additional_info"] or "{}"),
                        "data": {"account": row["account"], "run_id": row["run_id"]},
                        "billed_date": row["billed_date"],
                    }


def plan(store: CostStore, start: str, last_synchronized_at: str, granularity: str = "MONTH"
         ) -> tuple[list[dict], list[dict]]:
    """(tasks, changed) for ``Job.get_tasks``.

    MONTH (default, what the current server expects: it deletes old costs by
    ``billed_month`` gte start / lte end): every month with a changed day is
    re-sent whole and replaced. DAY: each changed day is its own window.
    On a first sync (no last_synchronized_at) every day since ``start`` counts as changed.
    """
    if granularity not in ("MONTH", "DAY"):
        raise invalid(f"options.changed_granularity = {granularity!r}; use MONTH or DAY")
    start_day = normalize_day(start, "start")
    since_ns = to_epoch_ns(last_synchronized_at, "last_synchronized_at")
    days = store.days()
    changed_days = [d for d, mtime in days.items()
                    if d >= start_day and (since_ns is None or mtime >= since_ns)]
    tasks: list[dict] = []
    changed: list[dict] = []
    if granularity == "DAY":
        for d in changed_days:
            window = {"start": d, "end": d}
            tasks.append({"task_options": {"start": d, "end": d}, "task_changed": window})
            changed.append(window)
        return tasks, changed
    for month in sorted({d[:7] for d in changed_days}):
        in_month = [d for d in days if d[:7] == month]
        window = {"start": month, "end": month}
        tasks.append({"task_options": {"start": in_month[0], "end": in_month[-1], "billed_month": month},
                      "task_changed": window})
        changed.append(window)
    return tasks, changed
