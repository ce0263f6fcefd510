"""Writes the demo's config from the emulators' ready files.

``python -m emulators.demo --prism-ready F --cloudforet-ready F --out DIR``
writes DIR/config.yaml and prints shell ``export`` lines for the token the
config names (the password variable is already set by run.sh).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex

import yaml


def demo_config(prism: dict, cloudforet: dict, out_dir: str) -> dict:
    return {
        "accounts": [{"name": pc["name"], "host": pc["host"], "port": pc["port"], "scheme": "http",
                      "username": "admin", "password_env": "PRISM_PASSWORD"} for pc in prism["prism_centrals"]]
        or None,  # a replay takes its accounts from the snapshot
        "prism": {"page_size": 100, "max_requests_per_s": 40, "max_concurrency": 4},
        "cloudforet": {"endpoint": cloudforet["endpoint"], "domain_id": cloudforet["domain_id"],
                       "workspace_id": cloudforet["workspace_id"], "auth": {"token_env": "CLOUDFORET_TOKEN"},
                       "cost_data_source_id": "ds-nutanix",
                       # like CloudForet servers from 2025 on: costs reach it through the cost
                       # data-source plugin, which serves the cost store
                       "cost_mode": "datasource"},
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
    token = next(iter(cloudforet["app_tokens"].values()))
    print(f"export CLOUDFORET_TOKEN={shlex.quote(token)}")


if __name__ == "__main__":
    main()
