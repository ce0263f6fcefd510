"""The run report: the summary a person reads at the end of a run."""
from __future__ import annotations

import json
from typing import Iterable

from apache_beam.io.filesystems import FileSystems

from transforms.common.files import write_json_atomically


def read_report(path: str) -> dict:
    with FileSystems.open(path) as fh:
        return json.loads(fh.read().decode())


class LostResults(RuntimeError):
    """The pipeline finished, but its run report is missing, stale or lacks an account."""


def report_stamp(path: str) -> tuple[float, int] | None:
    """When the report was last written, and its size (None: there is none)."""
    try:
        found = FileSystems.match([path])[0].metadata_list
    except Exception:  # noqa: BLE001 - Beam raises BeamIOError for a missing file, others elsewhere
        return None
    return (found[0].last_updated_in_seconds, found[0].size_in_bytes) if found else None


def read_back_report(path: str, run_id: str, accounts: Iterable[str],
                     before: tuple[float, int] | None) -> dict:
    """The run report this run wrote, read back once the runner says it finished.

    A runner that drops outputs may never run the summary step at all, and still
    say DONE: success is what the report shows, and only if this run wrote it
    (``before``: its stamp before the run) and every account is in it."""
    stamp = report_stamp(path)
    if stamp is None:
        raise LostResults(f"the runner finished but no run report was written at {path}: "
                          "the summary step never ran (the runner lost the run's results)")
    if stamp == before:
        raise LostResults(f"the runner finished but the run report at {path} is the one of an earlier run: "
                          "this run's summary step never ran (the runner lost the run's results)")
    report = read_report(path)
    if report.get("run_id") != run_id:
        raise LostResults(f"the run report at {path} is of run {report.get('run_id')!r}, not of this run "
                          f"{run_id!r}: this run's summary step never wrote it")
    missing = sorted(set(accounts) - set(report.get("accounts") or {}))
    if missing:
        raise LostResults(f"the run report at {path} lacks the account(s) {', '.join(missing)}: "
                          "the runner lost their results")
    return report


def format_summary(summary: dict) -> str:
    head = ["account", "status", "clusters", "hosts", "VMs", "pages", "created", "updated", "unchanged",
            "deleted", "failed", "tag drift", "costs", "cost skip", "cost store", "points", "dead"]
    rows = []
    for name, a in sorted(summary["accounts"].items()):
        r, inv, cost = a["read"], a["inventory"], a["cost"]
        rows.append([name, a["status"], r["clusters"], r["hosts"], r["vms"], f"{r['pages']}/{r['pages_failed']}",
                     inv["created"], inv["updated"], inv.get("unchanged", 0),
                     a.get("reconcile", {}).get("deleted", 0), inv["failed"], inv.get("tags_drift", 0),
                     cost["created"], cost["already_present"], a.get("cost_store", {}).get("records", 0),
                     a["metrics"]["points"], a["dead_letters"]])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = lambda row: "  ".join(str(v).ljust(w) if i < 2 else str(v).rjust(w)  # noqa: E731
                                for i, (v, w) in enumerate(zip(row, widths)))
    lines = [f"Run {summary['run_id']} (collected {summary['collected_at']}): {summary['status']}",
             fmt(head), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in rows]
    for name, a in sorted(summary["accounts"].items()):
        if a.get("api"):
            lines.append(f"* {name}: read through Prism API {a['api']} ({a.get('api_reason', '')})")
        if a["error"]:
            lines.append(f"! {name}: account failed: {a['error']}")
        for note in a.get("notes", []):
            lines.append(f"* {name}: {note}")
        for e in a["errors"][:5]:
            lines.append(f"! {name}: {e}")
        if a["dead_letters"] > 5:
            lines.append(f"! {name}: ... {a['dead_letters']} dead letters in all (see the run report)")
    for w in summary.get("warnings", []):
        lines.append(f"! warning: {w}")
    notes = summary.get("notifications", {})
    if notes:
        lines.append("notifications: " + ", ".join(f"{k}: {v}" for k, v in sorted(notes.items())))
    return "\n".join(lines)


def counters(result) -> dict[str, int]:
    """Every Beam counter of the run, as ``namespace.name -> value``."""
    out: dict[str, int] = {}
    for c in result.metrics().query()["counters"]:
        key = f"{c.key.metric.namespace}.{c.key.metric.name}"
        value = c.committed if c.committed is not None else c.attempted
        out[key] = out.get(key, 0) + (value or 0)
    return dict(sorted(out.items()))


def format_counters(values: dict[str, int]) -> str:
    if not values:
        return "counters: none"
    width = max(len(k) for k in values)
    return "counters:\n" + "\n".join(f"  {k.ljust(width)}  {v}" for k, v in values.items())


def add_counters(path: str, values: dict[str, int], warnings: list[str] | None = None) -> None:
    """Adds the final counters, and the launcher's warnings, to the run report
    (written before the run ended)."""
    report = read_report(path)
    report["counters"] = values
    report["warnings"] = list(warnings or [])
    write_json_atomically(path, report)
