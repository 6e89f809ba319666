"""Tests for kubesim.patches: JSON patch, JSON merge patch and strategic merge patch.

Expected strategic-merge results follow apimachinery's strategicpatch (its patch_test.go cases
are mirrored where our list semantics allow).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubesim.patches import PatchError, json_patch, merge_patch, strategic_merge_patch


def deployment(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "finalizers": ["a", "b"]},
        "spec": {
            "replicas": 1,
            **spec,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": list(containers)},
            },
        },
    }


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def template_patch(**pod: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": pod}}}


def names(items: list[dict[str, Any]]) -> list[Any]:
    return [i.get("name", i.get("containerPort", i.get("mountPath"))) for i in items]


def smp(obj: dict[str, Any], patch: Any, **kw: Any) -> dict[str, Any]:
    """Apply and check that neither input was mutated."""
    obj_before, patch_before = copy.deepcopy(obj), copy.deepcopy(patch)
    out = strategic_merge_patch(obj, patch, **kw)
    assert obj == obj_before
    assert patch == patch_before
    return out


A = {"name": "a", "image": "a:1"}
B = {"name": "b", "image": "b:1"}


# --------------------------------------------------------------------------- strategic: lists


def test_containers_merge_by_name_changes_only_the_named_one() -> None:
    out = smp(deployment(A, B), template_patch(containers=[{"name": "b", "image": "b:2"}]))
    assert pod_spec(out)["containers"] == [A, {"name": "b", "image": "b:2"}]


def test_merged_container_keeps_its_other_fields() -> None:
    a = {"name": "a", "image": "a:1", "args": ["x"], "resources": {"limits": {"cpu": "1"}}}
    out = smp(
        deployment(a),
        template_patch(containers=[{"name": "a", "resources": {"requests": {"cpu": "1"}}}]),
    )
    assert pod_spec(out)["containers"] == [
        {
            "name": "a",
            "image": "a:1",
            "args": ["x"],
            "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}},
        }
    ]


def test_env_merges_by_name() -> None:
    a = {
        "name": "a",
        "image": "a:1",
        "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
    }
    out = smp(
        deployment(a),
        template_patch(containers=[{"name": "a", "env": [{"name": "Y", "value": "3"}]}]),
    )
    assert pod_spec(out)["containers"][0]["env"] == [
        {"name": "X", "value": "1"},
        {"name": "Y", "value": "3"},
    ]


def test_env_entry_can_switch_from_value_to_value_from() -> None:
    a = {"name": "a", "env": [{"name": "X", "value": "1"}]}
    ref = {"secretKeyRef": {"name": "s", "key": "k"}}
    out = smp(
        deployment(a),
        template_patch(
            containers=[{"name": "a", "env": [{"name": "X", "value": None, "valueFrom": ref}]}]
        ),
    )
    assert pod_spec(out)["containers"][0]["env"] == [{"name": "X", "valueFrom": ref}]


def test_container_ports_merge_by_container_port() -> None:
    a = {
        "name": "a",
        "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443, "name": "https"}],
    }
    out = smp(
        deployment(a),
        template_patch(
            containers=[{"name": "a", "ports": [{"containerPort": 443, "name": "tls"}]}]
        ),
    )
    assert pod_spec(out)["containers"][0]["ports"] == [
        {"containerPort": 80, "name": "http"},
        {"containerPort": 443, "name": "tls"},
    ]


def test_service_ports_merge_by_port() -> None:
    svc = {
        "kind": "Service",
        "spec": {
            "ports": [{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}],
            "selector": {"app": "web"},
        },
    }
    out = smp(svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}})
    assert out["spec"]["ports"] == [
        {"port": 80, "targetPort": 9090},
        {"port": 443, "targetPort": 8443},
    ]


def test_volume_mounts_merge_by_mount_path_and_volumes_by_name() -> None:
    a = {"name": "a", "volumeMounts": [{"mountPath": "/data", "name": "d"}]}
    obj = deployment(a)
    pod_spec(obj)["volumes"] = [{"name": "d", "emptyDir": {}}]
    out = smp(
        obj,
        template_patch(
            containers=[{"name": "a", "volumeMounts": [{"mountPath": "/data", "readOnly": True}]}],
            volumes=[{"name": "d", "emptyDir": {"medium": "Memory"}}],
        ),
    )
    assert pod_spec(out)["containers"][0]["volumeMounts"] == [
        {"mountPath": "/data", "name": "d", "readOnly": True}
    ]
    assert pod_spec(out)["volumes"] == [{"name": "d", "emptyDir": {"medium": "Memory"}}]


def test_status_conditions_merge_by_type() -> None:
    obj = {
        "spec": {},
        "status": {
            "conditions": [
                {"type": "Available", "status": "False"},
                {"type": "Progressing", "status": "True"},
            ]
        },
    }
    out = smp(obj, {"status": {"conditions": [{"type": "Available", "status": "True"}]}})
    assert out["status"]["conditions"] == [
        {"type": "Available", "status": "True"},
        {"type": "Progressing", "status": "True"},
    ]


def test_owner_references_merge_by_uid() -> None:
    obj = {"metadata": {"ownerReferences": [{"uid": "1", "name": "x"}]}}
    out = smp(obj, {"metadata": {"ownerReferences": [{"uid": "1", "controller": True}]}})
    assert out["metadata"]["ownerReferences"] == [{"uid": "1", "name": "x", "controller": True}]


def test_new_item_without_set_element_order_goes_first() -> None:
    # apimachinery puts patch items whose place the live list cannot tell ahead of the rest.
    out = smp(deployment(A, B), template_patch(containers=[{"name": "c", "image": "c:1"}]))
    assert names(pod_spec(out)["containers"]) == ["c", "a", "b"]


def test_patch_list_order_wins_over_live_order() -> None:
    # strategicpatch "preserve the order from the patch in a merging list 2"
    c = {"name": "c"}
    out = smp(
        deployment(A, {"name": "b", "image": "b:1"}, c),
        template_patch(containers=[{"name": "c", "image": "c:2"}, {"name": "a", "image": "a:2"}]),
    )
    assert pod_spec(out)["containers"] == [
        {"name": "b", "image": "b:1"},
        {"name": "c", "image": "c:2"},
        {"name": "a", "image": "a:2"},
    ]


def test_patch_delete_directive_removes_a_container() -> None:
    out = smp(deployment(A, B), template_patch(containers=[{"name": "a", "$patch": "delete"}]))
    assert pod_spec(out)["containers"] == [B]


def test_patch_delete_directive_removes_all_duplicates() -> None:
    obj = deployment({"name": "a"}, {"name": "a"}, B)
    out = smp(obj, template_patch(containers=[{"$patch": "delete", "name": "a"}]))
    assert pod_spec(out)["containers"] == [B]


def test_patch_delete_without_merge_key_is_bad_request() -> None:
    with pytest.raises(PatchError) as err:
        smp(deployment(A), template_patch(containers=[{"$patch": "delete"}]))
    assert err.value.reason == "BadRequest"


def test_patch_replace_item_replaces_the_whole_list() -> None:
    out = smp(
        deployment(A, B),
        template_patch(containers=[{"name": "c", "image": "c:1"}, {"$patch": "replace"}]),
    )
    assert pod_spec(out)["containers"] == [{"name": "c", "image": "c:1"}]


def test_patch_replace_alone_empties_the_list() -> None:
    out = smp(deployment(A, B), template_patch(containers=[{"$patch": "replace"}]))
    assert pod_spec(out)["containers"] == []


def test_patch_merge_item_is_a_plain_merge() -> None:
    out = smp(
        deployment(A, B),
        template_patch(containers=[{"name": "a", "image": "a:2", "$patch": "merge"}]),
    )
    assert pod_spec(out)["containers"] == [{"name": "a", "image": "a:2"}, B]


def test_item_missing_its_merge_key_is_bad_request() -> None:
    with pytest.raises(PatchError) as err:
        smp(deployment(A), template_patch(containers=[{"image": "x"}]))
    assert err.value.reason == "BadRequest"


# --------------------------------------------------------------------------- $setElementOrder


def test_set_element_order_as_kubectl_apply_emits_it() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                    "containers": [{"name": "a", "image": "x:2"}],
                }
            }
        }
    }
    out = smp(deployment(A, B), patch)
    assert pod_spec(out)["containers"] == [B, {"name": "a", "image": "x:2"}]


def test_set_element_order_with_a_deleted_container() -> None:
    c = {"name": "c", "image": "c:1"}
    patch = template_patch(
        **{
            "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
            "containers": [{"name": "b", "$patch": "delete"}],
        }
    )
    out = smp(deployment(A, B, c), patch)
    assert pod_spec(out)["containers"] == [c, A]


def test_set_element_order_keeps_server_only_items_in_live_position() -> None:
    c = {"name": "c"}
    patch = template_patch(
        **{
            "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
            "containers": [{"name": "a", "image": "a:2"}],
        }
    )
    out = smp(deployment(A, B, c), patch)
    assert names(pod_spec(out)["containers"]) == ["b", "c", "a"]


def test_set_element_order_adds_a_new_container_where_the_order_says() -> None:
    c = {"name": "c", "image": "c:1"}
    patch = template_patch(
        **{
            "$setElementOrder/containers": [{"name": "a"}, {"name": "c"}, {"name": "b"}],
            "containers": [c],
        }
    )
    out = smp(deployment(A, B), patch)
    assert pod_spec(out)["containers"] == [A, c, B]


def test_set_element_order_for_a_list_the_object_lacks() -> None:
    patch = template_patch(
        **{
            "$setElementOrder/initContainers": [{"name": "i"}],
            "initContainers": [{"name": "i", "image": "i:1"}],
        }
    )
    out = smp(deployment(A), patch)
    assert pod_spec(out)["initContainers"] == [{"name": "i", "image": "i:1"}]


def test_set_element_order_alone_only_reorders() -> None:
    patch = template_patch(**{"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]})
    out = smp(deployment(A, B), patch)
    assert pod_spec(out)["containers"] == [B, A]


def test_set_element_order_naming_unknown_items_is_harmless() -> None:
    # strategicpatch "$setElementOrder contains item that is not present in the list"
    patch = template_patch(
        **{
            "$setElementOrder/containers": [{"name": "b"}, {"name": "z"}, {"name": "a"}],
            "containers": [{"name": "b", "image": "b:2"}, {"name": "a", "image": "a:2"}],
        }
    )
    out = smp(deployment(A, B), patch)
    assert pod_spec(out)["containers"] == [
        {"name": "b", "image": "b:2"},
        {"name": "a", "image": "a:2"},
    ]


def test_set_element_order_disagreeing_with_the_patch_list_is_bad_request() -> None:
    patch = template_patch(
        **{
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b", "image": "b:2"}, {"name": "a", "image": "a:2"}],
        }
    )
    with pytest.raises(PatchError) as err:
        smp(deployment(A, B), patch)
    assert err.value.reason == "BadRequest"


def test_set_element_order_on_primitive_merge_list() -> None:
    obj = {"metadata": {"finalizers": ["a", "b"]}}
    out = smp(
        obj, {"metadata": {"$setElementOrder/finalizers": ["b", "c", "a"], "finalizers": ["c"]}}
    )
    assert out["metadata"]["finalizers"] == ["b", "c", "a"]


# --------------------------------------------------------------------------- maps and directives


def test_null_deletes_a_field() -> None:
    out = smp(deployment(A, paused=True), {"spec": {"paused": None, "replicas": 3}})
    assert "paused" not in out["spec"]
    assert out["spec"]["replicas"] == 3


def test_null_for_an_absent_field_is_ignored() -> None:
    out = smp(
        deployment(A), {"spec": {"paused": None}, "metadata": {"labels": {"x": None, "y": "1"}}}
    )
    assert "paused" not in out["spec"]
    assert out["metadata"]["labels"] == {"y": "1"}


def test_maps_merge_recursively() -> None:
    out = smp(deployment(A), {"spec": {"template": {"metadata": {"labels": {"tier": "web"}}}}})
    assert out["spec"]["template"]["metadata"]["labels"] == {"app": "web", "tier": "web"}
    assert pod_spec(out)["containers"] == [A]


def test_patch_replace_on_a_map() -> None:
    obj = deployment(A)
    pod_spec(obj)["securityContext"] = {"runAsUser": 1, "fsGroup": 2}
    out = smp(obj, template_patch(securityContext={"$patch": "replace", "runAsNonRoot": True}))
    assert pod_spec(out)["securityContext"] == {"runAsNonRoot": True}
    assert pod_spec(out)["containers"] == [A]


def test_patch_replace_at_the_top_replaces_the_object() -> None:
    out = smp(deployment(A), {"$patch": "replace", "kind": "Deployment", "spec": {"replicas": 2}})
    assert out == {"kind": "Deployment", "spec": {"replicas": 2}}


def test_patch_delete_on_a_map_empties_it() -> None:
    obj = deployment(A)
    pod_spec(obj)["securityContext"] = {"runAsUser": 1}
    out = smp(obj, template_patch(securityContext={"$patch": "delete"}))
    # apimachinery answers an empty map here, not a missing field.
    assert pod_spec(out)["securityContext"] == {}


def test_patch_merge_on_a_map_is_a_plain_merge() -> None:
    out = smp(deployment(A), {"spec": {"$patch": "merge", "replicas": 4}})
    assert out["spec"]["replicas"] == 4
    assert pod_spec(out)["containers"] == [A]


def test_directives_in_a_new_subtree_are_not_stored() -> None:
    out = smp(
        deployment(A),
        template_patch(
            affinity={"nodeAffinity": {"x": 1, "gone": None}, "podAffinity": {"$patch": "delete"}}
        ),
    )
    assert pod_spec(out)["affinity"] == {"nodeAffinity": {"x": 1}}


def test_retain_keys_drops_unlisted_fields() -> None:
    obj = deployment(A, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}})
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    out = smp(obj, patch)
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_must_list_every_patched_field() -> None:
    obj = deployment(A, strategy={"type": "RollingUpdate"})
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}}
    with pytest.raises(PatchError) as err:
        smp(obj, patch)
    assert err.value.reason == "BadRequest"


def test_retain_keys_on_a_volume_switching_source() -> None:
    obj = deployment(A)
    pod_spec(obj)["volumes"] = [{"name": "v", "emptyDir": {}}]
    patch = template_patch(
        volumes=[{"$retainKeys": ["configMap", "name"], "name": "v", "configMap": {"name": "c"}}]
    )
    out = smp(obj, patch)
    assert pod_spec(out)["volumes"] == [{"name": "v", "configMap": {"name": "c"}}]


def test_finalizers_are_unioned() -> None:
    obj = {"metadata": {"finalizers": ["a", "b"]}}
    out = smp(obj, {"metadata": {"finalizers": ["b", "c"]}})
    assert sorted(out["metadata"]["finalizers"]) == ["a", "b", "c"]
    out = smp(obj, {"metadata": {"finalizers": ["a"]}})
    assert out["metadata"]["finalizers"] == ["a", "b"]


def test_primitive_merge_order_matches_apimachinery() -> None:
    # strategicpatch "unique scalars when merging lists" and "preserve the order from the
    # patch in a merging int list" (new values lead when the live list cannot place them).
    obj = {"metadata": {"finalizers": ["1", "2"]}}
    assert smp(obj, {"metadata": {"finalizers": ["2", "3"]}})["metadata"]["finalizers"] == [
        "1",
        "2",
        "3",
    ]
    obj = {"metadata": {"finalizers": ["1", "2", "3"]}}
    assert smp(obj, {"metadata": {"finalizers": ["3", "1"]}})["metadata"]["finalizers"] == [
        "2",
        "3",
        "1",
    ]
    obj = {"metadata": {"finalizers": ["a"]}}
    assert smp(obj, {"metadata": {"finalizers": ["z"]}})["metadata"]["finalizers"] == ["z", "a"]


def test_delete_from_primitive_list() -> None:
    obj = {"metadata": {"finalizers": ["a", "b", "c"]}}
    out = smp(obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}})
    assert out["metadata"]["finalizers"] == ["a", "c"]


def test_delete_from_primitive_list_with_additions_and_order() -> None:
    obj = {"metadata": {"finalizers": ["a", "b"]}}
    patch = {
        "metadata": {
            "$setElementOrder/finalizers": ["c", "a"],
            "$deleteFromPrimitiveList/finalizers": ["b"],
            "finalizers": ["c"],
        }
    }
    assert smp(obj, patch)["metadata"]["finalizers"] == ["c", "a"]


def test_delete_from_primitive_list_on_missing_list_is_a_no_op() -> None:
    out = smp({"metadata": {}}, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert out == {"metadata": {}}


def test_non_merge_lists_are_replaced() -> None:
    a = {"name": "a", "args": ["1", "2"], "command": ["sh"]}
    out = smp(deployment(a), template_patch(containers=[{"name": "a", "args": ["3"]}]))
    assert pod_spec(out)["containers"][0] == {"name": "a", "args": ["3"], "command": ["sh"]}


def test_tolerations_list_of_maps_is_replaced() -> None:
    obj = deployment(A)
    pod_spec(obj)["tolerations"] = [{"key": "k1"}, {"key": "k2"}]
    out = smp(obj, template_patch(tolerations=[{"key": "k3"}]))
    assert pod_spec(out)["tolerations"] == [{"key": "k3"}]


def test_custom_resource_lists_are_replaced() -> None:
    cr = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "finalizers": ["a"]},
        "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b"}]},
    }
    out = smp(
        cr,
        {
            "metadata": {"finalizers": ["b"]},
            "spec": {"containers": [{"name": "a", "image": "a:2"}]},
        },
        builtin=False,
    )
    assert out["spec"]["containers"] == [{"name": "a", "image": "a:2"}]
    # metadata lists keep their semantics for every kind
    assert sorted(out["metadata"]["finalizers"]) == ["a", "b"]


def test_type_change_replaces() -> None:
    obj = deployment(A)
    pod_spec(obj)["nodeSelector"] = {"a": "b"}
    out = smp(obj, template_patch(nodeSelector="oops"))
    assert pod_spec(out)["nodeSelector"] == "oops"


def test_lists_of_lists_are_invalid() -> None:
    obj = {"metadata": {"finalizers": [["a"]]}}
    with pytest.raises(PatchError) as err:
        smp(obj, {"metadata": {"finalizers": [["b"]]}})
    assert err.value.reason == "Invalid"


@pytest.mark.parametrize(
    "patch",
    [
        [],
        "spec",
        None,
        {"spec": {"$bogus": 1}},
        {"spec": {"$patch": "explode"}},
        {"spec": {"$patch": {"x": 1}}},
        {"spec": {"$retainKeys": "replicas"}},
        {"spec": {"$setElementOrder/": []}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
    ],
)
def test_malformed_strategic_patches_are_bad_requests(patch: Any) -> None:
    with pytest.raises(PatchError) as err:
        strategic_merge_patch(deployment(A), patch)
    assert err.value.reason == "BadRequest"


def test_result_shares_nothing_with_inputs() -> None:
    obj = deployment(A, B)
    new = {"name": "c", "env": [{"name": "X", "value": "1"}]}
    patch = template_patch(containers=[new])
    out = strategic_merge_patch(obj, patch)
    pod_spec(out)["containers"][0]["env"][0]["value"] = "changed"
    pod_spec(out)["containers"][1]["image"] = "changed"
    assert new["env"] == [{"name": "X", "value": "1"}]
    assert A["image"] == "a:1"
    assert pod_spec(obj)["containers"][0]["image"] == "a:1"


# --------------------------------------------------------------------------- merge patch


def test_merge_patch_null_deletes_and_maps_merge() -> None:
    obj = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}}
    out = merge_patch(obj, {"metadata": {"labels": {"a": None, "c": "3"}}, "spec": None})
    assert out == {"metadata": {"labels": {"b": "2", "c": "3"}}}
    assert obj == {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}}


def test_merge_patch_replaces_lists() -> None:
    obj = deployment(A, B)
    out = merge_patch(obj, template_patch(containers=[{"name": "b", "image": "b:2"}]))
    assert pod_spec(out)["containers"] == [{"name": "b", "image": "b:2"}]
    assert pod_spec(obj)["containers"] == [A, B]


def test_merge_patch_drops_nulls_in_new_objects_and_replaces_scalars_with_objects() -> None:
    out = merge_patch({"a": "x"}, {"a": {"b": None, "c": 1}, "d": {"e": None}})
    assert out == {"a": {"c": 1}, "d": {}}


def test_merge_patch_result_shares_nothing_with_inputs() -> None:
    obj = {"keep": {"x": [1]}, "old": 1}
    patch = {"new": {"y": [2]}}
    out = merge_patch(obj, patch)
    out["keep"]["x"].append(9)
    out["new"]["y"].append(9)
    assert obj == {"keep": {"x": [1]}, "old": 1}
    assert patch == {"new": {"y": [2]}}


@pytest.mark.parametrize("patch", [[], "x", 3, None])
def test_merge_patch_must_be_an_object(patch: Any) -> None:
    with pytest.raises(PatchError) as err:
        merge_patch({"a": 1}, patch)
    assert err.value.reason == "BadRequest"


# --------------------------------------------------------------------------- JSON patch


def test_json_patch_add_remove_replace() -> None:
    obj = deployment(A, B)
    ops = [
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/labels", "value": {"app": "web"}},
        {"op": "remove", "path": "/spec/template/spec/containers/0"},
        {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "c"}},
    ]
    before = copy.deepcopy(obj)
    out = json_patch(obj, ops)
    assert obj == before
    assert out["spec"]["replicas"] == 3
    assert out["metadata"]["labels"] == {"app": "web"}
    assert pod_spec(out)["containers"] == [B, {"name": "c"}]


def test_json_patch_move_copy_and_passing_test() -> None:
    obj = {"a": {"b": 1}, "c": [1, 2]}
    ops = [
        {"op": "test", "path": "/a/b", "value": 1},
        {"op": "copy", "from": "/a", "path": "/d"},
        {"op": "move", "from": "/c/0", "path": "/e"},
    ]
    assert json_patch(obj, ops) == {"a": {"b": 1}, "c": [2], "d": {"b": 1}, "e": 1}


def test_json_patch_result_does_not_alias_the_ops() -> None:
    value = {"app": "web"}
    out = json_patch({"metadata": {}}, [{"op": "add", "path": "/metadata/labels", "value": value}])
    out["metadata"]["labels"]["x"] = "y"
    assert value == {"app": "web"}


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/spec/replicas", "value": 5}],
        [{"op": "test", "path": "/spec/replicas", "value": True}],
        [{"op": "remove", "path": "/spec/nope"}],
        [{"op": "replace", "path": "/spec/nope", "value": 1}],
        [{"op": "add", "path": "/nope/deeper", "value": 1}],
        [{"op": "move", "from": "/nope", "path": "/x"}],
        [{"op": "replace", "path": "", "value": [1]}],
    ],
)
def test_json_patch_that_cannot_apply_is_invalid(ops: Any) -> None:
    obj = {"spec": {"replicas": 1}}
    with pytest.raises(PatchError) as err:
        json_patch(obj, ops)
    assert err.value.reason == "Invalid"
    assert obj == {"spec": {"replicas": 1}}


@pytest.mark.parametrize(
    "ops",
    [
        {"op": "add", "path": "/a", "value": 1},
        "[]",
        None,
        ["add"],
        [{"path": "/a", "value": 1}],
        [{"op": "frobnicate", "path": "/a"}],
        [{"op": "add", "value": 1}],
        [{"op": "add", "path": "a", "value": 1}],
        [{"op": "add", "path": "/a"}],
        [{"op": "copy", "path": "/a"}],
        [{"op": "move", "from": "nope", "path": "/a"}],
    ],
)
def test_malformed_json_patch_is_bad_request(ops: Any) -> None:
    with pytest.raises(PatchError) as err:
        json_patch({"spec": {}}, ops)
    assert err.value.reason == "BadRequest"


def test_patch_error_defaults_to_bad_request() -> None:
    err = PatchError("nope")
    assert err.reason == "BadRequest"
    assert str(err) == "nope"
