"""RegisterTypesAndRegions: the CloudServiceTypes and Regions the console groups by.

The types are registered with their console layouts (schemas/console.py): created when
missing, updated when their metadata, labels or tags changed. Regions are the clusters
(region_code = cluster uuid), with the map tags (continent, latitude, longitude) the config
gives a cluster by name or uuid; created when missing, updated when their name or tags
changed. So the step is idempotent; it needs a WORKSPACE_OWNER token and reports a dead
letter (not a failed run) without one.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import apache_beam as beam
from apache_beam import pvalue

from connectors.cloudforet import CloudForetClient
from connectors.errors import CloudForetError
from schemas.console import cloud_service_type_definitions
from transforms.elements import DEAD_LETTER, Resource, SinkResult
from transforms.settings import CloudForetOptions
from transforms.stages.normalize import PROVIDER, dead_letter

# account -> cluster name or uuid -> the region's tags
RegionTags = Mapping[str, Mapping[str, Mapping[str, str]]]


def tags_by_code(regions: dict[str, str], configured: Mapping[str, Mapping[str, str]]) -> dict[str, dict]:
    """The tags of each region_code, from the config's entries by uuid (first) or by cluster name."""
    out = {}
    for code, name in regions.items():
        tags = configured.get(code) or configured.get(name)
        if tags:
            out[code] = dict(tags)
    return out


class _RegisterFn(beam.DoFn):
    def __init__(self, options: CloudForetOptions, types: list[dict], region_tags: RegionTags):
        self.options = options
        self.types = types
        self.region_tags = region_tags

    def setup(self):
        self.client = CloudForetClient(self.options.endpoints, self.options.auth, self.options.timeout_s)
        self.types_done = False

    def process(self, item: tuple[str, dict]) -> Iterable[SinkResult | pvalue.TaggedOutput]:
        account, regions = item
        types = {"created": 0, "updated": 0}
        done = {"created": 0, "updated": 0}
        try:
            if not self.types_done:
                types = self.client.ensure_cloud_service_types(self.types)
                self.types_done = True
            done = self.client.ensure_regions(PROVIDER, regions,
                                              tags_by_code(regions, self.region_tags.get(account, {})))
        except CloudForetError as err:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter("registry", account, "region", str(err)))
        yield {"sink": "registry", "account": account, "types_created": types["created"],
               "types_updated": types["updated"], "regions_created": done["created"],
               "regions_updated": done["updated"]}


class RegisterTypesAndRegions(beam.PTransform[beam.PCollection[Resource], pvalue.DoOutputsTuple]):
    """Cluster resources -> per-account registry results (main: SinkResult) and DEAD_LETTER.

    ``region_tags``: per account, the config's map tags by cluster name or uuid."""

    def __init__(self, options: CloudForetOptions, region_tags: RegionTags | None = None):
        super().__init__()
        self.options = options
        self.region_tags = {a: {k: dict(v) for k, v in t.items()} for a, t in (region_tags or {}).items()}
        self.types = cloud_service_type_definitions()  # read here, once: the workers need no layout files

    def expand(self, clusters: beam.PCollection[Resource]) -> pvalue.DoOutputsTuple:
        return (clusters
                | "RegionPerCluster" >> beam.Map(lambda c: (c["account"], {c["region_code"]: c["name"]}))
                | "RegionsPerAccount" >> beam.CombinePerKey(_merge_dicts)
                | "Register" >> beam.ParDo(_RegisterFn(self.options, self.types, self.region_tags))
                .with_outputs(DEAD_LETTER, main="results"))


def _merge_dicts(dicts: Iterable[dict]) -> dict:
    out: dict = {}
    for d in dicts:
        out.update(d)
    return out
