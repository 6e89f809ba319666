"""Structural-schema pruning, defaulting and validation of custom resources (kubesim.crdschema)."""

from __future__ import annotations

import copy
from typing import Any

from kubesim.crdschema import prune_and_default, validate

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["image"],
            "properties": {
                "image": {"type": "string", "minLength": 1},
                "replicas": {"type": "integer", "default": 1, "minimum": 0, "maximum": 10},
                "mode": {"type": "string", "enum": ["Fast", "Safe"], "default": "Safe"},
                "ratio": {"type": "number"},
                "enabled": {"type": "boolean", "default": True},
                "port": {"x-kubernetes-int-or-string": True},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8},
                "resources": {
                    "type": "object",
                    "default": {},
                    "properties": {
                        "cpu": {"type": "string", "default": "100m"},
                        "memory": {"type": "string"},
                    },
                },
                "ports": {
                    "type": "array",
                    "maxItems": 3,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "integer"},
                            "protocol": {"type": "string", "default": "TCP"},
                        },
                    },
                },
                "labels": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                },
                "limits": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"max": {"type": "integer", "default": 5}},
                    },
                },
                "config": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {
                        "known": {
                            "type": "object",
                            "properties": {"a": {"type": "string", "default": "x"}},
                        }
                    },
                },
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {
                        "spec": {"type": "object", "properties": {"x": {"type": "string"}}}
                    },
                },
                "note": {"type": "string", "nullable": True},
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "x-kubernetes-list-type": "set",
                },
            },
        },
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    },
}


def _widget(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default", "labels": {"a": "b"}, "annotations": {}},
        "spec": {"image": "nginx", **spec},
    }


def test_unknown_fields_are_pruned_at_every_level() -> None:
    obj = _widget(bogus=1, resources={"cpu": "1", "gpu": "2"}, ports=[{"port": 80, "extra": True}])
    obj["topLevel"] = "x"
    pruned = prune_and_default(obj, SCHEMA)
    assert pruned == [".spec.bogus", ".spec.resources.gpu", ".spec.ports[0].extra", ".topLevel"]
    assert "bogus" not in obj["spec"]
    assert obj["spec"]["resources"] == {"cpu": "1"}
    assert obj["spec"]["ports"] == [{"port": 80, "protocol": "TCP"}]
    assert "topLevel" not in obj


def test_root_type_and_object_meta_are_kept() -> None:
    obj = _widget()
    obj["metadata"]["unknownMetaField"] = 1  # metadata is the API machinery's, not the schema's
    before = copy.deepcopy(obj["metadata"])
    assert prune_and_default(obj, SCHEMA) == []
    assert obj["apiVersion"] == "example.com/v1"
    assert obj["kind"] == "Widget"
    assert obj["metadata"] == before


def test_preserve_unknown_fields_subtree_is_kept_but_known_fields_handled() -> None:
    obj = _widget(config={"anything": {"deep": [1, {"x": None}]}, "known": {"b": 1}})
    pruned = prune_and_default(obj, SCHEMA)
    assert pruned == [".spec.config.known.b"]
    assert obj["spec"]["config"] == {"anything": {"deep": [1, {"x": None}]}, "known": {"a": "x"}}


def test_preserve_unknown_fields_at_root() -> None:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    obj = _widget(whatever={"a": 1})
    assert prune_and_default(obj, schema) == []
    assert obj["spec"]["whatever"] == {"a": 1}


def test_embedded_resource_keeps_type_and_object_meta() -> None:
    template = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"x": "y", "z": 1},
    }
    obj = _widget(template=template)
    assert prune_and_default(obj, SCHEMA) == [".spec.template.spec.z"]
    assert obj["spec"]["template"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"x": "y"},
    }
    assert validate(obj, SCHEMA) == []

    obj["spec"]["template"] = {"spec": {}}
    assert validate(obj, SCHEMA) == [
        ("spec.template.apiVersion", "Required value: must not be empty"),
        ("spec.template.kind", "Required value: must not be empty"),
    ]


def test_defaults_applied_in_nested_objects_array_items_and_maps() -> None:
    obj = _widget(
        ports=[{"port": 80}, {"port": 53, "protocol": "UDP"}], limits={"a": {}, "b": {"max": 1}}
    )
    prune_and_default(obj, SCHEMA)
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["mode"] == "Safe"
    assert spec["enabled"] is True
    # A defaulted object gets the defaults of its own properties too.
    assert spec["resources"] == {"cpu": "100m"}
    assert spec["ports"] == [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]
    assert spec["limits"] == {"a": {"max": 5}, "b": {"max": 1}}
    assert "status" not in obj  # no parent, no defaults below it


