"""WriteToInventory: upsert cloud services the way CloudForet's collector does.

Match rule ``reference.resource_id + provider + cloud_service_type +
cloud_service_group`` (never with an empty resource_id); zero matches create,
one updates, more is a failure. Many references are looked up per ``list``.

Calls not made are the fastest: the lookup brings back what CloudForet holds,
and a resource whose fields are unchanged is not rewritten, unless it was
last written more than ``touch_after_s`` ago (CloudForet deletes what has not
been updated for 48 hours). The plain fields are compared as CloudForet holds
them. ``data`` is large (bringing it back and decoding it was most of a second
run's sink time): every write stores a fingerprint of it in
``data.collector_fingerprint``, like kubectl's last-applied annotation, and the
lookup brings back only that. An edit of our keys made in CloudForet by someone
else is therefore undone at the next touch, not at the next run. The latest
utilization alone does not make a resource "changed": it is refreshed whenever
the resource is written.

Tags (Prism's categories) are sent with a create only. CloudForet files a
create's tags under the provider's bucket (``tags.nutanix``) and a public
update's under ``"custom"``, where people's own console tags live, replacing it
whole; only a collector job (the collector plugin) can change the provider's
bucket. So an update never sends tags, and never metadata that would pass for a
collector job. The current categories are in ``data.categories`` (in the
fingerprint, so a change rewrites the record's data). The lookup brings back
``tags.nutanix`` (a few short strings) and the results count, per account, the
resources whose provider bucket no longer matches Prism (``tags_drift``).
"""
from __future__ import annotations

import hashlib
import struct
import time
from collections import Counter
from datetime import datetime
from typing import Any, Iterable, Mapping

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from spaceone.api.inventory.v1 import cloud_service_pb2

from connectors.cloudforet import to_struct
from connectors.retry import RetryPolicy
from transforms.common import progress
from transforms.common.canonical import canonical_json
from transforms.elements import DEAD_LETTER, Resource
from transforms.settings import CloudForetOptions
from transforms.sinks.batching import BatchedCloudForetWrite, Finisher
from transforms.sinks.write_engine import BatchWrite, Conflict
from transforms.stages.normalize import PROVIDER, dead_letter

NS = "inventory"
SEEN = "seen"
VOLATILE_DATA = {"utilization"}
FINGERPRINT = "collector_fingerprint"
# ``tags.nutanix``: the real inventory projects the bucket whole (CloudServiceManager._change_only_tags
# leaves a key of fewer than three parts as it is) and shows it unhashed, like the emulator.
LOOKUP_FIELDS = ["cloud_service_id", "reference", "name", "account", "instance_type", "instance_size",
                 "ip_addresses", "region_code", "updated_at", f"data.{FINGERPRINT}", f"tags.{PROVIDER}"]


def fingerprint(r: Mapping[str, Any]) -> str:
    """Of our ``data`` keys (but the volatile ones): the same text for the same values.
    Of what an update writes: not of ``tags``, which only a create sends (``data.categories``
    holds the same categories). "v2": records fingerprinted with their tags are rewritten once."""
    owned = {"data": {k: v for k, v in r["data"].items() if k not in VOLATILE_DATA}}
    return "v2:" + hashlib.blake2b(canonical_json(owned).encode(), digest_size=16).hexdigest()


def provider_tags(existing: cloud_service_pb2.CloudServiceInfo) -> dict:
    """The provider's bucket of the lookup's message (``{}`` when it holds none), read field by field."""
    bucket = existing.tags.fields.get(PROVIDER)
    if bucket is None or bucket.WhichOneof("kind") != "struct_value":
        return {}
    # categories are strings; anything else held there (None here) differs from every one
    return {k: v.string_value if v.WhichOneof("kind") == "string_value" else None
            for k, v in bucket.struct_value.fields.items()}


def tags_drift(existing: cloud_service_pb2.CloudServiceInfo, r: dict) -> bool:
    """True when the provider's bucket CloudForet holds is not Prism's categories now."""
    return provider_tags(existing) != r["tags"]


def _as_float32(x: float) -> float:
    """``instance_size`` is a 32-bit float in the proto: 0.1 comes back as 0.10000000149."""
    return struct.unpack("f", struct.pack("f", x))[0]


def unchanged(existing: cloud_service_pb2.CloudServiceInfo, r: dict, fp: str) -> bool:
    """True when writing ``r`` would not change what CloudForet holds.

    ``existing`` is the lookup's message, read field by field (decoding it to a
    dict cost more than the comparison). Updates merge ``data`` and ``tags``, so
    keys others added are not ours to compare; ours are in the fingerprint.
    """
    if (existing.name != r["name"] or existing.account != r["account"]
            or existing.instance_type != r["instance_type"] or existing.region_code != r["region_code"]):
        return False
    if existing.instance_size != _as_float32(float(r["instance_size"])):
        return False
    if sorted(existing.ip_addresses) != sorted(r["ip_addresses"]):
        return False
    ref = r["reference"]
    if (existing.reference.resource_id != ref.get("resource_id", "")
            or existing.reference.external_link != ref.get("external_link", "")):
        return False
    held = existing.data.fields
    return FINGERPRINT in held and held[FINGERPRINT].string_value == fp


