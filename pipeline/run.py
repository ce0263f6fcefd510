"""Command line: ``python -m pipeline --config FILE [Beam options]``.

Validates everything it can before the pipeline starts (config, environment,
CloudForet login, the runner), so a mistake costs seconds, not a half-run.
Exit codes: 0 every account collected (possibly with warnings), 1 an account
failed entirely, 2 unusable configuration or runner, 3 CloudForet unreachable
or login refused, 4 the runner finished but lost results (the run report this
run should have written is missing, stale or lacks an account).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineRunner, PipelineState

from connectors.cloudforet import CloudForetClient
from connectors.errors import CloudForetError
from connectors.retry import RetryPolicy
from pipeline.config import ConfigError, load_config
from pipeline.cost_preflight import check_cost_api
from pipeline.graph import build
from pipeline.report import (
    LostResults,
    add_counters,
    counters,
    format_counters,
    format_summary,
    read_back_report,
    report_stamp,
)
from pipeline.runners import OVERRIDE_FLAG, UnsupportedRunner, resolve_runner, supported_names
from pipeline.service_accounts import accounts_from_service_accounts
from transforms.common.snapshot_format import SnapshotError
from transforms.settings import Config, RunContext
from transforms.sources.snapshot import context_of, find_snapshots, validate_snapshot

log = logging.getLogger("pipeline")


HELP_DESCRIPTION = """\
Collects Nutanix Prism Central into CloudForet: every Prism Central of the
configuration is read (clusters, hosts, VMs and their stats) and written to
CloudForet as inventory cloud services, monitoring metrics and costs, in one
Apache Beam pipeline run. The configuration and CloudForet's login are checked
before anything is read.

Runs:
  python -m pipeline --config FILE [Beam options]
      collect: read the Prism Centrals, write CloudForet (and archive a snapshot)
  python -m pipeline --config FILE --source snapshot --snapshot DIR|MANIFEST|GLOB
      replay: write archived snapshots to CloudForet, reading no Prism Central
  python -m pipeline setup --config FILE [--dry-run] [--update-secrets]
      set up CloudForet once: provider nutanix, its schemas, a service account per Prism
      Central, console layouts, Metric Explorer (python -m pipeline setup --help)"""

HELP_EPILOG = """\
Beam options (e.g. --runner FlinkRunner, --direct_num_workers 2) are passed on
to Beam; without --runner the local FnApiRunner runs the pipeline. Supported
runners (by their class): {runners}; any other is refused
(--allow-unsupported-runner tries it, with a warning).

exit codes:
  0  every account collected (possibly with warnings)
  1  an account failed entirely
  2  unusable configuration or runner (the message names the key and the fix)
  3  CloudForet unreachable or login refused
  4  the runner finished but lost results: the run report is missing, stale or
     lacks an account (a runner that drops outputs)

Documentation: README.md at the top of the collector's repository (the
configuration's JSON Schema: schemas/config.schema.json)."""


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=HELP_DESCRIPTION,
                                     epilog=HELP_EPILOG.replace("{runners}", supported_names()),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML or JSON configuration file")
    parser.add_argument("--collected-at", help="ISO-8601 UTC time the run stands for (default: now)")
    parser.add_argument("--run-id", help="run id (default: derived from the collection time)")
    parser.add_argument("--source", choices=["live", "snapshot"], default="live",
                        help="read Prism Central (live) or replay archived snapshots")
    parser.add_argument("--snapshot", help="with --source snapshot: a snapshot directory, its manifest, "
                                           "or a glob of them (replayed in collection-time order)")
    parser.add_argument("--allow-mass-delete", action="store_true",
                        help="let reconciliation delete more than reconcile.max_delete_fraction of an account")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument(OVERRIDE_FLAG, action="store_true",
                        help="run on a --runner the collector is not known to run on (with a warning); the run "
                             "still fails unless every account's results reach the run report")
    return parser.parse_known_args(argv)


def setup_logging(level: str) -> None:
    """Importing Beam already gave the root logger a plain stderr handler at
    WARNING (so basicConfig alone would do nothing): set the level and format
    on that handler, and leave other handlers (e.g. a test's) alone."""
    root = logging.getLogger()
    root.setLevel(level)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    plain = [h for h in root.handlers if type(h) is logging.StreamHandler]  # noqa: E721
    if not plain:
        handler = logging.StreamHandler()
        root.addHandler(handler)
        plain = [handler]
    for h in plain:
        h.setFormatter(fmt)
    # Beam's and gRPC's INFO lines drown the collector's own; DEBUG shows everything.
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in ("apache_beam.typehints", "apache_beam.io", "apache_beam.runners.portability.fn_api_runner",
                 "apache_beam.runners.worker.statecache", "urllib3"):
        logging.getLogger(name).setLevel(quiet)


