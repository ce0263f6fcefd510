"""The settings every transform receives: frozen, picklable data.

``pipeline.config`` builds them from the user's file after validating it;
transforms only read them (data flows connectors <- transforms <- pipeline).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from connectors.cloudforet import CloudForetAuth, CloudForetEndpoints

if TYPE_CHECKING:
    from pipeline.plugin_definitions import PluginsOptions


@dataclass(frozen=True)
class Rate:
    vcpu_hour: float
    gib_ram_hour: float
    gib_storage_month: float
    currency: str


@dataclass(frozen=True)
class RateCard:
    default: Rate
    clusters: tuple[tuple[str, Rate], ...] = ()

    def for_cluster(self, uuid: str, name: str) -> Rate:
        """A rate by cluster uuid first, then by name, else the default."""
        by_key = dict(self.clusters)
        return by_key.get(uuid) or by_key.get(name) or self.default


@dataclass(frozen=True)
class AccountConfig:
    name: str
    host: str | None = None
    port: int = 9440
    scheme: str = "https"
    username: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    secret_id: str | None = None
    verify_ssl: bool | None = None
    ca_bundle: str | None = None
    service_account_id: str | None = None
    cost_project_id: str | None = None  # api mode: this account's cost records go to this project
    api: str | None = None  # "v3" | "v4" | "auto"; None: PrismOptions.api
    api_key_env: str | None = None  # v4: an API key (X-ntnx-api-key) instead of Basic
    # the map tags of its clusters' Regions: ((cluster name or uuid, ((tag, value), ...)), ...)
    regions: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def region_tags(self) -> dict[str, dict[str, str]]:
        return {cluster: dict(tags) for cluster, tags in self.regions}


@dataclass(frozen=True)
class PrismOptions:
    page_size: int = 500  # v4 pages hold at most 100
    api: str = "auto"  # the accounts' default: v3, v4, or auto (ask each Prism Central once per run)
    timeout_s: float = 30.0
    max_requests_per_s: float = 20.0  # per Prism Central, across all worker processes
    rate_limit_shares: int = 1  # worker processes sharing that budget (each gets rate / shares)
    max_concurrency: int = 8
    max_attempts: int = 6
    stats_window_s: int = 3600
    stats_interval_s: int = 300


@dataclass(frozen=True)
class CloudForetOptions:
    endpoints: CloudForetEndpoints  # resolved at start-up (config, then identity's Endpoint.list)
    auth: CloudForetAuth
    timeout_s: float = 30.0
    batch_size: int = 100
    batches_in_flight: int = 2  # per sink and worker: batch_size x this many calls at once, at most
    max_attempts: int = 6
    cost_data_source_id: str = "ds-nutanix"
    cost_mode: str = "datasource"  # datasource: the cost store the plugin serves | api: Cost.create | both
    cost_project_id: str = ""  # api mode: the project of cost records (Cost.create requires one), per account too
    touch_after_s: int = 72_000  # rewrite unchanged resources after 20 h (CloudForet deletes after 48 h)
    notification_resource_type: str = "identity.Domain"
    notification_resource_id: str = ""
    notification_topic: str = "nutanix.collector.run"


@dataclass(frozen=True)
class SetupOptions:
    """``cloudforet.setup``: the credentials ``python -m pipeline setup`` calls with, each by
    the role it needs (an App cannot change scope, so one credential cannot be both)."""

    domain_admin: CloudForetAuth | None = None  # Provider, Schema (identity: DOMAIN_ADMIN only)
    workspace_owner: CloudForetAuth | None = None  # ServiceAccount, CloudServiceType, Metric Explorer
    project_id: str = ""  # the project the service accounts go to
    plugins: "PluginsOptions | None" = None  # what setup --plugins registers (None: not configured)


@dataclass(frozen=True)
class ReconcileOptions:
    enabled: bool = True
    max_delete_fraction: float = 0.2
    allow_mass_delete: bool = False


@dataclass(frozen=True)
class SnapshotOptions:
    enabled: bool = True
    path: str = "out/snapshots"
    format: str = "avro"
    codec: str = "snappy"  # Avro block codec: faster than deflate (benchmarks/README.md)


@dataclass(frozen=True)
class Config:
    accounts: tuple[AccountConfig, ...]
    prism: PrismOptions
    cloudforet: CloudForetOptions
    rate_card: RateCard
    metric_store_path: str = "out/metrics"
    report_path: str = "out/run-report.json"
    cost_store_path: str = "out/costs"
    snapshot: SnapshotOptions = SnapshotOptions()
    reconcile: ReconcileOptions = ReconcileOptions()
    accounts_from: str = "config"  # or "service_accounts": the accounts are read from CloudForet at start-up
    setup: SetupOptions = SetupOptions()

    def api_of(self, name: str) -> str:
        """The API mode of an account: its own, else ``prism.api``."""
        return self.account(name).api or self.prism.api

    def account(self, name: str) -> AccountConfig:
        for a in self.accounts:
            if a.name == name:
                return a
        raise KeyError(name)


@dataclass(frozen=True)
class RunContext:
    """What makes one run's output reproducible: its id and its clock.

    All time in the output (billed_date, the stats window) comes from
    ``collected_at``, never from the clock where a step happens to run.
    """

    run_id: str
    collected_at: str  # ISO-8601 UTC, e.g. 2026-11-28T21:00:00Z
    stats_start_ms: int
    stats_end_ms: int
    stats_interval_s: int = 300

    @property
    def billed_date(self) -> str:
        return self.collected_at[:10]

    @classmethod
    def create(cls, collected_at_epoch_s: float, window_s: int, interval_s: int,
               run_id: str | None = None) -> "RunContext":
        import time
        end_s = int(collected_at_epoch_s) // interval_s * interval_s
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(collected_at_epoch_s)))
        rid = run_id or time.strftime("run-%Y%m%dT%H%M%SZ", time.gmtime(int(collected_at_epoch_s)))
        return cls(run_id=rid, collected_at=stamp, stats_start_ms=(end_s - window_s) * 1000,
                   stats_end_ms=end_s * 1000, stats_interval_s=interval_s)
