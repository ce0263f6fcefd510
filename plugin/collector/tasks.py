"""Job.get_tasks and Collector.collect: one Prism Central split into tasks CloudForet runs at once.

Tasks: ``infrastructure`` (the types, regions, Metric Explorer definitions,
clusters and hosts) and one ``vms`` task per range of ``vms_per_task`` VM
list positions; the last range runs to the end of the list. Inventory makes
one JobTask per secret with ``total_sub_tasks`` = these tasks
(inventory ``service/collector_service.py`` ``collect`` / ``_get_tasks``) and
its workers run them concurrently, each a ``Collector.collect`` with the
task's ``task_options``; a ``collect`` without task options (what Inventory
sends when ``get_tasks`` failed) collects everything in one stream.

A VM moving between ranges during a run (VMs created or deleted before it in
Prism's list shift every later position) is neither lost nor counted twice:

- not lost: each task reads its range widened on both sides by a margin of
  ``range_margin`` VMs (default 50) plus however much the list's length
  changed since the plan (read again when the task starts). A VM of range
  [o, o+n) moves by as many positions as VMs were removed before it, less
  those added before it, so while that net move stays within the margin the
  VM is inside its own task's widened window whenever that task reads it,
  whichever task ran first; the last task also reads to the list's end as it
  is then, so VMs added after the plan are read. A move beyond the margin
  (more than ``range_margin`` VMs removed ahead of it within the run, not
  offset by the length change) can miss a VM for one run: that costs its
  ``updated_at`` one run, never the record, which Inventory deletes only after
  three successful runs more than an hour apart that all missed it;
- not twice: the widened windows overlap, so a VM may be read by two tasks.
  Every task of one run (``task_options.run``, made by get_tasks) claims each
  VM it hands on in one set shared by the run's tasks in this plugin process,
  the pipeline's own ``_RunKeys`` (``transforms/sources/prism.py``, what
  DropRepeats uses for the same problem); a VM already claimed is dropped. A
  task that fails releases its claims; its JobTask ends FAILURE, which
  deletes nothing that run. Inventory runs one plugin endpoint per collector, so the
  run's tasks reach this one process; were they spread over several, a VM
  read twice would be upserted twice, by the same match rule (one record,
  one more "updated" count), never made twice.
"""
from __future__ import annotations

import logging
import threading
import uuid as uuidlib
from typing import Any, Generator, Iterator

from spaceone.api.inventory.plugin import collector_pb2

from connectors.clock import SYSTEM_CLOCK, Clock
from connectors.errors import ConnectorError
from transforms.elements import DEAD_LETTER, PageRequest
from transforms.sources.prism import INFRA, STATUS, VM_WITH_STATS, _RunKeys
from transforms.stages.normalize import NormalizeInfra, NormalizeVm

from . import resources
from .reading import Account, TaskFetch, account_of, open_client, prism_options, run_context

log = logging.getLogger(__name__)

INFRASTRUCTURE = "infrastructure"
VMS = "vms"
DEFAULT_VMS_PER_TASK = 2000
DEFAULT_RANGE_MARGIN = 50
RUN_TTL_S = 3 * 3600  # Inventory fails jobs still IN_PROGRESS after 2 h: a run's claims are not needed longer
DEFINITIONS_LEAD_S = 600.0  # how long after one stream sent the definitions first the others send theirs last


class Runs:
    """What the streams of this plugin process share: the VM claims of each run (``task_options.run``),
    and which stream sends the definitions (types, Namespace, Metrics) first.

    Inventory's workers run the infrastructure tasks of several secrets at once, and its collecting
    manager creates a CloudServiceType or Metric it cannot match (``_upsert_resource``,
    ``_upsert_metric_and_namespace``: look up, then create): two streams sending a definition Inventory
    does not hold yet both create it, and the second fails ``ERROR_SAVE_UNIQUE_VALUES``, a failure of
    its JobTask. So the first stream in ``DEFINITIONS_LEAD_S`` whose Prism Central answered sends them
    first and every other one sends them after its resources, by when Inventory holds them and matches
    them (an update, not a second create). Each stream still sends them: the plugin cannot tell the
    workspaces of its secrets apart (``Collector.collect`` carries none), and each workspace needs its
    own types. Nothing the plugin sees says Inventory has stored the first stream's definitions, so
    this makes the collision unlikely, not impossible; ``python -m pipeline setup`` creates them before
    any job, after which every stream's are updates.
    """

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._runs: dict[str, tuple[float, _RunKeys]] = {}
        self._definitions_sent_first: float | None = None
        self._lock = threading.Lock()

    def definitions_first(self) -> bool:
        """True for the one stream that sends the definitions before its resources."""
        now = self.clock.monotonic()
        with self._lock:
            last = self._definitions_sent_first
            if last is not None and now - last <= DEFINITIONS_LEAD_S:
                return False
            self._definitions_sent_first = now
            return True

    def attach(self, run: str) -> _RunKeys:
        now = self.clock.monotonic()
        with self._lock:
            for old in [r for r, (t, _) in self._runs.items() if now - t > RUN_TTL_S]:
                del self._runs[old]
            if run not in self._runs:
                self._runs[run] = (now, _RunKeys())
            return self._runs[run][1]


