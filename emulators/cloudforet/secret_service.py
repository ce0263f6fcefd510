"""secret.v1 Secret.get_data over the secrets in the configuration and those identity's
ServiceAccount.create / update_secret_data made (the emulator's secret store).

``get_data`` is the real secret service's internal API: authentication and
authorization are excluded (whoever reaches it reads any secret), so
deployments keep the service inside the cluster. It answers ``{encrypted,
encrypt_options, data}``; a secret listed in ``encrypted_secrets`` is answered
as an encrypting secret service would: ``encrypted`` true, ciphertext in data.
"""
from __future__ import annotations

import base64
import hashlib
import json

from google.protobuf import struct_pb2
from spaceone.api.secret.v1 import secret_pb2, secret_pb2_grpc

from . import errors
from .auth import Claims
from .base import Backend, require, rpc
from .store import SECRETS


def secret_data(backend: Backend, secret_id: str) -> dict | None:
    """A secret's data: one of the configuration's, or one identity's ServiceAccount.create /
    update_secret_data made (the store's ``secrets``); None when there is no such secret."""
    data = backend.config.secrets.get(secret_id)
    if data is None:
        stored = backend.store.get(SECRETS, secret_id)
        data = stored.get("data") if stored else None
    return data


class SecretService(secret_pb2_grpc.SecretServicer):
    """Hands out secret data, unencrypted unless the secret is configured as encrypted."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @rpc("Secret.get_data")
    def get_data(self, request: secret_pb2.GetSecretDataRequest,
                 claims: Claims | None) -> secret_pb2.SecretDataInfo:
        require({"secret_id": request.secret_id, "domain_id": request.domain_id}, "secret_id", "domain_id")
        cfg = self.backend.config
        data = secret_data(self.backend, request.secret_id)
        if data is None or request.domain_id != cfg.domain_id:
            raise errors.not_found("secret_id", request.secret_id)
        if request.secret_id in cfg.encrypted_secrets:
            info = secret_pb2.SecretDataInfo(encrypted=True)
            info.encrypt_options.update({"encrypt_algorithm": "AES256_GCM", "encrypt_type": "AWS_KMS"})
            blob = base64.b64encode(hashlib.sha256(json.dumps(data, sort_keys=True).encode()).digest()).decode()
            info.data.update({"encrypted_data": blob})
            return info
        info = secret_pb2.SecretDataInfo(encrypted=False, encrypt_options=struct_pb2.Struct())
        info.data.update(data)
        return info
