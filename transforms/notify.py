"""Notify: one ``Notification.create`` per account summarising the run, then the
JSON run report. Runs once, after every sink (it consumes the run summary).

It may be retried by the runner: a notification already sent for this run and
account (found by ``message.run_id``) is not sent again, and the report is
written to a temporary name and renamed.
"""
from __future__ import annotations

import logging
from typing import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from connectors.cloudforet import CloudForetClient
from connectors.errors import CloudForetError
from transforms.files import write_json_atomically
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
        self.client = CloudForetClient(self.options.endpoint, self.options.auth, self.options.timeout_s)

    def process(self, summary: dict) -> Iterable[dict]:
        o = self.options
        summary = dict(summary, notifications={})
        try:
            already = {(n.get("message", {}).get("run_id"), n.get("message", {}).get("account"))
                       for n in self.client.list_notifications(o.notification_topic)}
        except CloudForetError as err:
            log.warning("could not list earlier notifications: %s", err)
            already = set()
        for account in sorted(summary["accounts"]):
            if (summary["run_id"], account) in already:
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
            except CloudForetError as err:
                log.error("notification for %s failed: %s", account, err)
                summary["notifications"][account] = f"failed: {err}"
        write_json_atomically(self.report_path, summary)
        yield summary


class Notify(beam.PTransform):
    """Run summary -> notifications sent, report written; emits the final summary."""

    def __init__(self, options: CloudForetOptions, report_path: str):
        super().__init__()
        self.options, self.report_path = options, report_path

    def expand(self, summary):
        return summary | beam.ParDo(_NotifyFn(self.options, self.report_path))
