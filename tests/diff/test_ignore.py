"""ignoreDifferences: rule matching (Argo CD semantics) and the three kinds of rule."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gitops_tasks.diff import InvalidIgnoreRule, apply_ignore_rules, ignore_rules_for
from gitops_tasks.diff.ignore import parse_pointer, validate_rules
from gitops_tasks.errors import PermanentError
from gitops_tasks.model.application import IgnoreDifference
from gitops_tasks.model.resources import ResourceKey

from .helpers import load

DEPLOY = ResourceKey("apps", "Deployment", "shop", "web")
CONFIGMAP = ResourceKey("", "ConfigMap", "shop", "web-config")
CLUSTER_ROLE = ResourceKey("rbac.authorization.k8s.io", "ClusterRole", "", "reader")


@pytest.mark.parametrize(("rule", "key", "matches"), [
    (IgnoreDifference(kind="Deployment", group="apps"), DEPLOY, True),
    (IgnoreDifference(kind="Deployment"), DEPLOY, False),  # "" is the core group
    (IgnoreDifference(kind="ConfigMap"), CONFIGMAP, True),
    (IgnoreDifference(kind="ConfigMap", group="apps"), CONFIGMAP, False),
    (IgnoreDifference(kind="*", group="*"), CONFIGMAP, True),
    (IgnoreDifference(kind="*", group="*"), DEPLOY, True),
    (IgnoreDifference(kind="Deploy*", group="app?"), DEPLOY, True),
    (IgnoreDifference(kind="*Role", group="*.k8s.io"), CLUSTER_ROLE, True),
    (IgnoreDifference(kind="deployment", group="apps"), DEPLOY, False),  # kinds are case-sensitive
    (IgnoreDifference(kind="Deployment", group="apps", name="web"), DEPLOY, True),
    (IgnoreDifference(kind="Deployment", group="apps", name="api"), DEPLOY, False),
    (IgnoreDifference(kind="Deployment", group="apps", namespace="shop"), DEPLOY, True),
    (IgnoreDifference(kind="Deployment", group="apps", namespace="prod"), DEPLOY, False),
    (IgnoreDifference(kind="ClusterRole", group="*", namespace="shop"), CLUSTER_ROLE, False),
])
def test_rule_matching(rule: IgnoreDifference, key: ResourceKey, matches: bool) -> None:
    assert ignore_rules_for(key, [rule]) == ([rule] if matches else [])


def test_matching_keeps_rule_order() -> None:
    a = IgnoreDifference(kind="*", group="*", json_pointers=("/a",))
    b = IgnoreDifference(kind="Deployment", group="apps", json_pointers=("/b",))
    c = IgnoreDifference(kind="Service", json_pointers=("/c",))
    assert ignore_rules_for(DEPLOY, [a, c, b]) == [a, b]


def jp(*pointers: str) -> list[IgnoreDifference]:
    return [IgnoreDifference(kind="*", group="*", json_pointers=pointers)]


def jq(*expressions: str) -> list[IgnoreDifference]:
    return [IgnoreDifference(kind="*", group="*", jq_path_expressions=expressions)]


OBJ: dict[str, Any] = {
    "metadata": {"annotations": {"example.com/owner": "x", "a~b": "y", "keep": "z"}},
    "spec": {"items": [{"name": "a"}, {"name": "b"}, {"name": "c"}], "replicas": 2},
}


@pytest.mark.parametrize(("pointers", "expected_annotations", "expected_items"), [
    (("/metadata/annotations/example.com~1owner",), {"a~b": "y", "keep": "z"}, "abc"),
    (("/metadata/annotations/a~0b",), {"example.com/owner": "x", "keep": "z"}, "abc"),
    (("/spec/items/1",), OBJ["metadata"]["annotations"], "ac"),
    (("/spec/items/0", "/spec/items/2"), OBJ["metadata"]["annotations"], "b"),
    (("/spec/items/0/name",), OBJ["metadata"]["annotations"], "bc"),  # item 0 left empty: {}
    (("/spec/items/9", "/spec/items/-", "/nope/x", "/spec/replicas/x"),
     OBJ["metadata"]["annotations"], "abc"),
])
def test_json_pointers(pointers: tuple[str, ...], expected_annotations: dict[str, str],
                       expected_items: str) -> None:
    out = apply_ignore_rules(OBJ, jp(*pointers))
    assert out["metadata"]["annotations"] == expected_annotations
    assert "".join(i.get("name", "") for i in out["spec"]["items"]) == expected_items


def test_pointer_parsing() -> None:
    assert parse_pointer("/a~1b/~01/0") == ["a/b", "~1", "0"]
    assert parse_pointer("") == []


def test_rules_never_modify_their_input() -> None:
    before = copy.deepcopy(OBJ)
    apply_ignore_rules(OBJ, [*jp("/spec/items/0"), *jq(".spec.replicas")])
    assert before == OBJ


@pytest.mark.parametrize(("expression", "remaining"), [
    ('.spec.items[] | select(.name == "b")', "ac"),
    (".spec.items[1:]", "a"),
    (".spec.items[-1]", "ab"),
    ('.spec.items[] | select(.name != "b")', "b"),
    (".spec.items", ""),
    ('.spec.items[] | select(.name == "zzz")', "abc"),
    (".spec.missing[]?", "abc"),
    (".spec.missing[]", "abc"),  # "Cannot iterate over null": nothing to ignore here
    ("# a comment only\n.spec.items[0]", "bc"),
])
def test_jq_path_expressions(expression: str, remaining: str) -> None:
    out = apply_ignore_rules(OBJ, jq(expression))
    assert "".join(i["name"] for i in out["spec"].get("items", [])) == remaining


def test_jq_with_a_quoted_key() -> None:
    obj = {"data": {"config.yaml": "x", "mode": "prod"}}
    assert apply_ignore_rules(obj, jq('.data["config.yaml"]')) == {"data": {"mode": "prod"}}


@pytest.mark.parametrize(("expression", "says"), [
    (".spec.items[", "syntax error"),
    ("select(", "syntax error"),
    (".spec.replicas + 1", "Invalid path expression"),
    ('"constant"', "Invalid path expression"),
])
def test_invalid_jq_is_a_clear_permanent_error(expression: str, says: str) -> None:
    with pytest.raises(InvalidIgnoreRule) as info:
        apply_ignore_rules(OBJ, jq(expression))
    assert isinstance(info.value, PermanentError)
    assert info.value.expression == expression
    message = str(info.value)
    assert repr(expression) in message and says in message
    assert "ignoreDifferences" in message and "<top-level>" not in message


def test_validate_rules_reports_a_broken_expression_up_front() -> None:
    validate_rules(jq(".spec.replicas", '.data["x"]'))
    with pytest.raises(InvalidIgnoreRule, match=r"\.spec\["):
        validate_rules(jq(".spec.replicas", ".spec["))


def test_managed_fields_of_live_apply_to_any_object() -> None:
    live = load("deployment-kubectl-edit.yaml")["live"]
    predicted = load("deployment-kubectl-edit.yaml")["predicted"]
    rules = [IgnoreDifference(kind="Deployment", group="apps",
                              managed_fields_managers=("kubectl-edit",))]
    out = apply_ignore_rules(predicted, rules, managed_fields=live["metadata"]["managedFields"])
    assert "image" not in out["spec"]["template"]["spec"]["containers"][0]
    # Without an explicit list the object's own managedFields are used: predicted has no
    # kubectl-edit entry (the forced apply took the field back), so nothing goes.
    out = apply_ignore_rules(predicted, rules)
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
