"""Tests for kubesim.fieldmanager: server-side apply and managed-fields tracking.

Plain dicts, no server. Expectations follow structured-merge-diff and kube-apiserver (e.g. the
managedFields a real server shows for `kubectl apply --server-side` and `kubectl edit`).
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from kubesim.fieldmanager import (
    ApplyConflict,
    Conflict,
    apply,
    compare,
    decode_fields,
    encode_fields,
    field_set,
    managed_fields_equal,
    path_string,
    update,
)

T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-01T10:01:00Z"
T2 = "2024-05-01T10:02:00Z"
T3 = "2024-05-01T10:03:00Z"
APPS = "apps/v1"

CONTAINERS = ("f:spec", "f:template", "f:spec", "f:containers")
APP = 'k:{"name":"app"}'
SIDECAR = 'k:{"name":"sidecar"}'


def deployment(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": APPS,
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": spec,
    }


def two_containers(replicas: int = 2) -> dict[str, Any]:
    return deployment(
        replicas=replicas,
        selector={"matchLabels": {"app": "web"}},
        template={
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "nginx:1.25",
                        "ports": [{"containerPort": 80}],
                        "env": [{"name": "MODE", "value": "prod"}],
                    },
                    {"name": "sidecar", "image": "envoy:1.30"},
                ]
            },
        },
    )


def stored(obj: dict[str, Any]) -> dict[str, Any]:
    """What the server would store after a create: system metadata filled in."""
    out = copy.deepcopy(obj)
    out["metadata"].update(
        uid="0b7c", resourceVersion="7", generation=1, creationTimestamp="2024-05-01T09:00:00Z"
    )
    return out


def entry(obj: dict[str, Any], manager: str, operation: str = "Apply") -> dict[str, Any]:
    for e in obj["metadata"].get("managedFields", []):
        if e.get("manager") == manager and e["operation"] == operation:
            return e  # type: ignore[no-any-return]
    raise KeyError(manager)


def owned(obj: dict[str, Any], manager: str, operation: str = "Apply") -> set[tuple[str, ...]]:
    return decode_fields(entry(obj, manager, operation)["fieldsV1"])


def managers(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["manager"], e["operation"]) for e in obj["metadata"].get("managedFields", [])]


def do_apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str,
    now: str = T0,
    force: bool = False,
    builtin: bool = True,
) -> dict[str, Any]:
    return apply(
        live,
        config,
        manager=manager,
        force=force,
        builtin=builtin,
        api_version=config.get("apiVersion", APPS),
        now=now,
    )


# ---------------------------------------------------------------------------------------------
# Field sets and the fieldsV1 encoding


def test_field_set_of_a_deployment_with_two_containers() -> None:
    fs = field_set(two_containers(), builtin=True)
    assert ("f:spec", "f:replicas") in fs
    # LabelSelector is atomic: one leaf.
    assert ("f:spec", "f:selector") in fs
    assert ("f:spec", "f:selector", "f:matchLabels") not in fs
    # Labels are granular, the map itself is not a member.
    assert ("f:spec", "f:template", "f:metadata", "f:labels", "f:app") in fs
    assert ("f:spec", "f:template", "f:metadata", "f:labels") not in fs
    # Containers keyed by name: the item is a member and so are its fields.
    assert (*CONTAINERS, APP) in fs
    assert (*CONTAINERS, APP, "f:image") in fs
    assert (*CONTAINERS, SIDECAR, "f:image") in fs
    # Container ports keyed by (containerPort, protocol), protocol defaulted to TCP.
    port = 'k:{"containerPort":80,"protocol":"TCP"}'
    assert (*CONTAINERS, APP, "f:ports", port) in fs
    assert (*CONTAINERS, APP, "f:ports", port, "f:containerPort") in fs
    assert (*CONTAINERS, APP, "f:env", 'k:{"name":"MODE"}', "f:value") in fs
    # Intermediate structs are not members.
    assert ("f:spec",) not in fs
    assert CONTAINERS not in fs


def test_fields_v1_encoding_matches_kubernetes() -> None:
    fs = field_set(two_containers(), builtin=True)
    trie = encode_fields(fs)
    containers = trie["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert list(containers) == [APP, SIDECAR]
    assert containers[SIDECAR] == {".": {}, "f:image": {}, "f:name": {}}
    ports = containers[APP]["f:ports"]
    assert ports == {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}
    assert trie["f:spec"]["f:replicas"] == {}
    assert "." not in trie["f:spec"]
    # "." always comes first, then field names sorted.
    assert list(containers[APP]) == [".", "f:env", "f:image", "f:name", "f:ports"]


def test_fields_v1_round_trip() -> None:
    fs = field_set(two_containers(), builtin=True)
    # A member that also has owned children (".") survives the round trip.
    fs.add(("f:metadata", "f:labels"))
    fs.add(("f:metadata", "f:labels", "f:team"))
    trie = encode_fields(fs)
    assert trie["f:metadata"]["f:labels"] == {".": {}, "f:team": {}}
    assert decode_fields(trie) == fs
    assert encode_fields(decode_fields(trie)) == trie


def test_decode_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        decode_fields({"spec": {}})
    with pytest.raises(ValueError):
        decode_fields({"f:spec": []})


def test_path_string() -> None:
    assert path_string(("f:spec", "f:replicas")) == ".spec.replicas"
    assert path_string((*CONTAINERS, APP, "f:image")) == (
        '.spec.template.spec.containers[name="app"].image'
    )
    port = 'k:{"containerPort":80,"protocol":"TCP"}'
    assert path_string((*CONTAINERS, APP, "f:ports", port)) == (
        '.spec.template.spec.containers[name="app"].ports[containerPort=80,protocol="TCP"]'
    )
    assert path_string(("f:metadata", "f:finalizers", 'v:"x"')) == '.metadata.finalizers[="x"]'


def test_custom_resource_lists_are_atomic() -> None:
    cr = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "finalizers": ["a"]},
        "spec": {"containers": [{"name": "x"}], "items": [1, 2]},
    }
    fs = field_set(cr, builtin=False)
    assert ("f:spec", "f:containers") in fs
    assert ("f:spec", "f:items") in fs
    assert not any(len(p) > 2 and p[1] == "f:containers" for p in fs)
    # metadata lists keep their semantics for every kind
    assert ("f:metadata", "f:finalizers", 'v:"a"') in fs


def test_config_with_duplicate_or_keyless_items_is_rejected() -> None:
    dup = deployment(template={"spec": {"containers": [{"name": "a"}, {"name": "a"}]}})
    with pytest.raises(ValueError, match="duplicate entries"):
        do_apply(None, dup, "A")
    keyless = deployment(template={"spec": {"containers": [{"image": "x"}]}})
    with pytest.raises(ValueError, match="omits key field"):
        do_apply(None, keyless, "A")


def test_config_with_managed_fields_is_rejected() -> None:
    config = deployment(replicas=1)
    config["metadata"]["managedFields"] = []
    with pytest.raises(ValueError, match="managedFields"):
        do_apply(None, config, "A")


# ---------------------------------------------------------------------------------------------
# Apply


def test_create_by_apply() -> None:
    config = two_containers()
    obj = do_apply(None, config, "A")
    assert obj["spec"] == config["spec"]
    assert obj is not config and obj["spec"] is not config["spec"]
    [e] = obj["metadata"]["managedFields"]
    assert e == {
        "manager": "A",
        "operation": "Apply",
        "apiVersion": APPS,
        "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": encode_fields(
            field_set(config, builtin=True)
            - {("f:apiVersion",), ("f:kind",), ("f:metadata", "f:name")}
            - {("f:metadata", "f:namespace")}
        ),
    }
    # Ignored fields are never owned.
    assert "f:apiVersion" not in e["fieldsV1"]
    assert "f:metadata" not in e["fieldsV1"]


def test_inputs_are_not_mutated() -> None:
    live = stored(do_apply(None, two_containers(), "A"))
    config = two_containers(replicas=5)
    config["spec"]["template"]["spec"]["containers"].pop()
    live_before, config_before = copy.deepcopy(live), copy.deepcopy(config)
    out = do_apply(live, config, "A", now=T1)
    assert live == live_before and config == config_before
    out["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    assert live == live_before and config == config_before


def test_identical_reapply_changes_nothing() -> None:
    live = stored(do_apply(None, two_containers(), "A"))
    again = do_apply(live, two_containers(), "A", now=T1)
    assert again == live
    assert again["metadata"]["managedFields"] == live["metadata"]["managedFields"]
    assert entry(again, "A")["time"] == T0


def test_reapply_with_a_change_moves_time() -> None:
    live = stored(do_apply(None, two_containers(), "A"))
    out = do_apply(live, two_containers(replicas=3), "A", now=T1)
    assert out["spec"]["replicas"] == 3
    assert entry(out, "A")["time"] == T1


def test_conflict_then_force() -> None:
    live = stored(do_apply(None, two_containers(replicas=2), "A"))
    b_config = deployment(replicas=3)
    with pytest.raises(ApplyConflict) as info:
        do_apply(live, b_config, "B", now=T1)
    assert info.value.conflicts == [Conflict("A", ".spec.replicas")]
    assert info.value.conflicts[0].message == 'conflict with "A"'
    assert str(info.value) == 'Apply failed with 1 conflict: conflict with "A": .spec.replicas'

    forced = do_apply(live, b_config, "B", now=T1, force=True)
    assert forced["spec"]["replicas"] == 3
    assert ("f:spec", "f:replicas") in owned(forced, "B")
    assert ("f:spec", "f:replicas") not in owned(forced, "A")
    assert "f:replicas" not in entry(forced, "A")["fieldsV1"]["f:spec"]
    # A keeps the rest and its time: its set changed only because B took a field.
    assert (*CONTAINERS, APP, "f:image") in owned(forced, "A")
    assert entry(forced, "A")["time"] == T0
    # The rest of the object is untouched.
    assert forced["spec"]["template"] == live["spec"]["template"]


def test_conflicts_list_every_field_and_manager() -> None:
    live = stored(do_apply(None, two_containers(), "A"))
    config = deployment(
        replicas=9,
        template={"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}},
    )
    with pytest.raises(ApplyConflict) as info:
        do_apply(live, config, "B", now=T1)
    assert info.value.conflicts == [
        Conflict("A", ".spec.replicas"),
        Conflict("A", '.spec.template.spec.containers[name="app"].image'),
    ]
    assert str(info.value).startswith('Apply failed with 2 conflicts: conflicts with "A":\n- ')


def test_same_value_shares_ownership_and_last_owner_removes_it() -> None:
    a_config = deployment(replicas=2, paused=False)
    live = stored(do_apply(None, a_config, "A"))
    shared = do_apply(live, deployment(replicas=2), "B", now=T1)
    assert shared["spec"] == live["spec"]
    assert ("f:spec", "f:replicas") in owned(shared, "A")
    assert ("f:spec", "f:replicas") in owned(shared, "B")

    # A stops applying replicas: B still owns it, so the value stays.
    a_dropped = do_apply(stored(shared), deployment(paused=False), "A", now=T2)
    assert a_dropped["spec"]["replicas"] == 2
    assert ("f:spec", "f:replicas") not in owned(a_dropped, "A")
    assert ("f:spec", "f:replicas") in owned(a_dropped, "B")

    # B stops applying it too: nobody owns it any more, it goes.
    b_dropped = do_apply(stored(a_dropped), deployment(minReadySeconds=5), "B", now=T3)
    assert "replicas" not in b_dropped["spec"]
    assert b_dropped["spec"] == {"paused": False, "minReadySeconds": 5}


def test_update_takes_ownership_and_reapply_conflicts_with_it() -> None:
    live = stored(do_apply(None, two_containers(replicas=2), "A"))
    edited = copy.deepcopy(live)
    edited["spec"]["replicas"] = 5
    after_edit = update(
        live, edited, manager="kubectl-edit", builtin=True, api_version=APPS, now=T1
    )
    assert after_edit["spec"]["replicas"] == 5
    assert owned(after_edit, "kubectl-edit", "Update") == {("f:spec", "f:replicas")}
    assert entry(after_edit, "kubectl-edit", "Update")["time"] == T1
    assert ("f:spec", "f:replicas") not in owned(after_edit, "A")
    # Apply entries sort before Update entries.
    assert managers(after_edit) == [("A", "Apply"), ("kubectl-edit", "Update")]

    stored_edit = stored(after_edit)
    with pytest.raises(ApplyConflict) as info:
        do_apply(stored_edit, two_containers(replicas=2), "A", now=T2)
    [conflict] = info.value.conflicts
    assert conflict == Conflict("kubectl-edit", ".spec.replicas")
    assert conflict.message == 'conflict with "kubectl-edit" using apps/v1'
    assert str(info.value) == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas'
    )

    forced = do_apply(stored_edit, two_containers(replicas=2), "A", now=T2, force=True)
    assert forced["spec"]["replicas"] == 2
    assert ("f:spec", "f:replicas") in owned(forced, "A")
    # kubectl-edit owned nothing else, so its entry is gone.
    assert managers(forced) == [("A", "Apply")]


def test_dropped_container_is_removed() -> None:
    live = stored(do_apply(None, two_containers(), "A"))
    config = two_containers()
    config["spec"]["template"]["spec"]["containers"].pop()  # no sidecar any more
    out = do_apply(live, config, "A", now=T1)
    names = [c["name"] for c in out["spec"]["template"]["spec"]["containers"]]
    assert names == ["app"]
    assert not any(SIDECAR in p for p in owned(out, "A"))


def test_dropped_container_owned_by_another_applier_stays() -> None:
    live = stored(do_apply(None, two_containers(), "A"))
    sidecar = deployment(
        template={"spec": {"containers": [{"name": "sidecar", "image": "envoy:1.30"}]}}
    )
    live = stored(do_apply(live, sidecar, "B", now=T1))
    config = two_containers()
    config["spec"]["template"]["spec"]["containers"].pop()
    out = do_apply(live, config, "A", now=T2)
    names = [c["name"] for c in out["spec"]["template"]["spec"]["containers"]]
    assert names == ["app", "sidecar"]


def test_field_taken_by_an_updater_stays_when_the_applier_drops_it() -> None:
    live = stored(do_apply(None, two_containers(replicas=2), "A"))
    edited = copy.deepcopy(live)
    edited["spec"]["replicas"] = 5
    live = stored(
        update(live, edited, manager="kubectl-edit", builtin=True, api_version=APPS, now=T1)
    )
    config = two_containers()
    del config["spec"]["replicas"]
    out = do_apply(live, config, "A", now=T2)
    assert out["spec"]["replicas"] == 5
    assert owned(out, "kubectl-edit", "Update") == {("f:spec", "f:replicas")}


def test_dropped_item_goes_even_if_an_updater_owns_a_field_in_it() -> None:
    # SMD prunes an item unless someone owns the item itself, not just fields inside it.
    live = stored(do_apply(None, two_containers(), "A"))
    edited = copy.deepcopy(live)
    edited["spec"]["template"]["spec"]["containers"][1]["image"] = "envoy:1.31"
    live = stored(
        update(live, edited, manager="kubectl-edit", builtin=True, api_version=APPS, now=T1)
    )
    assert owned(live, "kubectl-edit", "Update") == {(*CONTAINERS, SIDECAR, "f:image")}
    config = two_containers()
    config["spec"]["template"]["spec"]["containers"].pop()
    out = do_apply(live, config, "A", now=T2)
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["app"]
    assert managers(out) == [("A", "Apply")]


def test_dropped_env_and_port_items_are_removed() -> None:
    live = stored(do_apply(None, two_containers(), "A"))
    config = two_containers()
    app = config["spec"]["template"]["spec"]["containers"][0]
    del app["env"], app["ports"]
    out = do_apply(live, config, "A", now=T1)
    app_out = out["spec"]["template"]["spec"]["containers"][0]
    # Nobody owns anything in these lists any more: they go entirely, not left as [].
    assert "env" not in app_out and "ports" not in app_out


def test_unowned_fields_are_not_pruned() -> None:
    live = stored(do_apply(None, two_containers(), "A"))
    # Server defaults are set after the apply and belong to nobody.
    live["spec"]["strategy"] = {"type": "RollingUpdate"}
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    config = two_containers()
    del config["spec"]["template"]["metadata"]
    out = do_apply(live, config, "A", now=T1)
    assert out["spec"]["strategy"] == {"type": "RollingUpdate"}
    assert out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    # The labels map held only A's label: it goes, and so does the emptied template metadata.
    assert "metadata" not in out["spec"]["template"]


def test_labels_are_granular() -> None:
    a = deployment(replicas=1)
    a["metadata"]["labels"] = {"team": "a"}
    live = stored(do_apply(None, a, "A"))
    b = deployment()
    del b["spec"]  # `spec: {}` would make B own the empty spec
    b["metadata"]["labels"] = {"tier": "web"}
    both = do_apply(live, b, "B", now=T1)
    assert both["metadata"]["labels"] == {"team": "a", "tier": "web"}
    assert entry(both, "A")["fieldsV1"]["f:metadata"] == {"f:labels": {"f:team": {}}}
    assert entry(both, "B")["fieldsV1"]["f:metadata"] == {"f:labels": {"f:tier": {}}}

    # B dropping its label removes only that one. (Applying `labels: {}` instead would make
    # B own the empty map itself.)
    del b["metadata"]["labels"]
    dropped = do_apply(stored(both), b, "B", now=T2)
    assert dropped["metadata"]["labels"] == {"team": "a"}
    # B owned nothing else: its entry is gone.
    assert managers(dropped) == [("A", "Apply")]


def test_set_list_union_and_prune() -> None:
    a = deployment(replicas=1)
    a["metadata"]["finalizers"] = ["example.com/a"]
    live = stored(do_apply(None, a, "A"))
    b = deployment()
    b["metadata"]["finalizers"] = ["example.com/b"]
    both = do_apply(live, b, "B", now=T1)
    assert both["metadata"]["finalizers"] == ["example.com/a", "example.com/b"]
    assert ("f:metadata", "f:finalizers", 'v:"example.com/b"') in owned(both, "B")
    a_dropped = do_apply(stored(both), deployment(replicas=1), "A", now=T2)
    assert a_dropped["metadata"]["finalizers"] == ["example.com/b"]


def test_custom_resource_list_conflicts_as_a_whole() -> None:
    def widget(items: list[Any]) -> dict[str, Any]:
        return {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"items": items},
        }

    live = stored(do_apply(None, widget([{"name": "x"}]), "A", builtin=False))
    assert owned(live, "A") == {("f:spec", "f:items")}
    with pytest.raises(ApplyConflict) as info:
        do_apply(live, widget([{"name": "y"}]), "B", now=T1, builtin=False)
    assert info.value.conflicts == [Conflict("A", ".spec.items")]
    forced = do_apply(live, widget([{"name": "y"}]), "B", now=T1, force=True, builtin=False)
    assert forced["spec"]["items"] == [{"name": "y"}]  # replaced, not merged
    assert managers(forced) == [("B", "Apply")]


# A custom resource whose schema makes `list` a map-list keyed by name and `set` a set.
KEYED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "list": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "value": {"type": "integer"}}},
        },
        "set": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"}},
        "unrelated": {"type": "integer"},
    },
}


def keyed(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Keyed", "metadata": {"name": "k"}, **fields}


def keyed_update(old: dict[str, Any] | None, new: dict[str, Any], manager: str) -> dict[str, Any]:
    return update(old, new, manager=manager, builtin=False, api_version="example.com/v1",
                  now=T0, schema=KEYED_SCHEMA)


def keyed_apply(live: dict[str, Any], config: dict[str, Any], manager: str,
                force: bool = False) -> dict[str, Any]:
    return apply(live, config, manager=manager, force=force, builtin=False,
                 api_version="example.com/v1", now=T1, schema=KEYED_SCHEMA)


def test_custom_resource_schema_list_types_decide_field_sets() -> None:
    fs = field_set(keyed(list=[{"name": "a", "value": 1}], set=[1]), builtin=False,
                   schema=KEYED_SCHEMA)
    assert ("f:list", 'k:{"name":"a"}', "f:value") in fs
    assert ("f:set", "v:1") in fs
    assert ("f:list",) not in fs


def test_duplicated_keys_are_leaves_like_structured_merge_diff() -> None:
    # The cases of structured-merge-diff's merge/duplicates_test.go.
    a1, a2, b = {"name": "a", "value": 1}, {"name": "a", "value": 2}, {"name": "b", "value": 3}
    live = stored(keyed_update(None, keyed(list=[a1, a2, b], set=[1, 1, 3]), "updater"))
    assert owned(live, "updater", "Update") == {
        ("f:list",), ("f:list", 'k:{"name":"a"}'), ("f:list", 'k:{"name":"b"}'),
        ("f:list", 'k:{"name":"b"}', "f:name"), ("f:list", 'k:{"name":"b"}', "f:value"),
        ("f:set",), ("f:set", "v:1"), ("f:set", "v:3"),
    }
    # Changing one of the repeated items takes the key from its owner.
    changed = keyed_update(live, keyed(list=[a1, {"name": "a", "value": 9}, b], set=[1, 1, 3]),
                           "other")
    assert owned(changed, "other", "Update") == {("f:list", 'k:{"name":"a"}')}
    assert ("f:list", 'k:{"name":"a"}') not in owned(changed, "updater", "Update")
    # An apply elsewhere keeps every repeated item; one that sets the key conflicts on it and,
    # forced, replaces them with its own.
    other = keyed_apply(live, keyed(unrelated=5, list=[{"name": "b", "value": 4}], set=[7]),
                        "applier", force=True)
    assert other["list"] == [a1, a2, {"name": "b", "value": 4}]
    assert other["set"] == [1, 1, 3, 7]
    with pytest.raises(ApplyConflict) as info:
        keyed_apply(live, keyed(list=[{"name": "a", "value": 2}], set=[1]), "applier")
    assert info.value.conflicts == [Conflict("updater", '.list[name="a"]'),
                                    Conflict("updater", ".set[=1]")]
    forced = keyed_apply(live, keyed(list=[{"name": "a", "value": 2}], set=[1]), "applier",
                         force=True)
    assert forced["list"] == [{"name": "a", "value": 2}, b]
    assert forced["set"] == [1, 3]
    assert owned(forced, "applier") == {
        ("f:list", 'k:{"name":"a"}'), ("f:list", 'k:{"name":"a"}', "f:name"),
        ("f:list", 'k:{"name":"a"}', "f:value"), ("f:set", "v:1"),
    }


def test_map_list_merge_order_follows_config() -> None:
    live = stored(do_apply(None, two_containers(), "A"))
    config = deployment(
        template={
            "spec": {
                "containers": [
                    {"name": "init", "image": "busybox"},
                    {"name": "sidecar", "image": "envoy:1.30"},
                ]
            }
        }
    )
    out = do_apply(live, config, "B", now=T1)
    names = [c["name"] for c in out["spec"]["template"]["spec"]["containers"]]
    # SMD: items only in live keep their place, new ones go where the config puts them
    # relative to the shared ones.
    assert names == ["app", "init", "sidecar"]


def test_null_in_config_drops_the_field() -> None:
    live = stored(do_apply(None, deployment(replicas=2, paused=True), "A"))
    out = do_apply(live, deployment(replicas=2, paused=None), "A", now=T1)
    assert "paused" not in out["spec"]


def test_apply_to_untracked_object_attributes_it_to_before_first_apply() -> None:
    live = stored(two_containers(replicas=2))
    with pytest.raises(ApplyConflict) as info:
        do_apply(live, deployment(replicas=4), "A", now=T1)
    assert info.value.conflicts == [Conflict("before-first-apply", ".spec.replicas")]
    out = do_apply(live, deployment(replicas=2), "A", now=T1)
    assert managers(out) == [("A", "Apply"), ("before-first-apply", "Update")]
    assert ("f:spec", "f:replicas") in owned(out, "before-first-apply", "Update")


def test_apply_on_subresource_is_its_own_entry() -> None:
    live = stored(do_apply(None, deployment(replicas=1), "ctl"))
    status = {"apiVersion": APPS, "kind": "Deployment", "metadata": {"name": "web"}}
    status["status"] = {"observedGeneration": 1}
    out = apply(
        live,
        status,
        manager="ctl",
        force=False,
        builtin=True,
        api_version=APPS,
        now=T1,
        subresource="status",
    )
    entries = out["metadata"]["managedFields"]
    assert [(e["manager"], e.get("subresource", "")) for e in entries] == [
        ("ctl", ""),
        ("ctl", "status"),
    ]


# ---------------------------------------------------------------------------------------------
# Update


def test_create_by_update_owns_everything_it_wrote() -> None:
    obj = update(
        None, two_containers(), manager="kubectl-create", builtin=True, api_version=APPS, now=T0
    )
    e = entry(obj, "kubectl-create", "Update")
    assert e["time"] == T0 and e["apiVersion"] == APPS
    fields = e["fieldsV1"]
    assert "f:replicas" in fields["f:spec"]
    # As on a real server: "." for maps and list items that appeared, none for the structs
    # every Deployment has.
    assert "." not in fields["f:spec"]
    assert fields["f:spec"]["f:template"]["f:metadata"]["f:labels"] == {".": {}, "f:app": {}}
    containers = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert "." not in containers
    assert containers[APP]["."] == {}
    assert containers[APP]["f:ports"]["."] == {}


def test_create_by_update_of_a_custom_resource_owns_the_nodes() -> None:
    cr = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 1},
    }
    obj = update(None, cr, manager="ctl", builtin=False, api_version="example.com/v1", now=T0)
    assert entry(obj, "ctl", "Update")["fieldsV1"] == {"f:spec": {".": {}, "f:size": {}}}


def test_update_removes_fields_from_everyone() -> None:
    a = two_containers()
    a["metadata"]["labels"] = {"team": "a", "tier": "web"}
    live = stored(do_apply(None, a, "A"))
    new = copy.deepcopy(live)
    del new["metadata"]["labels"]["tier"]
    out = update(live, new, manager="kubectl-edit", builtin=True, api_version=APPS, now=T1)
    assert ("f:metadata", "f:labels", "f:tier") not in owned(out, "A")
    assert ("f:metadata", "f:labels", "f:team") in owned(out, "A")
    # The editor only removed something: it owns nothing, gets no entry.
    assert managers(out) == [("A", "Apply")]


def test_update_without_changes_keeps_managed_fields() -> None:
    live = stored(do_apply(None, two_containers(), "A"))
    out = update(
        live, copy.deepcopy(live), manager="kubectl-edit", builtin=True, api_version=APPS, now=T1
    )
    assert out == live


def test_update_time_moves_only_when_it_takes_fields() -> None:
    live = stored(
        update(
            None,
            deployment(replicas=1, paused=False),
            manager="ctl",
            builtin=True,
            api_version=APPS,
            now=T0,
        )
    )
    new = copy.deepcopy(live)
    new["spec"]["replicas"] = 2
    out = update(live, new, manager="ctl", builtin=True, api_version=APPS, now=T1)
    assert entry(out, "ctl", "Update")["time"] == T1
    new2 = copy.deepcopy(stored(out))
    del new2["spec"]["paused"]
    out2 = update(stored(out), new2, manager="ctl", builtin=True, api_version=APPS, now=T2)
    assert entry(out2, "ctl", "Update")["time"] == T1
    assert owned(out2, "ctl", "Update") == {("f:spec", "f:replicas")}


def test_update_on_status_subresource_is_its_own_entry() -> None:
    live = stored(do_apply(None, deployment(replicas=1), "A"))
    new = copy.deepcopy(live)
    new["status"] = {"replicas": 1}
    out = update(
        live, new, manager="ctl", builtin=True, api_version=APPS, now=T1, subresource="status"
    )
    e = entry(out, "ctl", "Update")
    assert e["subresource"] == "status"
    assert decode_fields(e["fieldsV1"]) == {("f:status", "f:replicas")}


def test_update_with_managed_fields_in_the_body_replaces_them() -> None:
    live = stored(do_apply(None, deployment(replicas=1), "A"))
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"][0]["manager"] = "renamed"
    out = update(live, new, manager="x", builtin=True, api_version=APPS, now=T1)
    assert managers(out) == [("renamed", "Apply")]
    # [{}] strips them all, and the object then stays untracked on updates.
    new["metadata"]["managedFields"] = [{}]
    reset = update(live, new, manager="x", builtin=True, api_version=APPS, now=T1)
    assert "managedFields" not in reset["metadata"]
    new3 = copy.deepcopy(reset)
    new3["spec"]["replicas"] = 3
    untracked = update(reset, new3, manager="x", builtin=True, api_version=APPS, now=T2)
    assert "managedFields" not in untracked["metadata"]


def test_update_with_an_empty_managed_fields_list_resets_them() -> None:
    live = stored(do_apply(None, deployment(replicas=1), "A"))
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"] = []
    reset = update(live, new, manager="x", builtin=True, api_version=APPS, now=T1)
    assert "managedFields" not in reset["metadata"]
    # The object stays untracked on later updates, as after a [{}] reset.
    new2 = copy.deepcopy(reset)
    new2["spec"]["replicas"] = 3
    untracked = update(reset, new2, manager="x", builtin=True, api_version=APPS, now=T2)
    assert "managedFields" not in untracked["metadata"]
    # Omitted or null keeps the stored entries; a subresource write never resets them.
    for omitted in (_without_key(live), _with_managed(live, None)):
        kept = update(live, omitted, manager="x", builtin=True, api_version=APPS, now=T1)
        assert managers(kept) == [("A", "Apply")]
    status = update(live, new, manager="x", builtin=True, api_version=APPS, now=T1,
                    subresource="status")
    assert managers(status) == [("A", "Apply")]


def _without_key(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    del out["metadata"]["managedFields"]
    return out


def _with_managed(obj: dict[str, Any], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"]["managedFields"] = value
    return out


def test_update_with_duplicate_entries_for_one_manager_keeps_the_later() -> None:
    """Renaming manager B to A leaves two entries for A: the later one wins, as in
    kube-apiserver's DecodeManagedFields."""
    live = stored(do_apply(None, deployment(replicas=1), "A"))
    live = stored(do_apply(live, {**deployment(), "metadata": {"name": "web", "labels": {
        "team": "x"}}}, "B", now=T1))
    a, b = live["metadata"]["managedFields"]
    assert (a["manager"], b["manager"]) == ("A", "B")
    new = _with_managed(live, [a, dict(b, manager="A")])
    out = update(live, new, manager="x", builtin=True, api_version=APPS, now=T2)
    assert managers(out) == [("A", "Apply")]
    assert owned(out, "A") == decode_fields(b["fieldsV1"])
    # The other order keeps A's own entry.
    out = update(live, _with_managed(live, [dict(b, manager="A"), a]), manager="x",
                 builtin=True, api_version=APPS, now=T2)
    assert owned(out, "A") == decode_fields(a["fieldsV1"])


