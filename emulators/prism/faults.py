"""Fault injection for the Prism Central emulator (see ``emulators.faultspec`` for the grammar).

``PrismServer(pc, faults=PrismFaults("503:0.02,reset@calls=4", seed=1))`` or the CLI's
``--faults SPEC --fault-seed N``. What each kind does on the wire:

``429``        429 + ``Retry-After: <retry_after>`` (seconds, default 2) + v3 error envelope.
``500``/``503`` v3 error envelope (``503`` also takes ``retry_after``).
``502``/``504`` empty body, as envoy answers when the upstream is gone / too slow.
``slow``       sleep ``delay`` seconds (default 30) before answering normally.
``reset``      status line, headers (full Content-Length) and ``fraction`` (default 0.5)
               of the body, then close with ``SO_LINGER 0`` (a TCP RST).
``truncated``  a 200 whose JSON body is cut (at ``fraction``, default random in
               [0.1, 0.9]); Content-Length matches the bytes sent.
``malformed``  one entity of a list page (random, seeded) gets a broken shape:
               ``shape=no_uuid|no_metadata|wrong_type|string|null`` (default: random).
``churn``      before serving a vms/list page: delete ``delete`` (default 2) random live
               VMs and add ``add`` (default 2) new ones, so totals and offsets move
               between two pages.
``ratelimit``  v4's other throttling form: HTTP 400 whose ``data.error[]`` has errorGroup
               RATE_LIMIT_EXCEEDED, with ``X-Ratelimit-Remaining: 0``.
On v4 paths (not under ``/api/nutanix/v3``), 429/500/503 carry the v4 error envelope.
``401``        401 with an empty body and ``WWW-Authenticate`` (``401@after=N``: from
               the (N+1)-th request on; ``@calls=`` on given requests).

Default selectors: ``churn`` only counts ``/vms/list`` requests, ``malformed`` only
list endpoints (``path`` containing ``/list``); the others count every request.
``path=`` / ``method=`` narrow that down.
"""
from __future__ import annotations

import json
import random
import socket
import struct
import time
from typing import Any, Callable

from ..faultspec import FaultInjector, FaultRule, fraction, nonneg_float, nonneg_int, one_of, pattern_match
from .server import API_PREFIX, REALM, Response, error_body
from .v4 import v4_error_body

MALFORMED_SHAPES = ("no_uuid", "no_metadata", "wrong_type", "string", "null")

_ERRORS = {500: ("INTERNAL_ERROR", "internal error"),
           503: ("SERVICE_UNAVAILABLE", "service is temporarily unavailable")}


