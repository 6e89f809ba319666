"""Structural-schema handling for custom resources: pruning, defaulting and validation.

Called by the kubesim custom-resource handlers on every write of a custom resource (create,
update, patch, server-side apply, dry runs included) with the `schema.openAPIV3Schema` of the
CRD version being written: first `prune_and_default`, then `validate`, answering 422 Invalid when
that returns errors. This mirrors the apiextensions-apiserver, whose decoder prunes unknown fields
and applies `default`s before validation, so a controller reading back a custom resource sees
the same object a real cluster would store.

Field paths: `prune_and_default` reports pruned fields as `.spec.foo` (the form kubectl's
"unknown field" warnings build on); `validate` reports `spec.foo` and `spec.items[0]`, the form of
a real server's `details.causes[].field`, with messages in Kubernetes' wording.
"""

from __future__ import annotations

import copy
import json
import math
import re
from typing import Any

JSON = dict[str, Any]
FieldError = tuple[str, str]

__all__ = ["prune_and_default", "validate"]

# apiVersion, kind and metadata of a resource (the root, or an embedded resource) are governed by
# the API machinery, not by the CRD's schema.
_META_FIELDS = frozenset({"apiVersion", "kind", "metadata"})

_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_EMBEDDED = "x-kubernetes-embedded-resource"
_INT_OR_STRING = "x-kubernetes-int-or-string"


def prune_and_default(obj: JSON, schema: JSON) -> list[str]:
    """Drop fields the schema does not know and fill in its `default`s, in place.

    Returns the paths of the pruned fields (`.spec.foo`, `.spec.items[0].bar`), in the order
    met. Unknown fields survive under `x-kubernetes-preserve-unknown-fields: true` (known
    properties below it are still pruned and defaulted); the root's apiVersion, kind and
    metadata, and those of embedded resources, are always kept.
    """
    pruned: list[str] = []
    root = _root_schema(schema)
    _prune(obj, root, "", pruned)
    _default(obj, root, is_root=True)
    return pruned


def validate(obj: JSON, schema: JSON) -> list[FieldError]:
    """Check `obj` against the schema; returns `(field path, message)` pairs, empty when valid.

    Covers type (with `nullable` and `x-kubernetes-int-or-string`), `required`, `enum`,
    `minimum`/`maximum` (and their exclusive forms), `multipleOf`, `minLength`/`maxLength`,
    `pattern`, `minItems`/`maxItems`, `minProperties`/`maxProperties`, list-type `set`/`map`
    uniqueness, `allOf`/`anyOf`/`oneOf`/`not`, and apiVersion/kind of embedded resources.
    Root metadata is only checked to be an object.
    """
    errors: list[FieldError] = []
    if not isinstance(obj, dict):
        errors.append(_type_error("", obj, "object"))
        return errors
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        errors.append(_type_error("metadata", metadata, "object"))
    _validate(obj, _root_schema(schema), "", errors, is_root=True)
    return errors


def _root_schema(schema: Any) -> JSON:
    # The root is a resource, so it keeps its TypeMeta and ObjectMeta like an embedded one.
    root = dict(schema) if isinstance(schema, dict) else {}
    root[_EMBEDDED] = True
    return root


# --------------------------------------------------------------------------------------------
# Schema access. Schemas come from user-written CRDs, so anything malformed reads as absent.


def _properties(schema: JSON) -> dict[str, JSON]:
    props = schema.get("properties")
    if not isinstance(props, dict):
        return {}
    return {k: v for k, v in props.items() if isinstance(v, dict)}


def _additional(schema: JSON) -> tuple[bool, JSON | None]:
    """Whether additionalProperties admits unknown keys, and the schema for their values.

    `false` reads as absent: CRD validation forbids it, and without it unknown keys are pruned.
    `true` admits keys with no schema for their values, so (as upstream) the objects inside
    them are emptied while scalars stay.
    """
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        return True, extra
    return extra is True, None


def _items_schema(schema: JSON | None) -> JSON | None:
    if schema is None:
        return None
    items = schema.get("items")
    return items if isinstance(items, dict) else None


def _flag(schema: JSON | None, key: str) -> bool:
    return schema is not None and schema.get(key) is True


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --------------------------------------------------------------------------------------------
# Pruning (apiextensions-apiserver pkg/apiserver/schema/pruning).


