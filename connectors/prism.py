"""A small client for Prism Central's v3 REST API (and the transport its v4 client shares).

One instance per account per worker: it owns a keep-alive ``requests``
session, a rate limiter and the retry policy. It knows HTTP and the v3
envelope, nothing about Beam or CloudForet. ``connectors.prism_v4`` adds the
v4 calls on the same transport.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
from requests.adapters import HTTPAdapter

from connectors.errors import PrismAuthError, PrismError, PrismResponseError, is_transient
from connectors.ratelimit import shared_limiter
from connectors.retry import RetryPolicy, call_with_retries
from connectors.untrusted_text import CONTROL_CHARACTERS

log = logging.getLogger(__name__)

V3 = "/api/nutanix/v3"
LIST_KINDS = {"cluster": "clusters", "host": "hosts", "vm": "vms"}
TRANSIENT_STATUSES = {429, 500, 502, 503, 504}
# A single v3 page is at most a few MB; anything far larger is not Prism.
MAX_BODY_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class PrismCredentials:
    """Where and how to log in. ``repr`` hides the password."""

    host: str
    port: int = 9440
    username: str = ""
    password: str = field(default="", repr=False)
    api_key: str = field(default="", repr=False)  # v4: sent as X-ntnx-api-key instead of Basic
    verify_ssl: bool = True
    ca_bundle: str | None = None
    scheme: str = "https"

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass
class Page:
    entities: list[dict]
    total_matches: int
    offset: int
    length: int  # what the server answered it returned, not what we asked


class PrismClient:
    def __init__(
        self,
        account: str,
        creds: PrismCredentials,
        timeout_s: float = 30.0,
        rate_per_s: float = 20.0,
        retry: RetryPolicy | None = None,
        pool_size: int = 16,
    ):
        self.account = account
        self.creds = creds
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        # Shared by every client of this Prism Central in the process.
        self.limiter = shared_limiter(creds.base_url, rate_per_s)
        self._local = threading.local()  # per thread, for callers that count their own
        self.session = requests.Session()
        if creds.username:
            self.session.auth = (creds.username, creds.password)
        self.session.headers.update({"Accept": "application/json", "Content-Type": "application/json"})
        if creds.scheme == "https":
            self.session.verify = creds.ca_bundle if (creds.verify_ssl and creds.ca_bundle) else creds.verify_ssl
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def take_retries(self) -> int:
        """Retries this thread made since its last call (and resets the count)."""
        n = getattr(self._local, "retries", 0)
        self._local.retries = 0
        return n

    # -- public calls -----------------------------------------------------
    def list_page(self, kind: str, offset: int, length: int) -> Page:
        """One page of ``clusters|hosts|vms/list``."""
        path = f"{V3}/{LIST_KINDS[kind]}/list"
        body = self.post(path, {"kind": kind, "offset": offset, "length": length})
        return parse_list_page(body, kind, offset, self._where(path))

    def vm_stats(self, offset: int, count: int, attributes: list[str], start_ms: int, end_ms: int,
                 interval_s: int, entity_ids: list[str] | None = None) -> dict:
        """A page of VM time series from the groups API (of ``entity_ids`` only, when given)."""
        body = {
            "entity_type": "mh_vm",
            "group_member_attributes": [{"attribute": a} for a in attributes],
            "group_member_offset": offset,
            "group_member_count": count,
            "interval_start_ms": start_ms,
            "interval_end_ms": end_ms,
            "downsampling_interval": interval_s,
            "filter_criteria": "is_cvm==0",
        }
        if entity_ids is not None:
            body["entity_ids"] = list(entity_ids)
        path = f"{V3}/groups"
        answer = self.post(path, body)
        if not isinstance(answer, dict) or not isinstance(answer.get("group_results", []), list):
            raise PrismResponseError(f"{self._where(path)}: answer is not a groups response")
        return answer

    # -- transport --------------------------------------------------------
    def _where(self, path: str) -> str:
        return f"Prism Central '{self.account}' ({self.creds.base_url}{path})"

    def post(self, path: str, body: dict) -> Any:
        """POST with rate limiting, bounded retries, Retry-After, size cap."""
        return self.request("POST", path, body=body)

    def request(self, method: str, path: str, params: dict | None = None, body: Any = None,
                headers: dict | None = None) -> Any:
        """One logical call: rate limited, retried while transient, size capped."""
        url = self.creds.base_url + path
        where = self._where(path)
        return call_with_retries(
            lambda: self._send_once(method, url, where, body, params, headers), self.retry, is_transient,
            retry_after=lambda err: getattr(err, "retry_after", None),
            on_retry=lambda err, delay: self._count_retry(where, err, delay),
            give_up=lambda err, attempts: PrismError(f"{err} (gave up after {attempts} attempts)",
                                                     getattr(err, "status", None), transient=True))

    def _count_retry(self, where: str, err: Exception, delay: float) -> None:
        self._local.retries = getattr(self._local, "retries", 0) + 1  # this thread's own count
        log.debug("retrying %s in %.2fs after: %s", where, delay, err)

    def _send_once(self, method: str, url: str, where: str, body: Any = None, params: dict | None = None,
                   headers: dict | None = None) -> Any:
        """One attempt; what it raises says (``transient``) whether another may help."""
        self.limiter.acquire()
        try:
            # verify passed per request: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override
            # session.verify, which would silently drop ca_bundle and verify_ssl: false.
            resp = self.session.request(method, url, json=body, params=params, headers=headers,
                                        timeout=self.timeout_s, stream=True, verify=self.session.verify)
            status = resp.status_code
            content = _read_capped(resp, where)
        except requests.exceptions.SSLError as exc:
            raise PrismError(
                f"{where}: TLS verification failed ({type(exc).__name__}). Set 'ca_bundle' to the "
                "Prism Central CA, or verify_ssl: false only if you accept the risk.") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError) as exc:
            raise PrismError(f"{where}: {type(exc).__name__}: connection failed or timed out",
                             transient=True) from None
        self._rate_headers(resp.headers)
        if status == 200:
            try:
                return _json_loads(content)
            except ValueError:
                raise PrismResponseError(f"{where}: answered invalid or truncated JSON", status,
                                         transient=True) from None
        if status in (401, 403):
            raise PrismAuthError(
                f"{where}: HTTP {status}: credentials rejected. Check the username/password (or API key) "
                "for this account (and that the user may read VMs, hosts and clusters).", status)
        message, group = error_message(content)
        if status in TRANSIENT_STATUSES or (status == 400 and group == "RATE_LIMIT_EXCEEDED"):
            # v4 may throttle with a 400 whose errorGroup says so (prism.md, "v4 API")
            wait = _retry_after(resp.headers.get("Retry-After"))
            if wait is None and (status == 429 or group == "RATE_LIMIT_EXCEEDED"):
                wait = _retry_after(resp.headers.get("X-Ratelimit-Reset"))
            raise PrismError(f"{where}: HTTP {status}{message}", status, transient=True, retry_after=wait)
        raise PrismError(f"{where}: HTTP {status}{message}", status)

    def _rate_headers(self, headers: Any) -> None:
        """A v4 answer that says the budget is spent (``X-Ratelimit-Remaining: 0``) holds this
        Prism Central's next requests until ``X-Ratelimit-Reset`` (at least one second)."""
        remaining = headers.get("X-Ratelimit-Remaining")
        if remaining is None or remaining.strip() != "0":
            return
        reset = _retry_after(headers.get("X-Ratelimit-Reset")) or 0.0
        self.limiter.defer(max(1.0, reset))


