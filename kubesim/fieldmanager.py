"""Server-side apply and managed-fields tracking (`metadata.managedFields`).

Called by the kubesim request handlers: `apply()` for `application/apply-patch+yaml` PATCH requests
and `update()` for every other write (POST, PUT, JSON / merge / strategic merge PATCH, on the main
resource or a subresource). Pure functions on plain JSON dicts: no I/O, no HTTP, inputs are never
mutated.

The algorithms follow sigs.k8s.io/structured-merge-diff (SMD) `merge/update.go` (`Updater.Apply`,
`Updater.Update`, `update`, `prune`) plus the wrappers kube-apiserver puts around it
(`k8s.io/apimachinery/pkg/util/managedfields/internal`): stripping of metadata fields, the
"current-operation" trick that decides when an Update entry's `time` moves, "before-first-apply"
for objects that have no managed fields yet, the cap of 10 Update entries ("ancient-changes"), the
`[]` and `[{}]` resets, the translation of entries between a parent and its `/scale`
subresource, and the sort order of the encoded entries.

Field sets are Python sets of paths. A path is a tuple of path elements spelled exactly as in
`fieldsV1`: `"f:<field>"`, `"k:<compact JSON of the key fields>"` for items of map-lists,
`"v:<JSON>"` for items of set-lists and `"i:<index>"` for list items that have no key. A path in a
set means that the node itself is owned (SMD calls it a *member*); the `"."` key of `fieldsV1` is
only how the encoding marks a member that also has owned children, so it never appears in a path.
List and map semantics come from `kubesim.listtypes`: its table for built-in kinds, the CRD's
structural schema for custom resources; every key of a non-atomic map is treated as a named
field.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubesim import listtypes
from kubesim.listtypes import ListType, ListTypes, item_key

Path = tuple[str, ...]
FieldSet = set[Path]
# Field names only, list items left out: what `listtypes` understands.
_FPath = tuple[str, ...]

APPLY = "Apply"
UPDATE = "Update"
FIELDS_V1 = "FieldsV1"
BEFORE_FIRST_APPLY = "before-first-apply"
ANCIENT_CHANGES = "ancient-changes"
MAX_UPDATE_MANAGERS = 10

# Fields nobody owns (kube-apiserver's stripMetaManager, plus the server-set deletion fields). The
# bare ("f:metadata",) entry strips `metadata` itself as a member, never its children.
_IGNORED_TOP = ("apiVersion", "kind")
_IGNORED_META = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
)
IGNORED_PATHS: frozenset[Path] = frozenset(
    [("f:" + name,) for name in _IGNORED_TOP]
    + [("f:metadata",)]
    + [("f:metadata", "f:" + name) for name in _IGNORED_META]
)

# Built-in objects are Go structs: these fields are non-pointer structs (or required lists) that
# exist even in an empty object, so a real server never reports them as added or removed *nodes*,
# only their contents. (Custom resources are unstructured: every node can appear or vanish.) This
# is schema knowledge that would sit better in `listtypes`.
_ALWAYS_PRESENT = frozenset(
    {
        "metadata",
        "spec",
        "status",
        "template",
        "jobTemplate",
        "strategy",
        "updateStrategy",
        "resources",
        "containers",
    }
)

_MISSING: Any = object()


def _types_of(builtin: bool, schema: Mapping[str, Any] | None) -> ListTypes:
    """Built-in kinds use kubesim's table; custom resources their CRD version's schema."""
    return listtypes.BUILTIN if builtin else listtypes.for_schema(schema)


# --------------------------------------------------------------------------------------------
# Public result types


@dataclass(frozen=True)
class Conflict:
    """One field another manager owns and this apply would change (409 FieldManagerConflict)."""

    manager: str
    field: str
    # Who the other manager is, for the message; not part of equality so tests can compare
    # against Conflict("A", ".spec.replicas").
    operation: str = dataclasses.field(default=APPLY, compare=False)
    api_version: str = dataclasses.field(default="", compare=False)
    subresource: str = dataclasses.field(default="", compare=False)

    @property
    def manager_description(self) -> str:
        """The manager as kube-apiserver prints it (`printManager`)."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text

    @property
    def message(self) -> str:
        """The StatusCause message, e.g. 'conflict with "kubectl-edit" using apps/v1'."""
        return f"conflict with {self.manager_description}"


class ApplyConflict(Exception):
    """409 conflicts. .conflicts: list[Conflict]"""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        super().__init__(_conflict_message(conflicts))


def _conflict_message(conflicts: list[Conflict]) -> str:
    # Same wording as kube-apiserver's getConflictMessage.
    if len(conflicts) == 1:
        c = conflicts[0]
        return f"Apply failed with 1 conflict: {c.message}: {c.field}"
    by_manager: dict[str, list[Conflict]] = {}
    for c in conflicts:
        by_manager.setdefault(c.manager_description, []).append(c)
    lines: list[str] = []
    for desc in sorted(by_manager):
        lines.append(f"conflicts with {desc}:")
        lines.extend(f"- {c.field}" for c in by_manager[desc])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


@dataclass
class Comparison:
    """Leaf and node paths that appear, change or disappear between two objects."""

    added: FieldSet = dataclasses.field(default_factory=set)
    modified: FieldSet = dataclasses.field(default_factory=set)
    removed: FieldSet = dataclasses.field(default_factory=set)


