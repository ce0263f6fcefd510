"""connectors.prism_v4 over real HTTP against the emulator: negotiation, paging, errors,
throttling in both v4 forms, the X-Ratelimit headers, API keys."""
from __future__ import annotations

import pytest

from connectors.errors import PrismAuthError, PrismError
from connectors.prism import PrismCredentials, error_message
from connectors.prism_v4 import PrismV4Client
from connectors.ratelimit import RateLimiter
from connectors.retry import RetryPolicy
from emulators.prism.faults import PrismFaults
from emulators.prism.fleet import FleetSpec, generate_fleet
from emulators.prism.server import PrismServer
from tests.helpers import FakeClock


def client_for(srv: PrismServer, clock: FakeClock, **creds) -> PrismV4Client:
    creds = creds or {"username": "admin", "password": "nutanix/4u"}
    c = PrismV4Client("pc", PrismCredentials(host=srv.host, port=srv.port, scheme="http", **creds),
                      retry=RetryPolicy(max_attempts=4, clock=clock))
    c.limiter = RateLimiter(1000, clock=clock)  # this test's own budget, on the fake clock
    return c


@pytest.fixture
def clock():
    return FakeClock()


def test_negotiates_the_highest_common_version_and_pages(clock):
    pc = generate_fleet(FleetSpec(vms=230, seed=2))[0]
    with PrismServer(pc, v4_version="v4.1") as srv:
        c = client_for(srv, clock)
        assert c.negotiate() == ("v4.1", "server serves v4.1")
        pages = [c.list_v4("vm", p, 100) for p in range(3)]
        assert [len(p.entities) for p in pages] == [100, 100, 30] and pages[0].total == 230
        assert srv.requests["/api/vmm/v4.1/ahv/config/vms"] == 3
        assert len(c.list_all("host")) == 6 and len(c.list_all("category")) == 13
        assert c.list_v4("vm", 3, 100).entities == []  # past the end: no data at all


def test_a_v3_only_prism_central_negotiates_nothing(clock):
    pc = generate_fleet(FleetSpec(vms=2))[0]
    with PrismServer(pc, apis=("v3",)) as srv:
        version, why = client_for(srv, clock).negotiate()
        assert version is None and "404" in why


def test_rejected_credentials_are_raised_not_taken_for_no_v4(clock):
    pc = generate_fleet(FleetSpec(vms=2))[0]
    with PrismServer(pc) as srv:
        with pytest.raises(PrismAuthError, match="credentials rejected"):
            client_for(srv, clock, username="admin", password="wrong").negotiate()


def test_an_invalid_request_is_not_retried_and_says_why(clock):
    pc = generate_fleet(FleetSpec(vms=2))[0]
    with PrismServer(pc) as srv:
        c = client_for(srv, clock)
        with pytest.raises(PrismError, match=r"HTTP 400: \$limit must be an integer") as err:
            c.get("/api/vmm/v4.0/ahv/config/vms", {"$limit": 500})
        assert not err.value.transient and srv.requests["/api/vmm/v4.0/ahv/config/vms"] == 1


@pytest.mark.parametrize("fault", ["ratelimit@calls=1", "429@calls=1@retry_after=3"])
def test_both_throttling_forms_are_retried_after_what_the_server_says(clock, fault):
    pc = generate_fleet(FleetSpec(vms=5))[0]
    with PrismServer(pc, faults=PrismFaults(fault)) as srv:
        c = client_for(srv, clock)
        assert len(c.list_v4("vm", 0, 100).entities) == 5
        assert srv.requests["/api/vmm/v4.0/ahv/config/vms"] == 2
        # ratelimit: X-Ratelimit-Reset 1 and Remaining 0; 429: Retry-After 3
        assert sum(clock.slept) >= (3 if fault.startswith("429") else 1)


def test_a_spent_budget_holds_the_next_request(clock):
    pc = generate_fleet(FleetSpec(vms=5))[0]
    with PrismServer(pc, rate_limit=1) as srv:  # every answer: X-Ratelimit-Remaining 0
        c = client_for(srv, clock)
        c.list_v4("vm", 0, 10)
        assert clock.slept == []
        c.list_v4("vm", 0, 10)  # waits for the budget before it is sent
        assert sum(clock.slept) >= 1.0


def test_the_api_key_alone(clock):
    pc = generate_fleet(FleetSpec(vms=3))[0]
    with PrismServer(pc, api_key="the-key") as srv:
        c = client_for(srv, clock, api_key="the-key")
        assert c.session.auth is None and c.negotiate()[0] == "v4.0"
        assert c.list_v4("vm", 0, 10).total == 3
        assert "the-key" not in repr(c.creds)
        with pytest.raises(PrismAuthError):
            client_for(srv, clock, api_key="not-it").list_v4("vm", 0, 10)


def test_error_messages_of_both_envelopes_are_bounded_and_clean():
    v4 = b'{"data": {"error": [{"message": "bad\\u001b[31m thing", "errorGroup": "RATE_LIMIT_EXCEEDED"}]}}'
    assert error_message(v4) == (": bad [31m thing", "RATE_LIMIT_EXCEEDED")
    assert error_message(b'{"message_list": [{"message": "no"}]}') == (": no", "")
    assert error_message(b"<html>") == ("", "") and error_message(b'{"data": 3}') == ("", "")
    assert len(error_message(b'{"message_list": [{"message": "' + b"x" * 5000 + b'"}]}')[0]) < 310
