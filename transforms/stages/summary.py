"""SummarizeRun: every account event, sink result and dead letter -> one run summary.

Each sink emits per-batch results, so the summary can only be complete once
every sink has finished: it is the barrier before the notification.
"""
from __future__ import annotations

from typing import Collection, Iterable

import apache_beam as beam

from transforms.elements import (
    DEAD_LETTER,
    AccountEvent,
    DeadLetter,
    SinkResult,
    answers_request,
    planned_requests,
)
from transforms.settings import RunContext

MAX_ERRORS_PER_ACCOUNT = 20
READ_KEYS = {"cluster": "clusters", "host": "hosts", "vm": "vms", "vm_stats": "vm_stats"}
# the events that say an account's read reached the summary (a planned read, a page, a failure)
READ_EVENTS = ("planned", "failed", "page_read", "page_failed")
LOST = "the runner lost this account's results"


def empty_account() -> dict:
    return {
        "status": "SUCCESS",
        "complete": True,
        "error": None,
        "read_reached": False,  # no read event yet: an account never heard of is lost, not a success
        # requests planned (live reads), and the page events answering them: each request gives one at least
        "read": {"clusters": 0, "hosts": 0, "vms": 0, "vm_stats": 0, "pages": 0, "pages_failed": 0,
                 "requests_planned": 0, "requests_answered": 0},
        "inventory": {"created": 0, "updated": 0, "unchanged": 0, "failed": 0, "tags_drift": 0},
        "cost": {"created": 0, "already_present": 0, "failed": 0},
        "metrics": {"points": 0},
        "dead_letters": 0,
        "errors": [],
    }


def _add_error(acc: dict, text: str) -> None:
    if len(acc["errors"]) < MAX_ERRORS_PER_ACCOUNT:
        acc["errors"].append(text)


def apply_event(accounts: dict, ev: dict) -> None:
    acc = accounts.setdefault(ev.get("account", "?"), empty_account())
    kind = ev.get("type")
    if kind == "status":
        event = ev["event"]
        if event in READ_EVENTS:
            acc["read_reached"] = True
        acc["read"]["requests_answered"] += answers_request(ev)
        acc["read"]["requests_planned"] += planned_requests(ev)
        if event == "failed":
            acc["error"] = ev.get("error")
            acc["complete"] = False
        elif event == "page_failed":
            acc["read"]["pages_failed"] += 1
            acc["complete"] = False
            _add_error(acc, f"read {ev.get('kind')} page at offset {ev.get('offset')}: {ev.get('error')}")
        elif event == "note":
            acc.setdefault("notes", []).append(ev.get("text", ""))
        elif event == "api":  # which Prism API the account was read with, and why
            acc["api"] = ev.get("api", "")
            acc["api_reason"] = ev.get("text", "")
        elif event == "page_read":
            acc["read"]["pages"] += 1
            read_key = READ_KEYS.get(ev.get("kind", ""), "other")  # no kind: "other", as an unknown one
            acc["read"][read_key] = acc["read"].get(read_key, 0) + ev.get("count", 0)
    elif kind == "result":
        sink = acc.setdefault(ev["sink"], {})
        for k, v in ev.items():
            if k not in ("type", "sink", "account") and isinstance(v, (int, float)) and not isinstance(v, bool):
                sink[k] = sink.get(k, 0) + v
            elif isinstance(v, bool) and v:
                sink[k] = True
    elif kind == DEAD_LETTER:
        acc["dead_letters"] += 1
        _add_error(acc, f"{ev.get('stage')} {ev.get('kind')} {ev.get('id')}: {ev.get('reason')}")


def tags_drift_note(n: int) -> str:
    """What an operator reads when CloudForet's provider-bucket tags lag Prism's categories."""
    return (f"{n} cloud services' tags.nutanix no longer match their Prism categories: a public API update "
            "cannot change a create's tags, and the collector never writes the \"custom\" bucket people tag in; "
            "data.categories holds the current categories. Tags follow Prism only through the collector plugin "
            "(see the README)")


def lost_results(acc: dict) -> str | None:
    """Why the account's results cannot be trusted to be all there, if they cannot.

    A runner that drops outputs (of ``finish_bundle``, tagged ones) still runs
    this summary, seeded with every configured account: without this check an
    account nothing reached would be reported a success with nothing read."""
    if not acc["read_reached"]:
        return f"{LOST}: no read status of it reached the run summary (a runner that drops outputs?)"
    read = acc["read"]
    if read["requests_answered"] < read["requests_planned"]:
        return (f"{LOST}: {read['requests_answered']} of the {read['requests_planned']} planned page requests "
                "reached the run summary (a runner that drops outputs?)")
    return None


