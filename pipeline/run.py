"""Command line: ``python -m pipeline --config FILE [Beam options]``.

Validates everything it can before the pipeline starts (config, environment,
CloudForet login), so a mistake costs seconds, not a half-run. Exit codes:
0 every account collected (possibly with warnings), 1 an account failed
entirely, 2 unusable configuration, 3 CloudForet unreachable or login refused.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import datetime, timezone

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from connectors.cloudforet import CloudForetClient
from connectors.errors import CloudForetError
from pipeline.config import ConfigError, load_config
from pipeline.graph import build
from pipeline.report import format_summary, read_report
from transforms.settings import Config, RunContext

log = logging.getLogger("pipeline")


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML or JSON configuration file")
    parser.add_argument("--collected-at", help="ISO-8601 UTC time the run stands for (default: now)")
    parser.add_argument("--run-id", help="run id (default: derived from the collection time)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_known_args(argv)


def _collected_at(value: str | None) -> float:
    if not value:
        return time.time()
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--collected-at {value!r} is not an ISO-8601 time (e.g. 2026-11-28T06:00:00Z)") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


def beam_options(extra: list[str]) -> tuple[PipelineOptions, object | None]:
    """Beam options; without ``--runner`` the FnApiRunner is pinned (the default
    DirectRunner would first try to download the Prism runner)."""
    options = PipelineOptions(extra)
    runner = None
    if not any(a == "--runner" or a.startswith("--runner=") for a in extra):
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner
        runner = FnApiRunner()
    return options, runner


def preflight(config: Config) -> None:
    """Fails fast if CloudForet cannot be reached or refuses the credentials."""
    cf = config.cloudforet
    client = CloudForetClient(cf.endpoint, cf.auth, timeout_s=min(cf.timeout_s, 15.0))
    client.tokens.token()
    client.list_notifications(cf.notification_topic)  # any authenticated read proves the token works


def run(argv: list[str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        ctx = RunContext.create(_collected_at(args.collected_at), config.prism.stats_window_s,
                                config.prism.stats_interval_s, args.run_id)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        preflight(config)
    except CloudForetError as exc:
        print(f"error: CloudForet at {config.cloudforet.endpoint.address}: {exc}", file=sys.stderr)
        return 3

    options, runner = beam_options(extra)
    started = time.monotonic()
    log.info("run %s: collecting %d account(s) for %s", ctx.run_id, len(config.accounts), ctx.billed_date)
    p = beam.Pipeline(runner=runner, options=options)
    build(p, config, ctx)
    result = p.run()
    result.wait_until_finish()
    summary = read_report(config.report_path)
    print(format_summary(summary))
    print(f"run report: {config.report_path} ({time.monotonic() - started:.1f}s)")
    return 1 if summary["status"] == "ERROR" else 0
