"""What flows between the pipeline's steps: one named type per kind of element.

    ReadFromPrism | ReadFromSnapshot ──► ReadResult
      .vms         VmWithStats ──► NormalizeVm ──► Resource ──► WriteToInventory ──► SeenIds
                   │                               └─► ExtractCost ──► CostRecord ──► cost sinks
                   └─ (key, vm.stats), or .stats: VmStats ──► ExtractMetrics ──► MetricBatch
                                                                 ──► WriteToMetricStore
      .infra       InfraEntity ──► NormalizeInfra ──► Resource (clusters ──► RegisterTypesAndRegions)
      .status      AccountEvent ──► SummarizeRun, Reconcile, WriteSnapshot
      .dead_letter DeadLetter ──► SummarizeRun, Reconcile
      .vms_as_read, .infra_as_read (live only): as read, repeats included ──► WriteSnapshot
    every sink ──► SinkResult, and DEAD_LETTER: DeadLetter ──► SummarizeRun ──► Notify

Keys of keyed elements are plain tuples of str: GroupByKey and CombinePerKey
encode those deterministically on Beam's fast path (a NamedTuple key falls back
to a slower encoding, with a warning per step). The values are NamedTuples,
cheap to make for each of 100k VMs. Resources, cost records, events, dead
letters and results stay plain dicts, typed as TypedDicts, because the sinks,
the fingerprint, the snapshot and the run report work on dicts.

The modules use postponed annotations, so these hints are for readers and
type checkers: Beam sees ``Any`` and keeps its default coders.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Tuple, TypedDict

if TYPE_CHECKING:
    import pyarrow as pa
    from apache_beam import PCollection

DEAD_LETTER = "dead_letter"  # the tagged output where every step puts what it could not handle

VmKey = Tuple[str, str]  # (account, VM uuid)
InfraKey = Tuple[str, str, str]  # (account, kind: "cluster" | "host", uuid)


class PageRequest(NamedTuple):
    """One page of one list of one account to fetch (PlanPages -> FetchPages)."""

    account: str
    kind: str  # "cluster", "host" or "vm"
    offset: int
    length: int
    base_url: str  # the account's Prism Central, for console links
    api: str = "v3"  # "v3", or the v4 version to read it with ("v4.0"...): offset is then page x length


class VmRead(NamedTuple):
    """A VM as Prism listed it, with its page's stats of it."""

    base_url: str
    entity: dict  # the v3 entity, as Prism answered it
    stats: Optional[dict]  # its groups entity_result as Prism answered it; None: none read, or held apart


VmWithStats = Tuple[VmKey, VmRead]
VmStats = Tuple[VmKey, Optional[dict]]  # a VM's stats entity_result (None: none): what ExtractMetrics reads


class InfraRead(NamedTuple):
    """A cluster or a host as Prism listed it."""

    base_url: str
    entity: dict


InfraEntity = Tuple[InfraKey, InfraRead]


class Reference(TypedDict):
    resource_id: str
    external_link: str


class Resource(TypedDict):
    """A normalized cloud service (a VM, disk, cluster or host), as the sinks write it."""

    kind: str  # "vm", "disk", "cluster", "host"
    provider: str
    cloud_service_group: str
    cloud_service_type: str
    account: str
    resource_id: str
    name: str
    region_code: str  # the cluster's uuid
    instance_type: str
    instance_size: float
    ip_addresses: list
    data: dict  # every key always present (CloudForet merges data one level deep)
    tags: dict  # Prism's categories
    reference: Reference


class _AccountEventFields(TypedDict):
    account: str
    event: str  # "planned", "api", "failed", "page_read", "page_failed", "note"


class AccountEvent(_AccountEventFields, total=False):
    """What happened to an account's read (and reconciliation notes), for the run report."""

    kind: str  # the list or record kind a page event is about
    offset: int
    count: int
    error: str
    totals: dict  # "planned": {kind: total_matches}
    requests: int  # "planned": the page requests planned (each answered by a page event at least)
    text: str  # "note"; "api": why that API
    api: str  # "api": the API the account was read with ("v3", "v4.0", ...)


def account_event(account: str, event: str, **fields: Any) -> AccountEvent:
    return {"account": account, "event": event, **fields}  # type: ignore[typeddict-item]


# page events of these kinds answer no page request: a VM page's stats, a replayed record's file
_NOT_REQUESTS = ("vm_stats", "snapshot")


def planned_requests(ev: AccountEvent | dict) -> int:
    """The page requests a "planned" event announces (each is answered by one page event at least)."""
    return int(ev.get("requests", 0)) if ev.get("event") == "planned" else 0


def answers_request(ev: AccountEvent | dict) -> bool:
    """Whether the event is the answer (a page, or its failure) to a planned page request. Fewer
    answers than requests means a runner lost outputs: nothing else drops a page's event."""
    return ev.get("event") in ("page_read", "page_failed") and ev.get("kind") not in _NOT_REQUESTS


class DeadLetter(TypedDict):
    """An element a step could not handle: counted and listed in the run report."""

    stage: str  # "read", "replay", "normalize", "inventory", "cost", "registry", "reconcile"
    account: str
    kind: str
    id: str
    reason: str


class CostRecord(TypedDict):
    """One resource's cost of one usage type on one day (ExtractCost -> the cost sinks)."""

    provider: str
    billed_date: str
    cost: float
    usage_quantity: float
    usage_unit: str
    product: str
    usage_type: str  # "vcpu", "memory", "storage"
    resource: str
    region_code: str
    tags: dict
    additional_info: dict
    data_source_id: str
    account: str


class MetricBatch(TypedDict):
    """The metric points of many VMs of one account (ExtractMetrics -> WriteToMetricStore)."""

    account: str
    points: pa.Table  # resource_id, metric, timestamp_ms, value, unit


class _SinkResultFields(TypedDict):
    sink: str  # "inventory", "cost", "cost_store", "metrics", "registry", "reconcile", "snapshot"
    account: str


class SinkResult(_SinkResultFields, total=False):
    """What one batch or commit of a sink did for an account; SummarizeRun adds them up."""

    created: int
    updated: int
    unchanged: int
    failed: int
    tags_drift: int
    already_present: int
    unsupported: bool
    types_created: int
    types_updated: int
    regions_created: int
    regions_updated: int
    deleted: int
    refused: int
    points: int
    records: int


SeenIds = Tuple[str, list]  # (account, the resource ids one inventory batch was given), for Reconcile


class ReadResult(NamedTuple):
    """What a source hands on: ReadFromPrism and ReadFromSnapshot return the same.

    A NamedTuple of PCollections, so Beam names the source's outputs after its fields.
    """

    vms: PCollection[VmWithStats]  # each VM once; a live read pairs it with its stats
    infra: PCollection[InfraEntity]  # each cluster and host once
    status: PCollection[AccountEvent]
    dead_letter: PCollection[DeadLetter]
    # a snapshot holds the stats apart (then every VmRead.stats is None): normalize takes their
    # latest utilization as a side input
    stats: Optional[PCollection[VmStats]] = None
    vms_as_read: Optional[PCollection[VmWithStats]] = None  # live: repeats included, for the snapshot
    infra_as_read: Optional[PCollection[InfraEntity]] = None  # live: repeats included, for the snapshot
