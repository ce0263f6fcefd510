"""``python -m tests.job_service --port N --workers W [--bundle-repeat R]``: Beam's Python job
service, with each job's bundles spread over W SDK workers (as a Flink TaskManager's slots
spread them), and with ``R`` each bundle run R more times, its outputs thrown away and its
side effects kept (the FnApiRunner's ``bundle_repeat``): what a runner retrying every bundle
after it finished would leave.

Beam's own ``local_job_service_main`` runs every job on one SDK worker: its FnApiRunner
reads ``--direct_num_workers`` only in ``run_pipeline``, which a job service never calls
(apache_beam/runners/portability/fn_api_runner/fn_runner.py). ``LocalJobServicer`` takes the
job type as a parameter (``beam_job_type``, local_job_service.py); this one gives its runner W
workers, which the EXTERNAL environment asks of the worker pool.
"""
from __future__ import annotations

import argparse
import logging
import threading

from apache_beam.runners.portability import local_job_service
from apache_beam.runners.portability.fn_api_runner import fn_runner


def job_type(workers: int, bundle_repeat: int = 0) -> type:
    class BeamJobOnWorkers(local_job_service.BeamJob):
        def _invoke_runner(self):
            self.set_state(local_job_service.beam_job_api_pb2.JobState.RUNNING)
            runner = fn_runner.FnApiRunner(provision_info=self._provision_info, bundle_repeat=bundle_repeat)
            runner._num_workers = workers  # what run_pipeline would set from --direct_num_workers
            return runner.run_via_runner_api(self._pipeline_proto, self.pipeline_options())
    return BeamJobOnWorkers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.job_service")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--bundle-repeat", type=int, default=0)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    servicer = local_job_service.LocalJobServicer(beam_job_type=job_type(args.workers, args.bundle_repeat))
    port = servicer.start_grpc_server(args.port)
    logging.info("job service on port %d, %d SDK workers per job", port, args.workers)
    threading.Event().wait()  # serves until killed


if __name__ == "__main__":
    main()
