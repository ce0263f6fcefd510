"""API errors carrying the gRPC status and the CloudForet error code text.

Service code raises these; the RPC wrapper in ``base`` turns them into
``context.abort`` so every service reports failures the same way.
"""
from __future__ import annotations

import grpc


class ApiError(Exception):
    """An error answered to the client with ``code`` and ``message``."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def unauthenticated(reason: str) -> ApiError:
    return ApiError(grpc.StatusCode.UNAUTHENTICATED, f"ERROR_AUTHENTICATE_FAILURE: {reason}")


def permission_denied(method: str, roles: tuple[str, ...] | list[str], role_type: str) -> ApiError:
    return ApiError(
        grpc.StatusCode.PERMISSION_DENIED,
        f"ERROR_PERMISSION_DENIED: {method} requires one of {list(roles)} (token role_type = {role_type})",
    )


def required(key: str) -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, f"ERROR_REQUIRED_PARAMETER: key = {key}")


def invalid(key: str, reason: str) -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, f"ERROR_INVALID_PARAMETER: key = {key}, reason = {reason}")


def not_found(key: str, value: str) -> ApiError:
    return ApiError(grpc.StatusCode.NOT_FOUND, f"ERROR_NOT_FOUND: key = {key}, value = {value}")


def already_exists(key: str, value: str) -> ApiError:
    return ApiError(grpc.StatusCode.ALREADY_EXISTS, f"ERROR_SAVE_UNIQUE_VALUES: keys = {key}, value = {value}")
