"""secret.v1 Secret.get_data over the secrets in the configuration."""
from __future__ import annotations

from google.protobuf import struct_pb2
from spaceone.api.secret.v1 import secret_pb2, secret_pb2_grpc

from . import errors
from .auth import Claims
from .base import Backend, require, rpc


class SecretService(secret_pb2_grpc.SecretServicer):
    """Hands out secret data unencrypted, like a secret service without an encryptor."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @rpc("Secret.get_data")
    def get_data(self, request: secret_pb2.GetSecretDataRequest, claims: Claims) -> secret_pb2.SecretDataInfo:
        require({"secret_id": request.secret_id}, "secret_id")
        cfg = self.backend.config
        data = cfg.secrets.get(request.secret_id)
        if data is None or (request.domain_id and request.domain_id != cfg.domain_id) \
                or claims.domain_id != cfg.domain_id:
            raise errors.not_found("secret_id", request.secret_id)
        info = secret_pb2.SecretDataInfo(encrypted=False, encrypt_options=struct_pb2.Struct())
        info.data.update(data)
        return info
