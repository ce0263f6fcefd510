"""What CloudForet now shows for provider nutanix, read through its own APIs with the
workspace app's token, as the console would: the provider, its schemas and service accounts,
the VM table (the layout's columns, its first rows) and one Metric Explorer figure.

``python -m emulators.showcase --cloudforet-ready FILE``
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

import grpc
from google.protobuf.json_format import MessageToDict
from spaceone.api.identity.v2 import (
    provider_pb2,
    provider_pb2_grpc,
    schema_pb2,
    schema_pb2_grpc,
    service_account_pb2,
    service_account_pb2_grpc,
)
from spaceone.api.inventory.v1 import metric_pb2, metric_pb2_grpc

from emulators.readback import console_table, metric_figures
from schemas.metric_explorer import metric_id

PROVIDER = "nutanix"


def _dict(message) -> dict:
    return MessageToDict(message, preserving_proto_field_name=True)


def identity_view(channel: grpc.Channel, md: list) -> list[str]:
    """The provider, its schemas and its service accounts (never a secret: only its id)."""
    lines = []
    p = _dict(provider_pb2_grpc.ProviderStub(channel).get(provider_pb2.ProviderRequest(provider=PROVIDER),
                                                         metadata=md, timeout=10))
    lines.append(f"Provider {p['provider']}: name {p.get('name')}, alias {p.get('alias')}, color {p.get('color')}, "
                 f"order {p.get('order')}, icon {str(p.get('icon', ''))[:30]}...")
    schemas = schema_pb2_grpc.SchemaStub(channel).list(schema_pb2.SchemaSearchQuery(provider=PROVIDER),
                                                        metadata=md, timeout=10)
    for s in map(_dict, schemas.results):
        related = f" (related: {', '.join(s['related_schemas'])})" if s.get("related_schemas") else ""
        body = s.get("schema") or {}
        fields = ", ".join(body.get("order") or body.get("properties", {}))  # the form's order
        lines.append(f"Schema {s['schema_id']} [{s['schema_type']}]{related}: {fields}")
    accounts = service_account_pb2_grpc.ServiceAccountStub(channel).list(
        service_account_pb2.ServiceAccountSearchQuery(provider=PROVIDER), metadata=md, timeout=10)
    lines.append(f"Service accounts ({accounts.total_count}):")
    lines.append(f"  {'name':<16} {'service_account_id':<20} {'project_id':<18} {'secret_id':<20} prism_central")
    for a in map(_dict, accounts.results):
        lines.append(f"  {a['name']:<16} {a['service_account_id']:<20} {a.get('project_id', ''):<18} "
                     f"{a.get('secret_id', '-'):<20} {(a.get('data') or {}).get('prism_central', '')}")
    return lines


def metric_figure(channel: grpc.Channel, endpoint: str, token: str) -> list[str]:
    """Today's VM count per cluster in Metric Explorer. inventory computes a metric's data daily;
    ``Metric.run`` computes today's now, after the collection."""
    vm_count = metric_id("vm-count")
    metric_pb2_grpc.MetricStub(channel).run(metric_pb2.MetricRequest(metric_id=vm_count),
                                            metadata=[("token", token)], timeout=30)
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    rows = metric_figures(endpoint, token, vm_count, day, "labels.Cluster Name")
    lines = [f"Metric Explorer: {vm_count} on {day}, by cluster [MetricData.analyze]"]
    lines += [f"  {r.get('Cluster Name', '?'):<24} {r.get('value')}" for r in rows]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.showcase", description=__doc__.splitlines()[0])
    parser.add_argument("--cloudforet-ready", required=True, help="the CloudForet emulator's ready JSON file")
    args = parser.parse_args(argv)
    with open(args.cloudforet_ready, encoding="utf-8") as fh:
        ready = json.load(fh)
    token = next(iter(ready["app_tokens"].values()))
    md = [("token", token)]
    print("\n== What CloudForet shows for provider nutanix, as the console reads it ==")
    with grpc.insecure_channel(ready["endpoint"]) as channel:
        for line in identity_view(channel, md):
            print(line)
        print()
        print(console_table(ready["endpoint"], token))  # the first page, as the console builds it
        print()
        for line in metric_figure(channel, ready["endpoint"], token):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
