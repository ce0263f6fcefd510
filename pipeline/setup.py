"""``python -m pipeline setup --config FILE [--dry-run] [--update-secrets]``: makes Nutanix a
provider of CloudForet, as an operator who knows the AWS or Azure collectors expects it.

A list of steps (``STEPS``), each run with the credential its role needs: identity's Provider and
Schema calls accept only DOMAIN_ADMIN tokens, ServiceAccount.create and the inventory types only
workspace ones, and an App cannot change scope (identity TokenService.grant refuses any token whose
owner is not a USER), so ``cloudforet.setup`` names both. Every step reads first and writes only what
differs: a second run changes nothing and says so; ``--dry-run`` prints each write it would make.
Secrets come from the environment (the variables the accounts name), never from the file, and are
never printed: what a call carries as ``secret_data`` is shown as ``***``.

Exit codes: 0 done (or nothing to do), 1 a call failed, 2 unusable configuration or credential (the
message names the role and the objects it was needed for), 3 CloudForet unreachable.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import jsonschema
from spaceone.api.inventory.v1 import cloud_service_type_pb2, metric_pb2, namespace_pb2

from connectors.cloudforet import (
    METRIC_UPDATABLE,
    NAMESPACE_UPDATABLE,
    CloudForetAuth,
    CloudForetClient,
    jwt_claims,
    same_as_held,
    to_dict,
    type_changes,
)
from connectors.errors import CloudForetError
from connectors.retry import RetryPolicy
from pipeline.config import ConfigError, load_config
from schemas import load_json_schema
from schemas.identity import (
    PROVIDER,
    SECRET_SCHEMA_FILE,
    SECRET_SCHEMA_ID,
    SERVICE_ACCOUNT_SCHEMA_FILE,
    SERVICE_ACCOUNT_SCHEMA_ID,
    provider_definition,
    schema_definitions,
)
from transforms.common.credentials import CredentialError, credentials_from_env
from transforms.settings import AccountConfig, Config

log = logging.getLogger("pipeline.setup")

DOMAIN_ADMIN = "DOMAIN_ADMIN"
WORKSPACE_OWNER = "WORKSPACE_OWNER"
ROLE_KEYS = {DOMAIN_ADMIN: "domain_admin", WORKSPACE_OWNER: "workspace_owner"}
ROLE_HINTS = {
    DOMAIN_ADMIN: "an App created in the domain (resource_group DOMAIN, role managed-domain-admin) or a "
                  "DOMAIN_ADMIN user (user_id + password_env; granted in DOMAIN scope)",
    WORKSPACE_OWNER: "an App of workspace {workspace} with a WORKSPACE_OWNER role, or a user who owns the "
                     "workspace (a DOMAIN_ADMIN user granted in the workspace is one)",
}
MASK = "***"
SECRET_KEYS = ("nutanix_password", "nutanix_username")  # scrubbed from messages (the host and port are not secret)


class SetupError(Exception):
    """Setup stops: the message says what and how to fix it; ``exit_code`` as in the module docstring."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Step:
    """One thing setup makes exist. ``objects`` names what it writes (in errors about its credential);
    ``run`` reads with ``client`` (the credential of ``role``) and writes through ``ctx.write``."""

    name: str
    role: str  # DOMAIN_ADMIN or WORKSPACE_OWNER: the credential its calls need
    objects: Callable[[Config], str]
    run: Callable[["SetupRun", CloudForetClient], None]


