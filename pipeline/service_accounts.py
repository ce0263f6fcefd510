"""``accounts_from: service_accounts``: a run's accounts are the provider's service accounts in
CloudForet (what ``python -m pipeline setup`` creates), read once at start-up.

Each becomes an account that names its secret: the workers read it with secret.v1
``Secret.get_data`` (transforms/common/credentials.py, checked against the same schema file setup
registered), so credentials never pass through the driver. ``Secret.get_data`` is the secret
service's internal API, reachable only inside the cluster on a real deployment.
"""
from __future__ import annotations

import dataclasses
import logging
import re

from connectors.cloudforet import CloudForetClient
from connectors.retry import RetryPolicy
from pipeline.config import ConfigError
from schemas.identity import PROVIDER
from transforms.settings import AccountConfig, Config

log = logging.getLogger("pipeline")

ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")  # as schemas/config.schema.json accounts[].name


def accounts_from_service_accounts(config: Config) -> tuple[Config, list[str]]:
    """The config with its accounts read from identity.v2 ``ServiceAccount.list`` (provider nutanix,
    ACTIVE, in the run token's workspace), and warnings for the service accounts left out. An
    account of the file with the same name lends its local settings (ca_bundle, verify_ssl,
    cost_project_id), never its credentials."""
    cf = config.cloudforet
    client = CloudForetClient(cf.endpoints, cf.auth, timeout_s=min(cf.timeout_s, 15.0),
                              retry=RetryPolicy(max_attempts=3, max_total_s=20))
    listed = client.list_service_accounts(PROVIDER, state="ACTIVE")
    local = {a.name: a for a in config.accounts}
    accounts: dict[str, AccountConfig] = {}
    warnings: list[str] = []
    for sa in sorted(listed, key=lambda s: (s.get("name", ""), s.get("service_account_id", ""))):
        name, sa_id = sa.get("name", ""), sa.get("service_account_id", "")
        if not sa.get("secret_id"):
            warnings.append(f"service account {name} ({sa_id}) has no secret: not collected (give it one: "
                            "python -m pipeline setup --update-secrets, or the console)")
        elif not ACCOUNT_NAME.match(name):
            warnings.append(f"service account {name!r} ({sa_id}): its name is not a valid account name "
                            "(letters, digits, _ . : -): not collected; rename it")
        elif name in accounts:
            warnings.append(f"service account {name} ({sa_id}): a second one of that name (another project): "
                            f"not collected; {accounts[name].service_account_id} is")
        else:
            file = local.get(name)
            accounts[name] = AccountConfig(
                name=name, secret_id=sa["secret_id"], service_account_id=sa_id,
                verify_ssl=file.verify_ssl if file else None, ca_bundle=file.ca_bundle if file else None,
                cost_project_id=file.cost_project_id if file else None)
    for w in warnings:
        log.warning(w)
    if not accounts:
        raise ConfigError(
            f"accounts_from: service_accounts: CloudForet has no ACTIVE service account of provider {PROVIDER} "
            f"with a secret in workspace {cf.auth.workspace_id}"
            + (f" ({len(listed)} without a usable secret or name)" if listed else "")
            + ": create them with python -m pipeline setup --config FILE, or collect the file's accounts "
              "(accounts_from: config)")
    log.info("accounts from CloudForet's service accounts: %s",
             ", ".join(f"{a.name} ({a.service_account_id})" for a in accounts.values()))
    return dataclasses.replace(config, accounts=tuple(accounts.values())), warnings