# --------------------------------------------------------------------------------------------
# Path elements


_ELEM_CACHE: dict[tuple[Any, ...], str] = {}


def _key_elem(keys: tuple[str, ...], values: tuple[Any, ...]) -> str:
    """`k:{...}` for a map-list item; cached because the same keys recur on every walk."""
    try:
        # The types are part of the cache key so that True and 1 do not collide.
        cache_key = (keys, values, tuple(map(type, values)))
        hit = _ELEM_CACHE.get(cache_key)
    except TypeError:  # unhashable key value (a dict or list): rare, just encode
        return "k:" + _compact(dict(zip(keys, values, strict=True)))
    if hit is None:
        if len(_ELEM_CACHE) > 4096:
            _ELEM_CACHE.clear()
        hit = "k:" + _compact(dict(zip(keys, values, strict=True)))
        _ELEM_CACHE[cache_key] = hit
    return hit


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _item_elem(item: Any, lt: ListType, index: int) -> str:
    """The path element of a list item in a non-atomic list."""
    if lt.kind == "map":
        key = item_key(item, lt)
        if key is None:
            return f"i:{index}"
        return _key_elem(lt.keys, key)
    if lt.kind == "set":
        return "v:" + _compact(item)
    return f"i:{index}"


def _key_error(item: Any, lt: ListType) -> str | None:
    """Why a config list item cannot be placed in its list, None when it can."""
    if lt.kind == "map":
        if not isinstance(item, dict):
            return "associative list with keys has an element that is not a map"
        missing = [k for k in lt.keys if k not in item and k not in lt.key_defaults]
        if missing:
            return "associative list with keys has an element that omits key field " + json.dumps(
                missing[0]
            )
    elif lt.kind == "set" and isinstance(item, dict | list):
        return "set list may only contain scalar items"
    return None


def path_string(path: Path) -> str:
    """A path the way Kubernetes prints it: .spec.template.spec.containers[name="app"].image"""
    parts: list[str] = []
    for elem in path:
        kind, text = elem[:2], elem[2:]
        if kind == "f:":
            parts.append("." + text)
        elif kind == "k:":
            fields = json.loads(text)
            parts.append("[" + ",".join(f"{k}={_human_value(v)}" for k, v in fields.items()) + "]")
        elif kind == "v:":
            parts.append(f"[={_human_value(json.loads(text))}]")
        elif kind == "i:":
            parts.append(f"[{text}]")
        else:
            parts.append(elem)
    return "".join(parts)


def _human_value(value: Any) -> str:
    # SMD value.ToString: strings quoted, numbers and booleans bare.
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _elem_sort_key(elem: str) -> tuple[int, Any]:
    # SMD orders field names before keys, values and indexes.
    rank = {"f": 0, "k": 1, "v": 2, "i": 3}.get(elem[:1], 4)
    if rank == 3:
        try:
            return (3, int(elem[2:]))
        except ValueError:
            pass
    return (rank, elem[2:])


def _path_sort_key(path: Path) -> tuple[tuple[int, Any], ...]:
    return tuple(_elem_sort_key(e) for e in path)


# --------------------------------------------------------------------------------------------
# Field sets (SMD TypedValue.ToFieldSet)


def field_set(
    obj: Mapping[str, Any],
    *,
    builtin: bool,
    strict: bool = False,
    schema: Mapping[str, Any] | None = None,
) -> FieldSet:
    """The fields `obj` sets, as an applier of `obj` would own them (ignored fields included).

    Leaves are scalars, nulls, atomic lists and maps, and empty maps; every item of a map-list
    or set-list is a member too. `strict` raises ValueError for list items that have no key or
    appear twice, as the API server does for an applied configuration.
    """
    return _field_set(obj, _types_of(builtin, schema), strict)


def _field_set(obj: Mapping[str, Any], types: ListTypes, strict: bool) -> FieldSet:
    out: FieldSet = set()
    _fs_map(obj, (), (), types, out, strict)
    return out


def _fs_map(
    obj: Mapping[str, Any],
    path: Path,
    fpath: _FPath,
    types: ListTypes,
    out: FieldSet,
    strict: bool,
) -> None:
    for key, value in obj.items():
        _fs_value(value, (*path, "f:" + key), (*fpath, key), types, out, strict)


def _fs_value(
    value: Any, path: Path, fpath: _FPath, types: ListTypes, out: FieldSet, strict: bool
) -> None:
    if isinstance(value, dict):
        if not value or types.is_atomic_map(fpath):
            out.add(path)
        else:
            _fs_map(value, path, fpath, types, out, strict)
    elif isinstance(value, list):
        lt = types.list_type(fpath)
        if lt.kind == "atomic":
            out.add(path)
            return
        if strict:
            for index, item in enumerate(value):
                problem = _key_error(item, lt)
                if problem:
                    raise ValueError(f"{path_string(path)}: element {index}: {problem}")
        items = _index_items(value, lt)
        if strict and len(items) < len(value):
            elem = next(e for e, v in items.items() if type(v) is _Duplicates)
            raise ValueError(
                f"{path_string(path)}: duplicate entries for key {path_string((elem,))}"
            )
        for elem, item in items.items():
            item_path = (*path, elem)
            out.add(item_path)
            if isinstance(item, dict):  # not a _Duplicates group: that is a leaf
                _fs_map(item, item_path, fpath, types, out, strict)
    else:
        out.add(path)