@dataclass
class SetupRun:
    """One setup: the configuration, the mode, what was done, and the clients by role."""

    config: Config
    dry_run: bool = False
    update_secrets: bool = False
    out: Callable[[str], None] = print
    steps: list[Step] = field(default_factory=lambda: list(STEPS))
    counts: Counter = field(default_factory=Counter)
    _clients: dict[str, CloudForetClient] = field(default_factory=dict)
    _secrets: list[str] = field(default_factory=list)  # values never to print

    # -- writes and reporting -------------------------------------------
    def write(self, call: str, shown: dict, do: Callable[[], Any], outcome: str) -> Any:
        """A write: printed and made, or (dry run) printed only. ``shown`` is what is printed of the
        request (secrets masked); ``outcome`` (created, updated, replaced) is counted."""
        payload = json.dumps(shown, sort_keys=True, default=str)
        if self.dry_run:
            self.out(f"  would call {call} {payload}")
            self.counts[outcome] += 1
            return None
        self.out(f"  {call} {payload}")
        result = do()
        self.counts[outcome] += 1
        return result

    def unchanged(self, what: str, note: str = "") -> None:
        self.counts["unchanged"] += 1
        self.out(f"  {what}: unchanged{f' ({note})' if note else ''}")

    def keep_secret(self, data: dict) -> None:
        """The credentials in ``data`` are scrubbed from every message setup prints (a server's
        validation error may quote the value it refused: identity answers jsonschema's message)."""
        self._secrets.extend(str(data[k]) for k in SECRET_KEYS if data.get(k))

    def scrub(self, text: str) -> str:
        for value in sorted(set(self._secrets), key=len, reverse=True):
            text = text.replace(value, MASK)
        return text

    # -- credentials ----------------------------------------------------
    def client(self, step: Step) -> CloudForetClient:
        """The client of the step's role, its credential checked once: present, accepted, and of that role."""
        client = self._clients.get(step.role)
        if client is None:
            client = self._clients[step.role] = self._open(step.role, self._needed_for(step.role))
        return client

    def _needed_for(self, role: str) -> str:
        return "; ".join(s.objects(self.config) for s in self.steps if s.role == role)

    def _open(self, role: str, objects: str) -> CloudForetClient:
        cf = self.config.cloudforet
        key = f"cloudforet.setup.{ROLE_KEYS[role]}"
        hint = ROLE_HINTS[role].format(workspace=cf.auth.workspace_id)
        auth: CloudForetAuth | None = getattr(self.config.setup, ROLE_KEYS[role])
        if auth is None:
            raise SetupError(f"{key} is missing: {objects} need a {role} credential. Set {key} to "
                             f"{{token_env: VAR}} ({hint}) or {{user_id: ..., password_env: VAR}}.")
        client = CloudForetClient(cf.endpoints, auth, timeout_s=min(cf.timeout_s, 30.0),
                                  retry=RetryPolicy(max_attempts=3, max_total_s=20))
        try:
            token = client.tokens.token()
        except CloudForetError as err:
            raise self._error(role, objects, err) from None
        claims = jwt_claims(token)
        held = claims.get("rol") or claims.get("role_type")
        if held and held != role:
            raise SetupError(f"{key}: the credential's token has role {held}, but {objects} need {role}: "
                             f"use {hint}.")
        if role == WORKSPACE_OWNER and claims.get("wid") and claims["wid"] != cf.auth.workspace_id:
            raise SetupError(f"{key}: the token is of workspace {claims['wid']}, not cloudforet.workspace_id "
                             f"{cf.auth.workspace_id}: use {hint}.")
        return client

    def _error(self, role: str, objects: str, err: CloudForetError) -> SetupError:
        key = f"cloudforet.setup.{ROLE_KEYS[role]}"
        # the client's own hint is about the collector's run token, not about setup's roles
        message = self.scrub(str(err)).split(" The token's role lacks")[0]
        if err.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
            return SetupError(f"CloudForet at {self.config.cloudforet.endpoints.describe()}: {message}", 3)
        if err.code == "PERMISSION_DENIED":
            hint = ROLE_HINTS[role].format(workspace=self.config.cloudforet.auth.workspace_id)
            return SetupError(f"{key} ({role}, needed for {objects}) was refused: {message} Use {hint}.")
        if err.code in ("UNAUTHENTICATED", "FAILED_PRECONDITION"):
            return SetupError(f"{key} ({role}, needed for {objects}): {message}")
        return SetupError(f"{objects}: {message}", 1)


# -- the steps ---------------------------------------------------------------
def _show_schema(definition: dict) -> dict:
    """A schema as printed: its file's name instead of the body."""
    file = SECRET_SCHEMA_FILE if definition["schema_id"] == SECRET_SCHEMA_ID else SERVICE_ACCOUNT_SCHEMA_FILE
    return {**definition, "schema": f"<schemas/{file}>"}


def _differs(wanted: dict, held: dict, keys: tuple[str, ...]) -> list[str]:
    return [k for k in keys if k in wanted and wanted[k] != held.get(k)]


def ensure_provider(ctx: SetupRun, client: CloudForetClient) -> None:
    """identity.v2 Provider.get, then Provider.create, or Provider.update of the fields that differ."""
    wanted = provider_definition()
    held = client.get_provider(wanted["provider"])
    shown = {**wanted, "icon": "<schemas/console/icons/nutanix.svg>"}
    if held is None:
        ctx.write("Provider.create", shown, lambda: client.create_provider(wanted), "created")
        return
    changed = _differs(wanted, held, ("name", "alias", "color", "icon", "order"))
    if not changed:
        ctx.unchanged(f"provider {wanted['provider']}")
        return
    update = {"provider": wanted["provider"], **{k: wanted[k] for k in changed}}
    ctx.write("Provider.update", {"provider": wanted["provider"], "changed": changed},
              lambda: client.update_provider(update), "updated")


