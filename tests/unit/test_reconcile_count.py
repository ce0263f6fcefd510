"""Reconcile's count shortcut (transforms/sinks/reconcile.py settled_by_count) is exact."""
from transforms.sinks.reconcile import MALFORMED, settled_by_count


def inventory(account: str, **counts) -> dict:
    return {"sink": "inventory", "account": account, "created": 0, "updated": 0, "unchanged": 0, "failed": 0,
            **counts}


def test_as_many_stored_as_distinct_resources_seen_and_written_settles():
    assert settled_by_count(2, {"vm-a", "vm-b"}, [inventory("pc", unchanged=2)], "pc")


def test_a_vm_written_twice_does_not_hide_a_stale_cloud_service():
    # stored: vm-a, vm-b, stale vm-c; written: vm-a twice and vm-b
    assert not settled_by_count(3, {"vm-a", "vm-b"}, [inventory("pc", unchanged=3)], "pc")


def test_a_resource_seen_but_not_written_lists_and_compares():
    # stored: vm-a and stale vm-c; seen: vm-a and vm-b, whose write failed
    assert not settled_by_count(2, {"vm-a", "vm-b"}, [inventory("pc", unchanged=1, failed=1)], "pc")
    # stored: vm-a and stale vm-c; seen: vm-a and vm-b, which could not be normalized
    assert not settled_by_count(2, {"vm-a", "vm-b"}, [inventory("pc", unchanged=1), {"sink": MALFORMED,
                                                                                   "account": "pc"}], "pc")


def test_other_accounts_writes_do_not_count():
    assert settled_by_count(1, {"vm-a"}, [inventory("pc", unchanged=1), inventory("other", failed=4),
                                          {"sink": MALFORMED, "account": "other"}], "pc")
