"""Configuration: a YAML/JSON file, validated once at start-up into frozen,
picklable dataclasses that every DoFn receives. Secrets are referenced by the
name of an environment variable or a CloudForet secret id, never inlined.
"""
from __future__ import annotations

import json
from typing import Any

import jsonschema
import yaml

from connectors.cloudforet import CloudForetAuth, CloudForetEndpoint, CloudForetEndpoints
from schemas import load_json_schema
from transforms.settings import (
    AccountConfig,
    CloudForetOptions,
    Config,
    PrismOptions,
    Rate,
    RateCard,
    ReconcileOptions,
    SetupOptions,
    SnapshotOptions,
)


class ConfigError(ValueError):
    """The configuration cannot be used; the message says where and why."""


# cloudforet.<key> of the file -> CloudForetOptions.<key>
CLOUDFORET_TUNING = ("timeout_s", "batch_size", "batches_in_flight", "max_attempts", "cost_data_source_id",
                     "touch_after_s", "cost_mode", "cost_project_id")
# <section>.path of the file -> the Config field
STORE_PATHS = {"metric_store": "metric_store_path", "report": "report_path", "cost_store": "cost_store_path"}
DEFAULT_RATE = {"vcpu_hour": 0.02, "gib_ram_hour": 0.005, "gib_storage_month": 0.05, "currency": "USD"}


def load_config(path: str) -> Config:
    """Reads, validates and converts; raises ConfigError naming the problem."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot be read ({exc.strerror})") from None
    try:
        raw = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path}: not valid {'JSON' if path.endswith('.json') else 'YAML'}: "
                          f"{str(exc).splitlines()[0]}") from None
    return parse_config(raw, source=path)


def parse_config(raw: Any, source: str = "config") -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with 'accounts' and 'cloudforet'")
    validator = jsonschema.Draft202012Validator(load_json_schema("config.schema.json"))
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(f"{source}: " + "; ".join(_describe(e) for e in errors[:5]))

    accounts = []
    seen = set()
    for i, a in enumerate(raw.get("accounts", [])):
        where = f"{source}: accounts[{i}] ({a['name']})"
        if a["name"] in seen:
            raise ConfigError(f"{where}: duplicate account name")
        seen.add(a["name"])
        if "secret_id" not in a:
            missing = [k for k in ("host",) if k not in a]
            if "api_key_env" not in a or (a.get("api") or raw.get("prism", {}).get("api")) == "v3":
                # an API key opens v4 only: reading v3 (or falling back to it) takes Basic
                if "password_env" not in a:
                    missing.append("password_env" if "api_key_env" not in a else
                                   "password_env (an API key opens v4 only, and api is v3)")
                if "username" not in a and "username_env" not in a:
                    missing.append("username or username_env")
            if missing:
                raise ConfigError(f"{where}: needs either 'secret_id' (a CloudForet secret) or host with "
                                  f"username and password_env (or, for v4, api_key_env); missing: "
                                  f"{', '.join(missing)}")
        accounts.append(AccountConfig(**{**a, "regions": region_tags(a.get("regions") or {})}))

    cf = raw["cloudforet"]
    # What the file leaves out takes the settings' own default (transforms/settings.py): one place.
    tuning = {key: cf[key] for key in CLOUDFORET_TUNING if key in cf}
    notification = cf.get("notification", {})
    tuning.update({f"notification_{key}": value for key, value in notification.items()})
    tuning.setdefault("notification_resource_id", cf["domain_id"])
    setup = parse_setup(cf)
    cloudforet = CloudForetOptions(
        endpoints=parse_endpoints(cf),
        auth=CloudForetAuth(domain_id=cf["domain_id"], workspace_id=cf["workspace_id"], **cf["auth"]),
        **tuning,
    )
    if cloudforet.cost_mode in ("api", "both"):
        check_cost_api(cloudforet, accounts, source)
    card = raw.get("rate_card", {})
    default = Rate(**card.get("default", DEFAULT_RATE))
    clusters = tuple(sorted((k, Rate(**{**default.__dict__, **v})) for k, v in card.get("clusters", {}).items()))
    paths = {field: raw[section]["path"] for section, field in STORE_PATHS.items() if "path" in raw.get(section, {})}
    return Config(
        accounts=tuple(accounts),
        prism=PrismOptions(**raw.get("prism", {})),
        cloudforet=cloudforet,
        rate_card=RateCard(default=default, clusters=clusters),
        snapshot=SnapshotOptions(**raw.get("snapshot", {})),
        reconcile=ReconcileOptions(**raw.get("reconcile", {})),
        accounts_from=raw.get("accounts_from", "config"),
        setup=setup,
        **paths,
    )


def parse_setup(cf: dict) -> SetupOptions:
    """``cloudforet.setup``: a user credential of the domain admin is granted in DOMAIN scope,
    the workspace owner's in the configured workspace (identity Token.grant)."""
    setup = cf.get("setup", {})

    def auth(key: str, scope: str) -> CloudForetAuth | None:
        if key not in setup:
            return None
        return CloudForetAuth(domain_id=cf["domain_id"], workspace_id=cf["workspace_id"], scope=scope,
                              **setup[key])

    plugins = None
    if "plugins" in setup:
        from pipeline.plugin_definitions import PluginsOptions
        try:
            plugins = PluginsOptions.from_dict(setup["plugins"])
        except ValueError as exc:  # an image name the repository would refuse, too many hours
            raise ConfigError(str(exc)) from None
    return SetupOptions(domain_admin=auth("domain_admin", "DOMAIN"),
                        workspace_owner=auth("workspace_owner", "WORKSPACE"),
                        project_id=setup.get("project_id", ""), plugins=plugins)


