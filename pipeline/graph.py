"""The pipeline graph: a source, then normalize / cost / metrics, then the sinks.

    source (Prism live, or a snapshot) -> a ReadResult: each VM with its stats
      │ (live: WriteSnapshot)  ──► normalize ──► VM + disks + latest utilization ──► WriteToInventory
      │                            │         (clusters, hosts ──► WriteToInventory) └──► ExtractCost ──► cost sinks
      │                            └── VM stats ──► ExtractMetrics ──► WriteToMetricStore
    every status, result and dead letter ──► SummarizeRun ──► Notify (+ run report)

Live and replay share everything after the source, which is what makes a
replay reproduce the live run's CloudForet state. What flows between the
steps is typed in ``transforms/elements.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam

from transforms.elements import (
    DEAD_LETTER,
    CostRecord,
    DeadLetter,
    MetricBatch,
    ReadResult,
    Resource,
    VmStats,
    VmWithStats,
)
from transforms.settings import Config, RunContext
from transforms.sinks.cost_analysis import WriteToCostAnalysis
from transforms.sinks.files.cost_store import WriteToCostStore
from transforms.sinks.files.metric_store import WriteToMetricStore
from transforms.sinks.files.snapshot import WriteSnapshot
from transforms.sinks.inventory import SEEN, WriteToInventory
from transforms.sinks.notify import Notify
from transforms.sinks.reconcile import MALFORMED, NOTES, Reconcile
from transforms.sinks.registry import RegisterTypesAndRegions
from transforms.sources.prism import ReadFromPrism
from transforms.sources.snapshot import ReadFromSnapshot
from transforms.stages.cost import ExtractCost
from transforms.stages.metrics import ExtractMetrics
from transforms.stages.normalize import (
    NormalizeInfra,
    NormalizeVm,
    NormalizeVmWithUtilization,
    utilization_of,
)
from transforms.stages.summary import SummarizeRun


@dataclass
class Derived:
    """What the shared middle of the pipeline produces from a source.

    VMs with their disks, and clusters with hosts, stay two PCollections: a
    Flatten of outputs of two steps would make the local runner copy both
    whole into memory, so each sink is applied to each side instead.
    """

    vm_side: beam.PCollection[Resource]  # VMs and their disks
    infra: beam.PCollection[Resource]  # clusters and hosts
    clusters: beam.PCollection[Resource]
    costs: beam.PCollection[CostRecord]
    points: beam.PCollection[MetricBatch]
    malformed: beam.PCollection[DeadLetter]  # entities that could not be normalized (their uuid was seen)
    dead_letters: list[beam.PCollection[DeadLetter]]

    @property
    def sides(self) -> tuple[tuple[str, beam.PCollection], ...]:
        return (("Vms", self.vm_side), ("Infra", self.infra))


def read_live(p: beam.Pipeline, config: Config, ctx: RunContext) -> tuple[ReadResult, list]:
    """Prism -> entities; the snapshot archive is one more 'sink' of the read."""
    names = [a.name for a in config.accounts]
    read = p | "Accounts" >> beam.Create(names) | "ReadFromPrism" >> ReadFromPrism(
        config, ctx, shuffle_dedupe=runs_in_several_processes(p))
    extra_results = []
    if config.snapshot.enabled:
        as_read = (read.vms_as_read, read.infra_as_read, read.status)
        extra_results.append(as_read | "WriteSnapshot" >> WriteSnapshot(config.snapshot.path,
                                                                    config.snapshot.format, ctx,
                                                                    config.snapshot.codec))
    return read, extra_results


def runs_in_several_processes(p: beam.Pipeline) -> bool:
    """Whether VMs repeated by offset paging could reach two worker processes.

    In one process every worker drops the repeats it has seen; across
    processes (Flink, Dataflow, the local runner's multi_processing mode) a
    shuffle by VM does, at the price of holding the VMs in the shuffle.
    """
    from apache_beam.options.pipeline_options import DirectOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    if not isinstance(p.runner, FnApiRunner):
        return True
    direct = p.options.view_as(DirectOptions)
    return direct.direct_running_mode == "multi_processing" and (direct.direct_num_workers or 1) > 1


def read_snapshot(p: beam.Pipeline, snapshot_dir: str, manifest: dict) -> tuple[ReadResult, list]:
    return p | "ReadFromSnapshot" >> ReadFromSnapshot(snapshot_dir, manifest,
                                                      shuffle_dedupe=runs_in_several_processes(p)), []


def derive(read: ReadResult, config: Config, ctx: RunContext) -> Derived:
    """Entities -> resources, cost records and metric points (no I/O).

    A live read hands on every VM with its stats, so nothing is grouped: a VM
    flows from its page to the sinks in one fused step, whatever the fleet's
    size. A snapshot holds VMs and stats apart: the latest utilization of
    every VM (small) is a side input of normalize; points come from the stats.
    """
    if read.stats is None:
        vm_side, points, vm_dead = _vms_with_stats(read.vms, ctx)
    else:
        vm_side, points, vm_dead = _vms_apart_from_stats(read.vms, read.stats, ctx)
    infra = read.infra | "NormalizeInfra" >> beam.ParDo(NormalizeInfra()).with_outputs(
        DEAD_LETTER, main="resources")
    clusters = infra.resources | "Clusters" >> beam.Filter(lambda r: r["kind"] == "cluster")
    costs = vm_side | "ExtractCost" >> ExtractCost(config.rate_card, ctx, config.cloudforet.cost_data_source_id)
    malformed = (vm_dead, infra[DEAD_LETTER]) | "Malformed" >> beam.Flatten()
    return Derived(vm_side, infra.resources, clusters, costs, points, malformed, [read.dead_letter, malformed])


def _extract_metrics(ctx: RunContext) -> beam.ParDo:
    return beam.ParDo(ExtractMetrics(ctx.stats_interval_s, ctx.stats_start_ms, ctx.stats_end_ms))


def _vms_with_stats(pairs: beam.PCollection[VmWithStats], ctx: RunContext) -> tuple:
    points = (pairs
              | "VmStats" >> beam.MapTuple(lambda key, vm: (key, vm.stats))
              | "ExtractMetrics" >> _extract_metrics(ctx))
    vms = pairs | "NormalizeVms" >> beam.ParDo(NormalizeVm()).with_outputs(DEAD_LETTER, main="resources")
    return vms.resources, points, vms[DEAD_LETTER]


def _vms_apart_from_stats(vms: beam.PCollection[VmWithStats], stats: beam.PCollection[VmStats],
                          ctx: RunContext) -> tuple:
    points = stats | "ExtractMetrics" >> _extract_metrics(ctx)
    util = stats | "LatestUtilization" >> beam.MapTuple(lambda key, entity_result: (key, utilization_of(entity_result)))
    normalized = (vms
                  | "NormalizeVms" >> beam.ParDo(NormalizeVmWithUtilization(), utilization=beam.pvalue.AsDict(util))
                  .with_outputs(DEAD_LETTER, main="resources"))
    return normalized.resources, points, normalized[DEAD_LETTER]


def reconcile(read: ReadResult, derived: Derived, inventory: list, inventory_results,
              config: Config) -> tuple[list, list, list]:
    """Deletes what Prism no longer has (live runs, complete accounts only).

    Seen: (account, [resource ids]) per inventory batch, and each malformed entity's id.
    """
    seen = ((*(i[SEEN] for i in inventory),
             derived.malformed | "SeenMalformed" >> beam.Map(lambda d: (d["account"], [d["id"]])))
            | "Seen" >> beam.Flatten())
    events = (read.status, read.dead_letter) | "ReadEvents" >> beam.Flatten()
    writes = ((inventory_results,
               derived.malformed | "UnwrittenMalformed" >> beam.Map(lambda d: {"sink": MALFORMED,
                                                                               "account": d["account"]}))
              | "Writes" >> beam.Flatten())
    out = (seen, events, writes) | "Reconcile" >> Reconcile(config.cloudforet, config.reconcile)
    return [out["results"]], [out[DEAD_LETTER]], [out[NOTES]]


def write_and_notify(read: ReadResult, derived: Derived, extra_results: list, config: Config, ctx: RunContext,
                     account_names: tuple[str, ...], live: bool = True) -> beam.PCollection:
    cf = config.cloudforet
    registry = derived.clusters | "RegisterTypesAndRegions" >> RegisterTypesAndRegions(
        cf, {a.name: a.region_tags() for a in config.accounts})
    inventory = [side | f"Write{name}ToInventory" >> WriteToInventory(cf) for name, side in derived.sides]
    inventory_results = [i.results for i in inventory] | "InventoryResults" >> beam.Flatten()
    metrics = derived.points | "WriteToMetricStore" >> WriteToMetricStore(config.metric_store_path, ctx.run_id)
    results = [inventory_results, metrics, registry.results, *extra_results]
    dead_letters = [*derived.dead_letters, *(i[DEAD_LETTER] for i in inventory), registry[DEAD_LETTER]]
    statuses = [read.status]
    if live and config.reconcile.enabled:
        more_results, more_dead, notes = reconcile(read, derived, inventory, inventory_results, config)
        results += more_results
        dead_letters += more_dead
        statuses += notes
    if cf.cost_mode in ("api", "both"):
        service_accounts = {a.name: a.service_account_id for a in config.accounts if a.service_account_id}
        projects = {a.name: a.cost_project_id for a in config.accounts if a.cost_project_id}
        costs = derived.costs | "WriteToCostAnalysis" >> WriteToCostAnalysis(cf, service_accounts, projects)
        results.append(costs.results)
        dead_letters.append(costs[DEAD_LETTER])
    if cf.cost_mode in ("datasource", "both"):
        results.append(derived.costs | "WriteToCostStore" >> WriteToCostStore(config.cost_store_path, ctx.run_id))
    results = results | "SinkResults" >> beam.Flatten()
    dead_letters = dead_letters | "DeadLetters" >> beam.Flatten()
    statuses = statuses | "Statuses" >> beam.Flatten()
    summary = (statuses, results, dead_letters) | "SummarizeRun" >> SummarizeRun(ctx, account_names)
    return summary | "Notify" >> Notify(cf, config.report_path)


def build(p: beam.Pipeline, config: Config, ctx: RunContext,
          snapshot: tuple[str, dict] | None = None) -> beam.PCollection:
    """The whole run; ``snapshot=(dir, manifest)`` replays instead of reading Prism."""
    if snapshot is None:
        read, extra = read_live(p, config, ctx)
        names = tuple(a.name for a in config.accounts)
    else:
        read, extra = read_snapshot(p, *snapshot)
        names = tuple(sorted(snapshot[1]["accounts"]))
    derived = derive(read, config, ctx)
    return write_and_notify(read, derived, extra, config, ctx, names, live=snapshot is None)