RUNS = Runs()


def _whole_option(options: dict, key: str, default: int, least: int) -> int:
    value = options.get(key, default)
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = least - 1
    if n < least:
        raise ValueError(f"option {key} must be a whole number {'> 0' if least == 1 else f'>= {least}'}, "
                         f"got {value!r}")
    return n


def range_margin(options: dict) -> int:
    """VMs read before and after a task's range: the moves during a run it tolerates, beyond the
    change in the list's length it measures when it starts."""
    return _whole_option(options, "range_margin", DEFAULT_RANGE_MARGIN, 0)


def vms_per_task(options: dict) -> int:
    return _whole_option(options, "vms_per_task", DEFAULT_VMS_PER_TASK, 1)


def plan(secret_data: dict, options: dict) -> list[dict]:
    """The task options of one secret's collection (one Prism call: the VM list's length)."""
    account = account_of(secret_data, options)
    prism = prism_options(options)
    per_task = vms_per_task(options)
    client = open_client(account, prism)
    try:
        total = client.list_page("vm", 0, 1).total_matches
    finally:
        client.close()
    run = uuidlib.uuid4().hex
    tasks: list[dict] = [{"run": run, "part": INFRASTRUCTURE}]
    starts = list(range(0, total, per_task)) or [0]
    for i, offset in enumerate(starts):
        tasks.append({"run": run, "part": VMS, "offset": offset, "length": per_task, "planned_total": total,
                      "last": i == len(starts) - 1})
    return tasks


