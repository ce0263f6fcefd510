"""Notify: one ``Notification.create`` per account summarising the run, then the
JSON run report. Runs once, after every sink (it consumes the run summary).

It may be retried by the runner. No CloudForet credential can see whether a
Project or Domain notification was sent (``Notification.list`` is a user's own
inbox), so the guard is on the collector's side: the run report records each
account's notification as "sent" right after the send, and a retry of the same
run finds it there and does not send it again.
"""
from __future__ import annotations

import logging
from typing import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from connectors.cloudforet import CloudForetClient
from connectors.errors import CloudForetError
from transforms.common.files import read_json_if_present, write_json_atomically
from transforms.settings import CloudForetOptions

log = logging.getLogger(__name__)
NS = "notify"


def notification_message(summary: dict, account: str) -> dict:
    a = summary["accounts"][account]
    inv, cost, read = a["inventory"], a["cost"], a["read"]
    lines = [
        f"Prism Central '{account}': {a['status']}",
        f"read: {read['clusters']} clusters, {read['hosts']} hosts, {read['vms']} VMs "
        f"({read['pages']} pages, {read['pages_failed']} failed)",
        f"cloud services: {inv['created']} created, {inv['updated']} updated, {inv.get('unchanged', 0)} unchanged, "
        f"{inv['failed']} failed",
        f"costs: {cost['created']} written, {cost['already_present']} already present, {cost['failed']} failed",
        f"cost store records: {a.get('cost_store', {}).get('records', 0)}",
        f"metric points: {a['metrics']['points']}",
    ]
    if a.get("reconcile"):
        lines.append(f"deleted (no longer in Prism): {a['reconcile'].get('deleted', 0)}")
    lines += a.get("notes", [])
    if a["error"]:
        lines.append(f"account failed: {a['error']}")
    lines += [f"error: {e}" for e in a["errors"][:5]]
    return {
        "title": f"Nutanix collection {summary['billed_date']} - {account}: {a['status']}",
        "description": "\n".join(lines),
        "occurred_at": summary["collected_at"],
        "run_id": summary["run_id"],
        "account": account,
        "tags": [{"key": "provider", "value": "nutanix"}, {"key": "account", "value": account},
                 {"key": "run_id", "value": summary["run_id"]}],
    }


class _NotifyFn(beam.DoFn):
    def __init__(self, options: CloudForetOptions, report_path: str):
        self.options, self.report_path = options, report_path
        self.sent = Metrics.counter(NS, "notifications_sent")

    def setup(self):
        self.client = CloudForetClient(self.options.endpoints, self.options.auth, self.options.timeout_s)

    def process(self, summary: dict) -> Iterable[dict]:
        o = self.options
        summary = dict(summary, notifications={})
        already = already_sent(self.report_path, summary["run_id"])
        for account in sorted(summary["accounts"]):
            if account in already:
                summary["notifications"][account] = "already sent"
                continue
            a = summary["accounts"][account]
            ntype = {"SUCCESS": "SUCCESS", "WARNING": "WARNING", "ERROR": "ERROR"}[a["status"]]
            try:
                self.client.create_notification(o.notification_resource_type, o.notification_resource_id,
                                                o.notification_topic, notification_message(summary, account),
                                                ntype, "LV1")
                self.sent.inc()
                summary["notifications"][account] = "sent"
                write_json_atomically(self.report_path, summary)  # recorded at once: a retry will not resend
            except CloudForetError as err:
                log.error("notification for %s failed: %s", account, err)
                summary["notifications"][account] = f"failed: {err}"
        write_json_atomically(self.report_path, summary)
        yield summary


def already_sent(report_path: str, run_id: str) -> set[str]:
    """Accounts whose notification for this run the report already records as sent."""
    report = read_json_if_present(report_path) or {}
    if report.get("run_id") != run_id:
        return set()
    return {a for a, state in (report.get("notifications") or {}).items() if state in ("sent", "already sent")}


class Notify(beam.PTransform[beam.PCollection[dict], beam.PCollection[dict]]):
    """Run summary -> notifications sent, report written; emits the final summary."""

    def __init__(self, options: CloudForetOptions, report_path: str):
        super().__init__()
        self.options, self.report_path = options, report_path

    def expand(self, summary: beam.PCollection[dict]) -> beam.PCollection[dict]:
        return summary | beam.ParDo(_NotifyFn(self.options, self.report_path))
