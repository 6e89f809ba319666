"""How the API server treats each list (and a few maps) of an object.

Used by server-side apply (`fieldmanager`) and strategic merge patch (`patches`). A real API
server reads this from the OpenAPI extensions `x-kubernetes-list-type`,
`x-kubernetes-list-map-keys`, `x-kubernetes-patch-merge-key` and `x-kubernetes-map-type`; we keep
the representative subset our controller and its tests meet.

A *path* here is the tuple of field names from the object root to the list, with list items left
out: `("spec", "template", "spec", "containers", "ports")` names every container's ports.
"""

from __future__ import annotations

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
    """The semantics of the list at `path` (field names only) in a built-in or custom object."""
    if len(path) == 2 and path[0] == "metadata" and path[1] in _METADATA:
        return _METADATA[path[1]]
    if not builtin or not path:
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


def is_atomic_map(path: tuple[str, ...], builtin: bool) -> bool:
    """True when the map at `path` is owned and replaced as a whole."""
    return builtin and path in _ATOMIC_MAP_PATHS


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
