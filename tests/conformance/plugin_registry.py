"""Stand-in for CloudForet's repository and plugin services: where the cost plugin is.

The repository and plugin services are not under test and are not run. The
real cost-analysis asks them two things when an EXTERNAL data source is
registered (cost_analysis 2.0.108 ``DataSourceService.register``:
``_check_plugin`` -> repository ``Plugin.get``; ``get_data_source_plugin_endpoint``
-> plugin ``Plugin.get_plugin_endpoint``): this server answers both, naming the
project's cost plugin, through the ``spaceone-api`` stubs, with gRPC
reflection because spaceone-core's SpaceConnector finds services by it (and
binds them by short name: both are ``Plugin``, so each has a port of its own).
Run with the cost-analysis virtualenv:

    python plugin_registry.py --repository-port P --plugin-port Q --plugin-id ID \
        --plugin-endpoint grpc://127.0.0.1:M
"""
from __future__ import annotations

import argparse
from concurrent import futures

import grpc
from grpc_reflection.v1alpha import reflection
from spaceone.api.plugin.v1 import plugin_pb2, plugin_pb2_grpc
from spaceone.api.repository.v1 import plugin_pb2 as repo_pb2
from spaceone.api.repository.v1 import plugin_pb2_grpc as repo_pb2_grpc


class Repository(repo_pb2_grpc.PluginServicer):
    def __init__(self, plugin_id: str):
        self.plugin_id = plugin_id

    def get(self, request, context):
        if request.plugin_id != self.plugin_id:
            context.abort(grpc.StatusCode.NOT_FOUND, f"ERROR_NOT_FOUND: plugin_id = {request.plugin_id}")
        return repo_pb2.PluginInfo(plugin_id=self.plugin_id, name="nutanix-cost",
                                   resource_type="cost_analysis.DataSource", provider="nutanix",
                                   state="ENABLED")


class PluginEndpoints(plugin_pb2_grpc.PluginServicer):
    def __init__(self, plugin_id: str, endpoint: str):
        self.plugin_id, self.endpoint = plugin_id, endpoint

    def get_plugin_endpoint(self, request, context):
        if request.plugin_id != self.plugin_id:
            context.abort(grpc.StatusCode.NOT_FOUND, f"ERROR_NOT_FOUND: plugin_id = {request.plugin_id}")
        return plugin_pb2.PluginEndpoint(endpoint=self.endpoint)


def _serve(port: int, add, servicer, descriptor) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    add(servicer, server)
    reflection.enable_server_reflection(
        [descriptor.DESCRIPTOR.services_by_name["Plugin"].full_name, reflection.SERVICE_NAME], server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repository-port", type=int, required=True)
    parser.add_argument("--plugin-port", type=int, required=True)
    parser.add_argument("--plugin-id", required=True)
    parser.add_argument("--plugin-endpoint", required=True)
    parser.add_argument("--bare-port", type=int, action="append", default=[],
                        help="a server with reflection and no service: for the services (notification) that "
                             "cost-analysis connects to when its managers are made, and that no case calls")
    args = parser.parse_args()
    servers = []  # held: a grpc.Server that is garbage-collected stops serving
    for port in args.bare_port:
        bare = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        reflection.enable_server_reflection([reflection.SERVICE_NAME], bare)
        bare.add_insecure_port(f"127.0.0.1:{port}")
        bare.start()
        servers.append(bare)
    servers.append(_serve(args.repository_port, repo_pb2_grpc.add_PluginServicer_to_server,
                          Repository(args.plugin_id), repo_pb2))
    server = _serve(args.plugin_port, plugin_pb2_grpc.add_PluginServicer_to_server,
                    PluginEndpoints(args.plugin_id, args.plugin_endpoint), plugin_pb2)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