def _read_capped(resp: requests.Response, where: str) -> bytes:
    declared = resp.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        resp.close()
        raise PrismResponseError(f"{where}: answer of {declared} bytes exceeds the {MAX_BODY_BYTES} byte limit")
    chunks, size = [], 0
    for chunk in resp.iter_content(1 << 16):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            resp.close()
            raise PrismResponseError(f"{where}: answer exceeds the {MAX_BODY_BYTES} byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_loads(content: bytes) -> Any:
    """orjson first: answers are megabytes (500 VMs, or their stats) and parsing them is the
    largest piece of a run's CPU. What orjson refuses and the standard parser takes (a BOM,
    NaN, lone surrogates) still parses; integers beyond 64 bits come back as floats (Prism
    sends none: its largest are microsecond timestamps and byte counts)."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return json.loads(content)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, min(float(value), 300.0))
    except ValueError:
        return None


def error_message(content: bytes) -> tuple[str, str]:
    """(": first message", error group) of a v3 (``message_list``) or v4 (``data.error[]``)
    error envelope; ("", "") when the body is neither."""
    try:
        body = _json_loads(content)
    except Exception:  # not JSON: say nothing more than the status
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    group = ""
    try:
        if isinstance(body.get("data"), dict):
            msg = body["data"]["error"][0]
            group = CONTROL_CHARACTERS.sub(" ", str(msg.get("errorGroup") or ""))[:64].strip()
            text = str(msg.get("message") or msg.get("code") or "")
        else:
            msg = body["message_list"][0]
            text = str(msg.get("message") or msg.get("reason") or "")
    except (KeyError, IndexError, TypeError, AttributeError):
        return "", ""
    # Prism's text is untrusted: no control characters (log/terminal injection), bounded.
    text = CONTROL_CHARACTERS.sub(" ", text[:300]).strip()
    return (f": {text}" if text else ""), group


def parse_list_page(body: Any, kind: str, offset: int, where: str) -> Page:
    """Validates the v3 list envelope. ``length``/``offset`` may be absent."""
    if not isinstance(body, dict):
        raise PrismResponseError(f"{where}: answer is not a JSON object")
    meta = body.get("metadata")
    entities = body.get("entities", [])
    if not isinstance(meta, dict) or not isinstance(entities, list):
        raise PrismResponseError(f"{where}: answer lacks metadata/entities of a v3 list")
    total = meta.get("total_matches")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise PrismResponseError(f"{where}: metadata.total_matches is missing or not a count")
    if total > 10_000_000:
        raise PrismResponseError(f"{where}: metadata.total_matches={total} is not plausible")
    length = meta.get("length", len(entities))
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        length = len(entities)
    return Page(entities=entities, total_matches=total, offset=offset, length=length)