def _prune(value: Any, schema: JSON | None, path: str, pruned: list[str]) -> None:
    if _flag(schema, _PRESERVE):
        _prune_known(value, schema, path, pruned)
        return
    if isinstance(value, dict):
        if schema is None:
            # No schema at all (items of `additionalProperties: true`): nothing inside is known.
            for key in list(value):
                pruned.append(f"{path}.{key}")
                del value[key]
            return
        embedded = _flag(schema, _EMBEDDED)
        props = _properties(schema)
        allows_extra, extra = _additional(schema)
        for key in list(value):
            if embedded and key in _META_FIELDS:
                continue
            if key in props:
                _prune(value[key], props[key], f"{path}.{key}", pruned)
            elif allows_extra:
                _prune(value[key], extra, f"{path}.{key}", pruned)
            else:
                pruned.append(f"{path}.{key}")
                del value[key]
    elif isinstance(value, list):
        items = _items_schema(schema)
        for index, item in enumerate(value):
            _prune(item, items, f"{path}[{index}]", pruned)


def _prune_known(value: Any, schema: JSON | None, path: str, pruned: list[str]) -> None:
    """Below x-kubernetes-preserve-unknown-fields: keep unknown keys, prune inside known ones."""
    if schema is None:
        return
    if isinstance(value, dict):
        embedded = _flag(schema, _EMBEDDED)
        props = _properties(schema)
        allows_extra, extra = _additional(schema)
        for key, child in value.items():
            if embedded and key in _META_FIELDS:
                continue
            if key in props:
                _prune(child, props[key], f"{path}.{key}", pruned)
            elif allows_extra:
                _prune(child, extra, f"{path}.{key}", pruned)
    elif isinstance(value, list):
        items = _items_schema(schema)
        for index, item in enumerate(value):
            _prune_known(item, items, f"{path}[{index}]", pruned)


# --------------------------------------------------------------------------------------------
# Defaulting (apiextensions-apiserver pkg/apiserver/schema/defaulting).


def _has_default(schema: JSON | None) -> bool:
    # `default: null` is no default at all upstream.
    return schema is not None and schema.get("default") is not None


def _non_nullable_null(value: Any, schema: JSON | None) -> bool:
    return value is None and schema is not None and not _flag(schema, "nullable")


def _default(value: Any, schema: JSON | None, *, is_root: bool = False) -> None:
    if schema is None:
        return
    if isinstance(value, dict):
        props = _properties(schema)
        for key, prop in props.items():
            if is_root and key in _META_FIELDS:
                continue
            # An explicit null counts as absent unless the field is nullable.
            if _has_default(prop) and (key not in value or _non_nullable_null(value[key], prop)):
                value[key] = copy.deepcopy(prop["default"])
        _, extra = _additional(schema)
        for key in list(value):
            if is_root and key in _META_FIELDS:
                continue
            if key in props:
                prop = props[key]
                if _non_nullable_null(value[key], prop):
                    # Nulls of non-nullable fields without a default are dropped, as upstream
                    # does before defaulting; they would fail validation otherwise.
                    del value[key]
                else:
                    _default(value[key], prop)
            elif extra is not None:
                if _has_default(extra) and _non_nullable_null(value[key], extra):
                    value[key] = copy.deepcopy(extra["default"])
                _default(value[key], extra)
    elif isinstance(value, list):
        items = _items_schema(schema)
        for index, item in enumerate(value):
            if items is not None and _has_default(items) and _non_nullable_null(item, items):
                value[index] = copy.deepcopy(items["default"])
            _default(value[index], items)


# --------------------------------------------------------------------------------------------
# Validation (kube-openapi validate, as apiextensions-apiserver converts its errors).


def _type_name(value: Any) -> str:
    """The OpenAPI type of a JSON value, as kube-openapi names it in errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: Any, type_: str) -> bool:
    if type_ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "object":
        return isinstance(value, dict)
    if type_ == "array":
        return isinstance(value, list)
    return True  # unknown type names are rejected when the CRD is created, not here


def _render(value: Any) -> str:
    """A bad value as field.Error prints it: quoted strings, bare numbers, JSON otherwise."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _body(path: str) -> str:
    return path or "body"


def _invalid(path: str, value: Any, detail: str) -> FieldError:
    return path, f"Invalid value: {_render(value)}: {detail}"


