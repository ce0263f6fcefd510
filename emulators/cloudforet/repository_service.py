"""repository.v1 Plugin: register / get / list / get_versions / deregister, as the real repository does.

Followed from cloudforet-io/repository (late 2025):
- ``service/plugin_service.py`` ``PluginService.register`` (role_types
  DOMAIN_ADMIN; required name, resource_type, image): ``plugin_id`` defaults to
  the image's last path segment (``_get_image_name``); ``_check_image``: that
  name at most ``MAX_IMAGE_NAME_LENGTH = 48`` characters
  (ERROR_INVALID_IMAGE_LENGTH) of ``[a-zA-Z0-9-]`` (ERROR_INVALID_IMAGE_NAME_FORMAT,
  with the real regex's leniency: one trailing other character passes);
  ``_check_registry_type``: the registry type needs a url in the REGISTRY_INFO
  global (ERROR_REGISTRY_SETTINGS); only the LOCAL repository is written.
- ``manager/plugin_manager/local_plugin_manager.py`` ``create_plugin``: the
  plugin is saved (``plugin_id`` unique with domain_id, model/plugin_model.py),
  then the registry is asked for the image's tags; none is
  ERROR_NO_IMAGE_IN_REGISTRY and the save is rolled back.
- ``info/plugin_info.py`` ``PluginInfo``: ``registry_config`` and
  ``registry_url`` answered are the REGISTRY_INFO global's for the plugin's
  registry type (a private registry's url and image_pull_secrets are the
  repository's settings, not the caller's), plus ``repository_info``.
- update changes only the model's ``updatable_fields`` (name, capability, labels, tags, docs).
- get / get_versions / list: DOMAIN_ADMIN, WORKSPACE_OWNER, WORKSPACE_MEMBER
  (and USER for get and list); an unknown plugin is ERROR_NO_PLUGIN
  (INVALID_ARGUMENT); get_versions lists the registry's tags.
"""
from __future__ import annotations

import re

import grpc
from google.protobuf import empty_pb2
from spaceone.api.repository.v1 import plugin_pb2, plugin_pb2_grpc

from . import errors, plugin_registry, query
from .auth import Claims
from .base import Backend, now_iso, query_dict, request_filters, require, rpc, to_dict, to_msg
from .errors import ApiError
from .plugin_store import REPO_PLUGINS
from .store import DuplicateKey

MAX_IMAGE_NAME_LENGTH = 48
LOCAL_REPOSITORY = {"repository_id": "repo-local", "name": "Private", "repository_type": "LOCAL"}


def no_plugin(plugin_id: str) -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT,
                    f"ERROR_NO_PLUGIN: Plugin does not exists. (plugin_id = {plugin_id})")


def image_name(image: str) -> str:
    return image.rsplit("/", 1)[-1]


def check_image(image: str) -> None:
    """PluginService._check_image, its regex included."""
    name = image_name(image)
    if len(name) > MAX_IMAGE_NAME_LENGTH:
        raise ApiError(grpc.StatusCode.INVALID_ARGUMENT,
                       f"ERROR_INVALID_IMAGE_LENGTH: The length of image should be less than equal "
                       f"{MAX_IMAGE_NAME_LENGTH} in {name}")
    m = re.search(r"(?![a-zA-Z0-9\-]).*", name)
    if m is None or len(m.group()) > 1:
        raise ApiError(grpc.StatusCode.INVALID_ARGUMENT,
                       f"ERROR_INVALID_IMAGE_NAME_FORMAT: Image name format is [a-zA-Z0-9\\-]+ in {name}")