def test_explicit_values_win_and_nulls() -> None:
    obj = _widget(replicas=0, enabled=False, mode=None, note=None, name=None)
    prune_and_default(obj, SCHEMA)
    spec = obj["spec"]
    assert spec["replicas"] == 0
    assert spec["enabled"] is False
    assert spec["mode"] == "Safe"  # null on a non-nullable field with a default: defaulted
    assert spec["note"] is None  # nullable: kept
    assert "name" not in spec  # null, non-nullable, no default: dropped
    assert validate(obj, SCHEMA) == []


def test_defaulting_is_idempotent() -> None:
    obj = _widget(ports=[{"port": 80}])
    prune_and_default(obj, SCHEMA)
    again = copy.deepcopy(obj)
    assert prune_and_default(again, SCHEMA) == []
    assert again == obj


def test_valid_object_has_no_errors() -> None:
    obj = _widget(replicas=3, ratio=1, port="http", name="web", tags=["a", "b"], labels={"k": "v"})
    prune_and_default(obj, SCHEMA)
    assert validate(obj, SCHEMA) == []
    obj["spec"].update(ratio=0.5, port=8080)
    assert validate(obj, SCHEMA) == []


def test_wrong_type_messages_match_kubernetes() -> None:
    obj = _widget(replicas="string")
    assert validate(obj, SCHEMA) == [
        (
            "spec.replicas",
            'Invalid value: "string": spec.replicas in body must be of type integer: "string"',
        )
    ]
    cases = {
        "replicas": (True, "integer", "boolean"),
        "ratio": ("1", "number", "string"),
        "enabled": ("yes", "boolean", "string"),
        "resources": ([], "object", "array"),
        "ports": ({}, "array", "object"),
        "image": (5, "string", "integer"),
    }
    for field, (value, expected, actual) in cases.items():
        errors = validate(_widget(**{field: value}), SCHEMA)
        assert errors == [
            (
                f"spec.{field}",
                f'Invalid value: "{actual}": '
                f'spec.{field} in body must be of type {expected}: "{actual}"',
            )
        ], field


def test_int_or_string() -> None:
    (error,) = validate(_widget(port=1.5), SCHEMA)
    assert error[0] == "spec.port"
    assert "must be of type integer,string" in error[1]


def test_required_fields() -> None:
    obj = _widget(ports=[{"protocol": "TCP"}])
    del obj["spec"]["image"]
    assert validate(obj, SCHEMA) == [
        ("spec.image", "Required value"),
        ("spec.ports[0].port", "Required value"),
    ]


def test_enum() -> None:
    assert validate(_widget(mode="Slow"), SCHEMA) == [
        ("spec.mode", 'Unsupported value: "Slow": supported values: "Fast", "Safe"')
    ]


def test_value_limits() -> None:
    assert validate(_widget(replicas=-1), SCHEMA) == [
        (
            "spec.replicas",
            "Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
        )
    ]
    assert validate(_widget(replicas=11), SCHEMA) == [
        (
            "spec.replicas",
            "Invalid value: 11: spec.replicas in body should be less than or equal to 10",
        )
    ]
    assert validate(_widget(image=""), SCHEMA) == [
        ("spec.image", 'Invalid value: "": spec.image in body should be at least 1 chars long')
    ]
    assert validate(_widget(name="Web"), SCHEMA) == [
        ("spec.name", "Invalid value: \"Web\": spec.name in body should match '^[a-z]+$'")
    ]
    assert validate(_widget(name="abcdefghi"), SCHEMA) == [
        ("spec.name", "Too long: may not be more than 8 bytes")
    ]
    assert validate(_widget(ports=[{"port": 1}] * 4), SCHEMA) == [
        ("spec.ports", "Too many: 4: must have at most 3 items")
    ]
    assert validate(_widget(tags=["a", "a"]), SCHEMA) == [("spec.tags[1]", 'Duplicate value: "a"')]


def test_nullable_and_additional_properties_validation() -> None:
    assert validate(_widget(note=None), SCHEMA) == []
    assert validate(_widget(image=None), SCHEMA) == [
        ("spec.image", 'Invalid value: "null": spec.image in body must be of type string: "null"')
    ]
    assert validate(_widget(labels={"k": 1}), SCHEMA) == [
        (
            "spec.labels.k",
            'Invalid value: "integer": spec.labels.k in body must be of type string: "integer"',
        )
    ]


def test_root_metadata_must_be_an_object() -> None:
    obj = _widget()
    obj["metadata"] = "nope"
    assert validate(obj, SCHEMA) == [
        ("metadata", 'Invalid value: "string": metadata in body must be of type object: "string"')
    ]


def test_additional_properties_true_keeps_scalars_only() -> None:
    # Without a schema for the values, upstream pruning empties the objects inside them.
    schema = {
        "type": "object",
        "properties": {"spec": {"type": "object", "additionalProperties": True}},
    }
    obj = _widget(free="text", nested={"a": 1})
    assert prune_and_default(obj, schema) == [".spec.nested.a"]
    assert obj["spec"] == {"image": "nginx", "free": "text", "nested": {}}
