"""The real cost-analysis's plugin client calling the project's cost plugin.

Run with the cost-analysis virtualenv:

    python plugin_check.py grpc://127.0.0.1:PORT DOMAIN_ID START   -> one JSON line on stdout

As cost-analysis 2.0.108 does (``DataSourcePluginConnector.initialize``: a
spaceone-core ``SpaceConnector`` on the plugin's endpoint, token "NO_TOKEN";
its ``init``, ``verify``, ``get_tasks`` and ``get_cost_data`` dispatches),
then every record goes through the checks ``JobService`` makes
(``_check_cost_data``), the fields it and ``CostManager.create_cost`` set, and
mongoengine validation of the real ``Cost`` model.
"""
from __future__ import annotations

import json
import sys
from collections import Counter

from spaceone.core import config
from spaceone.core.connector.space_connector import SpaceConnector


def main(endpoint: str, domain_id: str, start: str) -> dict:
    config.init_conf(package="spaceone.cost_analysis")
    config.set_service_config()
    from spaceone.cost_analysis.model.cost_model import Cost
    from spaceone.cost_analysis.service.job_service import JobService

    client = SpaceConnector(endpoint=endpoint, token="NO_TOKEN")
    info = client.dispatch("DataSource.init", {"options": {}, "domain_id": domain_id})
    client.dispatch("DataSource.verify", {"options": {}, "secret_data": {}, "schema": None, "domain_id": domain_id})
    tasks = client.dispatch("Job.get_tasks", {"options": {}, "secret_data": {}, "schema": None, "start": start,
                                              "last_synchronized_at": None, "domain_id": domain_id})
    records, keys, invalid = 0, Counter(), []
    for task in tasks.get("tasks", []):
        for chunk in client.dispatch("Cost.get_data", {"options": {}, "secret_data": {}, "schema": None,
                                                       "task_options": task["task_options"], "domain_id": domain_id}):
            for cost in chunk.get("results", []):
                records += 1
                try:
                    JobService._check_cost_data(cost)
                    doc = dict(cost, cost=cost.get("cost", 0), job_id="job-check", job_task_id="job-task-check",
                               data_source_id="ds-check", domain_id=domain_id)
                    if "region_code" in doc and "provider" in doc:  # CostManager.create_cost
                        doc["region_key"] = f'{doc["provider"]}.{doc["region_code"]}'
                    doc["billed_year"], doc["billed_month"] = doc["billed_date"][:4], doc["billed_date"][:7]
                    Cost(**doc).validate()
                    keys[(cost["resource"], cost["usage_type"], cost["billed_date"])] += 1
                except Exception as exc:  # noqa: BLE001 - every failure is reported, none hidden
                    invalid.append(f"{type(exc).__name__}: {exc}"[:300])
    return {"metadata": info.get("metadata", {}), "tasks": len(tasks.get("tasks", [])),
            "changed": tasks.get("changed", []), "records": records, "invalid": invalid[:10],
            "n_invalid": len(invalid), "duplicate_keys": sum(1 for n in keys.values() if n > 1),
            "days": sorted({k[2] for k in keys})}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4]), default=str))