def _ensure_named_fields(paths: Iterable[Path]) -> FieldSet:
    """`paths` plus every field-name ancestor of them (SMD EnsureNamedFieldsAreMembers).

    Pruning uses it so that a struct whose contents nobody owns any more goes away with them.
    """
    out = set(paths)
    for path in list(out):
        for i in range(len(path) - 1, 0, -1):
            if path[i - 1].startswith("f:"):
                prefix = path[:i]
                if prefix in out:
                    break  # its own ancestors were added when it was
                out.add(prefix)
    return out


# --------------------------------------------------------------------------------------------
# Compare (SMD TypedValue.Compare)


def compare(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    builtin: bool,
    schema: Mapping[str, Any] | None = None,
) -> Comparison:
    """What changed from `old` to `new`, ignored fields left out.

    Leaves are added, modified or removed; a map, list or list item present on one side only is
    added or removed as a node as well as through its contents.
    """
    return _compare(old, new, _types_of(builtin, schema))


def _compare(old: Mapping[str, Any], new: Mapping[str, Any], types: ListTypes) -> Comparison:
    result = Comparison()
    _cmp_maps(old, new, (), (), types, result)
    for s in (result.added, result.modified, result.removed):
        s -= IGNORED_PATHS
    return result


def _node_tracked(fpath: _FPath, types: ListTypes) -> bool:
    return not (types.builtin and fpath and fpath[-1] in _ALWAYS_PRESENT)


def _one_side(
    value: Any, path: Path, fpath: _FPath, types: ListTypes, out: FieldSet, item: bool
) -> None:
    """Every node of a subtree that exists on one side of a comparison only."""
    if isinstance(value, dict):
        if not value or types.is_atomic_map(fpath):
            out.add(path)
            return
        for key, child in value.items():
            _one_side(child, (*path, "f:" + key), (*fpath, key), types, out, False)
        if item or _node_tracked(fpath, types):
            out.add(path)
    elif isinstance(value, list):
        if type(value) is _Duplicates:
            out.add(path)  # a repeated key is a leaf, whatever its items hold
            return
        lt = types.list_type(fpath)
        if not value or lt.kind == "atomic":
            out.add(path)
            return
        for elem, child in _index_items(value, lt).items():
            _one_side(child, (*path, elem), fpath, types, out, True)
        if item or _node_tracked(fpath, types):
            out.add(path)
    else:
        out.add(path)


def _one_side_children(
    value: Any, path: Path, fpath: _FPath, types: ListTypes, out: FieldSet
) -> None:
    """Like _one_side, for the contents of a container whose own node is reported elsewhere."""
    if isinstance(value, dict):
        if value and not types.is_atomic_map(fpath):
            for key, child in value.items():
                _one_side(child, (*path, "f:" + key), (*fpath, key), types, out, False)
    elif isinstance(value, list) and type(value) is not _Duplicates:
        lt = types.list_type(fpath)
        if value and lt.kind != "atomic":
            for elem, child in _index_items(value, lt).items():
                _one_side(child, (*path, elem), fpath, types, out, True)


class _Duplicates(list[Any]):
    """The items of a live list that share one key (or one value, in a set), in their order.

    Only an applied configuration must not repeat a key; a created or updated object may (two
    env entries with one name are valid). structured-merge-diff then treats the key as a leaf:
    the writer owns `k:{...}` itself and none of the items' fields, any change to the group
    changes that leaf, and an apply that sets the key replaces the whole group.
    """


def _index_items(items: list[Any], lt: ListType) -> dict[str, Any]:
    """Items of a non-atomic list by path element; items sharing one become a _Duplicates."""
    out: dict[str, Any] = {}
    for index, item in enumerate(items):
        elem = _item_elem(item, lt, index)
        prev = out.get(elem, _MISSING)
        if prev is _MISSING:
            out[elem] = item
        elif type(prev) is _Duplicates:
            prev.append(item)
        else:
            out[elem] = _Duplicates((prev, item))
    return out


def _same(a: Any, b: Any) -> bool:
    # `==` is a fast deep comparison; it only needs help telling booleans from 0 and 1.
    return bool(a == b) and (a is True or a is False) == (b is True or b is False)


def _cmp_maps(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    path: Path,
    fpath: _FPath,
    types: ListTypes,
    res: Comparison,
) -> None:
    for key, ov in old.items():
        p, fp = (*path, "f:" + key), (*fpath, key)
        nv = new.get(key, _MISSING)
        if nv is _MISSING:
            _one_side(ov, p, fp, types, res.removed, False)
        else:
            _cmp(ov, nv, p, fp, types, res)
    for key, nv in new.items():
        if key not in old:
            _one_side(nv, (*path, "f:" + key), (*fpath, key), types, res.added, False)


