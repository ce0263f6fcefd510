"""The real identity and cost-analysis, started once for the whole conformance run."""
from __future__ import annotations

import pytest

from .services import RealCloudForet


@pytest.fixture(scope="session")
def real_cf(tmp_path_factory):
    cf = RealCloudForet(tmp_path_factory.mktemp("real-cloudforet"))
    try:
        cf.start().seed()
    except BaseException:
        for p in cf.processes:
            print(f"--- {p.name} ---\n{p.tail()}")
        cf.stop()
        raise
    yield cf
    cf.stop()