def ensure_schemas(ctx: SetupRun, client: CloudForetClient) -> None:
    """identity.v2 Schema.get per schema, then Schema.create, or Schema.update when its body, name or
    related schemas differ (its type and provider cannot change)."""
    for wanted in schema_definitions():
        held = client.get_schema(wanted["schema_id"])
        shown = _show_schema(wanted)
        if held is None:
            ctx.write("Schema.create", shown, functools.partial(client.create_schema, wanted), "created")
            continue
        if held.get("schema_type") != wanted["schema_type"] or held.get("provider") != wanted["provider"]:
            raise SetupError(f"schema {wanted['schema_id']} exists with schema_type {held.get('schema_type')} and "
                             f"provider {held.get('provider')}, not {wanted['schema_type']} / {wanted['provider']}: "
                             "a schema's type and provider cannot be updated; delete it (identity Schema.delete) "
                             "and run setup again", 1)
        changed = _differs(wanted, held, ("name", "schema", "related_schemas"))
        if not changed:
            ctx.unchanged(f"schema {wanted['schema_id']}")
            continue
        ctx.write("Schema.update", {**shown, "changed": changed}, functools.partial(client.update_schema, wanted),
                  "updated")


def secret_data_of(account: AccountConfig) -> dict:
    """The account's Prism credentials as secret data of the SECRET schema, from the environment
    (the variables the account names), checked against the schema file."""
    creds = credentials_from_env(account)
    if not creds.host:
        raise CredentialError(f"account '{account.name}': no host: a service account's secret needs the "
                              "Prism Central's host")
    data = {"nutanix_host": creds.host, "nutanix_port": creds.port, "nutanix_username": creds.username,
            "nutanix_password": creds.password, "verify_ssl": creds.verify_ssl, "scheme": creds.scheme}
    validator = jsonschema.Draft202012Validator(load_json_schema(SECRET_SCHEMA_FILE))
    problems = sorted({".".join(map(str, e.path)) or e.message for e in validator.iter_errors(data)})
    if problems:  # the fields, never their values
        raise CredentialError(f"account '{account.name}': its secret data does not fit "
                              f"schemas/{SECRET_SCHEMA_FILE}: {', '.join(problems)}")
    return data


def service_account_data(account: AccountConfig) -> dict:
    """What the SERVICE_ACCOUNT schema describes: nothing secret (workspace members read it)."""
    data = {"description": f"Nutanix Prism Central {account.name}"}
    if account.host:
        data["prism_central"] = account.host
    return data


def ensure_service_accounts(ctx: SetupRun, client: CloudForetClient) -> None:
    """One service account per configured Prism Central in cloudforet.setup.project_id: identity.v2
    ServiceAccount.list, then ServiceAccount.create with secret_data (identity has the secret service
    make the secret); an existing one is left alone, its secret replaced with --update-secrets
    (ServiceAccount.update_secret_data: the old secret deleted, a new one made)."""
    config = ctx.config
    accounts = [a for a in config.accounts if a.host or not a.secret_id]
    for a in config.accounts:
        if a not in accounts:
            ctx.out(f"  account {a.name}: takes its credentials from secret {a.secret_id}: no service account "
                    "made for it (give host, username and password_env to have one)")
    if not accounts:
        ctx.out("  no Prism Central in the configuration's accounts: no service account to make")
        return
    project = config.setup.project_id
    if not project:
        raise SetupError("cloudforet.setup.project_id is missing: the service accounts of "
                         f"{', '.join(a.name for a in accounts)} go to a project (ServiceAccount.create requires "
                         "project_id). Set it to a project of workspace "
                         f"{config.cloudforet.auth.workspace_id}.")
    try:
        client.get_project(project)
    except CloudForetError as err:
        if err.code != "NOT_FOUND":
            raise
        raise SetupError(f"cloudforet.setup.project_id: no project {project} in workspace "
                         f"{config.cloudforet.auth.workspace_id} (identity Project.get: NOT_FOUND); create it or "
                         "name another") from None
    held = {sa["name"]: sa for sa in client.list_service_accounts(PROVIDER, project_id=project)}
    secrets: dict[str, dict] = {}
    for a in accounts:  # every secret read before the first write: a missing variable changes nothing
        if a.name not in held or ctx.update_secrets:
            try:
                secrets[a.name] = secret_data_of(a)
            except CredentialError as err:
                raise SetupError(f"{err} (needed for the secret of its service account)") from None
            ctx.keep_secret(secrets[a.name])
    for a in accounts:
        sa = held.get(a.name)
        if sa is None:
            data, secret = service_account_data(a), secrets[a.name]
            shown = {"name": a.name, "provider": PROVIDER, "project_id": project, "data": data,
                     "secret_schema_id": SECRET_SCHEMA_ID, "secret_data": dict.fromkeys(secret, MASK)}
            made = ctx.write("ServiceAccount.create", shown, functools.partial(
                client.create_service_account, a.name, PROVIDER, data, project, SECRET_SCHEMA_ID, secret), "created")
            if made:
                ctx.out(f"    service account {made.get('service_account_id')} (secret {made.get('secret_id')})")
        elif ctx.update_secrets:
            secret = secrets[a.name]
            shown = {"service_account_id": sa["service_account_id"], "secret_schema_id": SECRET_SCHEMA_ID,
                     "secret_data": dict.fromkeys(secret, MASK)}
            ctx.write("ServiceAccount.update_secret_data", shown, functools.partial(
                client.update_service_account_secret, sa["service_account_id"], SECRET_SCHEMA_ID, secret),
                "replaced")
        else:
            ctx.unchanged(f"service account {a.name} ({sa['service_account_id']})",
                          "its secret is kept; --update-secrets replaces it")


