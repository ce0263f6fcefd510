"""Prism Central's v4 REST API on the v3 client's transport (session, rate budget, retries).

Why our own client and not the ``ntnx-*-py-client`` SDKs: they pin urllib3 ~=1.26 and
certifi <= 2025.4.26 (ntnx-vmm-py-client 4.3.2 METADATA) against this project's
urllib3 2.8 and certifi 2026, and they build a model object per field of every VM
(benchmarks/v4_library.py measures the cost; benchmarks/README.md has the figures).
What the SDKs do that matters is done here: the version negotiation of
``ApiClient.negotiate_version`` (``OPTIONS /api/vmm/unversioned/info``, whose ``data``
is the server's highest version; the client uses the lower of its own and that),
retries of 408/429/503/504 (here: the project's policy, and v4's 400
RATE_LIMIT_EXCEEDED form), Basic or ``X-ntnx-api-key`` auth.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from connectors.errors import PrismAuthError, PrismError, PrismResponseError
from connectors.prism import PrismClient, PrismCredentials
from connectors.retry import RetryPolicy

INFO_PATH = "/api/vmm/unversioned/info"
# the versions this client reads (their answers are a superset of v4.0's: fields are only added)
CLIENT_VERSIONS = ("v4.0", "v4.1", "v4.2", "v4.3")
MAX_LIMIT = 100  # OData $limit is 1..100 on every v4 list
LISTS = {
    "cluster": "clustermgmt/{v}/config/clusters",
    "host": "clustermgmt/{v}/config/hosts",
    "vm": "vmm/{v}/ahv/config/vms",
    "subnet": "networking/{v}/config/subnets",
    "storage_container": "clustermgmt/{v}/config/storage-containers",
    "category": "prism/{v}/config/categories",
}
VM_STATS = "vmm/{v}/ahv/stats/vms"
_VERSION = re.compile(r"^v4\.(\d+)(?:\.[a-z]\d+)?$")


def pick_version(server: Any) -> str | None:
    """The version to use given the server's answer (``v4.1``, ``v4.2.b1``...): the highest
    this client knows that the server serves; None when the answer is no v4 version."""
    if not isinstance(server, str):
        return None
    m = _VERSION.match(server.strip())
    if not m:
        return None
    usable = [v for v in CLIENT_VERSIONS if int(v.split(".")[1]) <= int(m.group(1))]
    return usable[-1] if usable else None


@dataclass
class V4Page:
    entities: list[dict]
    total: int  # metadata.totalAvailableResults
    page: int
    limit: int


def iso_utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PrismV4Client(PrismClient):
    """The v4 calls; ``version`` is negotiated (``negotiate``) or given."""

    def __init__(self, account: str, creds: PrismCredentials, timeout_s: float = 30.0,
                 rate_per_s: float = 20.0, retry: RetryPolicy | None = None, pool_size: int = 16,
                 version: str = "v4.0"):
        super().__init__(account, creds, timeout_s, rate_per_s, retry, pool_size)
        self.version = version
        self._v4_headers = {"X-ntnx-api-key": creds.api_key} if creds.api_key else None
        if creds.api_key:
            self.session.auth = None  # the key alone: no password travels

    def negotiate(self) -> tuple[str | None, str]:
        """(version, why): asks which v4 version the Prism Central serves. None when it
        serves none this client can read (404: older than pc.2024.1; an answer that is no
        version). Credentials rejected are raised: v3 would be refused as well."""
        try:
            answer = self.request("OPTIONS", INFO_PATH, headers=self._v4_headers)
        except PrismAuthError:
            raise
        except PrismError as exc:
            return None, f"{INFO_PATH} answered {exc.status or 'no HTTP answer'}"
        server = answer.get("data") if isinstance(answer, dict) else None
        version = pick_version(server)
        if version is None:
            return None, f"{INFO_PATH} named no usable v4 version ({str(server)[:40]!r})"
        self.version = version
        return version, f"server serves {str(server)[:16]}"

    def get(self, path: str, params: dict) -> Any:
        return self.request("GET", path, params=params, headers=self._v4_headers)

    def list_v4(self, kind: str, page: int, limit: int) -> V4Page:
        """One page of a v4 list (``$page`` from 0, ``$limit`` 1..100)."""
        limit = max(1, min(limit, MAX_LIMIT))
        path = "/api/" + LISTS[kind].format(v=self.version)
        body = self.get(path, {"$page": page, "$limit": limit})
        return parse_v4_page(body, page, limit, self._where(path))

    def list_all(self, kind: str) -> list[dict]:
        """Every entity of a small list (clusters, hosts, subnets, containers, categories)."""
        out: list[dict] = []
        page = 0
        while True:
            got = self.list_v4(kind, page, MAX_LIMIT)
            out += got.entities
            page += 1
            if not got.entities or len(out) >= got.total or page * MAX_LIMIT >= got.total:
                return out

    def vm_stats_v4(self, ext_ids: list[str], fields: list[str], start_ms: int, end_ms: int,
                    interval_s: int) -> list[dict]:
        """The VM stats list for these VMs (``$filter`` on extId, ``$select`` of ``fields``),
        every page of it: [VmStats {extId, stats[]}]."""
        path = "/api/" + VM_STATS.format(v=self.version)
        flt = " or ".join(f"extId eq '{u}'" for u in ext_ids)
        out: list[dict] = []
        page = 0
        limit = min(MAX_LIMIT, max(1, len(ext_ids)))
        while True:
            params: dict[str, Any] = {"$filter": flt, "$select": ",".join(["extId"] + [f"stats/{f}" for f in fields]),
                      "$startTime": iso_utc(start_ms), "$endTime": iso_utc(end_ms),
                      "$samplingInterval": interval_s, "$statType": "AVG",
                      "$page": page, "$limit": limit}
            got = parse_v4_page(self.get(path, params), page, limit, self._where(path))
            out += got.entities
            page += 1
            if not got.entities or len(out) >= got.total:
                return out


def parse_v4_page(body: Any, page: int, limit: int, where: str) -> V4Page:
    """Validates the v4 list envelope; an empty page may come without ``data``."""
    if not isinstance(body, dict):
        raise PrismResponseError(f"{where}: answer is not a JSON object")
    meta = body.get("metadata")
    data = body.get("data", [])
    if data is None:
        data = []
    if not isinstance(meta, dict) or not isinstance(data, list):
        raise PrismResponseError(f"{where}: answer lacks the metadata/data of a v4 list")
    total = meta.get("totalAvailableResults", len(data) if page == 0 else None)
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise PrismResponseError(f"{where}: metadata.totalAvailableResults is missing or not a count")
    if total > 10_000_000:
        raise PrismResponseError(f"{where}: metadata.totalAvailableResults={total} is not plausible")
    return V4Page(entities=data, total=total, page=page, limit=limit)
