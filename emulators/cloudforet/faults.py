"""Fault injection for the CloudForet emulator (see ``emulators.faultspec`` for the grammar).

``CloudForetEmulator(db, faults=CloudForetFaults("UNAVAILABLE:0.05", seed=1))`` or the
CLI's ``--faults SPEC --fault-seed N``. Rules are checked in the ``rpc`` wrapper of
``base`` before authentication; kinds and what the client sees:

``UNAVAILABLE``              status UNAVAILABLE, handler not run.
``DEADLINE_EXCEEDED``        (optional sleep ``delay`` s, then) DEADLINE_EXCEEDED, handler not run.
``DEADLINE_EXCEEDED_AFTER``  the handler runs and its write is committed, then (optional
                             ``delay``) DEADLINE_EXCEEDED: the classic lost answer.
``RESOURCE_EXHAUSTED``       RESOURCE_EXHAUSTED (``retry_after=S`` adds trailing metadata
                             ``retry-after: S``).
``UNAUTHENTICATED``          token expiry mid-run: when the rule fires, every token issued
                             before that moment (and every token seen so far) counts as
                             expired, and calls carrying one answer UNAUTHENTICATED
                             ``ERROR_AUTHENTICATE_FAILURE: token is expired`` from then on.
                             Tokens issued afterwards work: a user token refreshed with
                             ``Token.grant`` (refresh token) or ``Token.issue``, or an app
                             token re-issued by the operator (``emulator.app_token()``).
                             It is an *event*: ``@after=N`` fires once, on call N+1.
                             Token.issue/grant are never refused by it.
``PERMISSION_DENIED``        PERMISSION_DENIED ``ERROR_PERMISSION_DENIED``.
``INVALID_ARGUMENT``         INVALID_ARGUMENT ``ERROR_INVALID_PARAMETER`` (``key=`` names the
                             key, default ``data``); with ``match=SUBSTR`` only for requests
                             whose text form (``str(request)``, e.g. ``resource_id: "..."``)
                             contains it: one bad record among good ones.
``RESTART``                  the call is served, then a background thread runs
                             ``emulator.restart(down=S)`` (stop, stay down ``down`` s, start on
                             the same port and database; data and tokens survive). An event
                             like UNAUTHENTICATED. ``join()`` waits for pending restarts.

An expired app token cannot be refreshed by the collector itself (CLIENT_SECRET tokens
have no refresh token): it should stop the run with a clear, non-retryable error and
keep its checkpoint, so a re-run with the token the operator re-issued resumes; a
collector configured with user credentials can instead ``Token.issue``/``grant`` again.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import grpc

from ..faultspec import FaultInjector, FaultRule, nonneg_float, pattern_match
from . import auth, errors
from .errors import ApiError

log = logging.getLogger(__name__)

UNAUTHENTICATED = "UNAUTHENTICATED"
RESTART = "RESTART"


def _key(text: str) -> str:
    if not text.replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"{text!r} is not a key name")
    return text


class _Call:
    """One RPC as the rules see it; the text form is built only if a ``match=`` rule asks."""

    __slots__ = ("method", "request", "_text")
    _text: str | None

    def __init__(self, method: str, request: Any) -> None:
        self.method, self.request, self._text = method, request, None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = str(self.request)
        return self._text


class CloudForetFaults(FaultInjector):
    """Rule engine + the gRPC effects; hooked into ``base.rpc``."""

    KINDS = {
        "UNAVAILABLE": {},
        "DEADLINE_EXCEEDED": {"delay": nonneg_float},
        "DEADLINE_EXCEEDED_AFTER": {"delay": nonneg_float},
        "RESOURCE_EXHAUSTED": {"retry_after": nonneg_float},
        UNAUTHENTICATED: {},
        "PERMISSION_DENIED": {},
        "INVALID_ARGUMENT": {"key": _key},
        RESTART: {"down": nonneg_float},
    }
    SELECTORS = frozenset({"method", "match"})
    EVENT_KINDS = frozenset({UNAUTHENTICATED, RESTART})

    def __init__(self, spec: str | None = None, seed: int = 0) -> None:
        self._emulator: Any = None
        self._revoked: set[str] = set()
        self._seen_jtis: set[str] = set()
        self._cutoff: int | None = None
        self._restart_threads: list[threading.Thread] = []
        self.went_down = threading.Event()  # set when an injected restart has stopped the server
        super().__init__(spec, seed)

    def set(self, spec: str, seed: int | None = None) -> "CloudForetFaults":
        super().set(spec, seed)
        self.went_down.clear()
        self._forget_tokens()
        return self

    def clear(self) -> None:
        super().clear()
        self._forget_tokens()

    def _forget_tokens(self) -> None:
        with self._lock:
            self._revoked.clear()
            self._seen_jtis.clear()
            self._cutoff = None

    def attach(self, emulator: Any) -> None:
        """Called by ``CloudForetEmulator.start`` so RESTART can reach the emulator."""
        self._emulator = emulator

    def join(self, timeout: float = 10.0) -> bool:
        """Wait for restarts in progress; True when none is left."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._restart_threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._restart_threads = [t for t in self._restart_threads if t.is_alive()]
            return not self._restart_threads

    def _eligible(self, rule: FaultRule, call: _Call) -> bool:
        if rule.methods:
            if not pattern_match(rule.methods, call.method):
                return False
        elif rule.kind == UNAUTHENTICATED and call.method in auth.PUBLIC_METHODS:
            return False
        return not rule.match or any(m in call.text for m in rule.match)

    # ------------------------------------------------------------ hook
    def before(self, method: str, request: Any, context: grpc.ServicerContext,
               backend: Any) -> Callable[[], None] | None:
        """Raise ``ApiError`` to fail the call now, or return a function to run after the
        handler succeeded (or None)."""
        hit = self.decide(_Call(method, request))
        rule = hit[0] if hit else None
        kind = rule.kind if rule else None
        self._check_token(method, context, backend, fired=kind == UNAUTHENTICATED)
        if rule is None or kind == UNAUTHENTICATED:
            return None
        if kind == "UNAVAILABLE":
            self._count(kind)
            raise ApiError(grpc.StatusCode.UNAVAILABLE, "ERROR_UNAVAILABLE: service is unavailable [injected]")
        if kind == "DEADLINE_EXCEEDED":
            time.sleep(rule.get("delay", 0.0))
            self._count(kind)
            raise ApiError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded [injected, nothing written]")
        if kind == "DEADLINE_EXCEEDED_AFTER":
            def after() -> None:
                time.sleep(rule.get("delay", 0.0))
                self._count(kind)
                raise ApiError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded [injected after the write]")
            return after
        if kind == "RESOURCE_EXHAUSTED":
            if "retry_after" in rule.params:
                context.set_trailing_metadata((("retry-after", f"{rule.params['retry_after']:g}"),))
            self._count(kind)
            raise ApiError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           "ERROR_QUOTA_EXCEEDED: too many requests [injected]")
        if kind == "PERMISSION_DENIED":
            self._count(kind)
            raise ApiError(grpc.StatusCode.PERMISSION_DENIED,
                           f"ERROR_PERMISSION_DENIED: {method} is not allowed [injected]")
        if kind == "INVALID_ARGUMENT":
            self._count(kind)
            raise errors.invalid(rule.get("key", "data"), "rejected by fault injection")
        if kind == RESTART:
            self._start_restart(rule.get("down", 0.2))
            return None
        raise AssertionError(kind)  # pragma: no cover

    # ------------------------------------------------------------ token expiry
    def _check_token(self, method: str, context: grpc.ServicerContext, backend: Any, fired: bool) -> None:
        with self._lock:
            active = fired or self._cutoff is not None or any(r.kind == UNAUTHENTICATED for r in self.rules)
        if not active or method in auth.PUBLIC_METHODS:
            return
        from .base import _metadata_token  # late: base does not import this module

        try:
            claims = backend.signer.verify_api_token(_metadata_token(context))
        except ApiError:
            claims = None  # the normal authentication answers for it
        with self._lock:
            if claims is not None:
                self._seen_jtis.add(claims.jti)
            if fired:
                self._cutoff = int(time.time())
                self._revoked |= self._seen_jtis
            expired = claims is not None and (
                claims.jti in self._revoked
                or (self._cutoff is not None and _issued_at(claims, backend) < self._cutoff))
        if expired:
            self._count(UNAUTHENTICATED)
            raise errors.unauthenticated("token is expired")

    # ------------------------------------------------------------ restart
    def _start_restart(self, down: float) -> None:
        emulator = self._emulator
        if emulator is None:
            log.warning("RESTART fault fired but no emulator is attached")
            return

        def run() -> None:
            time.sleep(0.05)  # let the triggering call answer first
            try:
                emulator.restart(down=down, on_down=self.went_down.set)
            except Exception:  # noqa: BLE001
                log.exception("injected restart failed")

        t = threading.Thread(target=run, name="cloudforet-fault-restart", daemon=True)
        with self._lock:
            if any(other.is_alive() for other in self._restart_threads):
                return  # one restart at a time
            self._restart_threads.append(t)
        self._count(RESTART)
        t.start()


def _issued_at(claims: auth.Claims, backend: Any) -> int:
    """When the emulator issued this token, from ``exp`` and the TTL its type gets (1 s resolution)."""
    ttl = auth.APP_TOKEN_TTL if claims.typ == auth.CLIENT_SECRET else backend.config.access_token_ttl
    return claims.exp - int(ttl)