def age_s(updated_at: str, now: float) -> float:
    try:
        ts = datetime.fromisoformat(updated_at.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return float("inf")
    return now - ts.timestamp()


def _fields(r: Mapping[str, Any]) -> dict:
    data = {**r["data"], FINGERPRINT: fingerprint(r)}
    return dict(name=r["name"], account=r["account"], instance_type=r["instance_type"],
                instance_size=r["instance_size"], ip_addresses=r["ip_addresses"], data=to_struct(data),
                reference=cloud_service_pb2.CloudServiceReference(**r["reference"]), region_code=r["region_code"])


def create_request(r: Mapping[str, Any]) -> cloud_service_pb2.CreateServiceRequest:
    """With the tags: a create files them under the record's provider (``tags.nutanix``)."""
    return cloud_service_pb2.CreateServiceRequest(
        cloud_service_type=r["cloud_service_type"], provider=r["provider"],
        cloud_service_group=r["cloud_service_group"], tags=to_struct(r["tags"]), **_fields(r))


def update_request(cloud_service_id: str, r: Mapping[str, Any]) -> cloud_service_pb2.UpdateCloudServiceRequest:
    """Without tags: a public update would file them under "custom", over people's own tags."""
    return cloud_service_pb2.UpdateCloudServiceRequest(cloud_service_id=cloud_service_id, **_fields(r))


class _WriteInventoryFn(BatchedCloudForetWrite):
    def __init__(self, options: CloudForetOptions):
        super().__init__(options)
        self.created = Metrics.counter(NS, "created")
        self.updated = Metrics.counter(NS, "updated")
        self.unchanged = Metrics.counter(NS, "unchanged")
        self.failed = Metrics.counter(NS, "failed")
        self.retries = Metrics.counter(NS, "records_retried")

    def group_of(self, r: dict) -> tuple[str, str, str]:
        return r["provider"], r["cloud_service_type"], r["cloud_service_group"]

    def start_write(self, group: tuple[str, str, str], batch: list) -> Finisher:
        provider, ctype, cgroup = group
        # Never send an empty resource_id: it would widen the match.
        pending = {r["resource_id"]: r for r in batch if r["resource_id"]}

        def lookup(ids: list) -> dict:
            found = self.client.list_cloud_services(
                [("reference.resource_id", ids, "in"), ("provider", provider, "eq"),
                 ("cloud_service_type", ctype, "eq"), ("cloud_service_group", cgroup, "eq")],
                only=LOOKUP_FIELDS, limit=max(len(ids) * 2, 10), decode=None)
            by_id: dict = {}
            for cs in found:
                by_id.setdefault(cs.reference.resource_id, []).append(cs)
            return by_id

        drifted: set = set()  # as the latest lookup found them

        def make_call(r: dict, existing: list) -> tuple:
            if len(existing) > 1:
                raise Conflict(f"{len(existing)} cloud services match reference.resource_id "
                               f"{r['resource_id']} (too many match); remove the duplicates in CloudForet")
            drifted.discard(r["resource_id"])
            if existing:
                current = existing[0]
                if tags_drift(current, r):
                    drifted.add(r["resource_id"])
                if (age_s(current.updated_at, now) < self.options.touch_after_s
                        and unchanged(current, r, fingerprint(r))):
                    return "unchanged", None
                return "updated", self.client.future(self.client.cloud_service.update,
                                                     update_request(current.cloud_service_id, r))
            return "created", self.client.future(self.client.cloud_service.create, create_request(r))

        now = time.time()
        started = BatchWrite(self.client, pending, lookup, make_call, f"CloudService {ctype}",
                             RetryPolicy(max_attempts=self.options.max_attempts), self.runner,
                             on_retry=self.retries.inc).start()
        return lambda: self._report(started.finish(), drifted)

    def _report(self, outcomes: list, drifted: set) -> Iterable:
        counts: Counter = Counter()
        seen: dict[str, list] = {}  # every record given, written or not, for reconciliation
        for o in outcomes:
            counts[(o.record["account"], o.op)] += 1
            if o.op != "failed" and o.key in drifted:
                counts[(o.record["account"], "tags_drift")] += 1
            seen.setdefault(o.record["account"], []).append(o.record["resource_id"])
            if o.op == "failed":
                self.failed.inc()
                yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter(
                    NS, o.record["account"], o.record["kind"], o.reason, o.record["resource_id"]))
        self.created.inc(sum(n for (_, op), n in counts.items() if op == "created"))
        self.updated.inc(sum(n for (_, op), n in counts.items() if op == "updated"))
        self.unchanged.inc(sum(n for (_, op), n in counts.items() if op == "unchanged"))
        for account, ids in sorted(seen.items()):
            yield pvalue.TaggedOutput(SEEN, (account, ids))
            progress.add(account, "cloud services written", sum(n for (a, op), n in counts.items()
                                                                if a == account and op != "failed"))
            yield {"sink": NS, "account": account, "created": counts[(account, "created")],
                   "updated": counts[(account, "updated")], "unchanged": counts[(account, "unchanged")],
                   "failed": counts[(account, "failed")], "tags_drift": counts[(account, "tags_drift")]}


class WriteToInventory(beam.PTransform[beam.PCollection[Resource], pvalue.DoOutputsTuple]):
    """Resources -> per-batch results (main: SinkResult), DEAD_LETTER, and ``seen``: per batch,
    SeenIds (account, resource ids it was given, written or not), for reconciliation.

    Handing the ids on per batch, not per resource, spares Beam an element (and
    an encoding, in a shuffle) per cloud service (measured: benchmarks/README.md)."""

    def __init__(self, options: CloudForetOptions):
        super().__init__()
        self.options = options

    def expand(self, resources: beam.PCollection[Resource]) -> pvalue.DoOutputsTuple:
        return resources | beam.ParDo(_WriteInventoryFn(self.options)).with_outputs(
            DEAD_LETTER, SEEN, main="results")
