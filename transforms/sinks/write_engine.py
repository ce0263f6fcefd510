"""Look up, then write, then retry what failed transiently: the heart of the sinks.

CloudForet has no batch write and its ``create`` never dedupes, so a batch is
written as: one ``list`` call that finds which records exist already, then one
unary call per record, all in flight at once on the shared channel. Records
that fail transiently are looked up *again* before the retry, so a create
whose answer was lost (applied, but DEADLINE_EXCEEDED) is never made twice.
A record deleted in CloudForet between the lookup and its update answers
ERROR_RESOURCE_ALREADY_DELETED: it is looked up again too, and the lookup,
which leaves deleted records out, has it created anew.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, Callable, Hashable

import grpc

from connectors.cloudforet import CloudForetClient, map_rpc_error
from connectors.errors import CloudForetError
from connectors.retry import Backoff, RetryPolicy

log = logging.getLogger(__name__)


def already_deleted(err: CloudForetError) -> bool:
    """The record was deleted already: what a real inventory answers to a ``delete`` or
    an ``update`` of a DELETED record (model/cloud_service_model.py CloudService.delete()
    and update() raise ERROR_RESOURCE_ALREADY_DELETED, an INVALID_ARGUMENT)."""
    return err.code == "INVALID_ARGUMENT" and "ERROR_RESOURCE_ALREADY_DELETED" in str(err)


class Conflict(Exception):
    """The record cannot be written as things stand (e.g. too many matches)."""


@dataclass
class Outcome:
    key: Hashable
    record: Any
    op: str  # created | updated | skipped | failed
    reason: str = ""


Lookup = Callable[[list], dict]  # keys -> {key: [existing...]}
MakeCall = Callable[[Any, list], tuple]  # (record, existing) -> (op, future | None)


class _CallsInFlight:
    """Per process: for each (what, key), a claim that stands for a started attempt's calls
    until all of them are answered.

    A bundle that fails while its batches' calls are in flight is retried by
    the runner; the retry's lookup must not run before those calls land, or it
    would miss what they create and create it again. Every batch waits for
    earlier calls on its keys before its lookup.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[Hashable, list] = {}

    def wait_for(self, what: str, keys: list) -> None:
        with self._lock:
            earlier = [f for k in keys for f in self._calls.pop((what, k), ())]
        for future in earlier:
            try:
                future.result()
            except Exception:  # noqa: BLE001 - only its landing matters here, not its outcome
                pass

    def add(self, what: str, key: Hashable, future) -> None:
        with self._lock:
            self._calls.setdefault((what, key), []).append(future)

    def answered(self, what: str, key: Hashable, future) -> None:
        with self._lock:
            calls = self._calls.get((what, key))
            if calls and future in calls:
                calls.remove(future)
                if not calls:
                    del self._calls[(what, key)]


IN_FLIGHT = _CallsInFlight()


