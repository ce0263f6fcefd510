"""Starts a real CloudForet service with spaceone-core's own command, in memory.

Run with the service's own virtualenv (tests/conformance/venvs.py):

    python launcher.py PACKAGE -p PORT -c CONF.yaml

Only the storage is replaced, nothing of the service: mongoengine's
connections are registered with mongomock's ``MongoClient`` (MongoDB in
memory) and spaceone-core's ``RedisCache`` is given a fakeredis connection
(Redis in memory); then spaceone-core's CLI (``spaceone run grpc-server``)
runs the service, with the authentication and authorization handlers that
CONF names. For identity, the system token that the real ``System.init``
answers is also set as identity's own ``TOKEN`` (a deployment writes it into
identity's config and restarts it; an in-memory database would not survive
the restart).
"""
from __future__ import annotations

import functools
import sys


def patch_storage() -> None:
    import fakeredis
    import mongomock
    from spaceone.core.cache import redis_cache
    from spaceone.core.model import mongo_model

    # spaceone.core.model.mongo_model.MongoModel.connect calls register_connection(alias, **db_conf)
    mongo_model.register_connection = functools.partial(mongo_model.register_connection,
                                                        mongo_client_class=mongomock.MongoClient)
    server = fakeredis.FakeServer()  # one Redis for every cache alias of the process
    redis_cache.RedisCache._get_connection = lambda self, pool: fakeredis.FakeRedis(server=server)


def keep_system_token() -> None:
    """identity authenticates the calls it gets by asking itself for the domain's key with ``TOKEN``."""
    from spaceone.core import config
    from spaceone.identity.service.system_service import SystemService

    init = SystemService.init

    @functools.wraps(init)
    def init_and_keep_token(self, params):
        response = init(self, params)
        token = response.get("system_token") if isinstance(response, dict) else response.system_token
        config.set_global(TOKEN=token)
        return response

    SystemService.init = init_and_keep_token


def main(argv: list[str]) -> None:
    package = argv[0]
    patch_storage()
    if package == "spaceone.identity":
        keep_system_token()
    from spaceone.core.command import cli
    cli(["run", "grpc-server", *argv], prog_name="spaceone")


if __name__ == "__main__":
    main(sys.argv[1:])
