"""Runners that lose work, as some real ones do, to prove a run then never claims success.

Beam's DaskRunner (dask/distributed 2026.8) drops what a DoFn yields from
``finish_bundle`` and reports the pipeline DONE (shared/docs/beam.md,
"Runners"). ``DropsFinishBundleOutputs`` does the same on the FnApiRunner: every
ParDo's DoFn still runs its ``finish_bundle`` (its flushes and writes happen), but
what it yields goes nowhere. ``NeverRuns`` says DONE without running anything: the
summary step never writes the run report. Both are named with ``--runner
tests.runners.<Name>``, which the launcher refuses unless told otherwise.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.pipeline import PipelineVisitor
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.runners.runner import PipelineResult, PipelineRunner, PipelineState


def _finish_bundle_dropping_outputs(self):
    outputs = super(type(self), self).finish_bundle()
    for _ in outputs or ():  # the bundle's flushes run; what it yields is lost
        pass


def _dropping(cls: type) -> type:
    return type(f"DropsFinishBundleOutputsOf{cls.__name__}", (cls,),
                {"finish_bundle": _finish_bundle_dropping_outputs, "__module__": __name__})


class _DropFinishBundleOutputs(PipelineVisitor):
    def __init__(self):
        self.dofns = 0

    def visit_transform(self, applied) -> None:
        transform = applied.transform
        if isinstance(transform, beam.ParDo):
            if not type(transform.fn).__name__.startswith("DropsFinish"):
                transform.fn.__class__ = _dropping(type(transform.fn))
            self.dofns += 1


class DropsFinishBundleOutputs(FnApiRunner):
    """The FnApiRunner, with every DoFn's ``finish_bundle`` outputs dropped (as Beam's DaskRunner does)."""

    def run_pipeline(self, pipeline, options):
        visitor = _DropFinishBundleOutputs()
        pipeline.visit(visitor)
        assert visitor.dofns > 0, "no ParDo found to drop outputs of"
        return super().run_pipeline(pipeline, options)


class _Done(PipelineResult):
    def __init__(self):
        super().__init__(PipelineState.DONE)

    def wait_until_finish(self, duration=None):
        return PipelineState.DONE

    def metrics(self):
        raise AssertionError("a run that never ran has no metrics to read")


class NeverRuns(PipelineRunner):
    """Says DONE and runs nothing: no step, the summary's included, ever runs."""

    def run_pipeline(self, pipeline, options):
        return _Done()