def _cmp(old: Any, new: Any, path: Path, fpath: _FPath, types: ListTypes, res: Comparison) -> None:
    if _same(old, new):
        return  # SMD skips identical values too, however large
    if isinstance(old, dict) and isinstance(new, dict):
        if types.is_atomic_map(fpath):
            res.modified.add(path)
        else:
            _cmp_maps(old, new, path, fpath, types, res)
        return
    if isinstance(old, list) and isinstance(new, list):
        if type(old) is _Duplicates or type(new) is _Duplicates:
            res.modified.add(path)  # a repeated key is a leaf: its items have no fields
            return
        lt = types.list_type(fpath)
        if lt.kind == "atomic":
            res.modified.add(path)
            return
        old_items, new_items = _index_items(old, lt), _index_items(new, lt)
        for elem, ov in old_items.items():
            nv = new_items.get(elem, _MISSING)
            if nv is _MISSING:
                _one_side(ov, (*path, elem), fpath, types, res.removed, True)
            else:
                _cmp(ov, nv, (*path, elem), fpath, types, res)
        for elem, nv in new_items.items():
            if elem not in old_items:
                _one_side(nv, (*path, elem), fpath, types, res.added, True)
        return
    # Different scalars, or a value whose kind changed (map to scalar...): the node itself is
    # modified and whatever the old container held is gone (SMD walks both atoms).
    res.modified.add(path)
    _one_side_children(old, path, fpath, types, res.removed)
    _one_side_children(new, path, fpath, types, res.added)


# --------------------------------------------------------------------------------------------
# Merge (SMD TypedValue.Merge) and prune (SMD Updater.prune / RemoveItems)


def _copy(value: Any) -> Any:
    """Deep copy of a JSON value; much cheaper than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def merge(
    live: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    builtin: bool,
    schema: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`config` merged into `live` (a new object sharing nothing with either)."""
    return _merge_maps(live, config, (), _types_of(builtin, schema))


def _merge_maps(
    live: Mapping[str, Any], config: Mapping[str, Any], fpath: _FPath, types: ListTypes
) -> dict[str, Any]:
    # Live keys keep their order; new keys follow in config order.
    out: dict[str, Any] = {}
    for key, lv in live.items():
        cv = config.get(key, _MISSING)
        out[key] = _copy(lv) if cv is _MISSING else _merge(lv, cv, (*fpath, key), types)
    for key, cv in config.items():
        if key not in live:
            out[key] = _copy(cv)
    return out


def _merge(live: Any, config: Any, fpath: _FPath, types: ListTypes) -> Any:
    if isinstance(config, dict):
        if isinstance(live, dict) and (live or config) and not types.is_atomic_map(fpath):
            return _merge_maps(live, config, fpath, types)
        return _copy(config)
    if isinstance(config, list):
        if isinstance(live, list) and (live or config):
            lt = types.list_type(fpath)
            if lt.kind != "atomic":
                return _merge_lists(live, config, lt, fpath, types)
        return _copy(config)
    if config is None and live:
        # An explicit null on a granular map or list merges nothing into it (SMD drops it);
        # on scalars and atomic values null replaces like any other value.
        if isinstance(live, dict) and not types.is_atomic_map(fpath):
            return _copy(live)
        if (
            isinstance(live, list)
            and type(live) is not _Duplicates
            and types.list_type(fpath).kind != "atomic"
        ):
            return _copy(live)
    return config


def _merge_lists(
    live: list[Any], config: list[Any], lt: ListType, fpath: _FPath, types: ListTypes
) -> list[Any]:
    """Merge list items by key, ordered like SMD's mergingWalker.visitListItems.

    Items only in live keep their place; items in both follow the config's order; new items are
    placed where the config puts them relative to the shared ones.
    """
    lhs = _index_items(live, lt)
    rhs = _index_items(config, lt)
    lhs_order, rhs_order = list(lhs), list(rhs)
    shared = [e for e in rhs_order if e in lhs]
    shared_i = 0
    next_shared = shared[0] if shared else None
    merged_rhs: set[str] = set()
    out: list[Any] = []
    li = ri = 0
    nl, nr = len(lhs_order), len(rhs_order)

    def advance_shared() -> None:
        nonlocal shared_i, next_shared
        shared_i += 1
        next_shared = shared[shared_i] if shared_i < len(shared) else None

    while li < nl or ri < nr:
        if li < nl and ri < nr:
            le = lhs_order[li]
            if le == rhs_order[ri]:
                merged_rhs.add(le)
                out.append(_merge(lhs[le], rhs[le], fpath, types))
                li += 1
                ri += 1
                advance_shared()
                continue
            if le in rhs and next_shared is not None and next_shared != le:
                li += 1  # shared item, but not the one we want in this round
                continue
        if li < nl:
            le = lhs_order[li]
            if le not in rhs:
                kept = lhs[le]
                if type(kept) is _Duplicates:
                    out.extend(_copy(v) for v in kept)  # untouched by the config: all stay
                else:
                    out.append(_copy(kept))
                li += 1
                continue
            if le in merged_rhs:
                li += 1  # already merged with its config item, do not duplicate it
                continue
        if ri < nr:
            re_ = rhs_order[ri]
            merged_rhs.add(re_)
            lv = lhs.get(re_, _MISSING)
            out.append(_copy(rhs[re_]) if lv is _MISSING else _merge(lv, rhs[re_], fpath, types))
            ri += 1
            if next_shared is not None and next_shared == re_:
                advance_shared()
    return out