def _type_error(path: str, value: Any, expected: str) -> FieldError:
    actual = _type_name(value)
    detail = f"{_body(path)} in body must be of type {expected}: {json.dumps(actual)}"
    return _invalid(path, actual, detail)


def _validate(
    value: Any, schema: JSON | None, path: str, errors: list[FieldError], *, is_root: bool = False
) -> None:
    if schema is None:
        return
    if value is None:
        if _flag(schema, "nullable"):
            return
        type_ = schema.get("type")
        if isinstance(type_, str) and type_:
            errors.append(_type_error(path, value, type_))
        elif _flag(schema, _INT_OR_STRING):
            errors.append(_type_error(path, value, "integer,string"))
        return

    if _flag(schema, _INT_OR_STRING):
        if not (_is_type(value, "integer") or _is_type(value, "string")):
            errors.append(_type_error(path, value, "integer,string"))
            return
    else:
        type_ = schema.get("type")
        if isinstance(type_, str) and type_ and not _is_type(value, type_):
            errors.append(_type_error(path, value, type_))
            return  # further checks on a value of the wrong type only add noise

    enum = schema.get("enum")
    if isinstance(enum, list) and not any(_json_equal(value, allowed) for allowed in enum):
        supported = ", ".join(_render(allowed) for allowed in enum)
        errors.append((path, f"Unsupported value: {_render(value)}: supported values: {supported}"))

    if _is_type(value, "number"):
        _validate_number(value, schema, path, errors)
    elif isinstance(value, str):
        _validate_string(value, schema, path, errors)
    elif isinstance(value, list):
        _validate_array(value, schema, path, errors)
    elif isinstance(value, dict):
        _validate_object(value, schema, path, errors, is_root=is_root)

    _validate_combinators(value, schema, path, errors)


def _int_keyword(schema: JSON, key: str) -> int | None:
    value = schema.get(key)
    return value if _is_type(value, "integer") else None


def _number_keyword(schema: JSON, key: str) -> float | None:
    value = schema.get(key)
    return value if _is_type(value, "number") else None


def _validate_number(value: float, schema: JSON, path: str, errors: list[FieldError]) -> None:
    def fail(detail: str) -> None:
        errors.append(_invalid(path, value, f"{_body(path)} in body should be {detail}"))

    minimum = _number_keyword(schema, "minimum")
    if minimum is not None:
        if _flag(schema, "exclusiveMinimum"):
            if value <= minimum:
                fail(f"greater than {_number(minimum)}")
        elif value < minimum:
            fail(f"greater than or equal to {_number(minimum)}")
    maximum = _number_keyword(schema, "maximum")
    if maximum is not None:
        if _flag(schema, "exclusiveMaximum"):
            if value >= maximum:
                fail(f"less than {_number(maximum)}")
        elif value > maximum:
            fail(f"less than or equal to {_number(maximum)}")
    factor = _number_keyword(schema, "multipleOf")
    if factor is not None and factor > 0:
        quotient = value / factor
        if not math.isclose(quotient, round(quotient), rel_tol=0, abs_tol=1e-9):
            fail(f"a multiple of {_number(factor)}")


def _validate_string(value: str, schema: JSON, path: str, errors: list[FieldError]) -> None:
    body = _body(path)
    # Lengths count characters (runes), as kube-openapi does.
    min_length = _int_keyword(schema, "minLength")
    if min_length is not None and len(value) < min_length:
        errors.append(
            _invalid(path, value, f"{body} in body should be at least {min_length} chars long")
        )
    max_length = _int_keyword(schema, "maxLength")
    if max_length is not None and len(value) > max_length:
        errors.append((path, f"Too long: may not be more than {max_length} bytes"))
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            # Unanchored, like Go's regexp.MatchString.
            matched = re.search(pattern, value) is not None
        except re.error:
            matched = True  # a pattern Python cannot compile is not ours to reject values with
        if not matched:
            errors.append(_invalid(path, value, f"{body} in body should match '{pattern}'"))