def _collected_at(value: str | None) -> float:
    if not value:
        return time.time()
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--collected-at {value!r} is not an ISO-8601 time (e.g. 2026-11-28T06:00:00Z)") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


def beam_options(extra: list[str], allow_unsupported: bool = False,
                 warn: bool = True) -> tuple[PipelineOptions, PipelineRunner]:
    """Beam options and the runner they name, if it is one this pipeline runs on
    (see pipeline/runners.py); without ``--runner``, the FnApiRunner."""
    options = PipelineOptions(extra)
    return options, resolve_runner(options, allow_unsupported, warn)


def share_rate_limit(config: Config, extra: list[str]) -> Config:
    """Worker processes of the local runner each get their share of a Prism
    Central's request budget (on Flink/Dataflow set prism.rate_limit_shares)."""
    options = PipelineOptions(extra).get_all_options()
    if options.get("direct_running_mode") == "multi_processing" and (options.get("direct_num_workers") or 1) > 1:
        shares = max(config.prism.rate_limit_shares, int(options["direct_num_workers"]))
        return dataclasses.replace(config, prism=dataclasses.replace(config.prism, rate_limit_shares=shares))
    return config


APP_EXPIRY_WARNING_S = 30 * 86400


def needed_services(config: Config) -> list[str]:
    """The CloudForet services this run will call, as ``cloudforet.endpoints`` keys."""
    cf = config.cloudforet
    needed = ["inventory", "notification"]
    if not cf.auth.token_env:
        needed.insert(0, "identity")  # Token.issue / Token.grant
    if cf.cost_mode in ("api", "both"):
        needed.append("cost_analysis")
    if config.accounts_from == "service_accounts":
        if "identity" not in needed:
            needed.insert(0, "identity")  # ServiceAccount.list
        needed.append("secret")  # Secret.get_data of each service account's secret
    elif any(a.secret_id for a in config.accounts):
        needed.append("secret")
    return needed


def resolve_endpoints(config: Config, needed: list[str] | None = None) -> Config:
    """Every needed service's address (default: what a run needs): from the config, else from
    identity's ``Endpoint.list`` (empty on a stock install). A service still unknown stops
    the run here, naming the config key."""
    cf = config.cloudforet
    needed = needed_services(config) if needed is None else needed
    missing = cf.endpoints.missing(needed)
    if not missing:
        return config
    found: dict = {}
    if cf.endpoints.get("identity") is not None:
        found = CloudForetClient(cf.endpoints, cf.auth, timeout_s=min(cf.timeout_s, 15.0)).discover_endpoints()
        log.info("identity's Endpoint.list named: %s", ", ".join(sorted(found)) or "nothing")
    endpoints = cf.endpoints.with_services(found)
    still = endpoints.missing(missing)
    if still:
        keys = ", ".join(f"cloudforet.endpoints.{s}" for s in still)
        raise ConfigError(
            f"no address for the CloudForet service(s) {', '.join(still)}, which this needs: neither "
            f"configured nor listed by identity's Endpoint.list"
            f"{'' if cf.endpoints.get('identity') else ' (no identity endpoint to ask)'}. Set {keys} "
            "(grpc://host:port or grpc+ssl://host:port).")
    return dataclasses.replace(config, cloudforet=dataclasses.replace(cf, endpoints=endpoints))