def finalize(accounts: dict, configured: Collection[str] = ()) -> dict:
    """Each account's status; a ``configured`` account whose results did not all arrive is an ERROR."""
    for name, acc in accounts.items():
        drift = acc["inventory"].get("tags_drift", 0)
        if drift and tags_drift_note(drift) not in acc.get("notes", []):
            acc.setdefault("notes", []).append(tags_drift_note(drift))
        failed = acc["inventory"]["failed"] + acc["cost"]["failed"] + acc["dead_letters"]
        lost = lost_results(acc) if name in configured else None
        if lost and not acc["error"]:
            acc["error"] = lost
            acc["complete"] = False
        if acc["error"]:
            acc["status"] = "ERROR"
        elif failed or not acc["complete"]:
            acc["status"] = "WARNING"
        else:
            acc["status"] = "SUCCESS"
    return accounts


class _SummaryFn(beam.CombineFn):
    def __init__(self, account_names: tuple[str, ...]):
        self.account_names = account_names

    def create_accumulator(self) -> dict:
        return {name: empty_account() for name in self.account_names}

    def add_input(self, acc: dict, ev: dict) -> dict:
        apply_event(acc, ev)
        return acc

    def merge_accumulators(self, accs: Iterable[dict]) -> dict:
        merged = self.create_accumulator()
        for acc in accs:
            for name, a in acc.items():
                m = merged.setdefault(name, empty_account())
                m["complete"] = m["complete"] and a["complete"]
                m["read_reached"] = m["read_reached"] or a["read_reached"]
                m["error"] = m["error"] or a["error"]
                m["dead_letters"] += a["dead_letters"]
                m["errors"] = (m["errors"] + a["errors"])[:MAX_ERRORS_PER_ACCOUNT]
                if a.get("notes"):
                    m["notes"] = m.get("notes", []) + a["notes"]
                if a.get("api"):
                    m["api"], m["api_reason"] = a["api"], a.get("api_reason", "")
                for section, values in a.items():
                    if not isinstance(values, dict):
                        continue
                    target = m.setdefault(section, {})
                    for k, v in values.items():
                        if isinstance(v, bool):
                            target[k] = target.get(k, False) or v
                        elif isinstance(v, (int, float)):
                            target[k] = target.get(k, 0) + v
        return merged

    def extract_output(self, acc: dict) -> dict:
        return finalize(acc, self.account_names)


def overall_status(accounts: dict) -> str:
    statuses = {a["status"] for a in accounts.values()}
    return "ERROR" if "ERROR" in statuses else "WARNING" if "WARNING" in statuses else "SUCCESS"


def _tag(kind: str):
    return lambda ev: {**ev, "type": kind}


class SummarizeRun(beam.PTransform[tuple[beam.PCollection[AccountEvent], beam.PCollection[SinkResult],
                                         beam.PCollection[DeadLetter]], beam.PCollection[dict]]):
    """(statuses, results, dead_letters) -> the single run summary."""

    def __init__(self, ctx: RunContext, account_names: tuple[str, ...]):
        super().__init__()
        self.ctx, self.account_names = ctx, account_names

    def expand(self, pcolls: tuple[beam.PCollection[AccountEvent], beam.PCollection[SinkResult],
                                   beam.PCollection[DeadLetter]]) -> beam.PCollection[dict]:
        statuses, results, dead_letters = pcolls
        ctx = self.ctx
        events = (
            (statuses | "TagStatus" >> beam.Map(_tag("status")),
             results | "TagResults" >> beam.Map(_tag("result")),
             dead_letters | "TagDeadLetters" >> beam.Map(_tag(DEAD_LETTER)))
            | "AllEvents" >> beam.Flatten())
        return (events
                | "Summarize" >> beam.CombineGlobally(_SummaryFn(self.account_names))
                | "Wrap" >> beam.Map(lambda accounts: {
                    "run_id": ctx.run_id, "collected_at": ctx.collected_at, "billed_date": ctx.billed_date,
                    "status": overall_status(accounts), "accounts": accounts}))
