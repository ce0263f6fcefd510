"""ReadFromPrism: every page of every list, fetched in parallel.

The shape follows Beam's datastoreio: plan the pages from ``total_matches``,
``Reshuffle`` the page requests so they spread over workers, then fetch. Each
worker keeps one HTTP session per account and fetches several pages at once
(bounded by ``max_concurrency`` and the per-Prism-Central rate limiter).

Each VM page's stats are fetched with it (the v3 groups request's
``entity_ids``, "a set of entities that the request will be scoped to"), so a
VM leaves the read with its own time series: nothing downstream has to
join VMs with stats, and a VM can flow to the sinks as soon as its page is in
(a join would hold every VM of the fleet in the local runner's memory).
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Collection, Iterable
from uuid import uuid4

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from connectors.errors import ConnectorError, PrismAuthError, PrismError
from connectors.prism import PrismClient
from connectors.prism_v4 import MAX_LIMIT, PrismV4Client
from transforms.common import progress
from transforms.common.credentials import PrismClients
from transforms.common.gc_tuning import tune_gc
from transforms.common.windows import in_global_window
from transforms.elements import (
    DEAD_LETTER,
    AccountEvent,
    DeadLetter,
    InfraEntity,
    InfraRead,
    PageRequest,
    ReadResult,
    VmRead,
    VmWithStats,
    account_event,
)
from transforms.settings import Config, RunContext
from transforms.sources import v4_shapes

log = logging.getLogger(__name__)

LIST_KINDS = ("cluster", "host", "vm")
STATS = "vm_stats"
# tagged outputs of the fetch (the element types: transforms/elements.py)
VM_WITH_STATS = "vm_with_stats"  # VmWithStats: ((account, uuid), VmRead(base_url, entity, stats | None))
INFRA = "infra"  # InfraEntity: ((account, kind, uuid), InfraRead(base_url, entity))
# The series the metrics (transforms/stages/metrics.py) and the latest utilization are made
# of, and nothing more: each attribute is 12 points per VM to fetch, parse and archive.
STATS_ATTRIBUTES = [
    "hypervisor_cpu_usage_ppm", "memory_usage_ppm", "controller_num_read_iops", "controller_num_write_iops",
    "controller_read_io_bandwidth_kBps", "controller_write_io_bandwidth_kBps", "hypervisor_num_received_bytes",
    "hypervisor_num_transmitted_bytes",
]
TIME_MIN, TIME_MAX = -(1 << 63), (1 << 63) - 1  # stats times are 64-bit microseconds
STATUS = "status"  # tagged output: AccountEvent, per-account events for the run report
NS = "prism"


def parse_stats_page(answer: dict) -> tuple[int, list[tuple[str, dict]]]:
    """Groups answer -> (total entities, [(vm uuid, entity_result as Prism answered it)]).

    The raw entity result is kept so a snapshot archives what Prism said.
    """
    total = answer.get("total_entity_count", answer.get("filtered_entity_count", 0))
    total = total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else 0
    out = []
    groups = answer.get("group_results")
    for group in groups if isinstance(groups, list) else []:
        if not isinstance(group, dict):
            continue
        results = group.get("entity_results")
        for ent in results if isinstance(results, list) else []:
            if isinstance(ent, dict) and isinstance(ent.get("entity_id"), str) and ent["entity_id"]:
                out.append((ent["entity_id"], ent))
    return total, out


def parse_stats_entity(ent: dict, attributes: Collection[str] = STATS_ATTRIBUTES) -> dict:
    """entity_result -> {attribute: [(t_usec, value)]} for these attributes.

    Values arrive as strings; "-1" (no data) and garbage are dropped.
    """
    series: dict[str, list] = {}
    columns = ent.get("data") if isinstance(ent, dict) else None
    for col in columns if isinstance(columns, list) else []:
        if not isinstance(col, dict) or col.get("name") not in attributes:
            continue
        points = []
        values = col.get("values")
        for v in values if isinstance(values, list) else []:
            t = v.get("time") if isinstance(v, dict) else None
            if not isinstance(t, int) or not TIME_MIN <= t <= TIME_MAX:  # no time Prism can have
                continue
            vals = v.get("values")
            try:
                value = float(vals[0]) if isinstance(vals, list) and vals else float("nan")
            except (TypeError, ValueError, OverflowError):
                continue
            if value >= 0 and value == value and value != float("inf"):
                points.append((t, value))
        series[col["name"]] = sorted(points)
    return series


class _PrismDoFn(beam.DoFn):
    def __init__(self, config: Config, ctx: RunContext):
        self.config = config
        self.ctx = ctx

    def setup(self):
        tune_gc()
        self.clients = PrismClients(self.config)

    def teardown(self):
        self.clients.close()

    def _fetch(self, client: PrismClient, kind: str, offset: int, length: int) -> dict:
        page = client.list_page(kind, offset, length)
        return {"total": page.total_matches, "count": len(page.entities), "entities": page.entities,
                "answered_length": page.length}

    def _fetch_v4(self, client: PrismV4Client, kind: str, offset: int, length: int,
                  lookups: v4_shapes.Lookups | None) -> dict:
        """A v4 page (``offset`` is page x length), its entities in the v3 form when
        ``lookups`` are given (planning needs only the counts)."""
        page = client.list_v4(kind, offset // length, length)
        entities = page.entities
        if lookups is not None:
            convert = V4_CONVERTERS[kind]
            entities = [convert(e, lookups) for e in entities]
        return {"total": page.total, "count": len(entities), "entities": entities, "answered_length": length}

    def _fetch_stats_v4(self, client: PrismV4Client, uuids: list[str]) -> tuple[list, int]:
        """The stats of these VMs from the v4 VM stats list -> ([(uuid, entity_result in the
        v3 form)], calls made); the same eight series over the same window as v3."""
        fields = [v4_shapes.STATS_FIELDS[a] for a in STATS_ATTRIBUTES]
        answer = client.vm_stats_v4(uuids, fields, self.ctx.stats_start_ms, self.ctx.stats_end_ms,
                                    self.config.prism.stats_interval_s)
        wanted = set(uuids)
        out = [pair for pair in map(v4_shapes.stats_to_v3, answer) if pair is not None and pair[0] in wanted]
        return out, -(-len(answer) // MAX_LIMIT) or 1

    def _fetch_stats(self, client: PrismClient, uuids: list[str]) -> tuple[list, int]:
        """The stats of these VMs -> ([(uuid, entity_result)], calls made).

        A server that answers fewer members than asked is asked again from
        where it stopped.
        """
        entities: list = []
        calls = 0
        while len(entities) < len(uuids):
            answer = client.vm_stats(len(entities), len(uuids) - len(entities), STATS_ATTRIBUTES,
                                     self.ctx.stats_start_ms, self.ctx.stats_end_ms,
                                     self.config.prism.stats_interval_s, entity_ids=uuids)
            calls += 1
            _, got = parse_stats_page(answer)
            if not got:
                break
            entities += got
        return entities, calls


class _PooledPrismDoFn(_PrismDoFn):
    """A Prism DoFn with threads of its own for the calls it keeps in flight."""

    POOL_NAME = "prism"

    def setup(self):
        super().setup()
        self.pool = ThreadPoolExecutor(self.config.prism.max_concurrency, thread_name_prefix=self.POOL_NAME)

    def teardown(self):
        self.pool.shutdown(wait=False, cancel_futures=True)
        super().teardown()


class PlanPages(_PooledPrismDoFn):
    """Account -> a request for every page of each kind.

    A first call gives ``total_matches`` and the page length the server really
    answers; the first calls of all kinds of all accounts are made at once (a
    fleet of dozens of Prism Centrals is not planned one round trip after
    another). Every page, the first included, is then requested by the fetch
    step. Fetching the first page twice costs one call per kind, and keeps all
    entities flowing through one fused step (a Flatten of pages from two steps
    would make the local runner hold every page in memory).
    """

    def __init__(self, config: Config, ctx: RunContext):
        super().__init__(config, ctx)
        self.planned = Metrics.counter(NS, "pages_planned")
        self.failed_accounts = Metrics.counter(NS, "accounts_failed")

    POOL_NAME = "prism-plan"

    def start_bundle(self):
        # account, base url, a future of (api, why, the first page of each kind, or its future)
        self.pending: list[tuple[str, str, Future]] = []

    def process(self, account: str) -> None:
        """Asks for the first page of each kind of every account at once (the pages
        wait on them); the plans are handed on when the bundle finishes. An account
        read with v4 or ``auto`` first asks which API versions it serves."""
        try:
            client = self.clients.get(account)
        except ConnectorError as exc:
            self.pending.append((account, "", self._failed(exc)))
            return
        size = self.config.prism.page_size
        mode = self.config.api_of(account)
        if mode == "v3":
            firsts = [self.pool.submit(self._fetch, client, kind, 0, size) for kind in LIST_KINDS]
            done: Future = Future()
            done.set_result(("v3", "configured", firsts))
            self.pending.append((account, client.creds.base_url, done))
        else:
            self.pending.append((account, client.creds.base_url, self.pool.submit(self._firsts_v4, account, mode)))

    def _firsts_v4(self, account: str, mode: str) -> tuple[str, str, list]:
        """(api, why, first pages): ``auto`` reads v3 when the Prism Central serves no v4
        this client reads; ``v4`` uses the negotiated version, else v4.0."""
        v4 = self.clients.get_v4(account)
        version, why = v4.negotiate()
        if version is None:
            if mode == "auto":
                client = self.clients.get(account)
                if not client.creds.username:
                    raise PrismError(f"account '{account}': {why}, and v3 takes a username and password, "
                                     "not an API key: set username and password_env (or api: v4)")
                size = self.config.prism.page_size
                return "v3", f"auto: {why}; read through v3", [self._fetch(client, k, 0, size) for k in LIST_KINDS]
            version, why = "v4.0", f"configured v4 ({why}; trying v4.0)"
            v4.version = version
        else:
            why = f"{mode}: {why}, reading {version}"
        step = min(self.config.prism.page_size, MAX_LIMIT)
        return version, why, [self._fetch_v4(v4, kind, 0, step, None) for kind in LIST_KINDS]

    def finish_bundle(self):
        pending, self.pending = self.pending, []
        for account, base_url, future in pending:
            yield from map(in_global_window, self._plan(account, base_url, future))
        super().finish_bundle()

    @staticmethod
    def _failed(exc: ConnectorError) -> Future:
        future: Future = Future()
        future.set_exception(exc)
        return future

    def _plan(self, account: str, base_url: str, future: Future) -> Iterable[PageRequest | pvalue.TaggedOutput]:
        size = self.config.prism.page_size
        try:
            api, why, firsts = future.result()
            if api != "v3":
                size = min(size, MAX_LIMIT)
            totals, requests = {}, []
            for kind, got in zip(LIST_KINDS, firsts):
                first = got.result() if isinstance(got, Future) else got
                totals[kind] = first["total"]
                step = first.get("answered_length") or first["count"] or size
                step = max(1, min(step, size))
                requests += [PageRequest(account, kind, offset, step, base_url, api)
                             for offset in range(0, max(first["total"], 1), step)]
        except ConnectorError as exc:
            self.failed_accounts.inc()
            reason = "credentials rejected" if isinstance(exc, PrismAuthError) else "unreachable or failing"
            log.error("account %s failed (%s): %s", account, reason, exc)
            yield pvalue.TaggedOutput(STATUS, account_event(account, "failed", error=str(exc)))
            return
        self.planned.inc(len(requests))
        log.info("account %s is read through %s (%s)", account, api, why)
        yield from requests
        # requests: how many pages were planned, which the pages' answers are counted against
        yield pvalue.TaggedOutput(STATUS, account_event(account, "planned", totals=totals, requests=len(requests)))
        yield pvalue.TaggedOutput(STATUS, account_event(account, "api", api=api, text=why))


class FetchPages(_PooledPrismDoFn):
    """Page requests -> the pages' entities by kind (see split_page), several pages in flight per worker."""

    def __init__(self, config: Config, ctx: RunContext):
        super().__init__(config, ctx)
        self.fetched = Metrics.counter(NS, "pages_fetched")
        self.failed = Metrics.counter(NS, "pages_failed")
        self.entities = Metrics.counter(NS, "entities_read")
        self.retries = Metrics.counter(NS, "retries")

    POOL_NAME = "prism-fetch"

    def setup(self):
        super().setup()
        self.forget_lookups()

    def forget_lookups(self) -> None:
        self._lookups: dict[str, v4_shapes.Lookups] = {}
        self._lookup_locks: dict[str, threading.Lock] = {}
        self._lookups_lock = threading.Lock()

    def start_bundle(self):
        self.pending: set[Future] = set()

    def lookups(self, account: str, client: PrismV4Client) -> v4_shapes.Lookups:
        """The account's names by extId, read once per DoFn instance (five small lists): what v4
        VMs reference by id is joined from them as each page streams by. One lock per account: an
        account's lists never hold up another account's pages. A failed read is not kept: the next
        page tries again."""
        with self._lookups_lock:
            lock = self._lookup_locks.setdefault(account, threading.Lock())
        with lock:
            found = self._lookups.get(account)
            if found is None:
                found = self._lookups[account] = v4_shapes.Lookups.build(
                    client.list_all("cluster"), client.list_all("host"), client.list_all("subnet"),
                    client.list_all("storage_container"), client.list_all("category"))
            return found

    def process(self, request: PageRequest) -> Iterable[pvalue.TaggedOutput]:
        self.pending.add(self.pool.submit(self._fetch_range, *request))
        # Hand pages on as they come: at most max_concurrency decoded pages wait here.
        if len(self.pending) >= self.config.prism.max_concurrency:
            done, self.pending = wait(self.pending, return_when=FIRST_COMPLETED)
            for f in done:
                yield from self._outputs(f)

    def finish_bundle(self):
        done, _ = wait(self.pending)
        self.pending = set()
        for f in done:
            yield from map(in_global_window, self._outputs(f))

    def _outputs(self, future: Future) -> list:
        """Counts in the bundle's thread: Beam counters bumped in pool threads are lost."""
        outputs, tally = future.result()
        self.fetched.inc(tally["pages"])
        self.entities.inc(tally["entities"])
        self.failed.inc(tally["failed"])
        self.retries.inc(tally["retries"])
        return [o for out in outputs for o in (split_page(out) if isinstance(out, dict) else [out])]

    def _with_stats(self, client: PrismClient, account: str, offset: int, page: dict, tally: dict) -> list:
        """Adds the page's VM stats to it; failing stats cost the stats, not the VMs."""
        uuids = [u for u in (_uuid_of(e) for e in page["entities"]) if u]
        page["stats_entities"] = []
        if not uuids:
            return []
        try:
            if isinstance(client, PrismV4Client):
                page["stats_entities"], calls = self._fetch_stats_v4(client, uuids)
            else:
                page["stats_entities"], calls = self._fetch_stats(client, uuids)
        except ConnectorError as exc:
            tally["failed"] += 1
            log.error("stats of the vm page at offset %d of account %s failed: %s", offset, account, exc)
            return [pvalue.TaggedOutput(STATUS, account_event(
                account, "page_failed", kind=STATS, offset=offset, error=str(exc)))]
        tally["pages"] += calls
        tally["entities"] += len(page["stats_entities"])
        progress.add(account, f"{STATS} read", len(page["stats_entities"]))
        return []

    def _fetch_range(self, account: str, kind: str, offset: int, length: int, base_url: str,
                     api: str = "v3") -> tuple:
        """Fetches [offset, offset+length); follows up if the server answers fewer (v3).
        A v4 page is one OData page (``$page`` = offset / length): no follow-up."""
        outputs: list = []
        tally = {"pages": 0, "entities": 0, "failed": 0, "retries": 0}
        got = 0
        try:
            client: PrismClient
            if api != "v3":
                client = v4 = self.clients.get_v4(account, api)

                def fetch(at: int, n: int) -> dict:
                    return self._fetch_v4(v4, kind, at, n, self.lookups(account, v4))
            else:
                client = self.clients.get(account)

                def fetch(at: int, n: int) -> dict:
                    return self._fetch(client, kind, at, n)
            while got < length:
                page = fetch(offset + got, length - got)
                tally["pages"] += 1
                tally["entities"] += page["count"]
                progress.add(account, f"{kind} read", page["count"])
                if kind == "vm":
                    outputs += self._with_stats(client, account, offset + got, page, tally)
                outputs.append({"account": account, "kind": kind, "offset": offset + got, "base_url": base_url,
                                **page})
                got += page["count"]
                if api != "v3" or page["count"] == 0 or offset + got >= page["total"]:
                    break
        except ConnectorError as exc:
            tally["failed"] += 1
            log.error("page %s offset %d of account %s failed: %s", kind, offset + got, account, exc)
            outputs.append(pvalue.TaggedOutput(STATUS, account_event(
                account, "page_failed", kind=kind, offset=offset + got, error=str(exc))))
        tally["retries"] = client.take_retries() if client is not None else 0
        return outputs, tally


