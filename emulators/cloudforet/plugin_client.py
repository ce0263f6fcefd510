"""Calls from the emulator to a registered data-source plugin.

The real services deploy a plugin image through the plugin/repository
services and learn its endpoint from them. The emulator cannot deploy
images, so a data source is registered with the plugin's gRPC endpoint in
``plugin_info.options["endpoint"]`` (HOST:PORT): that option is the
emulator's stand-in for plugin deployment and is not passed to the plugin.
"""
from __future__ import annotations

import threading

import grpc

from . import errors
from .errors import ApiError

ENDPOINT_OPTION = "endpoint"
MAX_MESSAGE = 256 * 1024 * 1024
_OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]
PLUGIN_TIMEOUT_S = 120.0

_channels: dict[str, grpc.Channel] = {}
_lock = threading.Lock()


def endpoint_of(options: dict) -> str:
    endpoint = str((options or {}).get(ENDPOINT_OPTION) or "")
    if not endpoint:
        raise errors.invalid("plugin_info.options.endpoint",
                             "the emulator cannot deploy plugins: give the running plugin's HOST:PORT")
    return endpoint


def plugin_options(options: dict) -> dict:
    """The options the plugin sees (the emulator's endpoint stand-in removed)."""
    return {k: v for k, v in (options or {}).items() if k != ENDPOINT_OPTION}


def channel(endpoint: str) -> grpc.Channel:
    with _lock:
        ch = _channels.get(endpoint)
        if ch is None:
            ch = _channels[endpoint] = grpc.insecure_channel(endpoint, options=_OPTIONS)
        return ch


def plugin_error(method: str, exc: grpc.RpcError) -> ApiError:
    """A plugin failure as CloudForet reports it (ERROR_PLUGIN...), keeping the plugin's words."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    detail = exc.details() if hasattr(exc, "details") else str(exc)
    status = grpc.StatusCode.INVALID_ARGUMENT if code == grpc.StatusCode.INVALID_ARGUMENT else \
        grpc.StatusCode.FAILED_PRECONDITION
    return ApiError(status, f"ERROR_PLUGIN_CALL: {method} answered {code.name}: {detail}")
