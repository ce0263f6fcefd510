"""Metric Explorer: the Nutanix namespace and its metrics, as inventory.v1 Namespace/Metric.create take them.

Shaped as CloudForet's own collectors ship theirs (plugin-azure-inven-collector
``src/plugin/metrics/<Group>/<Type>/namespace.yaml`` and ``<metric>.yaml``): one namespace over
``inventory.CloudService:<provider>.<group>.<type>``, GAUGE metrics whose ``query_options`` are an
analyze query (``group_by`` of ``{key, name}``, ``fields.value`` with its operator), which the
inventory service runs every day into MetricData (cloudforet-io/inventory
manager/metric_manager.py ``run_metric_query`` -> ``analyze_resource`` -> ``_analyze_cloud_service``).
Each MetricData's ``labels`` holds the groups by ``name``; the console offers the
``default: true`` ones first. ``resource_group`` DOMAIN, as the inventory service files the
namespaces and metrics a collector plugin ships (collecting_manager.py).
"""
from __future__ import annotations

import copy

from schemas.console import TYPE_EXTRAS, icon_url
from transforms.stages.normalize import PROVIDER

GROUP, TYPE = "Compute", "Instance"
RESOURCE_TYPE = f"inventory.CloudService:{PROVIDER}.{GROUP}.{TYPE}"
NAMESPACE_ID = f"ns-{PROVIDER}-compute-instance"

# What every metric can be split by: the cluster (the Region, by region_code), the VM's power
# state and its Prism Central (the account); the cluster's name and the host as well.
GROUP_BY = [
    {"key": "region_code", "name": "Cluster", "default": True,
     "reference": {"resource_type": "inventory.Region", "reference_key": "region_code"}},
    {"key": "data.power_state", "name": "Power State", "default": True},
    {"key": "account", "name": "Prism Central", "default": True},
    {"key": "data.cluster.name", "name": "Cluster Name"},
    {"key": "data.host.name", "name": "Host"},
]

# metric_id suffix -> (name, the value field, unit)
METRICS = {
    "vm-count": ("VM Count", {"operator": "count"}, "Count"),
    "vcpus": ("vCPUs", {"key": "data.vcpus", "operator": "sum"}, "Core"),
    "memory-gib": ("Memory", {"key": "data.memory_gib", "operator": "sum"}, "GiB"),
    "disk-gib": ("Disk Size", {"key": "data.disk_total_gib", "operator": "sum"}, "GiB"),
}


def namespace_definition() -> dict:
    """``Namespace.create`` fields."""
    return {"namespace_id": NAMESPACE_ID, "name": f"{GROUP}/{TYPE}", "category": "ASSET",
            "resource_type": RESOURCE_TYPE, "group": PROVIDER,
            "icon": icon_url(TYPE_EXTRAS[(GROUP, TYPE)]["icon"]), "tags": {}, "resource_group": "DOMAIN"}


def metric_id(suffix: str) -> str:
    return f"metric-{PROVIDER}-compute-instance-{suffix}"


def metric_definitions() -> list[dict]:
    """``Metric.create`` fields of each metric: VM count, vCPUs, memory GiB and disk GiB of the VMs."""
    return [{"metric_id": metric_id(suffix), "name": name, "metric_type": "GAUGE", "resource_type": RESOURCE_TYPE,
             "query_options": {"group_by": copy.deepcopy(GROUP_BY), "fields": {"value": dict(value)}},
             "unit": unit, "tags": {}, "namespace_id": NAMESPACE_ID, "resource_group": "DOMAIN"}
            for suffix, (name, value, unit) in METRICS.items()]