class BatchWrite:
    """One batch, written at most once per record: ``start()`` looks up and puts
    every call in flight without waiting; ``finish()`` waits for the answers and
    retries what failed transiently (looking the records up again first).

    Between the two the caller can start the next batch, so CloudForet always
    has calls to work on while the next lookup and requests are prepared.
    ``stop(err)`` may say that an error makes every remaining record fail at
    once (e.g. an API the server no longer supports).
    """

    def __init__(self, client: CloudForetClient, pending: dict, lookup: Lookup, make_call: MakeCall, what: str,
                 policy: RetryPolicy, runner: Executor, stop: Callable[[CloudForetError], bool] = lambda e: False,
                 on_retry: Callable[[int], None] = lambda n: None):
        self.client, self.pending, self.lookup, self.make_call = client, pending, lookup, make_call
        self.runner = runner
        self._attempt: Future | None = None  # the attempt started last, until finish() takes it
        self.what, self.policy, self.stop, self.on_retry = what, policy, stop, on_retry
        self.outcomes: list[Outcome] = []
        self.backoff = Backoff(policy)
        self.last_error: dict = {}
        self.calls: list = []
        self.retry: dict = {}

    def start(self) -> "BatchWrite":
        """Lookup, then every call of this attempt in flight, in a thread of ``runner``, which
        then also waits for the answers: the caller goes on at once (a lookup takes a round
        trip; an unchanged fleet's batches are nothing but lookups)."""
        self.retry, self.calls = {}, []
        keys = list(self.pending)
        IN_FLIGHT.wait_for(self.what, keys)
        claim: Future = Future()  # stands for this attempt's calls until every one is answered
        for key in keys:
            IN_FLIGHT.add(self.what, key, claim)
        self._attempt = self.runner.submit(self._issue_and_collect, keys, claim)
        return self

    def _issue_and_collect(self, keys: list, claim: Future) -> CloudForetError | None:
        try:
            self._issue(keys)
            return self._collect()
        except BaseException:
            # The bundle fails here (e.g. its worker is going away): the calls already sent still
            # land, and the bundle's retry must not look its keys up before they did.
            for *_, future in self.calls:
                try:
                    future.result()
                except Exception:  # noqa: BLE001 - its outcome is the retry's to find out
                    pass
            raise
        finally:
            for key in keys:
                IN_FLIGHT.answered(self.what, key, claim)
            claim.set_result(None)

    def _issue(self, keys: list) -> None:
        try:
            existing = self.lookup(keys)
        except CloudForetError as err:
            if not err.transient and err.code != "UNAUTHENTICATED":
                self.outcomes += [Outcome(k, r, "failed", str(err)) for k, r in self.pending.items()]
                self.pending = {}
                return
            self.retry = dict(self.pending)
            self.last_error.update({k: str(err) for k in self.pending})
            return
        for key, record in self.pending.items():
            try:
                op, future = self.make_call(record, existing.get(key, []))
            except Conflict as exc:
                self.outcomes.append(Outcome(key, record, "failed", f"{self.what}: {exc}"))
                continue
            except CloudForetError as err:  # e.g. the token could not be renewed
                if err.transient:
                    self.retry[key], self.last_error[key] = record, str(err)
                else:
                    self.outcomes.append(Outcome(key, record, "failed", str(err)))
                continue
            if future is None:
                self.outcomes.append(Outcome(key, record, op))
            else:
                self.calls.append((key, record, op, future))

    def _collect(self) -> CloudForetError | None:
        """Waits for this attempt's calls; returns the error that stops the batch, if any."""
        stopped = None
        for key, record, op, future in self.calls:
            try:
                future.result()
                self.outcomes.append(Outcome(key, record, op))
                continue
            except grpc.RpcError as exc:
                err = map_rpc_error(exc, f"{self.what} ({op})")
            if self.stop(err):
                stopped = err
            if err.code == "UNAUTHENTICATED":
                self.client.tokens.invalidate()
            if err.transient or err.code == "UNAUTHENTICATED" or already_deleted(err):
                self.retry[key] = record
                self.last_error[key] = str(err)
            else:
                self.outcomes.append(Outcome(key, record, "failed", str(err)))
        self.calls = []
        return stopped

    def finish(self) -> list[Outcome]:
        """Every record's outcome (blocks; retries happen here)."""
        while True:
            attempt, self._attempt = self._attempt, None
            assert attempt is not None, "finish() before start()"
            stopped = attempt.result()
            if stopped is not None:
                return self.outcomes + [Outcome(k, r, "failed", str(stopped)) for k, r in self.retry.items()]
            self.pending, self.retry = self.retry, {}
            if not self.pending:
                return self.outcomes
            if not self.backoff.wait(on_retry=self._retrying):
                return self.outcomes + [
                    Outcome(k, r, "failed", f"{self.last_error.get(k, 'failed')} (gave up after "
                            f"{self.backoff.attempt} attempts)") for k, r in self.pending.items()]
            self.start()  # looks the records up again first

    def _retrying(self, delay: float) -> None:
        self.on_retry(len(self.pending))  # records written again
        log.debug("%s: retrying %d records in %.2fs", self.what, len(self.pending), delay)