def _prune(obj: dict[str, Any], doomed: FieldSet, types: ListTypes) -> None:
    """Remove (in place) the subtree of every path in `doomed` that exists in `obj`."""
    trie: dict[str, Any] = {}
    for path in doomed:
        node = trie
        for elem in path[:-1]:
            nxt = node.get(elem)
            if nxt is True:
                break  # an ancestor goes as a whole
            node = node.setdefault(elem, {})
        else:
            node[path[-1]] = True
    _remove_in(obj, trie, (), types)


def _remove_in(node: Any, trie: dict[str, Any], fpath: _FPath, types: ListTypes) -> None:
    if isinstance(node, dict):
        if types.is_atomic_map(fpath):
            return
        for elem, sub in trie.items():
            if not elem.startswith("f:"):
                continue
            key = elem[2:]
            if key not in node:
                continue
            if sub is True:
                del node[key]
            else:
                _remove_in(node[key], sub, (*fpath, key), types)
    elif isinstance(node, list):
        lt = types.list_type(fpath)
        if lt.kind == "atomic":
            return
        kept: list[Any] = []
        for index, item in enumerate(node):
            sub = trie.get(_item_elem(item, lt, index))
            if sub is True:
                continue
            if sub:
                _remove_in(item, sub, fpath, types)
            kept.append(item)
        node[:] = kept


def _strip_nulls(value: Any) -> None:
    """Drop null-valued fields, as conversion to a typed object (or CRD pruning) would."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for v in value.values():
            _strip_nulls(v)
    elif isinstance(value, list):
        for v in value:
            _strip_nulls(v)


def _has_null(value: Any) -> bool:
    if isinstance(value, dict):
        return any(v is None or _has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


# --------------------------------------------------------------------------------------------
# fieldsV1 encoding


def encode_fields(paths: Iterable[Path]) -> dict[str, Any]:
    """A field set as a fieldsV1 trie: leaves `{}`, `".": {}` for members with children."""
    root: dict[str, Any] = {}
    for path in paths:
        node = root
        for elem in path:
            node = node.setdefault(elem, {})
        node["."] = {}  # provisional member marker, dropped again on leaves below
    return _finish_trie(root)


def _finish_trie(node: dict[str, Any]) -> dict[str, Any]:
    member = "." in node
    children = sorted((k for k in node if k != "."), key=_elem_sort_key)
    if not children:
        return {}
    out: dict[str, Any] = {".": {}} if member else {}
    for key in children:
        out[key] = _finish_trie(node[key])
    return out


def decode_fields(trie: Any) -> FieldSet:
    """The field set of a fieldsV1 trie. Raises ValueError when it is malformed."""
    if trie is None:
        return set()
    if not isinstance(trie, dict):
        raise ValueError("fieldsV1 must be an object")
    out: FieldSet = set()
    _decode_node(trie, (), out)
    return out


def _decode_node(node: dict[str, Any], path: Path, out: FieldSet) -> None:
    for key, child in node.items():
        if not isinstance(child, dict):
            raise ValueError(f"fieldsV1: value of {key!r} must be an object")
        if key == ".":
            if not path:
                raise ValueError("fieldsV1: '.' at the root")
            out.add(path)
            continue
        if key[:2] not in ("f:", "k:", "v:", "i:"):
            raise ValueError(f"fieldsV1: unexpected key {key!r}")
        child_path = (*path, key)
        if child:
            _decode_node(child, child_path, out)
        else:
            out.add(child_path)


# --------------------------------------------------------------------------------------------
# managedFields entries

# (manager, operation, apiVersion, subresource); apiVersion is "" for Apply entries, which keep
# their identity across versions (kube-apiserver's BuildManagerIdentifier).
_Key = tuple[str, str, str, str]


@dataclass(frozen=True)
class _Entry:
    manager: str
    operation: str
    api_version: str
    subresource: str
    fields: FieldSet
    time: str | None


def _key_of(e: _Entry) -> _Key:
    return (e.manager, e.operation, "" if e.operation == APPLY else e.api_version, e.subresource)


def _decode_managed(entries: Any) -> dict[_Key, _Entry]:
    """metadata.managedFields to entries by identity. Raises ValueError like the API server."""
    out: dict[_Key, _Entry] = {}
    if entries is None:
        return out
    if not isinstance(entries, list):
        raise ValueError("metadata.managedFields must be a list")
    for index, raw in enumerate(entries):
        if not isinstance(raw, dict):
            raise ValueError(f"managed fields entry {index} must be an object")
        operation = raw.get("operation")
        if operation not in (APPLY, UPDATE):
            raise ValueError("operation must be `Apply` or `Update`")
        if not raw.get("apiVersion"):
            raise ValueError("apiVersion must not be empty")
        if raw.get("fieldsType") != FIELDS_V1:
            raise ValueError(f"invalid fieldsType in managed fields entry {index}")
        time = _rfc3339(raw.get("time"))
        entry = _Entry(
            manager=str(raw.get("manager") or ""),
            operation=operation,
            api_version=str(raw["apiVersion"]),
            subresource=str(raw.get("subresource") or ""),
            fields=decode_fields(raw.get("fieldsV1")),
            time=time if isinstance(time, str) else None,
        )
        # A repeated identity is no error: the later entry wins, as in kube-apiserver's
        # DecodeManagedFields; a client renames a manager by giving an entry another's name.
        out[_key_of(entry)] = entry
    return out


def _rfc3339(value: Any) -> str | None:
    """A managed fields time as the API server stores it (metav1.Time: UTC, seconds, "Z"),
    whatever RFC 3339 form a client sent back (the Python client sends "+00:00")."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode_managed(entries: Mapping[_Key, _Entry]) -> list[dict[str, Any]]:
    # kube-apiserver sorts: Apply before Update, then oldest first, then by identity.
    ordered = sorted(
        entries.values(),
        key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource),
    )
    out: list[dict[str, Any]] = []
    for e in ordered:
        raw: dict[str, Any] = {}
        if e.manager:
            raw["manager"] = e.manager
        raw["operation"] = e.operation
        raw["apiVersion"] = e.api_version
        if e.time is not None:
            raw["time"] = e.time
        raw["fieldsType"] = FIELDS_V1
        raw["fieldsV1"] = encode_fields(e.fields)
        if e.subresource:
            raw["subresource"] = e.subresource
        out.append(raw)
    return out


