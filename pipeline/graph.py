"""The pipeline graph: Prism -> normalize -> cost / metrics -> sinks -> notify.

Read ──► join VMs with their stats ──► normalize ──► WriteToInventory
                                   │            └──► ExtractCost ──► WriteToCostAnalysis
                                   └──► ExtractMetrics ──► WriteToMetricStore
every status, result and dead letter ──► SummarizeRun ──► Notify (+ run report)
"""
from __future__ import annotations

import apache_beam as beam

from transforms.cost import ExtractCost
from transforms.cost_sink import WriteToCostAnalysis
from transforms.inventory_sink import WriteToInventory
from transforms.metric_store import WriteToMetricStore
from transforms.metrics import ExtractMetrics
from transforms.normalize import DEAD_LETTER, NormalizeInfra, NormalizeVm
from transforms.notify import Notify
from transforms.prism_read import STATS, STATUS, ReadFromPrism
from transforms.registry import RegisterTypesAndRegions
from transforms.settings import Config, RunContext
from transforms.summary import SummarizeRun


def build(p: beam.Pipeline, config: Config, ctx: RunContext) -> beam.PCollection:
    """Adds the whole collection to ``p``; returns the final run summary."""
    names = tuple(a.name for a in config.accounts)
    cf = config.cloudforet
    read = (p
            | "Accounts" >> beam.Create(list(names))
            | "ReadFromPrism" >> ReadFromPrism(config, ctx))

    joined = {"vm": read["vm"], "stats": read[STATS]} | "JoinVmsWithStats" >> beam.CoGroupByKey()
    vms = joined | "NormalizeVms" >> beam.ParDo(NormalizeVm()).with_outputs(DEAD_LETTER, main="resources")
    infra = read["infra"] | "NormalizeInfra" >> beam.ParDo(NormalizeInfra()).with_outputs(
        DEAD_LETTER, main="resources")
    resources = (vms.resources, infra.resources) | "AllResources" >> beam.Flatten()

    clusters = infra.resources | "Clusters" >> beam.Filter(lambda r: r["kind"] == "cluster")
    registry = clusters | "RegisterTypesAndRegions" >> RegisterTypesAndRegions(cf)
    inventory = resources | "WriteToInventory" >> WriteToInventory(cf)

    service_accounts = {a.name: a.service_account_id for a in config.accounts if a.service_account_id}
    costs = (resources
             | "ExtractCost" >> ExtractCost(config.rate_card, ctx, cf.cost_data_source_id)
             | "WriteToCostAnalysis" >> WriteToCostAnalysis(cf, service_accounts))

    metrics = (joined
               | "ExtractMetrics" >> beam.ParDo(ExtractMetrics(config.prism.stats_interval_s,
                                                               ctx.stats_start_ms, ctx.stats_end_ms))
               | "WriteToMetricStore" >> WriteToMetricStore(config.metric_store_path, ctx.run_id))

    results = (inventory.results, costs.results, metrics, registry.results) | "SinkResults" >> beam.Flatten()
    dead_letters = ((read[DEAD_LETTER], vms[DEAD_LETTER], infra[DEAD_LETTER], inventory[DEAD_LETTER],
                     costs[DEAD_LETTER], registry[DEAD_LETTER])
                    | "DeadLetters" >> beam.Flatten())
    summary = (read[STATUS], results, dead_letters) | "SummarizeRun" >> SummarizeRun(ctx, names)
    return summary | "Notify" >> Notify(cf, config.report_path)
