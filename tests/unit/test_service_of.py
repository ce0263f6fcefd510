"""Which CloudForet service a failed call went to: the address its hint tells the operator to set."""
import grpc
import pytest

from connectors.cloudforet import _STUBS, map_rpc_error, service_of


@pytest.mark.parametrize("what, service", [
    ("CloudService.list", "inventory"), ("Collector.create", "inventory"), ("Namespace.create", "inventory"),
    ("Cost.create", "cost_analysis"), ("Plugin.list(plugin-nutanix-inven-collector)", "repository"),
    ("monitoring DataSource.register", "monitoring"), ("cost DataSource.list", "cost_analysis"),
    ("ServiceAccount.create", "identity"), ("Secret.get_data", "secret"), ("Notification.create", "notification"),
])
def test_a_call_is_charged_to_the_service_that_serves_it(what, service):
    assert service_of(what) == service


class _Unimplemented(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNIMPLEMENTED

    def details(self):
        return "Method not found!"


def test_a_data_source_call_at_the_wrong_address_names_its_own_service():
    """DataSource is a name monitoring and cost-analysis share: the hint must not say identity."""
    err = map_rpc_error(_Unimplemented(), "monitoring DataSource.register")
    assert "cloudforet.endpoints.monitoring" in str(err)
    err = map_rpc_error(_Unimplemented(), "cost DataSource.register")
    assert "cloudforet.endpoints.cost_analysis" in str(err)


def test_every_stub_is_opened_on_a_configurable_service():
    services = {"identity", "inventory", "cost_analysis", "monitoring", "notification", "secret", "repository"}
    assert {service for service, _ in _STUBS.values()} <= services