def region_tags(regions: dict) -> tuple:
    """accounts[].regions (validated by the schema) -> AccountConfig.regions: each cluster's map tags
    as the console reads them, strings as CloudForet's collectors write them (Azure: latitude "52.3667")."""
    return tuple(sorted((str(cluster), tuple(sorted((k, str(v)) for k, v in tags.items())))
                        for cluster, tags in regions.items()))


APP_CANNOT_BE_EXACT = (
    "cost_mode {mode} writes costs with Cost.create, exactly once per resource, usage type and day only when "
    "it can read back what it wrote: on cost-analysis 2.0.108 a workspace-scoped Cost.list does not see what "
    "Cost.create stored, and only a workspace grant may create. An app token has one fixed scope, so it cannot "
    "do both. Use a user credential (cloudforet.auth.user_id + password_env) of a DOMAIN_ADMIN user, or "
    "cost_mode: datasource (the recommended mode: CloudForet pulls the costs from the collector's cost plugin)")


def check_cost_api(cf: CloudForetOptions, accounts: list, source: str) -> None:
    """What api mode needs and the config alone can tell: a user credential and a project for every cost."""
    if cf.auth.token_env:
        raise ConfigError(f"{source}: cloudforet.auth.token_env: " + APP_CANNOT_BE_EXACT.format(mode=cf.cost_mode))
    if cf.cost_project_id:
        return
    without = [a.name for a in accounts if not a.cost_project_id]
    if without or not accounts:
        raise ConfigError(
            f"{source}: cloudforet.cost_project_id is missing: cost_mode {cf.cost_mode} creates costs with "
            "Cost.create, which requires a project_id (cost-analysis checks it with identity Project.get)"
            + (f"; these accounts have no cost_project_id of their own: {', '.join(without)}" if without else "")
            + ". Set cloudforet.cost_project_id (and accounts[].cost_project_id to send an account elsewhere).")


def parse_endpoints(cf: dict) -> CloudForetEndpoints:
    """``cloudforet.endpoint`` (every service at one address) and/or
    ``cloudforet.endpoints`` (each service's own); a shared ``ca_bundle``."""
    shared_ca = cf.get("ca_bundle")
    default = CloudForetEndpoint.parse(cf["endpoint"], shared_ca, cf.get("tls")) if cf.get("endpoint") else None
    services = []
    for service, value in sorted(cf.get("endpoints", {}).items()):
        url, ca = (value["url"], value.get("ca_bundle")) if isinstance(value, dict) else (value, None)
        services.append((service, CloudForetEndpoint.parse(url, ca or shared_ca)))
    return CloudForetEndpoints(tuple(services), default)


def _describe(err: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    if err.validator == "required":
        return f"{where}: {err.message}"
    if err.validator == "additionalProperties":
        return f"{where}: {err.message} (unknown key: check its spelling)"
    if err.validator == "oneOf" and ("auth" in where or "setup." in where):
        return f"{where}: give either token_env (an app token) or user_id + password_env, not both"
    if err.validator == "anyOf" and where == "cloudforet":
        return ("cloudforet: give endpoints (each service's address, e.g. endpoints: {identity: "
                "grpc+ssl://identity.example.com:443, ...}) or endpoint (one address serving every service)")
    if err.validator == "oneOf" and "endpoints" in where:
        return f"{where}: must be grpc://host:port, grpc+ssl://host:port or {{url: ..., ca_bundle: ...}}"
    return f"{where}: {err.message}"
