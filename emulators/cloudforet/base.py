"""What every servicer shares: the backend state and the RPC wrapper.

The ``rpc`` decorator does, in this order, for every method: authenticate the
``token`` metadata, check the role table, add the configured latency, run the
handler, and translate ``ApiError`` into a gRPC status. Configured fault
injection (``faults.CloudForetFaults``) runs first and may fail the call
before or after the handler. Handlers therefore
only contain the service logic.
"""
from __future__ import annotations

import functools
import logging
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, TypeVar

import grpc
from google.protobuf.message import Message

from connectors.clock import SYSTEM_CLOCK, Clock

from . import auth, errors, protoconv, query
from .auth import Claims, TokenSigner
from .config import EmulatorConfig
from .errors import ApiError
from .plugin_client import PluginClients
from .store import Store

log = logging.getLogger(__name__)

SIGNING_KEY = "signing_key"

M = TypeVar("M", bound=Message)


@dataclass
class Backend:
    """State shared by all servicers of one emulator instance."""

    store: Store
    config: EmulatorConfig
    signer: TokenSigner
    faults: Any = None  # a faults.CloudForetFaults, set by the server (None: no fault injection)
    calls: Counter = field(default_factory=Counter)  # "Service.verb" -> calls received (tests read it)
    calls_lock: threading.Lock = field(default_factory=threading.Lock)
    plugin_clients: PluginClients = field(default_factory=PluginClients)  # one client per plugin endpoint
    sleep: Callable[[float], None] = time.sleep  # how a call waits out config.latency_ms (tests record it)
    clock: Clock = SYSTEM_CLOCK  # collector jobs' times and collection states' ages (tests step hours)

    @classmethod
    def open(cls, db_path: str, config: EmulatorConfig) -> "Backend":
        store = Store(db_path)
        key = store.meta_get_or_set(SIGNING_KEY, TokenSigner.new_key())
        return cls(store=store, config=config, signer=TokenSigner(key))


def rpc(method: str) -> Callable:
    """Wrap a servicer method ``fn(self, request, claims)`` named ``method`` ("Service.verb")."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(self: Any, request: Message, context: grpc.ServicerContext) -> Message:
            backend: Backend = self.backend
            with backend.calls_lock:
                backend.calls[method] += 1
            try:
                faults = backend.faults
                after = faults.before(method, request, context, backend) if faults is not None else None
                claims: Claims | None = None
                if method not in auth.PUBLIC_METHODS:
                    claims = backend.signer.verify_api_token(_metadata_token(context))
                    auth.check_role(method, claims)
                if backend.config.latency_ms > 0:
                    backend.sleep(backend.config.latency_ms / 1000.0)
                result = fn(self, request, claims)
                if after is not None:
                    after()  # e.g. DEADLINE_EXCEEDED after the write was applied
                return result
            except ApiError as exc:
                context.abort(exc.code, exc.message)
            except Exception:  # noqa: BLE001 - report as INTERNAL, keep serving
                log.exception("%s failed", method)
                context.abort(grpc.StatusCode.INTERNAL, f"ERROR_UNKNOWN: {method} failed inside the emulator")

        return wrapper

    return decorate


def _metadata_token(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "token":
            return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return None


# -- helpers shared by the services ---------------------------------------------

wall_clock: Callable[[], float] = time.time  # epoch seconds the records' times are written with (tests replace it)


def now_iso() -> str:
    """UTC timestamp like CloudForet prints it: 2026-11-28T21:40:00.123Z."""
    now = datetime.fromtimestamp(wall_clock(), timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def to_dict(msg: Message, with_defaults: bool = False) -> dict:
    """Message as a JSON dict; ``with_defaults`` also writes empty scalars (complete records)."""
    return protoconv.message_to_dict(msg, with_defaults)


def to_msg(doc: dict, cls: type[M]) -> M:
    """A response message from a stored document; fields the message lacks are dropped."""
    return protoconv.dict_to_message(doc, cls)


def require(doc: dict, *keys: str) -> None:
    """INVALID_ARGUMENT ERROR_REQUIRED_PARAMETER for the first empty key."""
    for key in keys:
        if not doc.get(key):
            raise errors.required(key)


def request_filters(
    request: Message,
    rename: dict[str, str] | None = None,
    special: dict[str, Callable[[Any], dict | None]] | None = None,
    skip: Iterable[str] = (),
) -> list[dict]:
    """Set top-level request fields (except ``query``) as ``eq`` filter items.

    proto3 has no presence for scalars, so only non-default values count.
    """
    rename = rename or {}
    special = special or {}
    skipped = {"query", *skip}
    items: list[dict] = []
    for key, value in to_dict(request).items():
        if key in skipped:
            continue
        if key in special:
            item = special[key](value)
            if item is not None:
                items.append(item)
            continue
        items.append({"k": rename.get(key, key), "v": value, "o": "eq"})
    return items


def scope_filters(claims: Claims) -> list[dict]:
    """Filters that keep a caller inside its own domain (and workspace for workspace tokens)."""
    items = [{"k": "domain_id", "v": claims.domain_id, "o": "eq"}]
    if claims.scope == auth.SCOPE_WORKSPACE and claims.workspace_id:
        items.append({"k": "workspace_id", "v": claims.workspace_id, "o": "eq"})
    return items


def in_scope(doc: dict, claims: Claims) -> bool:
    return all(query.matches(doc, query.condition(i)) for i in scope_filters(claims))


def query_dict(request: Message) -> dict:
    """The request's ``query`` field as a dict (empty when unset)."""
    return to_dict(request.query) if request.HasField("query") else {}
