"""ResourceInfo messages: what a collector plugin streams back to Inventory.

Shapes and match rules follow cloudforet-io/plugin-azure-inven-collector
(``src/plugin/manager/base.py`` ``collect_cloud_service``,
``collect_cloud_service_type``, ``collect_region``; its ``make_response`` /
``make_error_response``): cloud services match on ``reference.resource_id,
provider, cloud_service_type, cloud_service_group, account``, types on
``name, group, provider``, regions on ``region_code, provider``; an entity
that cannot be collected is ``state FAILURE`` with resource_type
``inventory.ErrorResource`` and a message, which Inventory's collecting manager
(``_upsert_resource``) counts as a failure of the JobTask.

A cloud service carries exactly the fields the pipeline's ``WriteToInventory``
creates it with (``transforms/sinks/inventory.py`` ``create_request``), its
``data.collector_fingerprint`` included, so records written by either path
are the same and either path can take over from the other.
"""
from __future__ import annotations

import functools
import hashlib
from typing import Any, Mapping

from spaceone.api.inventory.plugin import collector_pb2

from schemas.console import cloud_service_type_definitions
from schemas.metric_explorer import metric_definitions, namespace_definition
from transforms.common.canonical import canonical_json
from transforms.elements import Resource
from transforms.sinks.inventory import FINGERPRINT, fingerprint
from transforms.stages.normalize import PROVIDER

CLOUD_SERVICE = "inventory.CloudService"
CLOUD_SERVICE_TYPE = "inventory.CloudServiceType"
REGION = "inventory.Region"
NAMESPACE = "inventory.Namespace"
METRIC = "inventory.Metric"
ERROR_RESOURCE = "inventory.ErrorResource"
SUPPORTED_RESOURCE_TYPES = [CLOUD_SERVICE, CLOUD_SERVICE_TYPE, REGION, NAMESPACE, METRIC]

CLOUD_SERVICE_MATCH = ["reference.resource_id", "provider", "cloud_service_type", "cloud_service_group", "account"]
TYPE_MATCH = ["name", "group", "provider"]
REGION_MATCH = ["region_code", "provider"]

SUCCESS = collector_pb2.ResourceInfo.SUCCESS
FAILURE = collector_pb2.ResourceInfo.FAILURE


def _info(resource_type: str, resource: Mapping[str, Any], match: list[str] | None) -> collector_pb2.ResourceInfo:
    info = collector_pb2.ResourceInfo(state=SUCCESS, resource_type=resource_type)
    info.resource.update(resource)
    info.match_rules.update({"1": match} if match else {})
    return info


def cloud_service_fields(r: Resource) -> dict:
    """A normalized resource as the pipeline's ``create_request`` sends it (tags included: a
    collector job files them under the provider's bucket on every write)."""
    return {
        "cloud_service_type": r["cloud_service_type"], "provider": r["provider"],
        "cloud_service_group": r["cloud_service_group"], "name": r["name"], "account": r["account"],
        "instance_type": r["instance_type"], "instance_size": float(r["instance_size"]),
        "ip_addresses": list(r["ip_addresses"]), "data": {**r["data"], FINGERPRINT: fingerprint(r)},
        "reference": dict(r["reference"]), "region_code": r["region_code"], "tags": dict(r["tags"]),
    }


def cloud_service(r: Resource) -> collector_pb2.ResourceInfo:
    return _info(CLOUD_SERVICE, cloud_service_fields(r), CLOUD_SERVICE_MATCH)


@functools.lru_cache(maxsize=1)
def cloud_service_types() -> tuple[collector_pb2.ResourceInfo, ...]:
    """The CloudServiceTypes with their console layouts, as the pipeline's setup registers them (built
    once per process: the layouts are files, the icons encoded, and no stream changes them)."""
    return tuple(_info(CLOUD_SERVICE_TYPE, t, TYPE_MATCH) for t in cloud_service_type_definitions())


def region(cluster: Resource) -> collector_pb2.ResourceInfo:
    """A cluster is a region (region_code = its uuid), as the pipeline's RegisterTypesAndRegions has it."""
    return _info(REGION, {"name": cluster["name"], "region_code": cluster["region_code"], "provider": PROVIDER},
                 REGION_MATCH)


def _versioned(definition: dict) -> dict:
    """With a ``version`` that changes with the definition: Inventory updates a namespace or metric
    a plugin ships only when its version differs (collecting_manager _upsert_metric_and_namespace)."""
    digest = hashlib.blake2b(canonical_json(definition).encode(), digest_size=6).hexdigest()
    return {**definition, "version": f"1.{digest}"}


@functools.lru_cache(maxsize=1)
def metric_explorer() -> tuple[collector_pb2.ResourceInfo, ...]:
    """The Metric Explorer namespace and metrics (schemas/metric_explorer.py), no match rules:
    Inventory keeps them by namespace_id / metric_id (built once per process)."""
    return (_info(NAMESPACE, _versioned(namespace_definition()), None),
            *(_info(METRIC, _versioned(metric), None) for metric in metric_definitions()))


def failure(message: str, kind: str, resource_id: str = "") -> collector_pb2.ResourceInfo:
    """An entity that could not be collected: counted as a failure of the JobTask, named in its errors."""
    from transforms.stages.normalize import TYPES

    group, ctype = TYPES.get(kind, ("", ""))
    info = collector_pb2.ResourceInfo(state=FAILURE, message=message, resource_type=ERROR_RESOURCE)
    info.resource.update({"provider": PROVIDER, "cloud_service_group": group, "cloud_service_type": ctype,
                          "resource_id": resource_id})
    return info
