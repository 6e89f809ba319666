"""The fields of every built-in kind, for a real API server's unknown-field handling.

A real server decodes a built-in object into its typed Go struct: a field the struct does not
declare is dropped, and `fieldValidation` decides whether that is silent (Ignore), a warning
(Warn, the default) or a 400 (Strict). Server-side apply converts the patch to a typed value
against the same schema. The structs come from the Kubernetes OpenAPI; so do the models of the
official Python client, whose `openapi_types` (field -> type, e.g. 'V1ObjectMeta',
'List[V1Container]', 'Dict[str, str]', 'object', 'str') and `attribute_map` (Python name ->
JSON name) we read here. Importing `kubernetes.client.models` takes a while, so it happens on the
first lookup, not when kubesim is imported.

Fields typed 'object' (IntOrString, RawExtension, JSON, fieldsV1, JSONSchemaPropsOrArray...) are
opaque: anything goes below them. Maps (`Dict[str, X]`) accept every key and check their values
as X. A CRD's `openAPIV3Schema` is a JSONSchemaProps struct, as on a real server: its keywords
are checked, while property names (a map), `items`, `default`, `example` and
`additionalProperties` (opaque) are not. Older clients write 'list[X]' and 'dict(str, X)'.

Paths: `unknown_fields` and `prune_unknown` report `.spec.replcas`, `.metadata.bogus`,
`.spec.template.spec.containers[0].imagee` (list items by index, map keys as fields), the form a
strict decoding error builds on; `apply_path` renders one the way server-side apply's typed
conversion does, list items of keyed lists by their keys: `.spec.template.spec.containers[name=
"app"].imagee`.
"""

from __future__ import annotations

import re
import threading
from typing import Any

__all__ = ["apply_path", "find_unknown", "known_kind", "path_string", "prune_unknown",
           "unknown_fields"]

# A schema node: (_STRUCT, {json field: node or None}), (_LIST, item node) or (_MAP, value node);
# None stands for a scalar or an opaque value, which is never walked into.
_STRUCT = 0
_LIST = 1
_MAP = 2
Node = tuple[int, Any]
RawPath = tuple[str | int, ...]

_SCALARS = frozenset({"str", "int", "float", "bool", "datetime", "date", "object", "bytearray",
                      "file"})
_LIST_RE = re.compile(r"^(?:List|list)\[(.*)\]$")
_MAP_RE = re.compile(r"^(?:Dict\[str, *(.*)\]|dict\(str, *(.*)\))$")

# Model class name -> node; a node is registered before its fields are filled in, so recursive
# types (JSONSchemaProps) refer to themselves. Only built under _LOCK.
_CLASS_NODES: dict[str, Node | None] = {}
# (group, version, kind, skip status) -> root node (None: the client has no model for the
# kind); published only once complete, so readers need no lock.
_KIND_NODES: dict[tuple[str, str, str, bool], Node | None] = {}
_LOCK = threading.Lock()
_MISSING: Any = object()


def _models() -> Any:
    import kubernetes.client.models as models  # slow: only on first use

    return models


def _model_class_name(group: str, version: str, kind: str) -> str | None:
    """The client's model class for a kind: `V1Deployment`, `V2HorizontalPodAutoscaler`, or with
    the group as prefix where the client disambiguates (`CoreV1Event` beside `EventsV1Event`)."""
    models = _models()
    ver = version[:1].upper() + version[1:]
    prefix = (group.split(".")[0] or "core").capitalize()
    for name in (f"{prefix}{ver}{kind}", f"{ver}{kind}"):
        cls = getattr(models, name, None)
        if isinstance(cls, type) and hasattr(cls, "openapi_types"):
            return name
    return None


def _type_node(type_str: str) -> Node | None:
    type_str = type_str.strip()
    if type_str in _SCALARS:
        return None
    m = _LIST_RE.match(type_str)
    if m:
        item = _type_node(m.group(1))
        return None if item is None else (_LIST, item)
    m = _MAP_RE.match(type_str)
    if m:
        value = _type_node(m.group(1) or m.group(2))
        return None if value is None else (_MAP, value)
    return _class_node(type_str)


def _class_node(name: str) -> Node | None:
    if name in _CLASS_NODES:
        return _CLASS_NODES[name]
    cls = getattr(_models(), name, None)
    types = getattr(cls, "openapi_types", None)
    attrs = getattr(cls, "attribute_map", None)
    if not isinstance(types, dict) or not isinstance(attrs, dict):
        # Not a model the client knows: treat as opaque rather than flag everything under it.
        _CLASS_NODES[name] = None
        return None
    fields: dict[str, Node | None] = {}
    node: Node = (_STRUCT, fields)
    _CLASS_NODES[name] = node
    for attr, type_str in types.items():
        fields[str(attrs.get(attr, attr))] = _type_node(str(type_str))
    return node


