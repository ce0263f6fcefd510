"""Writes the demo's config from the emulators' ready files.

``python -m emulators.demo --prism-ready F --cloudforet-ready F --out DIR``
writes DIR/config.yaml and prints shell ``export`` lines for the tokens the
config names (the password variable is already set by run.sh): the workspace
app the collection and setup's workspace steps use, and the domain app setup's
Provider and Schema calls need (an App cannot change scope).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex

import yaml

DEMO_PROJECT = "project-nutanix-ops"
SERVICE_ACCOUNT_PROJECT = "project-nutanix"  # a project of the emulator's default configuration
SETUP_APP = "app-nutanix-setup"  # the emulator's domain app (DOMAIN_ADMIN)


def endpoints_of(cloudforet: dict) -> dict:
    """Each service's own address when the emulator serves them apart (as a real
    deployment does), else its all-in-one address."""
    scheme = "grpc+ssl" if cloudforet.get("tls") else "grpc"
    if cloudforet.get("endpoints"):
        return {"endpoints": {s: f"{scheme}://{a}" for s, a in sorted(cloudforet["endpoints"].items())}}
    return {"endpoint": cloudforet["endpoint"]}


def demo_config(prism: dict, cloudforet: dict, out_dir: str) -> dict:
    return {
        # `python -m pipeline setup` makes a service account of each; the run then collects them
        "accounts_from": "service_accounts",
        "accounts": [{"name": pc["name"], "host": pc["host"], "port": pc["port"], "scheme": "http",
                      "username": "admin", "password_env": "PRISM_PASSWORD"} for pc in prism["prism_centrals"]]
        or None,  # a replay takes its accounts from the snapshot
        "prism": {"page_size": 100, "max_requests_per_s": 40, "max_concurrency": 4},
        "cloudforet": {**endpoints_of(cloudforet), "domain_id": cloudforet["domain_id"],
                       "workspace_id": cloudforet["workspace_id"], "auth": {"token_env": "CLOUDFORET_TOKEN"},
                       "setup": {"domain_admin": {"token_env": "CLOUDFORET_ADMIN_TOKEN"},
                                 "workspace_owner": {"token_env": "CLOUDFORET_TOKEN"},
                                 "project_id": SERVICE_ACCOUNT_PROJECT},
                       "cost_data_source_id": "ds-nutanix",
                       # like CloudForet servers from 2025 on: costs reach it through the cost
                       # data-source plugin, which serves the cost store
                       "cost_mode": "datasource",
                       # a Project's members get it (a Domain target is copied to every user of the domain)
                       "notification": {"resource_type": "identity.Project", "resource_id": DEMO_PROJECT,
                                        "topic": "nutanix.collector.run"}},
        "rate_card": {
            "default": {"vcpu_hour": 0.02, "gib_ram_hour": 0.005, "gib_storage_month": 0.05, "currency": "USD"},
            "clusters": {"cluster-0-1": {"vcpu_hour": 0.035}},
        },
        "metric_store": {"path": os.path.join(out_dir, "metrics")},
        "cost_store": {"path": os.path.join(out_dir, "costs")},
        "report": {"path": os.path.join(out_dir, "run-report.json")},
        "snapshot": {"path": os.path.join(out_dir, "snapshots"), "format": "avro"},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prism-ready", required=True)
    ap.add_argument("--cloudforet-ready", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    prism = json.load(open(args.prism_ready))
    cloudforet = json.load(open(args.cloudforet_ready))
    config = {k: v for k, v in demo_config(prism, cloudforet, args.out).items() if v is not None}
    with open(os.path.join(args.out, "config.yaml"), "w") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    tokens = cloudforet["app_tokens"]
    print(f"export CLOUDFORET_TOKEN={shlex.quote(next(iter(tokens.values())))}")
    if SETUP_APP in tokens:
        print(f"export CLOUDFORET_ADMIN_TOKEN={shlex.quote(tokens[SETUP_APP])}")


if __name__ == "__main__":
    main()
