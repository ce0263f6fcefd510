"""The one retry mechanism (connectors/retry.py) every retry loop of the collector runs on."""
import pytest

from connectors.errors import CloudForetError, PrismAuthError, PrismError, is_transient
from connectors.retry import Backoff, RetryPolicy, call_with_retries

POLICY = RetryPolicy(max_attempts=4, initial_backoff_s=0.01, max_backoff_s=0.02, max_total_s=60)


def _failing(errors, result="ok"):
    calls = []

    def attempt():
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result
    return attempt, calls


def test_transient_failures_are_retried_until_the_call_succeeds():
    attempt, calls = _failing([PrismError("busy", 503, transient=True), CloudForetError("x", "UNAVAILABLE", True)])
    waits, told = [], []
    assert call_with_retries(attempt, POLICY, is_transient, sleep=waits.append,
                             on_retry=lambda err, delay: told.append(str(err))) == "ok"
    assert len(calls) == 3 and len(waits) == 2 and told == ["busy", "x"]


def test_a_failure_that_is_not_transient_is_raised_at_once():
    attempt, calls = _failing([PrismAuthError("rejected", 401)])
    with pytest.raises(PrismAuthError, match="rejected"):
        call_with_retries(attempt, POLICY, is_transient, sleep=lambda s: None)
    assert len(calls) == 1


def test_retry_after_is_never_waited_less_than_asked():
    attempt, _ = _failing([PrismError("slow down", 429, transient=True, retry_after=7.5)])
    waits = []
    call_with_retries(attempt, POLICY, is_transient, retry_after=lambda err: err.retry_after, sleep=waits.append)
    assert waits == [7.5]


def test_giving_up_after_the_last_attempt_says_how_many_were_made():
    attempt, calls = _failing([PrismError("busy", 503, transient=True)] * 10)
    with pytest.raises(RuntimeError, match="gave up after 4"):
        call_with_retries(attempt, POLICY, is_transient, sleep=lambda s: None,
                          give_up=lambda err, n: RuntimeError(f"{err} (gave up after {n})"))
    assert len(calls) == 4


def test_the_time_budget_stops_retries_before_the_attempts_are_spent():
    backoff = Backoff(RetryPolicy(max_attempts=10, max_total_s=1.0), sleep=lambda s: None)
    assert not backoff.wait(retry_after=5.0)  # the server asks for more than the budget left
    assert backoff.attempt == 1
