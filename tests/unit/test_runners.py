"""Runners are allowed by the class --runner resolves to, not by a subclass check (pipeline/runners.py)."""
from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner

from pipeline.runners import SUPPORTED_RUNNERS, UnsupportedRunner, qualified_name, resolve_runner


class LikeDaskRunner(BundleBasedDirectRunner):
    """Beam's DaskRunner subclasses BundleBasedDirectRunner (apache_beam/runners/dask/dask_runner.py)."""


def resolve(*args: str, allow: bool = False):
    return resolve_runner(PipelineOptions(list(args)), allow)


@pytest.mark.parametrize("name, resolved", [
    ("FnApiRunner", "FnApiRunner"), ("DirectRunner", "SwitchingDirectRunner"),
    ("direct", "SwitchingDirectRunner"), ("BundleBasedDirectRunner", "BundleBasedDirectRunner"),
    ("FlinkRunner", "FlinkRunner"), ("flink", "FlinkRunner"), ("PortableRunner", "PortableRunner"),
])
def test_the_supported_runners_resolve_and_are_allowed(name, resolved):
    runner = resolve("--runner", name)
    assert type(runner).__name__ == resolved and qualified_name(runner) in SUPPORTED_RUNNERS


def test_no_runner_is_the_fn_api_runner():
    assert type(resolve()).__name__ == "FnApiRunner"


def test_a_subclass_of_an_allowed_runner_is_refused_naming_the_supported_ones():
    with pytest.raises(UnsupportedRunner) as err:
        resolve("--runner", f"{__name__}.LikeDaskRunner")
    text = str(err.value)
    assert "LikeDaskRunner" in text and "--allow-unsupported-runner" in text
    for name in ("FnApiRunner", "DirectRunner", "FlinkRunner", "DataflowRunner", "PortableRunner"):
        assert name in text


@pytest.mark.parametrize("name", ["PrismRunner", "TestDirectRunner", "tests.runners.DropsFinishBundleOutputs"])
def test_other_runners_beam_knows_are_refused(name):
    with pytest.raises(UnsupportedRunner, match="not a runner this pipeline is known to run on"):
        resolve("--runner", name)


def test_a_runner_beam_cannot_create_is_refused_with_beams_reason():
    with pytest.raises(UnsupportedRunner, match="Beam cannot create it.*Unexpected pipeline runner"):
        resolve("--runner", "NoSuchRunner")


def test_the_override_runs_an_unsupported_runner_with_a_warning(caplog):
    runner = resolve("--runner", f"{__name__}.LikeDaskRunner", allow=True)
    assert isinstance(runner, LikeDaskRunner)
    assert any("unsupported runner" in r.getMessage() for r in caplog.records)