def _kind_node(group: str, version: str, kind: str, skip_status: bool = False) -> Node | None:
    key = (group, version, kind, skip_status)
    if key in _KIND_NODES:
        return _KIND_NODES[key]
    with _LOCK:
        if key in _KIND_NODES:
            return _KIND_NODES[key]
        try:
            name = _model_class_name(group, version, kind)
        except ImportError:  # pragma: no cover - the client is a dependency of the project
            name = None
        node = _class_node(name) if name else None
        if node is not None:
            # TypeMeta is always known, whatever the model says; the model's own node is
            # shared with other types' fields, so the root gets a copy.
            fields = {**node[1], "apiVersion": None, "kind": None}
            if skip_status and "status" in fields:
                fields["status"] = None
            node = (_STRUCT, fields)
        _KIND_NODES[key] = node
    return node


def known_kind(group: str, version: str, kind: str) -> bool:
    """Whether the fields of this kind are known (False: nothing is ever reported for it)."""
    return _kind_node(group, version, kind) is not None


def _walk(value: Any, node: Node, path: list[str | int],
          out: list[tuple[RawPath, dict[str, Any], str]]) -> None:
    kind, sub = node
    if kind == _STRUCT:
        if type(value) is not dict:
            return
        for k, v in value.items():
            child = sub.get(k, _MISSING)
            if child is _MISSING:
                out.append(((*path, k), value, k))
            elif child is not None and (type(v) is dict or type(v) is list):
                path.append(k)
                _walk(v, child, path, out)
                path.pop()
    elif kind == _LIST:
        if type(value) is not list:
            return
        for i, item in enumerate(value):
            path.append(i)
            _walk(item, sub, path, out)
            path.pop()
    else:
        if type(value) is not dict:
            return
        for k, v in value.items():
            if type(v) is dict or type(v) is list:
                path.append(k)
                _walk(v, sub, path, out)
                path.pop()


def _find(obj: Any, group: str, version: str, kind: str,
          skip_status: bool) -> list[tuple[RawPath, dict[str, Any], str]]:
    node = _kind_node(group, version, kind, skip_status)
    out: list[tuple[RawPath, dict[str, Any], str]] = []
    if node is not None:
        _walk(obj, node, [], out)
    return out


def find_unknown(obj: Any, group: str, version: str, kind: str, *,
                 skip_status: bool = False) -> list[RawPath]:
    """The unknown fields of `obj` as raw paths: field names and map keys as strings, list
    indexes as ints, e.g. ("spec", "template", "spec", "containers", 0, "imagee").
    `skip_status`: take `.status` as opaque (a write to the main resource keeps the stored
    status, whatever the body says)."""
    return [p for p, _, _ in _find(obj, group, version, kind, skip_status)]


def path_string(path: RawPath) -> str:
    """`.spec.template.spec.containers[0].imagee`"""
    return "".join(f"[{e}]" if isinstance(e, int) else f".{e}" for e in path)


def unknown_fields(obj: Any, group: str, version: str, kind: str, *,
                   skip_status: bool = False) -> list[str]:
    """Paths of the fields of `obj` its kind does not declare, in document order."""
    return [path_string(p) for p, _, _ in _find(obj, group, version, kind, skip_status)]


def prune_unknown(obj: Any, group: str, version: str, kind: str, *,
                  skip_status: bool = False) -> list[str]:
    """Drop the undeclared fields of `obj` in place; returns their paths (as unknown_fields)."""
    found = _find(obj, group, version, kind, skip_status)
    for _, parent, key in found:
        parent.pop(key, None)
    return [path_string(p) for p, _, _ in found]


def apply_path(obj: Any, path: RawPath) -> str:
    """A raw path of `obj` as server-side apply prints it (structured-merge-diff's
    fieldpath): items of keyed lists by their keys, `.spec.template.spec.containers[name="app"]
    .imagee`, set items by value, other lists by index."""
    from . import fieldmanager
    from .listtypes import list_type

    fpath: list[str] = []
    elems: list[str] = []
    value = obj
    for e in path:
        if isinstance(e, int):
            lt = list_type(tuple(fpath), True)
            item = value[e] if isinstance(value, list) and e < len(value) else None
            elems.append(fieldmanager._item_elem(item, lt, e) if item is not None else f"i:{e}")
            value = item
        else:
            fpath.append(e)
            elems.append("f:" + e)
            value = value.get(e) if isinstance(value, dict) else None
    return fieldmanager.path_string(tuple(elems))
