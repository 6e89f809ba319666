"""fieldsV1 decoding and removal of the fields a manager owns."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from gitops_tasks.diff import managedfields
from gitops_tasks.diff.managedfields import InvalidFieldsV1, PathElement, decode, owned_by

from .helpers import load


def remove(obj: dict[str, Any], trie: dict[str, Any]) -> dict[str, Any]:
    return managedfields.remove_owned(obj, decode(trie))


def test_decode_every_key_kind() -> None:
    fs = decode({"f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}},
                            "f:finalizers": {'v:"example.com/x"': {}}, "f:args": {"i:2": {}}}})
    spec = fs.children[PathElement("f", "spec")]
    item = spec.children[PathElement("f", "ports")].children[
        PathElement("k", '{"port":80,"protocol":"TCP"}')]
    assert item.owned and PathElement("f", "port") in item.children
    assert PathElement("k", '{"port":80,"protocol":"TCP"}').value() == {"port": 80,
                                                                         "protocol": "TCP"}
    assert spec.children[PathElement("f", "args")].children[PathElement("i", "2")].is_leaf


@pytest.mark.parametrize("trie", [[], {"x:y": {}}, {"k:{not json": {}}, {"i:two": {}}])
def test_malformed_fieldsv1(trie: Any) -> None:
    with pytest.raises(InvalidFieldsV1):
        decode(trie)


def test_leaf_removes_the_whole_value_even_a_map() -> None:
    obj = {"spec": {"selector": {"matchLabels": {"a": "b"}}, "replicas": 3}}
    assert remove(obj, {"f:spec": {"f:selector": {}}}) == {"spec": {"replicas": 3}}


def test_list_items_by_key_fields() -> None:
    obj = {"ports": [{"port": 80, "protocol": "TCP", "name": "http"},
                     {"port": 80, "protocol": "UDP", "name": "dns"}]}
    trie: dict[str, Any] = {"f:ports": {'k:{"port":80,"protocol":"UDP"}': {"f:name": {}}}}
    assert remove(obj, trie) == {"ports": [{"port": 80, "protocol": "TCP", "name": "http"},
                                           {"port": 80, "protocol": "UDP"}]}


def test_owned_item_goes_when_nothing_else_is_left_in_it() -> None:
    obj = {"containers": [{"name": "web", "image": "a"}, {"name": "sidecar", "image": "b"}]}
    trie: dict[str, Any] = {
        "f:containers": {'k:{"name":"sidecar"}': {".": {}, "f:name": {}, "f:image": {}}}}
    assert remove(obj, trie) == {"containers": [{"name": "web", "image": "a"}]}


def test_owned_item_stays_when_another_manager_has_fields_in_it() -> None:
    obj = {"containers": [{"name": "web", "image": "a", "args": ["--x"]}]}
    trie: dict[str, Any] = {
        "f:containers": {'k:{"name":"web"}': {".": {}, "f:name": {}, "f:image": {}}}}
    assert remove(obj, trie) == {"containers": [{"args": ["--x"]}]}


def test_dot_on_a_map_does_not_take_the_keys_others_set() -> None:
    # An Update that added one annotation records `.` on the annotations map; ignoring that
    # manager must not hide the annotations Git sets.
    obj = {"metadata": {"annotations": {"mine": "1", "git": "2"}}}
    trie: dict[str, Any] = {"f:metadata": {"f:annotations": {".": {}, "f:mine": {}}}}
    assert remove(obj, trie) == {"metadata": {"annotations": {"git": "2"}}}


def test_set_items_and_indices() -> None:
    obj = {"metadata": {"finalizers": ["a/x", "b/y"]}, "args": ["p", "q", "r"]}
    trie: dict[str, Any] = {"f:metadata": {"f:finalizers": {'v:"b/y"': {}}},
                            "f:args": {"i:0": {}, "i:2": {}, "i:9": {}}}
    assert remove(obj, trie) == {"metadata": {"finalizers": ["a/x"]}, "args": ["q"]}


def test_paths_into_nothing_are_fine() -> None:
    obj = {"spec": {"replicas": 1}}
    trie: dict[str, Any] = {
        "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"x"}': {}}}}},
        "f:status": {}}
    assert remove(obj, trie) == obj


def test_key_values_compare_as_json() -> None:
    obj = {"items": [{"on": 1}, {"on": True}]}
    assert remove(obj, {"f:items": {'k:{"on":true}': {}}}) == {"items": [{"on": 1}]}


def test_owned_by_unions_all_entries_of_the_named_managers_only() -> None:
    live = load("deployment-kubectl-edit.yaml")["live"]
    fs = owned_by(live["metadata"]["managedFields"], ["kube-controller-manager"])
    spec = fs.children[PathElement("f", "spec")]
    assert set(fs.children) == {PathElement("f", "spec"), PathElement("f", "metadata"),
                                PathElement("f", "status")}  # scale + status entries
    assert set(spec.children) == {PathElement("f", "replicas")}
    assert owned_by(live["metadata"]["managedFields"], ["nobody"]).children == {}


def test_union_where_one_entry_owns_a_whole_value() -> None:
    entries = [{"manager": "m", "fieldsV1": {"f:spec": {"f:a": {"f:b": {}}}}},
               {"manager": "m", "fieldsV1": {"f:spec": {"f:a": {}}}},
               {"manager": "m", "fieldsV1": {"f:spec": {"f:a": {"f:c": {}}}}}]
    fs = owned_by(entries, ["m"])
    assert managedfields.remove_owned({"spec": {"a": {"b": 1, "z": 2}, "k": 3}}, fs) == {
        "spec": {"k": 3}}


def test_an_unreadable_entry_is_skipped_not_fatal() -> None:
    entries = [{"manager": "m", "fieldsV1": {"nonsense": {}}},
               {"manager": "m", "fieldsV1": {"f:spec": {"f:a": {}}}}]
    with capture_logs() as logs:
        fs = owned_by(entries, ["m"])
    assert managedfields.remove_owned({"spec": {"a": 1, "b": 2}}, fs) == {"spec": {"b": 2}}
    assert logs[0]["event"] == "skipping unreadable managedFields entry"
