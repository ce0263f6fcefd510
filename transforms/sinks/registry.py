"""RegisterTypesAndRegions: the CloudServiceTypes and Regions the console groups by.

Regions are the clusters (region_code = cluster uuid). Both are created only
when missing, so the step is idempotent; it needs a WORKSPACE_OWNER token and
reports a dead letter (not a failed run) without one.
"""
from __future__ import annotations

from typing import Iterable

import apache_beam as beam
from apache_beam import pvalue

from connectors.cloudforet import CloudForetClient
from connectors.errors import CloudForetError
from transforms.elements import DEAD_LETTER, Resource, SinkResult
from transforms.settings import CloudForetOptions
from transforms.stages.normalize import CLOUD_SERVICE_TYPES, PROVIDER, dead_letter


class _RegisterFn(beam.DoFn):
    def __init__(self, options: CloudForetOptions):
        self.options = options

    def setup(self):
        self.client = CloudForetClient(self.options.endpoints, self.options.auth, self.options.timeout_s)
        self.types_done = False

    def process(self, item: tuple[str, dict]) -> Iterable[SinkResult | pvalue.TaggedOutput]:
        account, regions = item
        types_created = regions_created = 0
        try:
            if not self.types_done:
                types_created = self.client.ensure_cloud_service_types(CLOUD_SERVICE_TYPES)
                self.types_done = True
            regions_created = self.client.ensure_regions(PROVIDER, regions)
        except CloudForetError as err:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter("registry", account, "region", str(err)))
        yield {"sink": "registry", "account": account, "types_created": types_created,
               "regions_created": regions_created}


class RegisterTypesAndRegions(beam.PTransform[beam.PCollection[Resource], pvalue.DoOutputsTuple]):
    """Cluster resources -> per-account registry results (main: SinkResult) and DEAD_LETTER."""

    def __init__(self, options: CloudForetOptions):
        super().__init__()
        self.options = options

    def expand(self, clusters: beam.PCollection[Resource]) -> pvalue.DoOutputsTuple:
        return (clusters
                | "RegionPerCluster" >> beam.Map(lambda c: (c["account"], {c["region_code"]: c["name"]}))
                | "RegionsPerAccount" >> beam.CombinePerKey(_merge_dicts)
                | "Register" >> beam.ParDo(_RegisterFn(self.options)).with_outputs(DEAD_LETTER, main="results"))


def _merge_dicts(dicts: Iterable[dict]) -> dict:
    out: dict = {}
    for d in dicts:
        out.update(d)
    return out
