"""HTTP emulator of one Prism Central's v3 API (list endpoints + groups metrics).

Why: the collector must be tested against paging, auth and error behaviour of a
real Prism Central without one. Every request goes through ``PrismServer._dispatch``
(a pure ``(method, path, headers, body) -> Response`` function) so that a later
fault-injection layer can intercept requests in one place.

Groups: only ``entity_type "mh_vm"`` is served (time series per VM); other entity
types answer 400 ``REQUEST_NOT_SUPPORTED``. ``filter``/``sort_*`` on list calls and
``filter_criteria`` on groups are accepted and echoed but not applied (the
emulated fleet has no CVMs, and order is always the stable index order).
"""
from __future__ import annotations

import base64
import binascii
import collections
import hmac
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, overload

import orjson

from .fleet import PrismCentralFleet
from .v4 import V4Api, V4Error, v4_error_body

API_PREFIX = "/api/nutanix/v3"
APIS = ("v3", "v4")
LIST_KINDS = {"/clusters/list": "cluster", "/hosts/list": "host", "/vms/list": "vm"}
DEFAULT_LENGTH = 20
MAX_BODY_BYTES = 1 << 20
MAX_POINTS_PER_SERIES = 100_000
REALM = 'Basic realm="Intent Gateway"'


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """Raised by handlers; rendered as the v3 error envelope."""

    def __init__(self, code: int, message: str, reason: str = "INVALID_REQUEST", kind: str = "vm"):
        super().__init__(message)
        self.code, self.message, self.reason, self.kind = code, message, reason, kind


def error_body(code: int, message: str, reason: str, kind: str) -> bytes:
    return json.dumps({
        "api_version": "3.1", "code": code, "kind": kind, "state": "ERROR",
        "message_list": [{"message": message, "reason": reason, "details": {}}],
    }).encode()


def _json_response(payload: Any, status: int = 200) -> Response:
    """orjson: a page of 500 VMs is 3 MB of JSON, 28 ms with the standard encoder and 5 ms
    with orjson (the same text, but for non-ASCII characters sent as UTF-8, as Prism does)."""
    try:
        body = orjson.dumps(payload)
    except TypeError:  # an integer beyond 64 bits
        body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, {"Content-Type": "application/json"})


def _series_json(points: list[tuple[int, str]]) -> Any:
    """A series as Prism answers it, ``[{"values": ["v"], "time": t}, ...]``, already as
    JSON: a stats page is 60,000 such points, and building each as a dict (then
    encoding it) was most of the emulator's time on a groups call."""
    if all(type(t) is int and v.lstrip("-").isdigit() for t, v in points):
        return orjson.Fragment(("[" + ",".join(
            [f'{{"values":["{v}"],"time":{t}}}' for t, v in points]) + "]").encode())
    return [{"values": [v], "time": t} for t, v in points]


