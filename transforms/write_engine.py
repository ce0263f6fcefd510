"""Look up, then write, then retry what failed transiently: the heart of the sinks.

CloudForet has no batch write and its ``create`` never dedupes, so a batch is
written as: one ``list`` call that finds which records exist already, then one
unary call per record, all in flight at once on the shared channel. Records
that fail transiently are looked up *again* before the retry, so a create
whose answer was lost (applied, but DEADLINE_EXCEEDED) is never made twice.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable

import grpc

from connectors.cloudforet import CloudForetClient, map_rpc_error
from connectors.errors import CloudForetError
from connectors.retry import Deadline, RetryPolicy

log = logging.getLogger(__name__)


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


def write_batch(client: CloudForetClient, pending: dict, lookup: Lookup, make_call: MakeCall, what: str,
                policy: RetryPolicy, stop: Callable[[CloudForetError], bool] = lambda e: False,
                on_retry: Callable[[int], None] = lambda n: None) -> list[Outcome]:
    """Writes every record of ``pending`` (key -> record) at most once.

    ``stop(err)`` may say that an error makes every remaining record fail at
    once (e.g. an API the server no longer supports).
    """
    outcomes: list[Outcome] = []
    deadline = Deadline(policy.max_total_s)
    last_error: dict = {}
    attempt = 0
    stopped: CloudForetError | None = None
    while pending:
        attempt += 1
        retry: dict = {}
        try:
            existing = lookup(list(pending))
        except CloudForetError as err:
            if not err.transient and err.code != "UNAUTHENTICATED":
                return outcomes + [Outcome(k, r, "failed", str(err)) for k, r in pending.items()]
            existing, retry = None, dict(pending)
            last_error = {k: str(err) for k in pending}
        if existing is not None:
            calls = []
            for key, record in pending.items():
                try:
                    op, future = make_call(record, existing.get(key, []))
                except Conflict as exc:
                    outcomes.append(Outcome(key, record, "failed", f"{what}: {exc}"))
                    continue
                except CloudForetError as err:  # e.g. the token could not be renewed
                    if err.transient:
                        retry[key], last_error[key] = record, str(err)
                    else:
                        outcomes.append(Outcome(key, record, "failed", str(err)))
                    continue
                if future is None:
                    outcomes.append(Outcome(key, record, op))
                else:
                    calls.append((key, record, op, future))
            for key, record, op, future in calls:
                try:
                    future.result()
                    outcomes.append(Outcome(key, record, op))
                    continue
                except grpc.RpcError as exc:
                    err = map_rpc_error(exc, f"{what} ({op})")
                if stop(err):
                    stopped = err
                if err.code == "UNAUTHENTICATED":
                    client.tokens.invalidate()
                if err.transient or err.code == "UNAUTHENTICATED":
                    retry[key] = record
                    last_error[key] = str(err)
                else:
                    outcomes.append(Outcome(key, record, "failed", str(err)))
        if stopped is not None:
            return outcomes + [Outcome(k, r, "failed", str(stopped)) for k, r in retry.items()]
        pending = retry
        if not pending:
            break
        delay = policy.delay(attempt)
        if attempt >= policy.max_attempts or not deadline.allows(delay):
            outcomes += [Outcome(k, r, "failed", f"{last_error.get(k, 'failed')} (gave up after {attempt} "
                                 "attempts)") for k, r in pending.items()]
            break
        on_retry(len(pending))  # records written again
        log.debug("%s: retrying %d records in %.2fs", what, len(pending), delay)
        time.sleep(delay)
    return outcomes
