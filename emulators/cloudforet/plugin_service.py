"""plugin.v1 Plugin.get_plugin_endpoint: where a registered plugin runs, as the real plugin service answers.

Followed from cloudforet-io/plugin ``service/plugin_service.py``
(``get_plugin_endpoint``, excluded from authentication and authorization:
the services call it with their system token):
- ``upgrade_mode`` MANUAL (the proto's default) needs ``version``
  (ERROR_REQUIRED_PARAMETER key = version); AUTO takes the newest of the
  repository's ``Plugin.get_versions`` (``_get_plugin_version``: an unknown plugin is
  the repository's ERROR_NO_PLUGIN, one without versions ERROR_PLUGIN_IMAGE_NOT_FOUND);
- ``_check_plugin``: the plugin must be in the repository (ERROR_PLUGIN_NOT_FOUND)
  and the version one of its tags (ERROR_INVALID_PLUGIN_VERSION);
- a supervisor runs it (here: ``plugin_registry.running_endpoint``; none is
  ERROR_NO_POSSIBLE_SUPERVISOR) and ``_select_endpoint`` answers
  ``{endpoint, updated_version}`` with the version it resolved.

Monitoring, cost-analysis and inventory call it before every plugin call
(their ``manager/plugin_manager.py`` ``get_plugin_endpoint``, with
``upgrade_mode`` defaulting to AUTO) and store ``updated_version`` as the
data source's version. The emulator's own services call ``PluginEndpoints``
in-process, with the same rules.
"""
from __future__ import annotations

import grpc
from spaceone.api.plugin.v1 import plugin_pb2, plugin_pb2_grpc

from . import errors, plugin_registry
from .auth import Claims
from .base import Backend, rpc
from .errors import ApiError
from .repository_service import PluginRepository


class PluginEndpoints:
    """plugin_id (+ version, upgrade mode) -> the endpoint of the process serving it."""

    def __init__(self, backend: Backend, repository: PluginRepository) -> None:
        self.backend, self.repository = backend, repository

    def lookup(self, plugin_id: str, version: str | None, upgrade_mode: str | None, domain_id: str
               ) -> tuple[str, str]:
        """(endpoint ``grpc://HOST:PORT``, version it runs); ApiError as the plugin service answers."""
        if not plugin_id:
            raise errors.required("plugin_id")
        if not domain_id:
            raise errors.required("domain_id")
        mode = upgrade_mode or "MANUAL"
        if mode == "MANUAL" and not version:
            raise errors.required("version")
        if mode == "AUTO":  # _get_plugin_version: the repository's get_versions, its error the answer
            tags = self.repository.versions(plugin_id, domain_id)
            if not tags and not version:
                raise ApiError(grpc.StatusCode.INTERNAL, "ERROR_PLUGIN_IMAGE_NOT_FOUND: Plugin image does not "
                                                         f"exist. (plugin_id = {plugin_id})")
            version = tags[0] if tags else version
        try:
            plugin = self.repository.get(plugin_id, domain_id)
        except ApiError:
            plugin = None
        if plugin is None:  # _check_plugin
            raise ApiError(grpc.StatusCode.INTERNAL,
                           f"ERROR_PLUGIN_NOT_FOUND: Plugin does not exist. (plugin_id = {plugin_id})")
        if version not in plugin_registry.tags(self.backend.config, plugin["image"]):
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"ERROR_INVALID_PLUGIN_VERSION: version:{version} of {plugin_id} does not exist")
        endpoint = plugin_registry.running_endpoint(self.backend.config, plugin["image"])
        if endpoint is None:
            params = {"plugin_id": plugin_id, "version": version, "domain_id": domain_id}
            raise ApiError(grpc.StatusCode.INTERNAL,
                           f"ERROR_NO_POSSIBLE_SUPERVISOR: There is no supervisor to run plugin. params: {params}")
        return endpoint, str(version)

    def for_plugin_info(self, plugin_info: dict, domain_id: str) -> tuple[str, str]:
        """As the services ask (their PluginManager.get_plugin_endpoint): upgrade_mode AUTO unless given."""
        return self.lookup(str(plugin_info.get("plugin_id") or ""), plugin_info.get("version") or None,
                           plugin_info.get("upgrade_mode") or "AUTO", domain_id)


class PluginEndpointService(plugin_pb2_grpc.PluginServicer):
    def __init__(self, backend: Backend, endpoints: PluginEndpoints) -> None:
        self.backend, self.endpoints = backend, endpoints

    @rpc("plugin.Plugin.get_plugin_endpoint")
    def get_plugin_endpoint(self, request: plugin_pb2.PluginEndpointRequest, claims: Claims | None
                            ) -> plugin_pb2.PluginEndpoint:
        mode = plugin_pb2.PluginEndpointRequest.UpgradeMode.Name(request.upgrade_mode)  # MANUAL = 0
        endpoint, version = self.endpoints.lookup(request.plugin_id, request.version or None, mode,
                                                  request.domain_id)
        return plugin_pb2.PluginEndpoint(endpoint=endpoint, updated_version=version)
