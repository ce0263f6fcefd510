"""The yardstick: a faithful, straightforward collector, written the way such
integrations usually start. It exists only to be beaten by the pipeline.

- one account after another;
- pages fetched one after another with plain ``requests`` (page size as
  configured, never above the configured requests/s: it is sequential anyway);
- a new gRPC channel for every CloudForet call;
- per cloud service one ``CloudService.list`` by reference, then one
  ``create`` or ``update``; per cost record one ``Cost.list`` check, then one
  ``Cost.create`` if absent;
- metric points kept in memory and written once at the end with a plain
  ``pyarrow.parquet.write_table`` into ``<metric_store>/date=YYYY-MM-DD/baseline-00000.parquet``.

It reuses the project's pure functions (normalize_*, costs_for,
PointColumns, the request builders, the metric store schema), so it writes
the same records to the same emulators as the pipeline.

    python -m benchmarks.baseline --config FILE --collected-at 2026-11-28T06:00:00Z [--json-out FILE]

(needs the account password and the CloudForet token in the environment
variables the config names, like the pipeline.)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import requests
from spaceone.api.cost_analysis.v1 import cost_pb2, cost_pb2_grpc
from spaceone.api.inventory.v1 import (
    cloud_service_pb2,
    cloud_service_pb2_grpc,
    cloud_service_type_pb2,
    cloud_service_type_pb2_grpc,
    region_pb2,
    region_pb2_grpc,
)

from benchmarks.harness import COST_PROJECT
from connectors.cloudforet import make_query, to_struct
from pipeline.config import load_config, parse_config
from schemas.parquet import METRIC_POINT
from transforms.common.credentials import credentials_from_env
from transforms.elements import CostRecord, Resource
from transforms.settings import Config, RunContext
from transforms.sinks.cost_analysis import create_request as cost_create_request
from transforms.sinks.inventory import create_request, update_request
from transforms.sources.prism import STATS_ATTRIBUTES, parse_stats_entity, parse_stats_page
from transforms.stages.cost import costs_for
from transforms.stages.metrics import PointColumns
from transforms.stages.normalize import (
    CLOUD_SERVICE_TYPES,
    PROVIDER,
    is_prism_central,
    latest_utilization,
    normalize_cluster,
    normalize_host,
    normalize_vm,
)

V3 = "/api/nutanix/v3"
LISTS = (("cluster", "clusters"), ("host", "hosts"), ("vm", "vms"))


def _epoch(collected_at: str) -> float:
    dt = datetime.fromisoformat(collected_at.replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


class _Prism:
    """Plain ``requests.post`` per page, one after another, under the configured rate."""

    def __init__(self, config: Config, account):
        self.creds = credentials_from_env(account)
        self.timeout = config.prism.timeout_s
        self.min_gap = 1.0 / config.prism.max_requests_per_s
        self.last = 0.0
        self.requests = 0

    def post(self, path: str, body: dict) -> dict:
        wait = self.last + self.min_gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.last = time.monotonic()
        self.requests += 1
        verify = self.creds.ca_bundle or self.creds.verify_ssl
        resp = requests.post(self.creds.base_url + V3 + path, json=body, timeout=self.timeout,
                             auth=(self.creds.username, self.creds.password), verify=verify)
        resp.raise_for_status()
        return resp.json()


class _CloudForet:
    """Every call on a brand-new channel, closed right after."""

    def __init__(self, endpoint: str, token: str):
        self.endpoint = endpoint
        self.metadata = (("token", token),)
        self.calls: Counter = Counter()

    def call(self, stub_cls, method: str, request, what: str):
        self.calls[what] += 1
        channel = grpc.insecure_channel(self.endpoint)
        try:
            return getattr(stub_cls(channel), method)(request, metadata=self.metadata, timeout=30)
        finally:
            channel.close()


def _read_account(prism: _Prism, page_size: int, ctx: RunContext, interval_s: int) -> tuple[dict, dict]:
    entities: dict[str, list] = {}
    for kind, path in LISTS:
        got: list = []
        offset = 0
        while True:
            body = prism.post(f"/{path}/list", {"kind": kind, "offset": offset, "length": page_size})
            page = body.get("entities") or []
            got.extend(page)
            offset += len(page)
            if not page or offset >= body["metadata"]["total_matches"]:
                break
        entities[kind] = got
    stats: dict = {}
    offset = 0
    while True:
        answer = prism.post("/groups", {
            "entity_type": "mh_vm", "group_member_attributes": [{"attribute": a} for a in STATS_ATTRIBUTES],
            "group_member_offset": offset, "group_member_count": page_size,
            "interval_start_ms": ctx.stats_start_ms, "interval_end_ms": ctx.stats_end_ms,
            "downsampling_interval": interval_s, "filter_criteria": "is_cvm==0"})
        total, page = parse_stats_page(answer)
        for uuid, raw in page:
            stats.setdefault(uuid, raw)
        offset += len(page)
        if not page or offset >= total:
            break
    return entities, stats


def _register(cf: _CloudForet, regions: dict) -> None:
    for t in CLOUD_SERVICE_TYPES:
        found = cf.call(cloud_service_type_pb2_grpc.CloudServiceTypeStub, "list",
                        cloud_service_type_pb2.CloudServiceTypeQuery(provider=t["provider"], group=t["group"],
                                                                     name=t["name"]), "CloudServiceType.list")
        if not found.total_count:
            cf.call(cloud_service_type_pb2_grpc.CloudServiceTypeStub, "create",
                    cloud_service_type_pb2.CreateCloudServiceTypeRequest(
                        name=t["name"], provider=t["provider"], group=t["group"],
                        service_code=t.get("service_code", ""), is_primary=t.get("is_primary", False),
                        is_major=t.get("is_major", False), resource_type="inventory.CloudService",
                        metadata=to_struct(t.get("metadata")), tags=to_struct(t.get("tags"))),
                    "CloudServiceType.create")
    for code, name in sorted(regions.items()):
        q = make_query([("region_code", code, "eq"), ("provider", PROVIDER, "eq")])
        if not cf.call(region_pb2_grpc.RegionStub, "list", region_pb2.RegionQuery(query=q), "Region.list").total_count:
            cf.call(region_pb2_grpc.RegionStub, "create",
                    region_pb2.CreateRegionRequest(name=name, region_code=code, provider=PROVIDER), "Region.create")


def _upsert(cf: _CloudForet, r: Resource) -> str:
    q = make_query([("reference.resource_id", r["resource_id"], "eq"), ("provider", r["provider"], "eq"),
                    ("cloud_service_type", r["cloud_service_type"], "eq"),
                    ("cloud_service_group", r["cloud_service_group"], "eq")], only=["cloud_service_id"])
    found = cf.call(cloud_service_pb2_grpc.CloudServiceStub, "list",
                    cloud_service_pb2.CloudServiceQuery(query=q), "CloudService.list")
    if len(found.results) > 1:
        return "failed"
    if found.results:
        cf.call(cloud_service_pb2_grpc.CloudServiceStub, "update",
                update_request(found.results[0].cloud_service_id, r), "CloudService.update")
        return "updated"
    cf.call(cloud_service_pb2_grpc.CloudServiceStub, "create", create_request(r), "CloudService.create")
    return "created"


def _write_cost(cf: _CloudForet, c: CostRecord, service_account_id: str) -> str:
    q = make_query([("billed_date", c["billed_date"], "eq"), ("data_source_id", c["data_source_id"], "eq"),
                    ("provider", c["provider"], "eq"), ("resource", c["resource"], "eq"),
                    ("usage_type", c["usage_type"], "eq")], only=["cost_id"])
    # cost-analysis 2.0.108 wants the data source at the top level of the query, and a project on create
    if cf.call(cost_pb2_grpc.CostStub, "list", cost_pb2.CostQuery(query=q, data_source_id=c["data_source_id"]),
               "Cost.list").results:
        return "already_present"
    cf.call(cost_pb2_grpc.CostStub, "create", cost_create_request(c, COST_PROJECT, service_account_id),
            "Cost.create")
    return "created"


def _write_points(root: str, points: list[dict], run_id: str) -> int:
    by_date: dict[str, list] = {}
    for p in points:
        day = datetime.fromtimestamp(p["timestamp_ms"] / 1000, tz=timezone.utc).strftime("%Y-%m-%d")
        by_date.setdefault(day, []).append(p)
    for day, rows in by_date.items():
        table = pa.Table.from_pydict({
            "account": [p["account"] for p in rows], "resource_id": [p["resource_id"] for p in rows],
            "region_code": [p.get("region_code", "") for p in rows], "metric": [p["metric"] for p in rows],
            "timestamp": [p["timestamp_ms"] for p in rows], "value": [float(p["value"]) for p in rows],
            "unit": [p["unit"] for p in rows], "run_id": [run_id] * len(rows)}, schema=METRIC_POINT)
        directory = Path(root) / f"date={day}"
        directory.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, directory / "baseline-00000.parquet")
    return len(points)


def run_baseline(config_path_or_dict, collected_at: str, run_id: str = "baseline") -> dict:
    """Collects every account into CloudForet and the metric store; returns seconds and counts."""
    start = time.monotonic()
    config = (parse_config(config_path_or_dict) if isinstance(config_path_or_dict, dict)
              else load_config(str(config_path_or_dict)))
    p = config.prism
    ctx = RunContext.create(_epoch(collected_at), p.stats_window_s, p.stats_interval_s, run_id)
    cfo = config.cloudforet
    # the straightforward collector writes with the workspace's app token (the pipeline's api mode
    # needs a DOMAIN_ADMIN user only to look costs up exactly; the baseline creates without looking)
    token_env = cfo.auth.token_env or "CLOUDFORET_TOKEN"
    token = os.environ.get(token_env, "").strip()
    if not token:
        raise RuntimeError(f"baseline: set {token_env} to the CloudForet app token")
    cf = _CloudForet(cfo.endpoints["inventory"].address, token)
    counts: Counter = Counter()
    phases: defaultdict[str, float] = defaultdict(float)
    all_points: list[dict] = []
    for account in config.accounts:
        t0 = time.monotonic()
        prism = _Prism(config, account)
        base_url = prism.creds.base_url
        entities, stats = _read_account(prism, p.page_size, ctx, p.stats_interval_s)
        counts["prism_requests"] += prism.requests
        phases["read_s"] += time.monotonic() - t0

        t0 = time.monotonic()
        resources, seen = [], set()
        regions = {}
        for e in entities["cluster"]:
            if not is_prism_central(e):
                cluster = normalize_cluster(account.name, base_url, e)
                resources.append(cluster)
                regions[cluster["region_code"]] = cluster["name"]
        resources += [normalize_host(account.name, base_url, e) for e in entities["host"]]
        for e in entities["vm"]:
            vm, *disks = normalize_vm(account.name, base_url, e)
            if vm["resource_id"] in seen:
                continue
            seen.add(vm["resource_id"])
            raw = stats.get(vm["resource_id"])
            util = latest_utilization(parse_stats_entity(raw) if raw is not None else None)
            if util:
                vm["data"]["utilization"] = util
            resources.append(vm)
            for d in disks:
                if d["resource_id"] not in seen:
                    seen.add(d["resource_id"])
                    resources.append(d)
        points = PointColumns(ctx.stats_interval_s, ctx.stats_start_ms, ctx.stats_end_ms)
        for uuid, raw in stats.items():
            points.add(uuid, raw)
        table = points.table()
        all_points += [{"account": account.name, "resource_id": r, "region_code": "", "metric": m,
                        "timestamp_ms": t, "value": v, "unit": u}
                       for r, m, t, v, u in zip(*(table[c].to_pylist() for c in
                                                  ("resource_id", "metric", "timestamp_ms", "value", "unit")))]
        counts["vms"] += len(entities["vm"])
        phases["normalize_s"] += time.monotonic() - t0

        t0 = time.monotonic()
        _register(cf, regions)
        for r in resources:
            counts[f"cloud_services_{_upsert(cf, r)}"] += 1
        phases["inventory_s"] += time.monotonic() - t0
        t0 = time.monotonic()
        sa = account.service_account_id or ""
        for r in resources:
            for c in costs_for(r, config.rate_card, ctx.billed_date, cfo.cost_data_source_id):
                counts[f"costs_{_write_cost(cf, c, sa)}"] += 1
        phases["cost_s"] += time.monotonic() - t0
    t0 = time.monotonic()
    counts["points"] = _write_points(config.metric_store_path, all_points, ctx.run_id)
    phases["metrics_s"] += time.monotonic() - t0
    counts["cloudforet_calls"] = sum(cf.calls.values())
    return {"seconds": time.monotonic() - start, "counts": dict(counts),
            "phases": {k: round(v, 3) for k, v in phases.items()}, "calls": dict(cf.calls)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.baseline")
    ap.add_argument("--config", required=True)
    ap.add_argument("--collected-at", required=True)
    ap.add_argument("--run-id", default="baseline")
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    out = run_baseline(args.config, args.collected_at, args.run_id)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = json.dumps(out)
    if args.json_out:
        Path(args.json_out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
