"""ExtractCost: one cost record per resource per day from the rate card.

On-premises Nutanix has no bill, so cost is modelled: a powered-on VM pays
its vCPUs and memory for the day (the power state seen at collection is taken
for the whole day), every VM disk pays its capacity (powered off or not).
Only what Prism's ``status`` sized is priced (``data.size_known``): a VM or disk
being created or changed, sized from its ``spec`` or not at all, is kept in
the inventory, flagged, but gets no cost rows until its status holds its size;
neither does a VM whose power state itself came from ``spec``.
Clusters and hosts carry no cost of their own: their cost is what the rate card
spreads over VMs and disks.
"""
from __future__ import annotations

import calendar
from typing import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.elements import CostRecord, Resource
from transforms.settings import RateCard, RunContext
from transforms.stages.normalize import PROVIDER

HOURS_PER_DAY = 24


def cost_key(record: CostRecord) -> tuple[str, str, str]:
    """What makes a cost record unique: one per resource, usage type and day."""
    return record["resource"], record["usage_type"], record["billed_date"]


def _days_in_month(billed_date: str) -> int:
    year, month = int(billed_date[:4]), int(billed_date[5:7])
    return calendar.monthrange(year, month)[1]


def _record(resource: Resource, billed_date: str, cost: float, quantity: float, unit: str, product: str,
            usage_type: str, rate: float, currency: str, data_source_id: str) -> CostRecord:
    cluster = resource["data"].get("cluster", {})
    return {
        "provider": PROVIDER,
        "billed_date": billed_date,
        "cost": round(cost, 6),
        "usage_quantity": round(quantity, 6),
        "usage_unit": unit,
        "product": product,
        "usage_type": usage_type,
        "resource": resource["resource_id"],
        "region_code": resource["region_code"],
        "tags": dict(resource.get("tags", {})),
        "additional_info": {
            "Account": resource["account"],
            "Resource Name": resource["name"],
            "Resource Type": resource["cloud_service_type"],
            "Cluster": cluster.get("name", ""),
            "Rate": rate,
            "Usage Unit": unit,
            "Currency": currency,
        },
        "data_source_id": data_source_id,
        "account": resource["account"],
    }


def costs_for(resource: Resource, card: RateCard, billed_date: str, data_source_id: str) -> list[CostRecord]:
    kind = resource["kind"]
    if kind not in ("vm", "disk"):
        return []
    cluster = resource["data"].get("cluster", {})
    rate = card.for_cluster(cluster.get("uuid", ""), cluster.get("name", ""))
    if resource["data"].get("size_known") is not True:
        return []
    out = []
    if kind == "vm":
        if (resource["data"].get("power_state") != "ON"
                or "power_state" in resource["data"].get("filled_from_spec", ())):
            return []
        vcpu_hours = resource["data"]["vcpus"] * HOURS_PER_DAY
        ram_hours = resource["data"]["memory_gib"] * HOURS_PER_DAY
        out.append(_record(resource, billed_date, vcpu_hours * rate.vcpu_hour, vcpu_hours, "vCPU-Hours",
                           "Nutanix AHV Compute", "vcpu", rate.vcpu_hour, rate.currency, data_source_id))
        out.append(_record(resource, billed_date, ram_hours * rate.gib_ram_hour, ram_hours, "GiB-Hours",
                           "Nutanix AHV Memory", "memory", rate.gib_ram_hour, rate.currency, data_source_id))
    else:
        gib_months = resource["data"]["size_gib"] / _days_in_month(billed_date)
        out.append(_record(resource, billed_date, gib_months * rate.gib_storage_month, gib_months,
                           "GiB-Months", "Nutanix Storage", "storage", rate.gib_storage_month, rate.currency,
                           data_source_id))
    return out


class ExtractCost(beam.PTransform[beam.PCollection[Resource], beam.PCollection[CostRecord]]):
    """Resources -> cost records for the run's billed date."""

    def __init__(self, card: RateCard, ctx: RunContext, data_source_id: str):
        super().__init__()
        self.card, self.ctx, self.data_source_id = card, ctx, data_source_id

    def expand(self, resources: beam.PCollection[Resource]) -> beam.PCollection[CostRecord]:
        return resources | beam.ParDo(_ExtractCostFn(self.card, self.ctx.billed_date, self.data_source_id))


class _ExtractCostFn(beam.DoFn):
    def __init__(self, card: RateCard, billed_date: str, data_source_id: str):
        self.card, self.billed_date, self.data_source_id = card, billed_date, data_source_id
        self.records = Metrics.counter("cost", "records_extracted")
        # VMs and disks kept in the inventory but not priced: Prism's status does not size them
        self.unsized = Metrics.counter("cost", "resources_without_known_size")

    def process(self, resource: Resource) -> Iterable[CostRecord]:
        if resource["kind"] in ("vm", "disk") and resource["data"].get("size_known") is not True:
            self.unsized.inc()
        for record in costs_for(resource, self.card, self.billed_date, self.data_source_id):
            self.records.inc()
            yield record