def test_update_caps_update_entries() -> None:
    obj = stored(do_apply(None, deployment(replicas=1), "A"))
    for i in range(12):
        new = copy.deepcopy(obj)
        new["metadata"].setdefault("labels", {})[f"l{i}"] = "x"
        obj = stored(
            update(
                obj,
                new,
                manager=f"m{i}",
                builtin=True,
                api_version=APPS,
                now=f"2024-05-01T11:{i:02d}:00Z",
            )
        )
    names = [m for m, op in managers(obj) if op == "Update"]
    assert len(names) == 10
    assert "ancient-changes" in names and "m0" not in names and "m1" not in names
    assert ("f:metadata", "f:labels", "f:l0") in owned(obj, "ancient-changes", "Update")


def test_compare_reports_nodes_and_leaves() -> None:
    old = deployment(replicas=1)
    new = deployment(replicas=2, strategy={"rollingUpdate": {"maxSurge": 1}})
    cmp = compare(old, new, builtin=True)
    assert cmp.modified == {("f:spec", "f:replicas")}
    assert cmp.added == {
        ("f:spec", "f:strategy", "f:rollingUpdate"),
        ("f:spec", "f:strategy", "f:rollingUpdate", "f:maxSurge"),
    }
    assert compare(new, old, builtin=True).removed == cmp.added


def test_managed_fields_equal_ignores_order() -> None:
    live = stored(do_apply(None, deployment(replicas=1), "A"))
    live = stored(do_apply(live, deployment(paused=True), "B", now=T1))
    shuffled = copy.deepcopy(live)
    shuffled["metadata"]["managedFields"].reverse()
    assert managed_fields_equal(live, shuffled)
    shuffled["metadata"]["managedFields"].pop()
    assert not managed_fields_equal(live, shuffled)


def test_apply_is_fast() -> None:
    live = stored(do_apply(None, two_containers(), "A"))
    live = stored(do_apply(live, deployment(replicas=2), "B", now=T1))
    config = two_containers(replicas=2)
    n = 200
    start = time.perf_counter()
    for _ in range(n):
        do_apply(live, config, "A", now=T2)
    per_apply = (time.perf_counter() - start) / n
    # Generous bound so a loaded CI machine does not flake; typically well under 1 ms.
    assert per_apply < 0.005
