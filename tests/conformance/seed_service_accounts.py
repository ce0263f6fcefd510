"""Creates service accounts through the real identity, with the stubs of ITS spaceone-api (2.0.350).

Run with the identity virtualenv: ``python seed_service_accounts.py HOST:PORT PROJECT_ID NAME...``
(the token in $SEED_TOKEN). ``CreateServiceAccountRequest`` is the one message the
suite sends whose field numbers differ between spaceone-api 2.0.350 and the
collector's 2.0.435 (project_id is field 22 there, 21 here, where 2.0.350 has
trusted_account_id): sent with the newer stubs, identity 2.0.227 reads the
project as a trusted account and answers ERROR_REQUIRED_PARAMETER project_id.
"""
from __future__ import annotations

import os
import sys

import grpc
from google.protobuf import struct_pb2
from spaceone.api.identity.v2 import service_account_pb2, service_account_pb2_grpc


def main(endpoint: str, project_id: str, names: list[str]) -> None:
    stub = service_account_pb2_grpc.ServiceAccountStub(grpc.insecure_channel(endpoint))
    md = (("token", os.environ["SEED_TOKEN"]),)
    for name in names:
        stub.create(service_account_pb2.CreateServiceAccountRequest(
            name=name, provider="nutanix", data=struct_pb2.Struct(), project_id=project_id), metadata=md, timeout=30)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