V4_CONVERTERS = {"vm": v4_shapes.vm_to_v3, "cluster": v4_shapes.cluster_to_v3, "host": v4_shapes.host_to_v3}


def _uuid_of(entity: Any) -> str | None:
    meta = entity.get("metadata") if isinstance(entity, dict) else None
    uuid = meta.get("uuid") if isinstance(meta, dict) else None
    return uuid if isinstance(uuid, str) and uuid else None


def split_page(page: dict) -> list[pvalue.TaggedOutput]:
    """A page -> keyed entities per kind (tagged outputs), and its page counts.

    ``vm_with_stats`` pairs each VM with its page's stats of it (``VmWithStats``;
    the snapshot archives these as read; the rest of the run takes each VM once),
    ``infra`` holds each cluster and host (``InfraEntity``).
    Done where the page is fetched: a page handed on as one element costs Beam
    an encoding of all of it whenever it samples the element's size.
    """
    account, kind, base_url = page["account"], page["kind"], page["base_url"]
    out: list[pvalue.TaggedOutput] = [
        pvalue.TaggedOutput(STATUS, account_event(account, "page_read", kind=kind, count=page["count"]))]
    stats = {}
    if kind == "vm":
        stats = dict(page.get("stats_entities", ()))
        out.append(pvalue.TaggedOutput(STATUS, account_event(account, "page_read", kind=STATS, count=len(stats))))
    for entity in page["entities"]:
        uuid = _uuid_of(entity)
        if uuid is None:
            out.append(pvalue.TaggedOutput(DEAD_LETTER, DeadLetter(
                stage="read", account=account, kind=kind, id=f"offset {page['offset']}",
                reason="entity without metadata.uuid")))
        elif kind == "vm":
            out.append(pvalue.TaggedOutput(VM_WITH_STATS, ((account, uuid), VmRead(base_url, entity, stats.get(uuid)))))
        else:
            out.append(pvalue.TaggedOutput(INFRA, ((account, kind, uuid), InfraRead(base_url, entity))))
    return out