def ensure_cloud_service_types(ctx: SetupRun, client: CloudForetClient) -> None:
    """The CloudServiceTypes with their console layouts (schemas/console.py), created or updated
    where their metadata, labels or tags differ (CloudForetClient.ensure_cloud_service_types). A
    dry run reads them (CloudServiceType.list) and compares as that method does."""
    from schemas.console import cloud_service_type_definitions
    defs = cloud_service_type_definitions()
    if not ctx.dry_run:
        _report(ctx, "cloud service types", client.ensure_cloud_service_types(defs))
        return
    for t in defs:
        found = client.call(client.cloud_service_type.list, cloud_service_type_pb2.CloudServiceTypeQuery(
            provider=t["provider"], group=t["group"], name=t["name"]), "CloudServiceType.list")
        what = {"provider": t["provider"], "group": t["group"], "name": t["name"]}
        if not found.total_count:
            ctx.write("CloudServiceType.create", {**what, "metadata": "<schemas/console layout>"}, _nothing,
                      "created")
            continue
        changed = type_changes(to_dict(found.results[0]), t)
        if changed:
            ctx.write("CloudServiceType.update", {**what, "changed": changed}, _nothing, "updated")
        else:
            ctx.unchanged(f"cloud service type {t['group']}/{t['name']}")


def ensure_metric_explorer(ctx: SetupRun, client: CloudForetClient) -> None:
    """The Metric Explorer Namespace and Metrics (schemas/metric_explorer.py), created or updated
    (CloudForetClient.ensure_metric_explorer); a dry run reads and compares them alike."""
    from schemas.metric_explorer import metric_definitions, namespace_definition
    namespace, metrics = namespace_definition(), metric_definitions()
    if not ctx.dry_run:
        _report(ctx, "metric explorer", client.ensure_metric_explorer(namespace, metrics))
        return
    plans: list[tuple[str, str, Any, Any, tuple[str, ...], dict]] = [
        ("Namespace", "namespace_id", client.namespace, namespace_pb2.NamespaceQuery, NAMESPACE_UPDATABLE, namespace)]
    plans += [("Metric", "metric_id", client.metric, metric_pb2.MetricQuery, METRIC_UPDATABLE, m) for m in metrics]
    for kind, id_key, stub, query_type, updatable, want in plans:
        found = client.call(stub.list, query_type(**{id_key: want[id_key]}), f"{kind}.list")
        if not found.total_count:
            ctx.write(f"{kind}.create", {id_key: want[id_key], "name": want.get("name")}, _nothing, "created")
            continue
        held = to_dict(found.results[0])
        changed = [k for k in updatable if k in want and not same_as_held(held.get(k), want[k])]
        if changed:
            ctx.write(f"{kind}.update", {id_key: want[id_key], "changed": changed}, _nothing, "updated")
        else:
            ctx.unchanged(f"{kind.lower()} {want[id_key]}")


def _nothing() -> None:
    """What a dry run's write does."""


def _report(ctx: SetupRun, what: str, counts: dict) -> None:
    """What an ``ensure_*`` of the client did: {created, updated, unchanged}."""
    for outcome in ("created", "updated", "unchanged"):
        if counts.get(outcome):
            ctx.counts[outcome] += int(counts[outcome])
    ctx.out(f"  {what}: " + ", ".join(f"{int(counts.get(k, 0))} {k}" for k in ("created", "updated", "unchanged")))


