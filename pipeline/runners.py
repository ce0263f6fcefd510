"""Which Beam runners may run the collection, decided by the runner's resolved class.

A runner that cannot run this pipeline's graph does not fail: Beam's DaskRunner
ran it and reported success having read and written nothing (it drops outputs
yielded from ``finish_bundle`` and tagged outputs; see the README, "Runners").
So runners are allowed by the exact class ``--runner`` resolves to, never by a
subclass check: DaskRunner subclasses the direct runner's classes.
"""
from __future__ import annotations

import logging

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineRunner, create_runner

log = logging.getLogger(__name__)

# qualified class name -> the name people pass to --runner; each ran this pipeline's graph whole
SUPPORTED_RUNNERS = {
    "apache_beam.runners.portability.fn_api_runner.fn_runner.FnApiRunner": "FnApiRunner",
    "apache_beam.runners.direct.direct_runner.SwitchingDirectRunner": "DirectRunner",
    "apache_beam.runners.direct.direct_runner.BundleBasedDirectRunner": "BundleBasedDirectRunner",
    "apache_beam.runners.portability.flink_runner.FlinkRunner": "FlinkRunner",
    "apache_beam.runners.dataflow.dataflow_runner.DataflowRunner": "DataflowRunner",
    "apache_beam.runners.portability.portable_runner.PortableRunner": "PortableRunner",
}
OVERRIDE_FLAG = "--allow-unsupported-runner"


class UnsupportedRunner(ValueError):
    """``--runner`` names a runner this pipeline is not known to run on, or none Beam knows."""


def qualified_name(runner: PipelineRunner) -> str:
    cls = type(runner)
    return f"{cls.__module__}.{cls.__qualname__}"


def supported_names() -> str:
    return ", ".join(SUPPORTED_RUNNERS.values())


def resolve_runner(options: PipelineOptions, allow_unsupported: bool = False, warn: bool = True) -> PipelineRunner:
    """The runner instance Beam would build for ``--runner`` (the FnApiRunner without one: the
    default DirectRunner would first try to download the Prism runner), refused unless supported."""
    name = options.view_as(StandardOptions).runner
    if not name:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner
        return FnApiRunner()
    try:
        runner = create_runner(name)
    except (ImportError, ValueError, AttributeError) as exc:
        raise UnsupportedRunner(f"--runner {name}: Beam cannot create it ({exc}). Supported: {supported_names()}") \
            from None
    qualified = qualified_name(runner)
    if qualified in SUPPORTED_RUNNERS:
        return runner
    if not allow_unsupported:
        raise UnsupportedRunner(
            f"--runner {name} resolves to {qualified}, which is not a runner this pipeline is known to run on "
            f"(a runner that drops outputs can report success having written nothing). Supported: "
            f"{supported_names()}. To try it anyway pass {OVERRIDE_FLAG}: the run then still fails unless every "
            "account's results reach the run report.")
    if warn:
        log.warning("running on the unsupported runner %s (%s): its run counts only if every account's results "
                    "reach the run report", qualified, OVERRIDE_FLAG)
    return runner