def _cap_update_managers(entries: dict[_Key, _Entry]) -> None:
    """Fold the oldest Update entries into "ancient-changes" beyond 10 (capManagersManager)."""
    updaters = [k for k, e in entries.items() if e.operation == UPDATE]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return
    updaters.sort(key=lambda k: (entries[k].time or "", k))
    first_by_version: dict[str, _Key] = {}
    remaining = len(updaters)
    for key in updaters:
        if remaining <= MAX_UPDATE_MANAGERS:
            break
        entry = entries[key]
        version = entry.api_version
        bucket: _Key = (ANCIENT_CHANGES, UPDATE, version, "")
        first = first_by_version.get(version)
        if first is None or key == bucket:
            first_by_version.setdefault(version, key)
            continue
        if bucket not in entries:
            moved = entries.pop(first)
            entries[bucket] = _Entry(ANCIENT_CHANGES, UPDATE, version, "", moved.fields, moved.time)
        held = entries[bucket]
        entries[bucket] = _Entry(
            ANCIENT_CHANGES, UPDATE, version, "", held.fields | entry.fields, entry.time
        )
        del entries[key]
        remaining -= 1


def _same_entries(a: Mapping[_Key, _Entry], b: Mapping[_Key, _Entry]) -> bool:
    if a.keys() != b.keys():
        return False
    return all(
        a[k].fields == b[k].fields
        and a[k].time == b[k].time
        and a[k].api_version == b[k].api_version
        for k in a
    )