def _accounts(config: Config) -> str:
    return ", ".join(a.name for a in config.accounts) or "none configured"


STEPS: list[Step] = [
    Step("provider", DOMAIN_ADMIN, lambda c: f"Provider {PROVIDER}", ensure_provider),
    Step("schemas", DOMAIN_ADMIN, lambda c: f"Schemas {SECRET_SCHEMA_ID} and {SERVICE_ACCOUNT_SCHEMA_ID}",
         ensure_schemas),
    Step("service_accounts", WORKSPACE_OWNER, lambda c: f"ServiceAccounts ({_accounts(c)})",
         ensure_service_accounts),
    Step("cloud_service_types", WORKSPACE_OWNER, lambda c: "CloudServiceTypes (console layouts)",
         ensure_cloud_service_types),
    Step("metric_explorer", WORKSPACE_OWNER, lambda c: "the Metric Explorer Namespace and Metrics",
         ensure_metric_explorer),
]


def run_setup(config: Config, *, dry_run: bool = False, update_secrets: bool = False,
              steps: list[Step] | None = None, out: Callable[[str], None] = print) -> Counter:
    """Every step in order; raises SetupError (nothing after the failing step is done)."""
    ctx = SetupRun(config, dry_run=dry_run, update_secrets=update_secrets, out=out,
                   steps=list(STEPS if steps is None else steps))
    for step in ctx.steps:
        out(f"[{step.name}] ({step.role})")
        client = ctx.client(step)
        try:
            step.run(ctx, client)
        except CloudForetError as err:
            raise ctx._error(step.role, step.objects(config), err) from None
    writes = {k: n for k, n in ctx.counts.items() if k != "unchanged" and n}
    if dry_run:
        out("setup --dry-run: nothing was changed; " + (", ".join(f"{n} {k}" for k, n in sorted(writes.items()))
                                                        + " above would be written" if writes else
                                                        "nothing would be written"))
    elif writes:
        out("setup: " + ", ".join(f"{n} {k}" for k, n in sorted(writes.items()))
            + f", {ctx.counts['unchanged']} unchanged")
    else:
        out(f"setup: nothing to change: CloudForet already holds all {ctx.counts['unchanged']} objects "
            "as configured")
    return ctx.counts


HELP = """\
Makes Nutanix a provider of CloudForet: the provider nutanix, its SECRET and SERVICE_ACCOUNT
schemas (DOMAIN_ADMIN), one service account per configured Prism Central with its secret from the
environment, the cloud service types with their console layouts and the Metric Explorer namespace
and metrics (WORKSPACE_OWNER). Safe to run again: each object is read first and written only where it
differs (existing secrets are kept unless --update-secrets)."""

EPILOG = """\
credentials (cloudforet.setup in the configuration, each naming environment variables):
  domain_admin     {token_env: VAR} of a domain App, or {user_id, password_env} of a DOMAIN_ADMIN user
  workspace_owner  {token_env: VAR} of a workspace-owner App, or {user_id, password_env}
  project_id       the project the service accounts go to
  plugins          --plugins: {image_repository, registry_type, version, collector_hours, ...}

exit codes: 0 done, 1 a call failed, 2 unusable configuration or credential, 3 CloudForet unreachable"""


def main(argv: list[str]) -> int:
    from pipeline.run import resolve_endpoints, setup_logging
    parser = argparse.ArgumentParser(prog="python -m pipeline setup", description=HELP, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML or JSON configuration file")
    parser.add_argument("--dry-run", action="store_true", help="print each write it would make; change nothing")
    parser.add_argument("--plugins", action="store_true",
                        help="also install the plugins: the images in the Repository, the Collector, the monitoring "
                             "and the cost data source (cloudforet.setup.plugins; pipeline/setup_plugins.py)")
    parser.add_argument("--update-secrets", action="store_true",
                        help="replace the secret of service accounts that exist (default: left alone)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        steps, services = list(STEPS), ["identity", "inventory"]
        if args.plugins:
            from pipeline.setup_plugins import PLUGIN_SERVICES, PLUGIN_STEPS, options_of
            options_of(config)  # says what is missing before any call
            steps, services = steps + PLUGIN_STEPS, services + PLUGIN_SERVICES
        config = resolve_endpoints(config, services)
        run_setup(config, dry_run=args.dry_run, update_secrets=args.update_secrets, steps=steps)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SetupError as exc:
        print(f"error: setup: {exc}", file=sys.stderr)
        return exc.exit_code
    except CloudForetError as exc:
        print(f"error: CloudForet at {config.cloudforet.endpoints.describe()}: {exc}", file=sys.stderr)
        return 3
    return 0