def _validate_array(value: list[Any], schema: JSON, path: str, errors: list[FieldError]) -> None:
    min_items = _int_keyword(schema, "minItems")
    if min_items is not None and len(value) < min_items:
        errors.append(
            _invalid(path, value, f"{_body(path)} in body should have at least {min_items} items")
        )
    max_items = _int_keyword(schema, "maxItems")
    if max_items is not None and len(value) > max_items:
        errors.append((path, f"Too many: {len(value)}: must have at most {max_items} items"))

    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set" or schema.get("uniqueItems") is True:
        seen: list[Any] = []
        for index, item in enumerate(value):
            if any(_json_equal(item, other) for other in seen):
                errors.append((f"{path}[{index}]", f"Duplicate value: {_render(item)}"))
            else:
                seen.append(item)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys")
        if isinstance(keys, list) and keys:
            seen_keys: list[JSON] = []
            for index, item in enumerate(value):
                if not isinstance(item, dict):
                    continue
                key = {k: item.get(k) for k in keys if k in item}
                if any(_json_equal(key, other) for other in seen_keys):
                    errors.append((f"{path}[{index}]", f"Duplicate value: {_render(key)}"))
                else:
                    seen_keys.append(key)

    items = _items_schema(schema)
    for index, item in enumerate(value):
        _validate(item, items, f"{path}[{index}]", errors)


def _validate_object(
    value: JSON, schema: JSON, path: str, errors: list[FieldError], *, is_root: bool
) -> None:
    body = _body(path)
    required = schema.get("required")
    if isinstance(required, list):
        for name in required:
            if (
                isinstance(name, str)
                and name not in value
                and not (is_root and name in _META_FIELDS)
            ):
                errors.append((_join(path, name), "Required value"))
    min_props = _int_keyword(schema, "minProperties")
    if min_props is not None and len(value) < min_props:
        errors.append(
            _invalid(path, value, f"{body} in body should have at least {min_props} properties")
        )
    max_props = _int_keyword(schema, "maxProperties")
    if max_props is not None and len(value) > max_props:
        errors.append((path, f"Too many: {len(value)}: must have at most {max_props} items"))

    embedded = _flag(schema, _EMBEDDED)
    if embedded and not is_root:
        _validate_embedded_type_meta(value, path, errors)

    props = _properties(schema)
    _, extra = _additional(schema)
    for key, child in value.items():
        if embedded and key in _META_FIELDS:
            continue  # TypeMeta and ObjectMeta follow the API machinery's rules, not the schema's
        if key in props:
            _validate(child, props[key], _join(path, key), errors)
        elif extra is not None:
            _validate(child, extra, _join(path, key), errors)


def _validate_embedded_type_meta(value: JSON, path: str, errors: list[FieldError]) -> None:
    for key in ("apiVersion", "kind"):
        field = _join(path, key)
        if key not in value:
            errors.append((field, "Required value: must not be empty"))
        elif not isinstance(value[key], str):
            errors.append(_invalid(field, value[key], "must be a string"))
        elif not value[key]:
            errors.append(_invalid(field, value[key], "must not be empty"))
    metadata = value.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        errors.append(_type_error(_join(path, "metadata"), metadata, "object"))


def _validate_combinators(value: Any, schema: JSON, path: str, errors: list[FieldError]) -> None:
    body = _body(path)
    all_of = schema.get("allOf")
    if isinstance(all_of, list):
        for sub in all_of:
            if isinstance(sub, dict):
                _validate(value, sub, path, errors)
    any_of = schema.get("anyOf")
    if isinstance(any_of, list):
        subs = [s for s in any_of if isinstance(s, dict)]
        if subs and not any(_passes(value, s, path) for s in subs):
            errors.append(
                _invalid(path, value, f"{body} in body must validate at least one schema (anyOf)")
            )
    one_of = schema.get("oneOf")
    if isinstance(one_of, list):
        subs = [s for s in one_of if isinstance(s, dict)]
        if subs and sum(_passes(value, s, path) for s in subs) != 1:
            errors.append(
                _invalid(
                    path, value, f"{body} in body must validate one and only one schema (oneOf)"
                )
            )
    not_schema = schema.get("not")
    if isinstance(not_schema, dict) and _passes(value, not_schema, path):
        errors.append(_invalid(path, value, f"{body} in body should not validate the given schema"))


def _passes(value: Any, schema: JSON, path: str) -> bool:
    probe: list[FieldError] = []
    _validate(value, schema, path, probe)
    return not probe


def _json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: true is not 1, and 1 equals 1.0 (both JSON numbers)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (dict, list, str)) or isinstance(b, (dict, list, str)):
        return type(a) is type(b) and bool(a == b)
    return bool(a == b)
