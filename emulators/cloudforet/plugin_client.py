"""Calls from the emulator to a registered data-source plugin, made the way the real servers make them.

The real monitoring and cost-analysis services call a plugin through
spaceone-core's ``SpaceConnector(endpoint=..., token="NO_TOKEN")`` and
``dispatch("DataSource.init", {...})`` (monitoring
``manager/data_source_plugin_manager.py``; cost-analysis 2.0.108
``connector/datasource_plugin_connector.py``). Followed here from
spaceone-core 2.0.144:

- ``pygrpc/client.py`` ``client()``: one client per endpoint per process; the
  channel must be ready within 3 s, else ERROR_GRPC_CONNECTION "Channel is not
  ready."; any failure while building the client (a server without
  reflection answers UNIMPLEMENTED "Method not found!") is
  ERROR_GRPC_CONNECTION with the server's words.
- ``GRPCClient._init_grpc_reflection`` / ``_bind_grpc_stub``: the services
  come from gRPC server reflection and are bound by their SHORT name
  (``DataSource``, ``Metric``, ``Job``, ``Cost``), request and response types
  from the reflected descriptors; a later service with the same short name
  replaces the earlier one.
- ``connector/space_connector.py`` ``_check_method``: a method reflection does
  not list is ERROR_CONNECTOR "Method not supported."; params are dicts
  (``ParseDict``) and answers dicts (``MessageToDict`` with proto field names).
- ``_ClientInterceptor._check_error`` / ``_retry_call``: a plugin's
  ``ERROR_X: message`` keeps its code and gRPC status; other failures are
  ERROR_INTERNAL_API with the plugin's status; UNAVAILABLE is
  ERROR_GRPC_CONNECTION, tried 3 times in all, after which the endpoint's
  client is dropped.
- ``pygrpc/api.py`` ``_error_method``: the calling service answers
  ``{error_code}: {message}`` with the error's status.

Checked by running spaceone-core 2.0.144's own ``pygrpc/client.py`` (in a
protobuf 3.20 environment, as spaceone-core pins) against ``python -m plugin
cost`` and ``monitoring`` (it listed and called DataSource.init, Job.get_tasks
and Cost.get_data) and against the former one-server plugin without
reflection: UNAVAILABLE ``ERROR_GRPC_CONNECTION: Server is unavailable.
(channel = HOST:PORT, message = Method not found!)``, the answer this client gives.

Where a plugin runs comes from the plugin service, as in CloudForet: a data
source keeps ``plugin_info.plugin_id`` (+ version), and every call first asks
``plugin_service.PluginEndpoints`` for its ``grpc://HOST:PORT``.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from .errors import ApiError

MAX_MESSAGE = 256 * 1024 * 1024  # SpaceConnector's max_message_length
_OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]
READY_TIMEOUT_S = 3  # pygrpc client(): channel_ready_future(...).result(timeout=3)
CALL_TIMEOUT_S = 180  # _ClientInterceptor: timeout or 180
MAX_RETRIES = 2  # pygrpc client _MAX_RETRIES


class PluginCallError(ApiError):
    """A spaceone-core error raised by the plugin client, answered as ``{error_code}: {message}``."""

    def __init__(self, code: grpc.StatusCode, error_code: str, message: str) -> None:
        super().__init__(code, f"{error_code}: {message}")
        self.error_code, self.error_message = error_code, message


def grpc_connection_error(endpoint: str, message: str) -> PluginCallError:
    return PluginCallError(grpc.StatusCode.UNAVAILABLE, "ERROR_GRPC_CONNECTION",
                           f"Server is unavailable. (channel = {endpoint}, message = {message})")


def channel_target(endpoint: str) -> str:
    """HOST:PORT of a plugin endpoint as the plugin service answers it (``grpc://HOST:PORT``)."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        return endpoint
    if scheme != "grpc":
        raise grpc_connection_error(endpoint, f"unsupported scheme {scheme!r} (plugins serve plain grpc://)")
    return rest.rstrip("/")


def _check_error(endpoint: str, exc: grpc.RpcError) -> PluginCallError:
    """The spaceone-core error for a failed plugin call (``_ClientInterceptor._check_error``)."""
    code = exc.code() if callable(getattr(exc, "code", None)) else grpc.StatusCode.UNKNOWN
    details = (exc.details() if callable(getattr(exc, "details", None)) else str(exc)) or ""
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PluginCallError(code, "ERROR_PERMISSION_DENIED", "Permission denied.")
    if details.startswith("ERROR_"):
        error_code, _, message = details.partition(":") if ":" in details else (details, "", details)
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return PluginCallError(code, "ERROR_AUTHENTICATE_FAILURE", f"Authenticate failure. (message = {message})")
        return PluginCallError(code, error_code, message)
    if code == grpc.StatusCode.UNAVAILABLE:
        return grpc_connection_error(endpoint, details)
    return PluginCallError(code, "ERROR_INTERNAL_API", details)


def _retryable(err: PluginCallError) -> bool:
    return err.error_code == "ERROR_GRPC_CONNECTION" or err.code == grpc.StatusCode.DEADLINE_EXCEEDED


class PluginConnector:
    """One plugin endpoint's services, found by reflection and bound by short name."""

    def __init__(self, endpoint: str, on_lost: Callable[["PluginConnector"], None] | None = None) -> None:
        # SpaceConnector parses grpc://HOST:PORT and hands pygrpc.client HOST:PORT (its errors name that)
        self.endpoint, self._on_lost = channel_target(endpoint), on_lost
        self._channel = grpc.insecure_channel(self.endpoint, options=_OPTIONS)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=READY_TIMEOUT_S)
        except grpc.FutureTimeoutError:
            self._channel.close()
            raise grpc_connection_error(endpoint, "Channel is not ready.") from None
        try:
            self._methods = self._reflect()
        except Exception as exc:  # noqa: BLE001 - client(): any failure here is ERROR_GRPC_CONNECTION
            self._channel.close()
            details = getattr(exc, "details", None)  # a grpc.RpcError's
            message = details() if callable(details) else str(exc)
            raise grpc_connection_error(endpoint, message) from None

    def _reflect(self) -> dict[str, dict[str, Any]]:
        """short service name -> method name -> (bound call, request class, server-streaming?)."""
        database = ProtoReflectionDescriptorDatabase(self._channel)
        pool = descriptor_pool.DescriptorPool(database)
        bound: dict[str, dict[str, Any]] = {}
        for service in database.get_services():
            desc = pool.FindServiceByName(service)
            methods: dict[str, Any] = {}
            for m in desc.methods:
                request_cls = message_factory.GetMessageClass(m.input_type)
                response_cls = message_factory.GetMessageClass(m.output_type)
                kind = {(False, False): self._channel.unary_unary, (False, True): self._channel.unary_stream,
                        (True, False): self._channel.stream_unary, (True, True): self._channel.stream_stream,
                        }[(m.client_streaming, m.server_streaming)]
                call = kind(f"/{desc.full_name}/{m.name}", request_serializer=request_cls.SerializeToString,
                            response_deserializer=response_cls.FromString)
                methods[m.name] = (call, request_cls, m.server_streaming)
            bound[desc.name] = methods  # by SHORT name: a same-named service replaces the earlier one
        return bound

    @property
    def api_resources(self) -> dict[str, list[str]]:
        return {service: list(methods) for service, methods in self._methods.items()}

    def dispatch(self, method: str, params: dict | None = None) -> dict | Iterator[dict]:
        """``SpaceConnector.dispatch``: a dict for a unary answer, an iterator of dicts for a stream."""
        resource, _, verb = method.partition(".")
        bound = self._methods.get(resource, {}).get(verb)
        if bound is None:
            raise PluginCallError(grpc.StatusCode.INTERNAL, "ERROR_CONNECTOR",
                                  "'SpaceConnector handler' import failed. (reason = Method not supported. "
                                  f"(endpoint = {self.endpoint}, method = {resource}.{verb}))")
        call, request_cls, streaming = bound
        try:  # the interceptor's ParseDict; its error reaches the API layer as ERROR_UNKNOWN
            request = json_format.ParseDict(params or {}, request_cls())
        except json_format.ParseError as exc:
            raise PluginCallError(grpc.StatusCode.INTERNAL, "ERROR_UNKNOWN", str(exc)) from None
        if streaming:
            return self._stream(call, request)
        retries = 0
        while True:
            try:
                return _to_dict(call(request, timeout=CALL_TIMEOUT_S))
            except grpc.RpcError as exc:
                err = _check_error(self.endpoint, exc)
                if not _retryable(err) or retries >= MAX_RETRIES:
                    if _retryable(err) and self._on_lost is not None:
                        self._on_lost(self)  # _retry_call: "Disconnect gRPC Endpoint."
                    raise err from None
                retries += 1

    def _stream(self, call: Any, request: Any) -> Iterator[dict]:
        # The real interceptor checks a stream's errors as it is read (no retry, the client is kept);
        # the emulator also bounds a stream in time.
        try:
            for answer in call(request, timeout=CALL_TIMEOUT_S):
                yield _to_dict(answer)
        except grpc.RpcError as exc:
            raise _check_error(self.endpoint, exc) from None

    def close(self) -> None:
        self._channel.close()


def _to_dict(message: Any) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


class PluginClients:
    """The plugin clients of one emulator (one server process): ``client()``'s ``_GRPC_CHANNEL`` cache."""

    def __init__(self) -> None:
        self._clients: dict[str, PluginConnector] = {}
        self._lock = threading.Lock()

    def connect(self, endpoint: str) -> PluginConnector:
        """The endpoint's client, made (reflection included) on first use; PluginCallError if it cannot be."""
        endpoint = channel_target(endpoint)
        with self._lock:
            client = self._clients.get(endpoint)
            if client is None:
                client = self._clients[endpoint] = PluginConnector(endpoint, on_lost=self._drop)
            return client

    def _drop(self, client: PluginConnector) -> None:
        with self._lock:
            if self._clients.get(client.endpoint) is client:
                del self._clients[client.endpoint]


__all__ = ["PluginCallError", "PluginClients", "PluginConnector", "channel_target"]