def managed_fields_equal(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when two objects carry the same managed fields, whatever their encoding order."""
    return _same_entries(_decode_managed(_managed_of(a)), _decode_managed(_managed_of(b)))


def _managed_of(obj: Mapping[str, Any] | None) -> Any:
    if not obj:
        return None
    meta = obj.get("metadata")
    return meta.get("managedFields") if isinstance(meta, dict) else None


def _without_managed(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """`obj` without metadata.managedFields: a shallow copy of the top level and metadata."""
    if not obj:
        return {}
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        meta = dict(meta)
        del meta["managedFields"]
        out["metadata"] = meta
    return out


def _with_managed(
    obj: dict[str, Any], entries: Mapping[_Key, _Entry], original: Any, reuse: bool
) -> dict[str, Any]:
    """Install managedFields in `obj` (which we own); reuse the original encoding if unchanged."""
    meta = obj.get("metadata")
    if not entries:
        if isinstance(meta, dict):
            meta.pop("managedFields", None)
        return obj
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    meta["managedFields"] = _copy(original) if reuse else _encode_managed(entries)
    return obj


def _update_sets(
    entries: dict[_Key, _Entry], cmp: Comparison, key: _Key, api_version: str, now: str
) -> None:
    """SMD Updater.Update as kube-apiserver runs it: everyone loses what changed, and the
    writer (a fresh "current-operation") gains what it added or modified. The writer's time only
    moves when it took something (managedFieldsUpdater)."""
    changed = cmp.added | cmp.modified | cmp.removed
    if changed:
        for k, e in list(entries.items()):
            if e.fields & changed:
                left = e.fields - changed
                if left:
                    entries[k] = _Entry(
                        e.manager, e.operation, e.api_version, e.subresource, left, e.time
                    )
                else:
                    del entries[k]
    taken = (cmp.added | cmp.modified) - cmp.removed - IGNORED_PATHS
    if taken:
        prev = entries.get(key)
        fields = taken | prev.fields if prev else taken
        entries[key] = _Entry(key[0], UPDATE, api_version, key[3], fields, now)


# --------------------------------------------------------------------------------------------
# Public operations


def apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    *,
    manager: str,
    force: bool,
    builtin: bool,
    api_version: str,
    now: str,
    subresource: str = "",
    schema: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Server-side apply of `config` (the applied configuration, already parsed to a dict)
    onto `live` (the stored object, or None when creating). Returns the new object (a new dict;
    inputs are not mutated) with metadata.managedFields updated. Raises ApplyConflict unless
    force. The caller has already stripped fields that are reset for this (sub)resource (e.g.
    .status for the main resource) and applies server defaults to the result afterwards.

    Raises ValueError for a config that carries metadata.managedFields, has list items without
    their key or with a repeated key, or when the live managedFields cannot be decoded.
    `subresource` names the subresource applied to ("status"), which is part of the Apply entry's
    identity as in Kubernetes. `schema` is a custom resource's structural schema (of the version
    applied), which decides its list and map semantics; without one every list is atomic.
    """
    if not isinstance(config, dict):
        raise ValueError("the applied configuration must be an object")
    config_meta = config.get("metadata")
    if isinstance(config_meta, dict) and config_meta.get("managedFields") is not None:
        raise ValueError("metadata.managedFields must be nil")

    # The applier's new set; ignored fields stay in it while pruning so that e.g. `metadata`
    # counts as owned, and are stripped before it is stored.
    types = _types_of(builtin, schema)
    applied = _field_set(config, types, strict=True)

    original_managed = _managed_of(live)
    entries = _decode_managed(original_managed)
    before = dict(entries)
    live_body = _without_managed(live)
    if live is not None and not entries:
        # Fields of an object nobody tracks yet belong to "before-first-apply" (skipNonApplied).
        bfa_key: _Key = (BEFORE_FIRST_APPLY, UPDATE, api_version, "")
        _update_sets(entries, _compare({}, live_body, types), bfa_key, api_version, now)

    merged = _merge_maps(live_body, config, (), types)

    key: _Key = (manager, APPLY, "", subresource)
    last = entries.get(key)
    if last is not None and last.fields:
        # prune: drop what this manager applied last time and nobody (this config included)
        # owns now. Subset test first: the common re-apply has nothing to prune.
        owned = set(applied) | IGNORED_PATHS
        for k, e in entries.items():
            if k != key:
                owned |= e.fields
        gone = last.fields - owned
        if gone:
            owned_named = _ensure_named_fields(owned)
            doomed = {p for p in _ensure_named_fields(gone) if p not in owned_named}
            _prune(merged, doomed, types)

    cmp = _compare(live_body, merged, types)
    changed = cmp.modified | cmp.added
    conflicts: list[tuple[_Key, FieldSet]] = []
    if changed:
        for k, e in entries.items():
            if k != key:
                taken = e.fields & changed
                if taken:
                    conflicts.append((k, taken))
    if conflicts and not force:
        raise ApplyConflict(
            [
                Conflict(
                    manager=entries[k].manager,
                    field=path_string(p),
                    operation=entries[k].operation,
                    api_version=entries[k].api_version,
                    subresource=entries[k].subresource,
                )
                for k, taken in sorted(conflicts, key=lambda c: c[0])
                for p in sorted(taken, key=_path_sort_key)
            ]
        )

    # Forced fields move to this manager; removed fields leave everybody.
    lost: dict[_Key, FieldSet] = {k: taken for k, taken in conflicts}
    if cmp.removed:
        for k in entries:
            if k != key:
                lost[k] = lost.get(k, set()) | cmp.removed
    for k, fields in lost.items():
        e = entries[k]
        if e.fields & fields:
            left = e.fields - fields
            if left:
                entries[k] = _Entry(
                    e.manager, e.operation, e.api_version, e.subresource, left, e.time
                )
            else:
                del entries[k]

    if _has_null(config):
        _strip_nulls(merged)
    object_changed = merged != live_body

    new_fields = applied - IGNORED_PATHS
    if new_fields:
        # The applier's time moves when the object changed (managedFieldsUpdater); a brand-new
        # entry gets one in any case.
        time = now if object_changed or last is None else last.time
        entries[key] = _Entry(manager, APPLY, api_version, subresource, new_fields, time)
    else:
        entries.pop(key, None)
    _cap_update_managers(entries)

    reuse = original_managed is not None and _same_entries(before, entries)
    return _with_managed(merged, entries, original_managed, reuse)


def update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    builtin: bool,
    api_version: str,
    now: str,
    subresource: str = "",
    schema: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A non-apply write (create/PUT/merge/json/strategic patch) changing `old` into `new`:
    returns `new` (copy) with metadata.managedFields recomputed: the manager (operation Update)
    gains the added+modified fields, loses removed ones; every other manager loses fields that
    were modified, added or removed. Never conflicts.

    As in kube-apiserver: managedFields written in `new` replace the stored ones (main resource
    only, when they decode; of entries with one identity the last wins); `[]` and `[{}]` remove
    them all; an existing object without managed fields stays untracked until the next apply;
    undecodable stored managed fields are dropped.
    """
    result: dict[str, Any] = _copy(new)
    new_managed = _managed_of(new)
    if not subresource and new_managed in ([], [{}]):
        # The documented reset (isResetManagedFields): an explicitly empty list, or one empty
        # entry, strips managedFields entirely; an omitted or null list keeps the stored ones.
        return _with_managed(result, {}, None, False)

    original_managed: Any = None
    entries: dict[_Key, _Entry] | None = None
    if not subresource and isinstance(new_managed, list) and new_managed:
        try:
            entries = _decode_managed(new_managed) or None
        except ValueError:
            entries = None
    from_old = entries is None
    if entries is None:
        original_managed = _managed_of(old)
        try:
            entries = _decode_managed(original_managed)
        except ValueError:
            return _with_managed(result, {}, None, False)
        if old is not None and not entries:
            # skipNonAppliedManager: an existing untracked object stays untracked on updates.
            return _with_managed(result, {}, None, False)
    before = dict(entries)

    cmp = compare(_without_managed(old), _without_managed(new), builtin=builtin, schema=schema)
    key: _Key = (manager, UPDATE, api_version, subresource)
    _update_sets(entries, cmp, key, api_version, now)
    _cap_update_managers(entries)

    reuse = from_old and original_managed is not None and _same_entries(before, entries)
    return _with_managed(result, entries, original_managed, reuse)


# --------------------------------------------------------------------------------------------
# The scale subresource (kube-apiserver's ScaleHandler, managedfields/scalehandler.go)

REPLICAS: Path = ("f:spec", "f:replicas")
SCALE_API_VERSION = "autoscaling/v1"


def scale_managed_fields(parent: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The managedFields that the Scale of `parent` carries while a /scale write is tracked
    (ToSubresource): the parent's entries that own .spec.replicas, owning only it. None when
    there are none, so the Scale is as untracked as an object nobody applied to.

    Entries keep their identity, parent apiVersion included: kube-apiserver keys them by the
    parent's manager identifier, which is what its conflict messages print."""
    try:
        entries = _decode_managed(_managed_of(parent))
    except ValueError:
        return None
    kept = {
        k: dataclasses.replace(e, fields={REPLICAS})
        for k, e in entries.items()
        if REPLICAS in e.fields
    }
    return _encode_managed(kept) or None


def scale_to_parent(
    parent: Mapping[str, Any], scale: Mapping[str, Any], *, api_version: str
) -> list[dict[str, Any]] | None:
    """The parent's managedFields after a /scale write left `scale` (ToParent): whoever no
    longer owns replicas on the Scale loses .spec.replicas in the parent; every Scale entry
    that owns replicas and is not a parent entry becomes one, in the parent's `api_version`,
    owning .spec.replicas alone. Such an entry has no time, as on a real server, which takes
    it from the parent's entry of that identity (there is none)."""
    parent_entries = _decode_managed(_managed_of(parent))
    scale_entries = _decode_managed(_managed_of(scale))
    out: dict[_Key, _Entry] = {}
    for k, e in parent_entries.items():
        if REPLICAS not in e.fields:
            out[k] = e
        elif scale_entries.pop(k, None) is not None:
            out[k] = e  # still owns replicas on the Scale: unchanged
        elif e.fields - {REPLICAS}:
            out[k] = dataclasses.replace(e, fields=e.fields - {REPLICAS})
    for k, e in scale_entries.items():
        if REPLICAS not in e.fields:
            continue
        prev = parent_entries.get(k)
        moved = _Entry(e.manager, e.operation, api_version, e.subresource, {REPLICAS},
                       prev.time if prev else None)
        out[_key_of(moved)] = moved
    return _encode_managed(out) or None


# --------------------------------------------------------------------------------------------
# kubectl's client-side apply annotation (kube-apiserver's lastAppliedManager and
# lastAppliedUpdater, which only act for the field manager "kubectl")

LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
KUBECTL_MANAGER = "kubectl"
# apimachinery's TotalAnnotationSizeLimitB: a last-applied value that would exceed it is dropped.
_ANNOTATIONS_SIZE_LIMIT = 256 * 1024


def _last_applied(obj: Mapping[str, Any] | None) -> str:
    meta = obj.get("metadata") if obj else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    value = annotations.get(LAST_APPLIED_ANNOTATION) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else ""


def last_applied_allowed_conflicts(
    live: Mapping[str, Any],
    *,
    builtin: bool,
    api_version: str,
    schema: Mapping[str, Any] | None = None,
) -> set[str] | None:
    """The conflicts (as path strings) a server-side apply by "kubectl" may override because
    the object was client-side applied: every field of the last-applied-configuration
    annotation whose live value is still the one last applied. None when there is no usable
    annotation, in which case conflicts stand (allowedConflictsFromLastApplied)."""
    raw = _last_applied(live)
    if not raw:
        return None
    try:
        last = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(last, dict) or last.get("apiVersion") != api_version:
        return None
    try:
        fields = field_set(last, builtin=builtin, schema=schema)
        cmp = compare(last, _without_managed(live), builtin=builtin, schema=schema)
    except (ValueError, TypeError, AttributeError):
        return None
    return {path_string(p) for p in fields - cmp.modified - cmp.added - cmp.removed}


def sync_last_applied(obj: dict[str, Any], applied: Mapping[str, Any]) -> None:
    """After a server-side apply by "kubectl", keep an existing last-applied-configuration
    annotation equal to the applied configuration, so that a later client-side apply still
    computes the right patch (lastAppliedUpdater). Mutates `obj`."""
    if not _last_applied(obj):
        return
    config = _copy(dict(applied))
    meta = config.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        meta["annotations"].pop(LAST_APPLIED_ANNOTATION, None)
    # Go's encoding/json: sorted keys, no spaces, HTML characters escaped, a final newline.
    value = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    value = value.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    value += "\n"
    annotations = obj["metadata"]["annotations"]
    annotations[LAST_APPLIED_ANNOTATION] = value
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > _ANNOTATIONS_SIZE_LIMIT:
        del annotations[LAST_APPLIED_ANNOTATION]