class ResetResponse(Response):
    """A response whose body is cut after ``cut`` bytes by a TCP reset (see ``_Handler._write``)."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str], cut: int) -> None:
        super().__init__(status, body, headers)
        self.cut = cut

    def abort(self, handler: Any) -> None:
        try:
            handler.wfile.write(self.body[:self.cut])
            handler.wfile.flush()
        except OSError:
            pass
        handler.close_connection = True
        conn = handler.connection
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # rfile (a makefile()) holds a reference to the socket: close it so that close()
        # really closes the descriptor (-> RST). wfile writes straight to the socket and
        # stays open, because the handler flushes it after this returns.
        try:
            handler.rfile.close()
        except (OSError, ValueError):
            pass
        try:
            conn.close()
        except OSError:
            pass


class PrismFaults(FaultInjector):
    """Rule engine + the Prism-specific effects; hooked into ``PrismServer._dispatch``."""

    KINDS = {
        "429": {"retry_after": nonneg_float},
        "500": {},
        "502": {},
        "503": {"retry_after": nonneg_float},
        "504": {},
        "slow": {"delay": nonneg_float},
        "reset": {"fraction": fraction},
        "truncated": {"fraction": fraction},
        "malformed": {"shape": one_of(*MALFORMED_SHAPES)},
        "churn": {"delete": nonneg_int, "add": nonneg_int},
        "401": {},
        "ratelimit": {"retry_after": nonneg_float},
    }
    SELECTORS = frozenset({"path", "method"})
    DEFAULT_PATHS = {"churn": ("/vms/list",), "malformed": ("/list",)}

    def __init__(self, spec: str | None = None, seed: int = 0) -> None:
        super().__init__(spec, seed)
        self.last_malformed: dict[str, Any] | None = None
        self.last_churn: dict[str, Any] | None = None

    def _eligible(self, rule: FaultRule, ctx: tuple[str, str]) -> bool:
        method, path = ctx
        paths = rule.paths or self.DEFAULT_PATHS.get(rule.kind, ())
        if paths and not any(p in path for p in paths):
            return False
        return not rule.methods or pattern_match(tuple(m.upper() for m in rule.methods), method.upper())

    # ------------------------------------------------------------ hook
    def before(self, server: Any, method: str, path: str) -> Response | Callable[[Response], Response] | None:
        """Called by ``PrismServer._dispatch`` for every request.

        Returns a ``Response`` to answer instead of serving, a function applied to the
        normal response, or None (serve normally).
        """
        hit = self.decide((method, path))
        if hit is None:
            return None
        rule, rng = hit
        kind = rule.kind
        if kind in ("429", "503", "500"):
            code = int(kind)
            reason, msg = ("TOO_MANY_REQUESTS", "too many requests") if code == 429 else _ERRORS[code]
            headers = {"Content-Type": "application/json"}
            if code in (429, 503) and (code == 429 or "retry_after" in rule.params):
                headers["Retry-After"] = _seconds(rule.get("retry_after", 2))
            self._count(kind)
            if not path.startswith(API_PREFIX):
                return Response(code, v4_error_body(code, msg, f"VMM-{code}", reason), headers)
            return Response(code, error_body(code, msg, reason, "vm"), headers)
        if kind == "ratelimit":
            self._count(kind)
            return Response(400, v4_error_body(400, "Rate limit exceeded, retry later", "PRISM-50429",
                                               "RATE_LIMIT_EXCEEDED"),
                            {"Content-Type": "application/json", "X-Ratelimit-Limit": "30",
                             "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": _seconds(rule.get("retry_after", 1))})
        if kind in ("502", "504"):
            self._count(kind)
            return Response(int(kind), b"", {})
        if kind == "401":
            self._count(kind)
            return Response(401, b"", {"WWW-Authenticate": REALM})
        if kind == "slow":
            self._count(kind)
            time.sleep(rule.get("delay", 30.0))
            return None
        if kind == "churn":
            self._churn(server, rule, rng)
            return None
        if kind == "reset":
            return lambda resp: self._reset(resp, rule)
        if kind == "truncated":
            return lambda resp: self._truncate(resp, rule, rng)
        if kind == "malformed":
            return lambda resp: self._malform(resp, rule, rng, path)
        raise AssertionError(kind)  # pragma: no cover

    # ------------------------------------------------------------ effects
    def _reset(self, resp: Response, rule: FaultRule) -> Response:
        self._count("reset")
        cut = int(len(resp.body) * rule.get("fraction", 0.5))
        return ResetResponse(resp.status, resp.body, resp.headers, cut)

    def _truncate(self, resp: Response, rule: FaultRule, rng: random.Random) -> Response:
        if resp.status != 200 or len(resp.body) < 2:
            return resp
        frac = rule.get("fraction", None) or rng.uniform(0.1, 0.9)
        cut = min(max(1, int(len(resp.body) * frac)), len(resp.body) - 1)
        self._count("truncated")
        return Response(resp.status, resp.body[:cut], resp.headers)

    def _malform(self, resp: Response, rule: FaultRule, rng: random.Random, path: str) -> Response:
        if resp.status != 200:
            return resp
        try:
            doc = json.loads(resp.body)
        except ValueError:
            return resp
        entities = doc.get("entities") if isinstance(doc, dict) else None
        if not entities:
            return resp
        idx = rng.randrange(len(entities))
        shape = rule.get("shape", None) or rng.choice(MALFORMED_SHAPES)
        entity = entities[idx]
        uuid = (entity.get("metadata") or {}).get("uuid")
        if shape == "no_uuid":
            entity.get("metadata", {}).pop("uuid", None)
        elif shape == "no_metadata":
            entity.pop("metadata", None)
        elif shape == "wrong_type":
            entity["status"] = ["not", "an", "object"]
        elif shape == "string":
            entities[idx] = f"malformed entity {uuid}"
        else:
            entities[idx] = None
        with self._lock:
            self.last_malformed = {"path": path, "index": idx, "shape": shape, "uuid": uuid}
        self._count("malformed")
        return Response(resp.status, json.dumps(doc, separators=(",", ":")).encode(), resp.headers)

    def _churn(self, server: Any, rule: FaultRule, rng: random.Random) -> None:
        pc = server.pc
        count = pc.vm_count()
        positions = rng.sample(range(count), min(rule.get("delete", 2), count))
        doomed = [pc.live_indices(p, 1)[0] for p in positions]
        deleted = [pc.vm_uuid(i) for i in doomed]
        pc.delete_vms(doomed)
        added = [pc.vm_uuid(i) for i in pc.add_vms(rule.get("add", 2))]
        with self._lock:
            self.last_churn = {"deleted": deleted, "added": added,
                               "before": count, "after": pc.vm_count()}
        self._count("churn")


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
