"""Reconcile: cloud services Prism no longer has are deleted in CloudForet.

Only after a complete collection of the account: a failed page, a failed
account or an entity read without a uuid means "not seen" is not "gone", so
nothing is deleted and the run report says why. A guard refuses to delete
more than ``max_delete_fraction`` of an account's cloud services in one run
unless told to (``--allow-mass-delete``): an empty answer from a confused
Prism Central must not empty CloudForet. Runs after the inventory writes.
"""
from __future__ import annotations

import logging
from itertools import chain
from typing import Iterable

import apache_beam as beam
import grpc
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from spaceone.api.inventory.v1 import cloud_service_pb2

from connectors.cloudforet import CloudForetClient, map_rpc_error
from connectors.errors import CloudForetError
from connectors.retry import Backoff, RetryPolicy
from transforms.elements import (
    DEAD_LETTER,
    AccountEvent,
    DeadLetter,
    SeenIds,
    SinkResult,
    answers_request,
    planned_requests,
)
from transforms.settings import CloudForetOptions, ReconcileOptions
from transforms.sinks.write_engine import already_deleted
from transforms.stages.normalize import PROVIDER

log = logging.getLogger(__name__)
NS = "reconcile"
NOTES = "notes"
IN_FLIGHT = 64


def completeness(events: Iterable[dict]) -> tuple[bool, str]:
    """From an account's read events: may its unseen resources be deleted?"""
    for ev in events:
        if ev.get("event") == "failed":
            return False, f"the account failed: {ev.get('error')}"
        if ev.get("event") == "page_failed":
            return False, f"a {ev.get('kind')} page at offset {ev.get('offset')} could not be read"
        if ev.get("stage") == "read":
            return False, "an entity without a uuid was read"
    return True, ""


class _CompletenessFn(beam.CombineFn):
    """(complete, why not, requests planned, requests answered) per account: a runner that lost
    page events (one that drops outputs) must not make unseen resources look gone."""

    def create_accumulator(self):
        return (True, "", 0, 0)

    def add_input(self, acc, ev):
        ok, why, planned, answered = acc
        if ok:
            ok, why = completeness([ev])
        return (ok, why, planned + planned_requests(ev), answered + answers_request(ev))

    def merge_accumulators(self, accs):
        accs = list(accs)
        failed = next(((ok, why) for ok, why, _, _ in accs if not ok), (True, ""))
        return (*failed, sum(a[2] for a in accs), sum(a[3] for a in accs))

    def extract_output(self, acc):
        ok, why, planned, answered = acc
        if ok and answered < planned:
            return (False, f"only {answered} of the {planned} planned page requests reached reconciliation "
                           "(the runner lost outputs)")
        return (ok, why)


MALFORMED = "malformed"  # in the writes: an entity seen but never written (it could not be normalized)


def unwritten(writes: Iterable[dict], account: str) -> int:
    """Resources of ``account`` seen this run that no write left in CloudForet: failed
    inventory writes and entities that could not be normalized."""
    return sum(r.get("failed", 0) if r.get("sink") == "inventory" else 1
               for r in writes if r.get("account") == account and r.get("sink") in ("inventory", MALFORMED))


def settled_by_count(stored: int, seen: set, writes: Iterable[dict], account: str) -> bool:
    """True when CloudForet holds no cloud service of ``account`` this run did not see.

    Exact: when every resource seen was written, CloudForet holds at least those
    ``len(seen)`` distinct ones, so holding exactly that many means holding nothing
    else. Counting writes instead would not do: a VM handed on twice is written
    twice, and the extra count would hide a stale cloud service.
    """
    return stored == len(seen) and unwritten(writes, account) == 0


