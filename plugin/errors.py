"""Errors a plugin answers with: a gRPC status and a message that says what to fix.

Real CloudForet plugins have no tokens; what they must do is refuse bad
requests clearly and never let a bad file take the server down.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable

import grpc

log = logging.getLogger(__name__)


class PluginError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def invalid(message: str) -> PluginError:
    return PluginError(grpc.StatusCode.INVALID_ARGUMENT, f"ERROR_INVALID_ARGUMENT: {message}")


def internal(message: str) -> PluginError:
    return PluginError(grpc.StatusCode.INTERNAL, f"ERROR_PLUGIN_INTERNAL: {message}")


def unary(method: str) -> Callable:
    """Map PluginError / unexpected exceptions of a unary handler to a gRPC status."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return fn(self, request)
            except PluginError as exc:
                context.abort(exc.code, exc.message)
            except Exception as exc:  # noqa: BLE001 - answer INTERNAL, keep serving
                log.exception("%s failed", method)
                context.abort(grpc.StatusCode.INTERNAL, f"ERROR_PLUGIN_INTERNAL: {method}: {exc}")
        return wrapper

    return decorate


def streaming(method: str) -> Callable:
    """Like ``unary`` for a server-streaming handler (a generator)."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                yield from fn(self, request)
            except PluginError as exc:
                context.abort(exc.code, exc.message)
            except Exception as exc:  # noqa: BLE001
                log.exception("%s failed", method)
                context.abort(grpc.StatusCode.INTERNAL, f"ERROR_PLUGIN_INTERNAL: {method}: {exc}")
        return wrapper

    return decorate
