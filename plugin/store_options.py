"""Which store a plugin call reads: from the options CloudForet passes, else the command line's.

CloudForet starts a plugin image with its own command and no arguments of
ours (the supervisor runs the image's CMD: cloudforet-io/supervisor
``service/supervisor_service.py`` ``install_plugin``), and then passes the
data source's ``plugin_info.options`` with every call (``DataSource.init``,
``verify``, ``Metric.list/get_data``, ``Job.get_tasks``, ``Cost.get_data``).
So where the pipeline writes its stores is an option of the data source:

- ``store``: the pipeline's output directory or URI (gs://, s3://, hdfs://,
  file://), holding ``metrics/`` and ``costs/`` (the monitoring plugin reads
  STORE/metrics, the cost plugin STORE/costs);
- ``metric_store`` / ``cost_store``: the store root itself, when it is elsewhere.

``--store`` on the command line is only the default for calls without them
(local runs and tests).
"""
from __future__ import annotations

import os
import posixpath
import threading
from typing import Callable, Generic, TypeVar

from .errors import invalid

S = TypeVar("S")

STORE_OPTION = "store"


def store_root(store: str | None, override: str | None, subdir: str) -> str | None:
    """``store`` means STORE/<subdir>; ``override`` (a store root itself) wins; None if neither is given."""
    if override:
        return str(override)
    if not store:
        return None
    store = str(store)
    return posixpath.join(store, subdir) if "://" in store else os.path.join(store, subdir)


class StoreChoice(Generic[S]):
    """The store of a call's options (one reader per root, kept), or the default one."""

    def __init__(self, factory: Callable[[str], S], subdir: str, option: str, default: S | None = None) -> None:
        self.factory, self.subdir, self.option, self.default = factory, subdir, option, default
        self._by_root: dict[str, S] = {}
        self._lock = threading.Lock()

    def of(self, options: dict | None) -> S:
        options = options or {}
        root = store_root(options.get(STORE_OPTION), options.get(self.option), self.subdir)
        if root is None:
            if self.default is None:
                raise invalid(f"no {self.subdir} store: give the data source's plugin_info.options "
                              f"{STORE_OPTION!r} (the pipeline's output directory or URI, e.g. gs://bucket/out, "
                              f"holding {self.subdir}/) or {self.option!r} (the store root itself)")
            return self.default
        with self._lock:
            store = self._by_root.get(root)
            if store is None:
                store = self._by_root[root] = self.factory(root)
            return store


def choice(store: "S | StoreChoice[S] | None", factory: Callable[[str], S], subdir: str, option: str
           ) -> StoreChoice[S]:
    """A servicer's store argument as a StoreChoice (a plain store is the default of calls without options)."""
    if isinstance(store, StoreChoice):
        return store
    return StoreChoice(factory, subdir, option, default=store)