class PluginRepository:
    """The LOCAL repository's plugins (what repository.v1 Plugin serves and the plugin service reads)."""

    def __init__(self, backend: Backend) -> None:
        self.backend, self.store = backend, backend.store

    def _key(self, plugin_id: str, domain_id: str) -> str:
        return f"{domain_id}/{plugin_id}"

    def registry_info(self, registry_type: str) -> dict:
        return dict(self.backend.config.registries.get(registry_type) or {})

    def register(self, doc: dict, domain_id: str) -> dict:
        require(doc, "name", "resource_type", "image")
        registry_type = doc.get("registry_type") or "DOCKER_HUB"
        if registry_type == "NONE_REGISTRY_TYPE":
            registry_type = "DOCKER_HUB"
        image = str(doc["image"])
        plugin_id = str(doc.get("plugin_id") or image_name(image))
        check_image(image)
        if not str(self.registry_info(registry_type).get("url") or "").strip():
            raise ApiError(grpc.StatusCode.INTERNAL, "ERROR_REGISTRY_SETTINGS: Registry settings are not ready. "
                                                     f"(registry_type = {registry_type})")
        now = now_iso()
        plugin = {
            "plugin_id": plugin_id, "name": doc["name"], "state": "ENABLED", "image": image,
            "registry_type": registry_type, "registry_config": doc.get("registry_config", {}),
            "resource_type": doc["resource_type"], "provider": doc.get("provider") or None,
            "capability": doc.get("capability", {}), "labels": list(doc.get("labels", [])),
            "tags": doc.get("tags", {}), "docs": doc.get("docs", {}), "domain_id": domain_id,
            "repository_id": LOCAL_REPOSITORY["repository_id"], "created_at": now, "updated_at": now,
        }
        if not plugin_registry.tags(self.backend.config, image):  # checked before saving: same outcome
            raise ApiError(grpc.StatusCode.INTERNAL, "ERROR_NO_IMAGE_IN_REGISTRY: Image does not found. "
                                                     f"(registry_type = {registry_type}, image = {image})")
        try:
            self.store.insert(REPO_PLUGINS, self._key(plugin_id, domain_id), plugin, "ENABLED")
        except DuplicateKey:
            raise errors.already_exists("plugin_id, domain_id", plugin_id) from None
        return plugin

    def get(self, plugin_id: str, domain_id: str) -> dict:
        require({"plugin_id": plugin_id}, "plugin_id")
        plugin = self.store.get(REPO_PLUGINS, self._key(plugin_id, domain_id))
        if plugin is None:
            raise no_plugin(plugin_id)
        return plugin

    def versions(self, plugin_id: str, domain_id: str) -> list[str]:
        return plugin_registry.tags(self.backend.config, self.get(plugin_id, domain_id)["image"])

    def update(self, doc: dict, domain_id: str) -> dict:
        """LocalPluginManager.update_plugin: only the model's updatable fields change (name, capability,
        labels, tags, docs); the image, registry and resource type stay."""
        plugin = self.get(str(doc.get("plugin_id") or ""), domain_id)
        for key in ("name", "capability", "labels", "tags", "docs"):
            if key in doc:
                plugin[key] = list(doc[key]) if key == "labels" else doc[key]
        plugin["updated_at"] = now_iso()
        self.store.replace(REPO_PLUGINS, self._key(plugin["plugin_id"], domain_id), plugin, plugin["state"])
        return plugin

    def deregister(self, plugin_id: str, domain_id: str) -> None:
        self.get(plugin_id, domain_id)
        self.store.delete(REPO_PLUGINS, self._key(plugin_id, domain_id))

    def answer(self, plugin: dict) -> plugin_pb2.PluginInfo:
        """info/plugin_info.py PluginInfo: the registry's settings as the repository has them."""
        registry = self.registry_info(plugin["registry_type"])
        return to_msg({**plugin, "registry_config": registry, "registry_url": registry.get("url", ""),
                       "repository_info": LOCAL_REPOSITORY, "provider": plugin.get("provider") or ""},
                      plugin_pb2.PluginInfo)


class RepositoryPluginService(plugin_pb2_grpc.PluginServicer):
    def __init__(self, backend: Backend, repository: PluginRepository) -> None:
        self.backend, self.repository = backend, repository

    @rpc("repository.Plugin.register")
    def register(self, request: plugin_pb2.RegisterPluginRequest, claims: Claims) -> plugin_pb2.PluginInfo:
        return self.repository.answer(self.repository.register(to_dict(request), claims.domain_id))

    @rpc("repository.Plugin.update")
    def update(self, request: plugin_pb2.UpdatePluginRequest, claims: Claims) -> plugin_pb2.PluginInfo:
        return self.repository.answer(self.repository.update(to_dict(request), claims.domain_id))

    @rpc("repository.Plugin.get")
    def get(self, request: plugin_pb2.RepositoryPluginRequest, claims: Claims) -> plugin_pb2.PluginInfo:
        return self.repository.answer(self.repository.get(request.plugin_id, claims.domain_id))

    @rpc("repository.Plugin.get_versions")
    def get_versions(self, request: plugin_pb2.RepositoryPluginRequest, claims: Claims) -> plugin_pb2.VersionsInfo:
        versions = self.repository.versions(request.plugin_id, claims.domain_id)
        return plugin_pb2.VersionsInfo(results=versions, total_count=len(versions))

    @rpc("repository.Plugin.list")
    def list(self, request: plugin_pb2.PluginQuery, claims: Claims) -> plugin_pb2.PluginsInfo:
        spec = query.parse(query_dict(request), [{"k": "domain_id", "v": claims.domain_id, "o": "eq"},
                                                 *request_filters(request, skip=("repository_id",))])
        results, total = query.run(self.backend.store.scan(REPO_PLUGINS), spec, "plugin_id")
        return plugin_pb2.PluginsInfo(results=[self.repository.answer(p) for p in results], total_count=total)

    @rpc("repository.Plugin.deregister")
    def deregister(self, request: plugin_pb2.PluginRequest, claims: Claims) -> empty_pb2.Empty:
        self.repository.deregister(request.plugin_id, claims.domain_id)
        return empty_pb2.Empty()