class Collection:
    """One ``Collector.collect`` stream: reads what the task covers, yields ResourceInfo."""

    def __init__(self, secret_data: dict, options: dict, task_options: dict, runs: Runs = RUNS,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.account: Account = account_of(secret_data, options)
        self.prism = prism_options(options)
        self.task = dict(task_options or {})
        self.runs = runs
        self.run_keys = runs.attach(str(self.task.get("run") or uuidlib.uuid4().hex))
        self.margin = range_margin(options)
        self.clock = clock

    def stream(self) -> Iterator[collector_pb2.ResourceInfo]:
        part = self.task.get("part")
        if part not in (None, INFRASTRUCTURE, VMS):
            raise ValueError(f"task_options.part {part!r} is not one get_tasks makes ({INFRASTRUCTURE}, {VMS})")
        client = open_client(self.account, self.prism)
        definitions_sent = True  # only infrastructure streams send them
        try:
            if part in (None, INFRASTRUCTURE):
                definitions_sent = yield from self._infrastructure(client)
            if part in (None, VMS):
                yield from self._vms(client)
        finally:
            client.close()
        if not definitions_sent:  # another stream sent them first (a stream that failed sends none)
            yield from self._definitions()

    @staticmethod
    def _definitions() -> Iterator[collector_pb2.ResourceInfo]:
        yield from resources.cloud_service_types()
        yield from resources.metric_explorer()

    # -- infrastructure -------------------------------------------------------
    def _infrastructure(self, client) -> Generator[collector_pb2.ResourceInfo, None, bool]:
        """Clusters (and their regions) and hosts; the definitions first if this stream is the one to
        send them first (its return value says whether it sent them)."""
        totals = {kind: client.list_page(kind, 0, 1).total_matches for kind in ("cluster", "host")}
        # only once Prism answered: a Prism Central that is down sends no definitions (its task fails anyway)
        first = self.runs.definitions_first()
        if first:
            yield from self._definitions()
        name, base_url, size = self.account.name, client.creds.base_url, self.prism.page_size
        requests = []
        for kind, total in totals.items():
            requests += [PageRequest(name, kind, o, size, base_url) for o in range(0, max(total, 1), size)]
        normalize = NormalizeInfra()
        seen: set = set()
        for out in TaskFetch(self.prism, run_context(self.prism, self.clock), client).run(requests):
            if out.tag == INFRA:
                if out.value[0] in seen:  # offset paging can repeat an entity
                    continue
                seen.add(out.value[0])
                for r in normalize.process(out.value):
                    yield from self._resource(r, region=True)
            else:
                yield from self._not_read(out)
        return first

    # -- VMs ------------------------------------------------------------------
    def _segments(self, client) -> list[tuple[int, int]]:
        """(offset, length) of the list positions to read: the task's range, and before and after it
        a margin of ``range_margin`` plus how much the list's length changed since the plan."""
        offset, length = int(self.task.get("offset", 0)), int(self.task.get("length", 0))
        now_total = client.list_page("vm", 0, 1).total_matches
        if "planned_total" not in self.task:  # a collect without tasks: everything
            return [(0, now_total + self.margin)]
        margin = self.margin + abs(now_total - int(self.task["planned_total"]))
        end = max(now_total, offset + length) if self.task.get("last") else offset + length
        lower = max(0, offset - margin)
        return [s for s in ((lower, offset - lower), (offset, end - offset), (end, margin)) if s[1] > 0]

    def _vms(self, client) -> Iterator[collector_pb2.ResourceInfo]:
        name, base_url, size = self.account.name, client.creds.base_url, self.prism.page_size
        requests = [PageRequest(name, "vm", o, min(size, start + n - o), base_url)
                    for start, n in self._segments(client) for o in range(start, start + n, size)]
        bundle: object = object()
        claimed: set = set()
        try:
            for out in TaskFetch(self.prism, run_context(self.prism, self.clock), client).run(requests):
                if out.tag == VM_WITH_STATS:
                    key = out.value[0]
                    if not self.run_keys.claim(key, bundle):
                        continue  # another task of the run (or a repeated page) handed it on
                    claimed.add(key)
                    (account, uuid), (vm_base, entity, stats) = out.value
                    for r in NormalizeVm._normalize(account, uuid, vm_base, entity, stats, None):
                        yield from self._resource(r)
                else:
                    yield from self._not_read(out)
        except BaseException:
            self.run_keys.release(claimed, bundle)
            raise
        self.run_keys.commit(claimed)

    # -- outputs --------------------------------------------------------------
    def _resource(self, r: Any, region: bool = False) -> Iterator[collector_pb2.ResourceInfo]:
        if getattr(r, "tag", None) == DEAD_LETTER:  # normalize could not make a cloud service of it
            d = r.value
            yield resources.failure(f"{d['kind']} {d['id']} of Prism Central '{d['account']}' could not be "
                                    f"normalized: {d['reason']}", d["kind"], d["id"])
            return
        if region and r["kind"] == "cluster":
            yield resources.region(r)
        yield resources.cloud_service(r)

    def _not_read(self, out: Any) -> Iterator[collector_pb2.ResourceInfo]:
        """A page that failed, or an entity without a uuid: a failure the JobTask counts (and a task
        with a failure deletes nothing: its clean-up does not run)."""
        v = out.value
        if out.tag == STATUS and v.get("event") == "page_failed":
            yield resources.failure(f"{v.get('kind')} page at offset {v.get('offset')} of Prism Central "
                                    f"'{v['account']}' could not be read: {v.get('error')}", str(v.get("kind")))
        elif out.tag == DEAD_LETTER:
            yield resources.failure(f"{v['kind']} at {v['id']} of Prism Central '{v['account']}': {v['reason']}",
                                    v["kind"])


def login_check(secret_data: dict, options: dict) -> None:
    """A real Prism call with the secret's credentials (Collector.verify); raises ConnectorError."""
    account = account_of(secret_data, options)
    client = open_client(account, prism_options(options))
    try:
        client.list_page("cluster", 0, 1)
    finally:
        client.close()


__all__ = ["Collection", "ConnectorError", "INFRASTRUCTURE", "Runs", "VMS", "login_check", "plan"]
