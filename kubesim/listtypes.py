"""How the API server treats each list (and a few maps) of an object.

Used by server-side apply (`fieldmanager`) and strategic merge patch (`patches`). A real API
server reads this from the OpenAPI extensions `x-kubernetes-list-type`,
`x-kubernetes-list-map-keys`, `x-kubernetes-patch-merge-key` and `x-kubernetes-map-type`. For
built-in kinds we keep the representative subset our controller and its tests meet; for custom
resources `for_schema` reads them from the CRD's structural schema of the version served, as the
apiextensions-apiserver does when it builds its structured-merge-diff types.

A *path* here is the tuple of field names from the object root to the list, with list items left
out: `("spec", "template", "spec", "containers", "ports")` names every container's ports. The
same path names the items of that list when they are maps (`is_atomic_map`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ListKind = Literal["atomic", "set", "map"]


@dataclass(frozen=True)
class ListType:
    """Server-side-apply semantics of a list, plus its strategic-merge-patch strategy."""

    kind: ListKind
    # For kind "map": the fields that identify an item (x-kubernetes-list-map-keys).
    keys: tuple[str, ...] = ()
    # Values a key field takes when an item omits it (e.g. ports' protocol defaults to TCP).
    key_defaults: dict[str, Any] = field(default_factory=dict)
    # Strategic merge patch: the merge key (x-kubernetes-patch-merge-key), "" for none.
    smp_key: str = ""
    # Strategic merge patch: True for patchStrategy "merge" (primitive lists: union).
    smp_merge: bool = False


ATOMIC = ListType("atomic")

_BY_NAME = ListType("map", ("name",), smp_key="name", smp_merge=True)
_CONTAINER_PORTS = ListType(
    "map",
    ("containerPort", "protocol"),
    {"protocol": "TCP"},
    smp_key="containerPort",
    smp_merge=True,
)
_SERVICE_PORTS = ListType(
    "map", ("port", "protocol"), {"protocol": "TCP"}, smp_key="port", smp_merge=True
)
_CONDITIONS = ListType("map", ("type",), smp_key="type", smp_merge=True)

# Lists under metadata behave the same for every kind, custom resources included.
_METADATA: dict[str, ListType] = {
    "finalizers": ListType("set", smp_merge=True),
    "ownerReferences": ListType("map", ("uid",), smp_key="uid", smp_merge=True),
    "managedFields": ATOMIC,
}

# Built-in kinds: keyed by the list's own field name, refined by its parent where names clash.
_BUILTIN_BY_NAME: dict[str, ListType] = {
    "containers": _BY_NAME,
    "initContainers": _BY_NAME,
    "ephemeralContainers": _BY_NAME,
    "volumes": _BY_NAME,
    "env": _BY_NAME,
    "imagePullSecrets": _BY_NAME,
    "resourceClaims": _BY_NAME,
    "secrets": _BY_NAME,
    "volumeMounts": ListType("map", ("mountPath",), smp_key="mountPath", smp_merge=True),
    "volumeDevices": ListType("map", ("devicePath",), smp_key="devicePath", smp_merge=True),
    "hostAliases": ListType("map", ("ip",), smp_key="ip", smp_merge=True),
    "topologySpreadConstraints": ListType(
        "map",
        ("topologyKey", "whenUnsatisfiable"),
        smp_key="topologyKey",
        smp_merge=True,
    ),
    "conditions": _CONDITIONS,
}

_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})

# Maps (or structs) that are replaced whole: LabelSelector is `structType=atomic`, a Service's
# selector is `mapType=atomic`.
_ATOMIC_MAP_PATHS = frozenset(
    {
        ("spec", "selector"),
        ("spec", "jobTemplate", "spec", "selector"),
    }
)


def list_type(path: tuple[str, ...], builtin: bool) -> ListType:
    """The semantics of the list at `path` (field names only) in a built-in or custom object
    (custom meaning one without a schema: see `for_schema` for those that have one)."""
    return (BUILTIN if builtin else UNSTRUCTURED).list_type(path)


def is_atomic_map(path: tuple[str, ...], builtin: bool) -> bool:
    """True when the map at `path` is owned and replaced as a whole."""
    return (BUILTIN if builtin else UNSTRUCTURED).is_atomic_map(path)


class ListTypes:
    """List and map semantics of one kind of object; this base serves objects without a schema
    (every list atomic, every map granular, as structured-merge-diff's deduced type)."""

    # Built-in objects are Go structs whose struct fields exist even when empty.
    builtin = False

    def list_type(self, path: tuple[str, ...]) -> ListType:
        if len(path) == 2 and path[0] == "metadata" and path[1] in _METADATA:
            return _METADATA[path[1]]
        return ATOMIC

    def is_atomic_map(self, path: tuple[str, ...]) -> bool:
        return False


class _BuiltinTypes(ListTypes):
    builtin = True

    def list_type(self, path: tuple[str, ...]) -> ListType:
        if len(path) == 2 and path[0] == "metadata" and path[1] in _METADATA:
            return _METADATA[path[1]]
        if not path:
            return ATOMIC
        name = path[-1]
        if name == "ports":
            if len(path) >= 2 and path[-2] in _CONTAINER_LISTS:
                return _CONTAINER_PORTS
            if path == ("spec", "ports"):
                return _SERVICE_PORTS
            return ATOMIC
        if name == "conditions" and path[0] != "status":
            return ATOMIC
        return _BUILTIN_BY_NAME.get(name, ATOMIC)

    def is_atomic_map(self, path: tuple[str, ...]) -> bool:
        return path in _ATOMIC_MAP_PATHS


BUILTIN: ListTypes = _BuiltinTypes()
UNSTRUCTURED = ListTypes()

_LIST_TYPE = "x-kubernetes-list-type"
_LIST_MAP_KEYS = "x-kubernetes-list-map-keys"
_MAP_TYPE = "x-kubernetes-map-type"


class _SchemaTypes(ListTypes):
    """A custom resource's semantics read from its structural schema (`openAPIV3Schema`).

    As upstream: a list is atomic unless its schema says `set` or `map`, a map (or object) is
    granular unless it says `x-kubernetes-map-type: atomic`; fields the schema does not describe
    (below `x-kubernetes-preserve-unknown-fields`) get the deduced semantics. Answers are cached
    per path because the same paths are asked for on every walk of every object.
    """

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._schema = schema
        self._lists: dict[tuple[str, ...], ListType] = {}
        self._maps: dict[tuple[str, ...], bool] = {}

    def _node(self, path: tuple[str, ...]) -> Mapping[str, Any] | None:
        node: Mapping[str, Any] | None = self._schema
        for name in path:
            # Paths leave list items out, so a field below a list is looked up in its items.
            node = _items_of(node)
            if node is None:
                return None
            props = node.get("properties")
            extra = node.get("additionalProperties")
            if isinstance(props, Mapping) and isinstance(props.get(name), Mapping):
                node = props[name]
            elif isinstance(extra, Mapping):
                node = extra
            else:
                return None
        return node

    def list_type(self, path: tuple[str, ...]) -> ListType:
        hit = self._lists.get(path)
        if hit is None:
            hit = self._lists[path] = self._read_list_type(path)
        return hit

    def _read_list_type(self, path: tuple[str, ...]) -> ListType:
        if len(path) == 2 and path[0] == "metadata" and path[1] in _METADATA:
            return _METADATA[path[1]]
        node = self._node(path)
        if node is None:
            return ATOMIC
        kind = node.get(_LIST_TYPE)
        if kind == "set":
            return ListType("set")
        if kind == "map":
            keys = node.get(_LIST_MAP_KEYS)
            if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
                return ATOMIC  # CRD validation refuses this; never guess keys
            item = node.get("items")
            props = item.get("properties") if isinstance(item, Mapping) else None
            # A key field with a default may be omitted from an item (SMD fills it in).
            defaults = {
                k: props[k]["default"]
                for k in keys
                if isinstance(props, Mapping)
                and isinstance(props.get(k), Mapping)
                and props[k].get("default") is not None
            }
            return ListType("map", tuple(keys), defaults)
        return ATOMIC

    def is_atomic_map(self, path: tuple[str, ...]) -> bool:
        hit = self._maps.get(path)
        if hit is None:
            # At a list's path the map asked about is one of its items.
            node = _items_of(self._node(path))
            hit = self._maps[path] = node is not None and node.get(_MAP_TYPE) == "atomic"
        return hit


def _items_of(node: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The schema of the values a node holds: its items' (nested lists too) when it is a list."""
    while node is not None and node.get("type") == "array":
        items = node.get("items")
        node = items if isinstance(items, Mapping) else None
    return node


# Schemas by identity; the entry keeps its schema alive, so an id is never reused while cached.
_BY_SCHEMA: dict[int, tuple[Mapping[str, Any], ListTypes]] = {}


def for_schema(schema: Mapping[str, Any] | None) -> ListTypes:
    """The semantics of custom resources whose version has this structural schema (stored
    schemas are never mutated, so the answer is kept); UNSTRUCTURED when there is none."""
    if not isinstance(schema, Mapping):
        return UNSTRUCTURED
    hit = _BY_SCHEMA.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    if len(_BY_SCHEMA) > 256:
        _BY_SCHEMA.clear()
    types = _SchemaTypes(schema)
    _BY_SCHEMA[id(schema)] = (schema, types)
    return types


def item_key(item: Any, lt: ListType) -> tuple[Any, ...] | None:
    """The identity of a map-list item (key defaults filled in), None when it has no key."""
    if lt.kind != "map" or not isinstance(item, dict):
        return None
    values = []
    for k in lt.keys:
        if k in item:
            values.append(item[k])
        elif k in lt.key_defaults:
            values.append(lt.key_defaults[k])
        else:
            return None
    return tuple(values)
