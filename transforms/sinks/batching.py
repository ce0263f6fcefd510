"""A sink DoFn that buffers in ``process`` and flushes per batch.

Like Beam's datastoreio writers: the client is opened in ``setup``, elements
are buffered per group (records of one group share a lookup call), a batch is
flushed when full and at ``finish_bundle``, and every flush emits results.
Plain buffering keeps the fast FnApiRunner path (no timers).

A flushed batch is started (looked up, its calls put in flight, in a thread of
the DoFn's own) and finished later: up to ``batches_in_flight`` batches
overlap, so neither CloudForet nor the bundle's thread waits for the other. Every batch is finished
before the bundle ends, so a bundle's outputs still mean "written".
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Hashable, Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from connectors.cloudforet import CloudForetClient
from transforms.common.gc_tuning import tune_gc
from transforms.common.windows import in_global_window
from transforms.settings import CloudForetOptions

Finisher = Callable[[], Iterable]  # waits for a started batch; yields its results and dead letters


class BatchedCloudForetWrite(beam.DoFn, metaclass=ABCMeta):
    """Subclasses define ``start_write(group, batch)``, which starts a batch and
    returns its finisher: a call that waits for it and yields per-batch results
    and ``TaggedOutput(DEAD_LETTER, ...)`` for records that failed."""

    def __init__(self, options: CloudForetOptions):
        self.options = options

    def setup(self):
        tune_gc()
        self.client = CloudForetClient(self.options.endpoints, self.options.auth, self.options.timeout_s)
        self._published_call_retries = 0
        # a started batch is looked up and its calls answered in one of these threads
        self.runner = ThreadPoolExecutor(max(1, self.options.batches_in_flight), thread_name_prefix="cf-batch")

    def teardown(self):
        self.runner.shutdown(wait=True)

    def start_bundle(self):
        self._buffers: dict[Hashable, list] = defaultdict(list)
        self._in_flight: deque[Finisher] = deque()

    def group_of(self, element) -> Hashable:
        return None

    @abstractmethod
    def start_write(self, group: Any, batch: list) -> Finisher:
        """Starts ``batch``, whose records share ``group`` (what the subclass's ``group_of``
        returned: each subclass its own tuple), and returns its finisher."""
        ...

    def process(self, element) -> Iterable:
        group = self.group_of(element)
        buf = self._buffers[group]
        buf.append(element)
        if len(buf) >= self.options.batch_size:
            self._buffers[group] = []
            yield from self._submit(group, buf)

    def _submit(self, group: Hashable, batch: list) -> Iterable:
        """Starts ``batch`` once fewer than ``batches_in_flight`` batches are in flight."""
        while len(self._in_flight) >= max(1, self.options.batches_in_flight):
            yield from self._in_flight.popleft()()
        self._in_flight.append(self.start_write(group, batch))

    def publish_call_retries(self) -> None:
        """Lookups retried inside the client (reads), as a Beam counter."""
        delta = self.client.retries_made - self._published_call_retries
        self._published_call_retries = self.client.retries_made
        Metrics.counter("cloudforet", "call_retries").inc(delta)

    def finish_bundle(self):
        buffers, self._buffers = self._buffers, defaultdict(list)
        outputs = []
        for group, batch in buffers.items():
            if batch:
                outputs += self._submit(group, batch)
        while self._in_flight:
            outputs += self._in_flight.popleft()()
        yield from map(in_global_window, outputs)
        self.publish_call_retries()