@overload
def _int_field(body: dict, name: str, default: int, minimum: int, kind: str) -> int: ...
@overload
def _int_field(body: dict, name: str, default: None, minimum: int, kind: str) -> int | None: ...
def _int_field(body: dict, name: str, default: int | None, minimum: int, kind: str) -> int | None:
    """Validate an optional integer field (bools and floats are rejected like real v3)."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ApiError(400, f"{name} must be an integer >= {minimum}", kind=kind)
    return value


class _Handler(BaseHTTPRequestHandler):
    """Thin transport: read the request, call ``_dispatch``, write the response."""

    protocol_version = "HTTP/1.1"   # keep-alive so clients reuse connections
    disable_nagle_algorithm = True  # headers and body are separate writes
    timeout = 120                   # drop idle keep-alive connections eventually
    server: "_HTTPServer"

    def version_string(self) -> str:
        return "envoy"

    def log_message(self, fmt: str, *args: Any) -> None:
        if self.server.prism.verbose:
            super().log_message(fmt, *args)

    def setup(self) -> None:
        super().setup()
        self.server.prism._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.prism._track(self.connection, False)

    def _handle(self) -> None:
        length = self.headers.get("Content-Length")
        try:
            n = int(length) if length else 0
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY_BYTES:
            code = 413 if n > 0 else 400
            self._write(Response(code, error_body(code, "bad Content-Length", "INVALID_REQUEST", "vm"),
                                 {"Content-Type": "application/json"}))
            self.close_connection = True
            return
        body = self.rfile.read(n) if n else b""
        self._write(self.server.prism._dispatch(self.command, self.path, self.headers, body))

    def _write(self, resp: Response) -> None:
        self.send_response(resp.status)
        for k, v in self.server.prism.common_headers.items():
            self.send_header(k, v)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        abort = getattr(resp, "abort", None)  # fault injection: part of the body, then a TCP RST
        if abort is not None and self.command != "HEAD":
            abort(self)
        elif resp.body and self.command != "HEAD":
            self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    prism: "PrismServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        # A client rejecting our certificate or hanging up (timeouts, faults) is routine here.
        if isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class PrismServer:
    """One emulated Prism Central serving one ``PrismCentralFleet``."""

    def __init__(self, pc: PrismCentralFleet, username: str = "admin", password: str = "nutanix/4u",
                 host: str = "127.0.0.1", port: int = 0, max_page: int = 500,
                 product: str = "pc.2024.3.0.1", ssl_context: ssl.SSLContext | None = None,
                 verbose: bool = False, faults: Any = None, apis: tuple[str, ...] = APIS,
                 v4_version: str = "v4.0", api_key: str | None = None, rate_limit: int = 30) -> None:
        if max_page < 1:
            raise ValueError("max_page must be >= 1")
        if not apis or any(a not in APIS for a in apis):
            raise ValueError(f"apis must name some of {APIS}")
        self.pc = pc
        self.host = host
        self.port = port
        self.max_page = max_page
        self.product = product
        self.ssl_context = ssl_context
        self.verbose = verbose
        self.faults = faults  # an emulators.prism.faults.PrismFaults, or None
        self.requests: collections.Counter[str] = collections.Counter()
        self.apis = tuple(apis)
        # v4 over the same fleet; None: a Prism Central that serves v3 only (older than pc.2024.1)
        self.v4 = V4Api(pc, v4_version) if "v4" in apis else None
        self.rate_limit = rate_limit  # the X-Ratelimit-Limit v4 answers carry (requests per second)
        self._window = (0, 0)  # (second, requests in it), for X-Ratelimit-Remaining
        self._api_key = api_key.encode() if api_key else None
        self.common_headers = {
            "X-Content-Type-Options": "nosniff",
            "X-Dns-Prefetch-Control": "off",
            "X-Frame-Options": "SAMEORIGIN",
            "X-Ntnx-Env": "pc",
            "X-Ntnx-Product": product,
            "X-Permitted-Cross-Domain-Policies": "master-only",
            "X-Xss-Protection": "1; mode=block",
        }
        self._expected_auth = b"Basic " + base64.b64encode(f"{username}:{password}".encode())
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> "PrismServer":
        """Bind and serve in a daemon thread (non-blocking)."""
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.prism = self
        if self.ssl_context is not None:
            # Handshake lazily in the handler thread so one slow client cannot block accept().
            httpd.socket = self.ssl_context.wrap_socket(
                httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.port = httpd.server_address[1]
        if self.v4 is not None:
            self.v4.origin = self.url
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                         name=f"prism-{self.pc.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, then close open keep-alive connections so clients notice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "PrismServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    # ------------------------------------------------------------ request routing
    def _dispatch(self, method: str, raw_path: str, headers: Any, body: bytes) -> Response:
        """Single entry point for every request (the hook for future fault injection)."""
        started = time.perf_counter()
        path, _, query = raw_path.partition("?")
        with self._lock:
            self.requests[path] += 1
        fault = self.faults.before(self, method, path) if self.faults is not None else None
        if isinstance(fault, Response):
            return fault
        v4 = not path.startswith(API_PREFIX + "/")
        authorized = self._authorized(headers.get("Authorization")) or (
            v4 and self._key_matches(headers.get("X-ntnx-api-key")))
        if not authorized:
            return Response(401, b"", {"WWW-Authenticate": REALM})
        if v4:
            return self._v4(method, path, query, started, fault)
        if "v3" not in self.apis:
            return Response(404, error_body(404, f"path {path} not found", "ENTITY_NOT_FOUND", "vm"),
                            {"Content-Type": "application/json"})
        try:
            resp = self._route(method, path, body)
        except ApiError as e:
            resp = Response(e.code, error_body(e.code, e.message, e.reason, e.kind),
                            {"Content-Type": "application/json"})
            if e.code == 405:
                resp.headers["Allow"] = "POST"
        resp.headers["X-Envoy-Upstream-Service-Time"] = str(int((time.perf_counter() - started) * 1000))
        return fault(resp) if fault is not None else resp

    def _v4(self, method: str, path: str, query: str, started: float, fault: Any) -> Response:
        """A v4 request: the v4 envelope, its errors, its X-Ratelimit-* headers."""
        if self.v4 is None:  # v3-only Prism Central: envoy knows no such route
            resp = Response(404, b"", {})
        else:
            try:
                status, payload = self.v4.route(method, path, query)
                resp = _json_response(payload, status)
            except V4Error as e:
                resp = Response(e.status, v4_error_body(e.status, e.message, e.code, e.group,
                                                        path.split("/")[2] if path.count("/") > 2 else "vmm"),
                                {"Content-Type": "application/json"})
            resp.headers.update(self._rate_headers())
        resp.headers["X-Envoy-Upstream-Service-Time"] = str(int((time.perf_counter() - started) * 1000))
        return fault(resp) if fault is not None else resp

    def _rate_headers(self) -> dict[str, str]:
        """What real v4 answers carry (v4_manageiq/*.meta.json): the limit per second, what is
        left of it in this second, and when it refills."""
        now = int(time.time())
        with self._lock:
            second, used = self._window
            used = used + 1 if second == now else 1
            self._window = (now, used)
        return {"X-Ratelimit-Limit": str(self.rate_limit),
                "X-Ratelimit-Remaining": str(max(0, self.rate_limit - used)), "X-Ratelimit-Reset": "0"}

    def _key_matches(self, header: str | None) -> bool:
        if not header or self._api_key is None:
            return False
        try:
            return hmac.compare_digest(header.strip().encode("latin-1"), self._api_key)
        except UnicodeEncodeError:
            return False

    def _authorized(self, header: str | None) -> bool:
        if not header:
            return False
        try:
            given = header.encode("latin-1")
            # Normalise the scheme's case and re-encode, so equivalent base64 forms compare equal.
            scheme, _, token = given.partition(b" ")
            if scheme.lower() != b"basic":
                return False
            given = b"Basic " + base64.b64encode(base64.b64decode(token.strip(), validate=True))
        except (UnicodeEncodeError, binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self._expected_auth)

    def _route(self, method: str, path: str, body: bytes) -> Response:
        if not path.startswith(API_PREFIX + "/"):
            raise ApiError(404, f"path {path} not found", "ENTITY_NOT_FOUND")
        sub = path[len(API_PREFIX):].rstrip("/")
        if sub in LIST_KINDS:
            kind = LIST_KINDS[sub]
            self._require_post(method, kind)
            return self._list(kind, self._json_body(body, kind))
        if sub == "/groups":
            self._require_post(method, "groups")
            return self._groups(self._json_body(body, "groups"))
        raise ApiError(404, f"path {path} not found", "ENTITY_NOT_FOUND")

    @staticmethod
    def _require_post(method: str, kind: str) -> None:
        if method != "POST":
            raise ApiError(405, f"method {method} not allowed", "REQUEST_NOT_SUPPORTED", kind)

    @staticmethod
    def _json_body(body: bytes, kind: str) -> dict:
        if not body.strip():
            return {}
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "request body is not valid JSON", kind=kind) from None
        if not isinstance(parsed, dict):
            raise ApiError(400, "request body must be a JSON object", kind=kind)
        return parsed

    # ------------------------------------------------------------ list endpoints
    def _list(self, kind: str, body: dict) -> Response:
        if body.get("kind") not in (None, kind):
            raise ApiError(400, f"kind must be {kind!r}", kind=kind)
        offset = _int_field(body, "offset", 0, 0, kind)
        length = min(_int_field(body, "length", DEFAULT_LENGTH, 1, kind), self.max_page)
        if kind == "vm":
            total = self.pc.vm_count()
            entities = self.pc.vm_entities(offset, length) if offset < total else []
        else:
            every = self.pc.cluster_entities() if kind == "cluster" else self.pc.host_entities()
            total, entities = len(every), every[offset:offset + length]
        meta: dict[str, Any] = {"kind": kind, "total_matches": total,
                                "length": len(entities), "offset": offset}
        for echo in ("filter", "sort_attribute", "sort_order"):
            if body.get(echo) is not None:
                meta[echo] = body[echo]
        return _json_response({"api_version": "3.1", "metadata": meta, "entities": entities})

    # ------------------------------------------------------------ groups (metrics)
    def _groups(self, body: dict) -> Response:
        etype = body.get("entity_type")
        if etype != "mh_vm":
            raise ApiError(400, f"entity_type {etype!r} is not supported by the emulator "
                                "(only mh_vm)", "REQUEST_NOT_SUPPORTED", "groups")
        offset = _int_field(body, "group_member_offset", 0, 0, "groups")
        count = min(_int_field(body, "group_member_count", DEFAULT_LENGTH, 1, "groups"),
                    self.max_page)
        attrs = self._requested_attributes(body.get("group_member_attributes"))
        interval = _int_field(body, "downsampling_interval", self.pc.spec.stats_interval_s, 1,
                              "groups")
        start_ms = _int_field(body, "interval_start_ms", None, 0, "groups")
        end_ms = _int_field(body, "interval_end_ms", None, 0, "groups")
        if (start_ms is None) != (end_ms is None):
            raise ApiError(400, "interval_start_ms and interval_end_ms go together", kind="groups")
        if start_ms is None:  # latest value only: the last completed interval
            end_ms = int(time.time() // interval * interval * 1000)
            start_ms = end_ms - interval * 1000
        assert end_ms is not None  # given with start_ms (checked above) or computed here
        if (end_ms - start_ms) // (interval * 1000) > MAX_POINTS_PER_SERIES:
            raise ApiError(400, "too many points requested", kind="groups")

        entity_ids = body.get("entity_ids")
        if entity_ids is not None:
            if not isinstance(entity_ids, list) or not all(isinstance(x, str) for x in entity_ids):
                raise ApiError(400, "entity_ids must be a list of strings", kind="groups")
            matched = [i for i in (self.pc.vm_index_of(u) for u in entity_ids) if i is not None]
            filtered = len(matched)
            page = matched[offset:offset + count]
        else:
            filtered = self.pc.vm_count()
            page = self.pc.live_indices(offset, count) if offset < filtered else []

        results = [self._entity_result(i, attrs, start_ms, end_ms, interval) for i in page]
        total = self.pc.vm_count()
        return _json_response({
            "entity_type": etype,
            "filtered_entity_count": filtered,
            "total_entity_count": total,
            "filtered_group_count": 1,
            "total_group_count": 1,
            "group_results": [{"entity_results": results, "total_entity_count": total,
                               "filtered_entity_count": filtered}],
        })

    @staticmethod
    def _requested_attributes(raw: Any) -> list[str]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise ApiError(400, "group_member_attributes must be a list", kind="groups")
        names = []
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("attribute"), str):
                raise ApiError(400, "each group_member_attributes item needs an attribute",
                               kind="groups")
            names.append(item["attribute"])
        return names

    def _entity_result(self, i: int, attrs: list[str], start_ms: int, end_ms: int,
                       interval: int) -> dict:
        series = self.pc.vm_stats(i, start_ms, end_ms, interval) if attrs else {}
        data = []
        for name in attrs:
            if name == "vm_name":
                last = series.get("hypervisor_cpu_usage_ppm") or [(end_ms * 1000, "")]
                values = [{"values": [self.pc.vm_name(i)], "time": last[-1][0]}]
            elif name in series:
                values = _series_json(series[name])
            else:
                values = []  # unknown attribute: real Prism answers no values
            data.append({"name": name, "values": values})
        return {"entity_id": self.pc.vm_uuid(i), "data": data}