def preflight(config: Config) -> list[str]:
    """Fails fast if CloudForet cannot be reached or refuses the credentials,
    with calls every supported credential may make (apps included); returns
    warnings for the report (an app secret about to expire)."""
    cf = config.cloudforet
    client = CloudForetClient(cf.endpoints, cf.auth, timeout_s=min(cf.timeout_s, 15.0),
                              retry=RetryPolicy(max_attempts=3, max_total_s=20))
    client.tokens.token()
    if cf.cost_mode in ("api", "both"):
        check_cost_api(config)
    client.count_cloud_services_of("nutanix")  # the token works on inventory, and inventory is there
    warnings = []
    expires = client.tokens.app_token_expiry()
    if expires is not None and expires - time.time() < APP_EXPIRY_WARNING_S:
        days = max(0, int((expires - time.time()) // 86400))
        when = time.strftime("%Y-%m-%d", time.gmtime(expires))
        warnings.append(f"the CloudForet app secret in {cf.auth.token_env} expires on {when} (in {days} days): "
                        "apps have no refresh token; generate a new client secret "
                        "(identity App.generate_client_secret) and replace it before then")
    for w in warnings:
        log.warning(w)
    return warnings


def plan_replays(pattern: str | None) -> list[tuple[str, dict]]:
    """Every snapshot validated before anything is written, oldest first."""
    if not pattern:
        raise SnapshotError("--source snapshot needs --snapshot PATH_OR_GLOB")
    snapshots = [(d, validate_snapshot(d)) for d in find_snapshots(pattern)]
    return sorted(snapshots, key=lambda s: (s[1]["collected_at"], s[1]["snapshot_id"]))


def run_once(config: Config, ctx: RunContext, extra: list[str], snapshot: tuple[str, dict] | None = None,
             warnings: Sequence[str] = (), allow_unsupported_runner: bool = False) -> dict:
    """One pipeline run; its summary as the run report it wrote holds it (LostResults if none)."""
    config = share_rate_limit(config, extra)
    options, runner = beam_options(extra, allow_unsupported_runner, warn=False)  # warned at start-up
    started = time.monotonic()
    what = f"replaying snapshot {snapshot[0]}" if snapshot else f"collecting {len(config.accounts)} account(s)"
    log.info("run %s: %s for %s", ctx.run_id, what, ctx.billed_date)
    accounts = sorted(snapshot[1]["accounts"]) if snapshot else [a.name for a in config.accounts]
    before = report_stamp(config.report_path)
    p = beam.Pipeline(runner=runner, options=options)
    build(p, config, ctx, snapshot)
    result = p.run()
    state = result.wait_until_finish()
    if state is not None and state != PipelineState.DONE:
        raise LostResults(f"the runner ended the pipeline in state {state}, not DONE")
    summary = read_back_report(config.report_path, ctx.run_id, accounts, before)
    values = counters(result)
    add_counters(config.report_path, values, list(warnings))
    summary["warnings"] = list(warnings)
    print(format_summary(summary))
    print(format_counters(values))
    print(f"run report: {config.report_path} ({time.monotonic() - started:.1f}s)")
    return summary


def run(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["setup"]:
        from pipeline.setup import main as setup_main
        return setup_main(argv[1:])
    args, extra = parse_args(argv)
    setup_logging(args.log_level)
    try:
        config = load_config(args.config)
        if args.allow_mass_delete:
            config = dataclasses.replace(config, reconcile=dataclasses.replace(config.reconcile,
                                                                               allow_mass_delete=True))
        ctx = RunContext.create(_collected_at(args.collected_at), config.prism.stats_window_s,
                                config.prism.stats_interval_s, args.run_id)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        beam_options(extra, args.allow_unsupported_runner)  # refused here, before anything is called
    except UnsupportedRunner as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    replays: list[tuple[str, dict]] = []
    if args.source == "live" and not config.accounts and config.accounts_from == "config":
        print(f"error: {args.config}: 'accounts' is required for a live collection (list the Prism Centrals, "
              "or take them from CloudForet: accounts_from: service_accounts)", file=sys.stderr)
        return 2
    if args.source == "snapshot":
        try:
            replays = plan_replays(args.snapshot)
        except SnapshotError as exc:
            print(f"error: snapshot: {exc}. Nothing was written.", file=sys.stderr)
            return 2
    try:
        config = resolve_endpoints(config)
        found: list[str] = []
        if args.source == "live" and config.accounts_from == "service_accounts":
            config, found = accounts_from_service_accounts(config)
        warnings = found + preflight(config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CloudForetError as exc:
        print(f"error: CloudForet at {config.cloudforet.endpoints.describe()}: {exc}", file=sys.stderr)
        return 3
    allow = args.allow_unsupported_runner
    try:
        if not replays:
            summaries = [run_once(config, ctx, extra, warnings=warnings, allow_unsupported_runner=allow)]
        else:
            summaries = [run_once(config, context_of(manifest), extra, (d, manifest), warnings, allow)
                         for d, manifest in replays]
    except LostResults as exc:
        print(f"error: {exc}. Nothing this run claims can be trusted: run it again on a supported runner.",
              file=sys.stderr)
        return 4
    return 1 if any(s["status"] == "ERROR" for s in summaries) else 0
