"""WriteToCostAnalysis: ``Cost.create``, exactly once per resource, usage type and day.

``Cost.create`` never dedupes, so re-running a day would double it. The key
(resource, usage_type, billed_date) is deterministic: before creating, the
batch's day is listed for its resources and records already there are skipped
(extra copies an earlier run left are deleted, so the key is there once).

Read and write need two grants of one DOMAIN_ADMIN user (cost-analysis 2.0.108):
- ``CostService.create``/``delete`` allow only WORKSPACE_OWNER, i.e. the
  user's WORKSPACE grant (identity ``GrantTokenManager.authenticate`` makes a
  DOMAIN_ADMIN a WORKSPACE_OWNER there); ``create`` needs ``project_id``;
- a workspace-scoped ``Cost.list`` sees nothing ``Cost.create`` wrote
  (``CostManager._change_filter_v_workspace_id`` maps the workspace through the
  data source's DataSourceAccounts, which ``create`` never makes), so the
  lookup uses the user's DOMAIN grant, with the request's own ``data_source_id``.
Apps cannot change scope: pipeline/config.py refuses them in this mode.
Servers from 2025 on answer ERROR_NOT_SUPPORT_API: then cost writing stops at
once with a message saying what to do, and nothing else in the run fails.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Iterable

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from spaceone.api.cost_analysis.v1 import cost_pb2

from connectors.cloudforet import CloudForetAuth, CloudForetClient, to_struct
from connectors.errors import CloudForetError
from connectors.retry import RetryPolicy
from transforms.common import progress
from transforms.elements import DEAD_LETTER, CostRecord
from transforms.settings import CloudForetOptions
from transforms.sinks.batching import BatchedCloudForetWrite, Finisher
from transforms.sinks.write_engine import BatchWrite
from transforms.stages.cost import cost_key
from transforms.stages.normalize import dead_letter

NS = "cost"
NOT_SUPPORTED = "ERROR_NOT_SUPPORT_API"
NOT_SUPPORTED_HINT = ("this CloudForet answers Cost.create with ERROR_NOT_SUPPORT_API (servers from 2025 on): "
                      "cost writing stopped. Switch the cost sink to 'datasource' mode so CloudForet pulls "
                      "the costs from the collector's cost data-source plugin.")


def reader_auth(auth: CloudForetAuth) -> CloudForetAuth:
    """The same user, granted in DOMAIN scope: what sees the costs its workspace grant created."""
    return dataclasses.replace(auth, scope="DOMAIN")


def create_request(c: CostRecord, project_id: str, service_account_id: str = "") -> cost_pb2.CreateCostRequest:
    """``usage_unit`` is typed float in the proto (a CloudForet mistake), so the
    unit travels in ``additional_info['Usage Unit']`` instead."""
    return cost_pb2.CreateCostRequest(
        project_id=project_id,
        cost=c["cost"], usage_quantity=c["usage_quantity"], provider=c["provider"],
        region_code=c["region_code"], product=c["product"], usage_type=c["usage_type"], resource=c["resource"],
        tags=to_struct(c["tags"]), additional_info=to_struct(c["additional_info"]),
        data_source_id=c["data_source_id"], billed_date=c["billed_date"],
        service_account_id=service_account_id)


class _WriteCostFn(BatchedCloudForetWrite):
    def __init__(self, options: CloudForetOptions, service_accounts: dict[str, str], projects: dict[str, str]):
        super().__init__(options)
        self.service_accounts = service_accounts
        self.projects = projects  # account -> project_id (else cloudforet.cost_project_id)
        self.created = Metrics.counter(NS, "created")
        self.skipped = Metrics.counter(NS, "already_present")
        self.failed = Metrics.counter(NS, "failed")
        self.retries = Metrics.counter(NS, "records_retried")
        self.duplicates_removed = Metrics.counter(NS, "duplicates_removed")

    def setup(self):
        super().setup()
        self.reader = CloudForetClient(self.options.endpoints, reader_auth(self.options.auth), self.options.timeout_s)
        self.unsupported = False  # set for good by the first ERROR_NOT_SUPPORT_API answer
        self.hint_sent: set = set()

    def group_of(self, c: dict) -> tuple[str, str]:
        return c["billed_date"], c["data_source_id"]

    def start_write(self, group: tuple[str, str], batch: list) -> Finisher:
        billed_date, data_source_id = group
        if self.unsupported:
            return lambda: self._report([(c, "failed", NOT_SUPPORTED_HINT) for c in batch])
        pending = {cost_key(c): c for c in batch}

        def lookup(keys: list) -> dict:
            resources = sorted({k[0] for k in keys})
            found = self.reader.list_costs(
                data_source_id,
                [("billed_date", billed_date, "eq"), ("provider", "nutanix", "eq"), ("resource", resources, "in")],
                only=["cost_id", "resource", "usage_type", "billed_date"], limit=max(len(keys) * 3, 10),
                decode=None)  # the messages' fields, read directly: a dict of each cost cost more than the lookup
            by_key: dict = {}
            for c in found:
                by_key.setdefault((c.resource, c.usage_type, c.billed_date), []).append(c)
            return by_key

        def make_call(c: CostRecord, existing: list) -> tuple:
            if existing:
                self._remove_extra_copies(existing)
                return "skipped", None
            sa = self.service_accounts.get(c["account"], "")
            project = self.projects.get(c["account"]) or self.options.cost_project_id
            return "created", self.client.future(self.client.cost.create, create_request(c, project, sa))

        def stop(err: CloudForetError) -> bool:
            if NOT_SUPPORTED in str(err):
                self.unsupported = True
            return self.unsupported

        started = BatchWrite(self.client, pending, lookup, make_call, "Cost",
                             RetryPolicy(max_attempts=self.options.max_attempts), self.runner, stop=stop,
                             on_retry=self.retries.inc).start()
        return lambda: self._report(self._results(started.finish()))

    def _remove_extra_copies(self, existing: list) -> None:
        """An earlier run (or a client without this lookup) stored a key more than once:
        keep one copy (the copies are the same record), delete the others (a copy already deleted is NOT_FOUND)."""
        for extra in sorted(existing, key=lambda c: c.cost_id)[1:]:
            try:
                self.client.call(self.client.cost.delete, cost_pb2.CostRequest(cost_id=extra.cost_id),
                                 f"Cost.delete({extra.cost_id})")
            except CloudForetError as err:
                if err.code != "NOT_FOUND":
                    raise
            self.duplicates_removed.inc()

    def _results(self, outcomes: list) -> list:
        return [(o.record, o.op, NOT_SUPPORTED_HINT if self.unsupported and o.op == "failed" else o.reason)
                for o in outcomes]

    def _report(self, results: list) -> Iterable:
        counts: Counter = Counter()
        for c, op, reason in results:
            counts[(c["account"], op)] += 1
            if op != "failed":
                continue
            if reason == NOT_SUPPORTED_HINT:
                # One dead letter says it all; the count says how many records it cost.
                if c["account"] in self.hint_sent:
                    continue
                self.hint_sent.add(c["account"])
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter(
                NS, c["account"], c["usage_type"], reason, f"{c['resource']}/{c['billed_date']}"))
        self.created.inc(sum(n for (_, op), n in counts.items() if op == "created"))
        self.skipped.inc(sum(n for (_, op), n in counts.items() if op == "skipped"))
        self.failed.inc(sum(n for (_, op), n in counts.items() if op == "failed"))
        for account in sorted({a for a, _ in counts}):
            progress.add(account, "cost records done", counts[(account, "created")] + counts[(account, "skipped")])
            yield {"sink": NS, "account": account, "created": counts[(account, "created")],
                   "already_present": counts[(account, "skipped")], "failed": counts[(account, "failed")],
                   "unsupported": self.unsupported}


class WriteToCostAnalysis(beam.PTransform[beam.PCollection[CostRecord], pvalue.DoOutputsTuple]):
    """Cost records -> per-batch results (main: SinkResult) and DEAD_LETTER."""

    def __init__(self, options: CloudForetOptions, service_accounts: dict[str, str] | None = None,
                 projects: dict[str, str] | None = None):
        super().__init__()
        self.options = options
        self.service_accounts = dict(service_accounts or {})
        self.projects = dict(projects or {})

    def expand(self, costs: beam.PCollection[CostRecord]) -> pvalue.DoOutputsTuple:
        return costs | beam.ParDo(_WriteCostFn(self.options, self.service_accounts, self.projects)).with_outputs(
            DEAD_LETTER, main="results")