def first_seen(values: Iterable) -> Any:
    """Offset paging over a changing inventory can repeat an entity: keep one."""
    return next(iter(values))


class _RunKeys:
    """The keys one pipeline's ``DropRepeats`` instances in this process handed on.

    ``claims`` holds the keys of bundles still running (key -> bundle), ``committed``
    those of finished bundles. A key is claimed when it is handed on, under the lock,
    so two bundles running at once on two threads cannot both hand it on.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.committed: set = set()
        self.claims: dict = {}
        self.users = 0  # DoFn instances attached (start_bundle) and not yet torn down

    def claim(self, key: Any, bundle: object) -> bool:
        with self.lock:
            if key in self.committed or key in self.claims:
                return False
            self.claims[key] = bundle
            return True

    def commit(self, keys: set) -> None:
        with self.lock:
            for key in keys:
                self.claims.pop(key, None)
            self.committed.update(keys)

    def release(self, keys: set, bundle: object) -> None:
        """A bundle that did not finish: its keys may be handed on again (by its retry)."""
        with self.lock:
            for key in keys:
                if self.claims.get(key) is bundle:
                    del self.claims[key]


class _SeenKeys:
    """Per process: the ``_RunKeys`` of each pipeline, by the pipeline's token.

    A pipeline's keys are forgotten only when no DoFn instance of it is left
    (teardown) and another pipeline starts, never under a pipeline still running.
    """

    _lock = threading.Lock()
    _runs: dict[str, _RunKeys] = {}

    @classmethod
    def attach(cls, token: str) -> _RunKeys:
        with cls._lock:
            run = cls._runs.get(token)
            if run is None:
                for idle in [t for t, r in cls._runs.items() if r.users == 0]:
                    del cls._runs[idle]
                run = cls._runs[token] = _RunKeys()
            run.users += 1
            return run

    @classmethod
    def detach(cls, token: str) -> None:
        with cls._lock:
            run = cls._runs.get(token)
            if run is not None:
                run.users -= 1


class DropRepeats(beam.DoFn):
    """Offset paging over a changing inventory can list a VM on two pages: hand it on once.

    The keys handed on are remembered per process and pipeline (a few MB at
    100k VMs; ``token`` is new for every pipeline built, so a re-run with the
    same run id starts afresh), shared by the DoFn instances of the pipeline's
    threads. A bundle's keys are claimed as it hands them on and committed when
    it finishes; a bundle that does not finish (the runner starts another on the
    instance, or tears the instance down) releases them, so its retry hands its
    VMs on again. Repeats that land in two worker processes are left to the
    shuffle of ``HandOnOnce``.

    ``remember=False`` drops repeats within a bundle only: where a shuffle follows
    (runners with workers in several processes, the ones that retry), a bundle
    that finished may still have its outputs thrown away and be run again (Flink
    restarting a failed region in the same SDK worker): remembered keys would make
    that retry drop every VM it hands on, and nothing would be written for them.
    """

    def __init__(self, token: str | None = None, remember: bool = True):
        self.token = token or uuid4().hex
        self.remember = remember
        self.dropped = Metrics.counter(NS, "repeats_dropped")
        self.run: _RunKeys | None = None
        self.bundle: set = set()
        self.bundle_id: object = None

    def start_bundle(self):
        if self.run is None and self.remember:
            self.run = _SeenKeys.attach(self.token)
        if self.bundle and self.run is not None:  # the last bundle failed: finish_bundle never ran
            self.run.release(self.bundle, self.bundle_id)
        self.bundle, self.bundle_id = set(), object()

    def process(self, item: VmWithStats) -> Iterable[VmWithStats]:
        key = item[0]
        if key in self.bundle or (self.run is not None and not self.run.claim(key, self.bundle_id)):
            self.dropped.inc()
            return
        self.bundle.add(key)
        yield item

    def finish_bundle(self):
        if self.run is not None:
            self.run.commit(self.bundle)
        self.bundle = set()

    def teardown(self):
        if self.run is not None:
            self.run.release(self.bundle, self.bundle_id)
            self.bundle = set()
            _SeenKeys.detach(self.token)
            self.run = None


class HandOnOnce(beam.PTransform[beam.PCollection[VmWithStats], beam.PCollection[VmWithStats]]):
    """Keyed VMs -> each key once: ``DropRepeats`` in every process, and with
    ``shuffle`` a grouping by key too (for workers in several processes); then
    ``DropRepeats`` remembers no key past its bundle (see its docstring)."""

    def __init__(self, shuffle: bool):
        super().__init__()
        self.shuffle = shuffle

    def expand(self, vms: beam.PCollection[VmWithStats]) -> beam.PCollection[VmWithStats]:
        vms = vms | "InProcess" >> beam.ParDo(DropRepeats(remember=not self.shuffle))
        return vms | "ByKey" >> beam.CombinePerKey(first_seen) if self.shuffle else vms


class ReadFromPrism(beam.PTransform[beam.PCollection[str], ReadResult]):
    """Account names -> a ``ReadResult``: ``vms`` each VM once with its stats, ``infra``
    each cluster and host once, ``status`` the accounts' events, ``dead_letter`` the
    entities without a uuid; ``vms_as_read`` and ``infra_as_read`` what was read,
    repeats included (for the snapshot). ``stats`` is None: they come with the VMs.

    ``shuffle_dedupe`` also groups VMs by key (when workers run in several
    processes, where repeats may land in different workers).
    """

    def __init__(self, config: Config, ctx: RunContext, shuffle_dedupe: bool = False):
        super().__init__()
        self.config = config
        self.ctx = ctx
        self.shuffle_dedupe = shuffle_dedupe

    def expand(self, accounts: beam.PCollection[str]) -> ReadResult:
        planned = accounts | "PlanPages" >> beam.ParDo(PlanPages(self.config, self.ctx)).with_outputs(
            STATUS, main="requests")
        split = (planned.requests
                 | "ReshufflePageRequests" >> beam.Reshuffle()
                 | "FetchPages" >> beam.ParDo(FetchPages(self.config, self.ctx)).with_outputs(
                     INFRA, VM_WITH_STATS, STATUS, DEAD_LETTER, main="unused"))
        vms = split[VM_WITH_STATS] | "DropRepeatedVms" >> HandOnOnce(self.shuffle_dedupe)
        status: beam.PCollection[AccountEvent] = (planned[STATUS], split[STATUS]) | "ReadStatus" >> beam.Flatten()
        infra: beam.PCollection[InfraEntity] = split[INFRA] | "DedupeInfra" >> beam.CombinePerKey(first_seen)
        # as read, before dedupe, in the same step as VMs and stats (for the snapshot)
        return ReadResult(vms=vms, infra=infra, status=status, dead_letter=split[DEAD_LETTER],
                          vms_as_read=split[VM_WITH_STATS], infra_as_read=split[INFRA])
