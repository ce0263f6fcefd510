"""How the client decides a CloudServiceType, Namespace or Metric definition differs from what CloudForet holds
(connectors/cloudforet.py): as CloudForet holds values, through a protobuf Struct."""
from __future__ import annotations

from connectors.cloudforet import same_as_held, type_changes


def test_values_compare_as_a_struct_holds_them():
    assert same_as_held({"n": 2.0, "xs": [1.0]}, {"n": 2, "xs": [1]})  # Struct numbers are floats
    assert same_as_held(None, {}) and same_as_held("", None) and same_as_held([], None)  # proto3: unset
    assert not same_as_held({"a": {"b": 1}}, {"a": {"b": 2}})
    assert not same_as_held({"a": 1, "b": 2}, {"a": 1})


def test_type_changes_names_what_differs_and_never_a_flag_an_update_cannot_clear():
    held = {"service_code": "AHV", "is_primary": True, "is_major": False, "resource_type": "inventory.CloudService",
            "metadata": {"view": {"search": []}}, "labels": ["Compute"], "tags": {"spaceone:icon": "a"}}
    want = {**held, "group": "Compute", "name": "Instance"}
    assert type_changes(held, want) == []
    assert type_changes(held, {**want, "labels": ["Compute", "Server"], "is_major": True}) == ["is_major", "labels"]
    assert type_changes(held, {**want, "is_primary": False}) == []  # proto3 cannot send False: not a change
    assert type_changes({k: v for k, v in held.items() if k != "tags"}, want) == ["tags"]