class _ReconcileFn(beam.DoFn):
    """Lists an account's cloud services only when there can be stale ones: when
    CloudForet holds exactly as many as the distinct resources this run saw and wrote,
    every one of them is one it wrote (``settled_by_count``; a count takes one round
    trip, a listing many: benchmarks/README.md). Any other count (a
    stale one, a duplicate, one deleted meanwhile) or a resource seen but not written
    lists and compares, as before."""

    def __init__(self, options: CloudForetOptions, reconcile: ReconcileOptions):
        self.options, self.reconcile = options, reconcile
        self.deleted = Metrics.counter(NS, "deleted")
        self.refused = Metrics.counter(NS, "refused")
        self.counted = Metrics.counter(NS, "accounts_settled_by_count")

    def setup(self):
        self.client = CloudForetClient(self.options.endpoints, self.options.auth, self.options.timeout_s)

    def process(self, item: tuple, complete: dict, writes: list) -> Iterable:
        account, seen_lists = item
        ok, _ = complete.get(account, (False, ""))
        if not ok:  # said once per account by skipped_notes()
            return
        seen = set(chain.from_iterable(seen_lists))
        scope = [("provider", PROVIDER, "eq"), ("account", account, "eq")]
        try:
            if settled_by_count(self.client.count_cloud_services(scope), seen, writes, account):
                self.counted.inc()
                yield {"sink": NS, "account": account, "deleted": 0}
                return
            existing = self.client.list_cloud_services(
                scope, only=["cloud_service_id", "reference", "cloud_service_type", "name"])
        except CloudForetError as err:
            yield pvalue.TaggedOutput(NOTES, {"account": account, "event": "note",
                                              "text": f"reconciliation skipped: {err}"})
            return
        stale = [cs for cs in existing if cs.get("reference", {}).get("resource_id") not in seen]
        if not stale:
            yield {"sink": NS, "account": account, "deleted": 0}
            return
        share = len(stale) / max(1, len(existing))
        if share > self.reconcile.max_delete_fraction and not self.reconcile.allow_mass_delete:
            self.refused.inc(len(stale))
            yield pvalue.TaggedOutput(NOTES, {"account": account, "event": "note", "text": (
                f"reconciliation refused: {len(stale)} of {len(existing)} cloud services ({share:.0%}) are no "
                f"longer in Prism, above the {self.reconcile.max_delete_fraction:.0%} guard; if that is right, "
                "run again with --allow-mass-delete")})
            yield {"sink": NS, "account": account, "deleted": 0, "refused": len(stale)}
            return
        deleted, failed = self._delete(stale)
        self.deleted.inc(deleted)
        for cs, reason in failed:
            yield pvalue.TaggedOutput(DEAD_LETTER, DeadLetter(stage=NS, account=account,
                                                              kind=cs.get("cloud_service_type", ""),
                                                              id=cs.get("reference", {}).get("resource_id", ""),
                                                              reason=reason))
        log.info("account %s: deleted %d cloud services that Prism no longer has", account, deleted)
        yield {"sink": NS, "account": account, "deleted": deleted, "failed": len(failed)}

    def _delete(self, stale: list[dict]) -> tuple[int, list]:
        """Deletes with many calls in flight; NOT_FOUND or ERROR_RESOURCE_ALREADY_DELETED (what
        a real inventory answers for a record deleted already) means someone else did it."""
        backoff = Backoff(RetryPolicy(max_attempts=self.options.max_attempts))
        pending, deleted, failed = list(stale), 0, []
        while True:
            retry = []
            for start in range(0, len(pending), IN_FLIGHT):
                chunk = pending[start:start + IN_FLIGHT]
                futures = [(cs, self.client.future(self.client.cloud_service.delete,
                                                   cloud_service_pb2.CloudServiceRequest(
                                                       cloud_service_id=cs["cloud_service_id"])))
                           for cs in chunk]
                for cs, future in futures:
                    try:
                        future.result()
                        deleted += 1
                    except grpc.RpcError as exc:
                        err = map_rpc_error(exc, "CloudService.delete")
                        if err.code == "NOT_FOUND" or already_deleted(err):
                            deleted += 1
                        elif err.transient or err.code == "UNAUTHENTICATED":
                            if err.code == "UNAUTHENTICATED":
                                self.client.tokens.invalidate()
                            retry.append((cs, str(err)))
                        else:
                            failed.append((cs, str(err)))
            if not retry:
                break
            if not backoff.wait():
                failed += [(cs, f"{why} (gave up after {backoff.attempt} attempts)") for cs, why in retry]
                break
            pending = [cs for cs, _ in retry]
        return deleted, failed


class Reconcile(beam.PTransform[tuple[beam.PCollection[SeenIds], beam.PCollection[AccountEvent | DeadLetter],
                                     beam.PCollection[SinkResult]], dict[str, beam.PCollection]]):
    """(SeenIds (account, [seen ids]), read events, writes) -> {'results': SinkResult,
    NOTES: AccountEvent notes, DEAD_LETTER: DeadLetter}.

    The writes are the inventory results and a ``{"sink": MALFORMED, "account": ...}``
    per entity seen that could not be normalized (so never written)."""

    def __init__(self, options: CloudForetOptions, reconcile: ReconcileOptions):
        super().__init__()
        self.options, self.reconcile = options, reconcile

    def expand(self, pcolls: tuple[beam.PCollection[SeenIds], beam.PCollection[AccountEvent | DeadLetter],
                                   beam.PCollection[SinkResult]]) -> dict[str, beam.PCollection]:
        seen, events, inventory_results = pcolls
        complete = (events
                    | "KeyByAccount" >> beam.Map(lambda ev: (ev.get("account", "?"), ev))
                    | "Completeness" >> beam.CombinePerKey(_CompletenessFn()))
        out = (seen
               | "SeenPerAccount" >> beam.GroupByKey()
               | "DeleteUnseen" >> beam.ParDo(_ReconcileFn(self.options, self.reconcile),
                                              pvalue.AsDict(complete), pvalue.AsList(inventory_results))
               .with_outputs(NOTES, DEAD_LETTER, main="results"))
        skipped = complete | "SkippedNotes" >> beam.FlatMapTuple(skipped_notes)
        notes = (out[NOTES], skipped) | "AllNotes" >> beam.Flatten()
        return {"results": out.results, DEAD_LETTER: out[DEAD_LETTER], NOTES: notes}


def skipped_notes(account: str, state: tuple) -> Iterable[dict]:
    ok, why = state
    if not ok:
        yield {"account": account, "event": "note", "text": f"reconciliation skipped: {why}; nothing was deleted"}
