"""The run summary never calls an account a success unless its read reached it (stages/summary.py)."""
from __future__ import annotations

from transforms.elements import account_event
from transforms.sinks.reconcile import _CompletenessFn
from transforms.stages.summary import LOST, _SummaryFn


def summarize(events: list[dict], accounts=("pc-a", "pc-b")) -> dict:
    fn = _SummaryFn(tuple(accounts))
    halves = [fn.create_accumulator(), fn.create_accumulator()]
    for i, ev in enumerate(events):  # split across two accumulators: merging keeps what each saw
        fn.add_input(halves[i % 2], {**ev, "type": "status"})
    return fn.extract_output(fn.merge_accumulators(halves))


def read_whole(account: str) -> list[dict]:
    return [account_event(account, "planned", totals={"vm": 2}, requests=3),
            account_event(account, "page_read", kind="cluster", count=1),
            account_event(account, "page_read", kind="host", count=1),
            account_event(account, "page_read", kind="vm", count=2),
            account_event(account, "page_read", kind="vm_stats", count=2)]


def test_accounts_whose_reads_arrived_whole_succeed():
    accounts = summarize(read_whole("pc-a") + read_whole("pc-b"))
    assert {a["status"] for a in accounts.values()} == {"SUCCESS"}
    assert accounts["pc-a"]["read"]["vms"] == 2


def test_an_account_nothing_reached_is_an_error_not_an_empty_success():
    accounts = summarize(read_whole("pc-a"))
    assert accounts["pc-a"]["status"] == "SUCCESS"
    assert accounts["pc-b"]["status"] == "ERROR"
    assert accounts["pc-b"]["error"].startswith(LOST) and "no read status" in accounts["pc-b"]["error"]


def test_an_account_whose_pages_were_partly_lost_is_an_error():
    events = read_whole("pc-a")[:-2] + read_whole("pc-b")  # pc-a's vm page (and its stats) never arrived
    accounts = summarize(events)
    assert accounts["pc-a"]["status"] == "ERROR"
    assert "2 of the 3 planned page requests" in accounts["pc-a"]["error"]
    assert accounts["pc-b"]["status"] == "SUCCESS"


def test_a_failed_account_keeps_its_own_error():
    accounts = summarize([account_event("pc-a", "failed", error="credentials rejected")] + read_whole("pc-b"))
    assert accounts["pc-a"]["error"] == "credentials rejected" and accounts["pc-b"]["status"] == "SUCCESS"


def test_reconciliation_deletes_nothing_when_page_events_were_lost():
    fn = _CompletenessFn()
    whole, partial = fn.create_accumulator(), fn.create_accumulator()
    for ev in read_whole("pc-a"):
        whole = fn.add_input(whole, ev)
    for ev in read_whole("pc-a")[:2]:
        partial = fn.add_input(partial, ev)
    assert fn.extract_output(whole) == (True, "")
    ok, why = fn.extract_output(fn.merge_accumulators([partial, fn.create_accumulator()]))
    assert not ok and "1 of the 3 planned page requests" in why
