"""Field ownership from `metadata.managedFields`: decode the fieldsV1 trie, drop owned fields.

Called by `ignore.py` for the `managedFieldsManagers` ignore rule: every field that one of the
named managers owns on the LIVE object is removed from both the live and the predicted object, so
the comparison never sees it.

fieldsV1 is the API server's encoding of a structured-merge-diff field set: a trie whose keys are
`f:<field>` (a map field), `k:<json object>` (a list item matched by its key fields),
`v:<json value>` (an item of a set-like list), `i:<index>` (a list item by position) and `.` (the
node itself is owned, not only some of its children). A leaf `{}` owns the whole value below it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..log import get_logger

_log = get_logger(component="diff")


@dataclass
class FieldSet:
    """One node of the decoded trie. `owned` is the `.` marker; `children` map a path element to
    the sub-set; a node with neither is a leaf that owns its whole value."""

    owned: bool = False
    children: dict[PathElement, FieldSet] = field(default_factory=dict)

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def merge(self, other: FieldSet) -> None:
        """Union in place: entries of several managers (or of one manager's Apply, Update and
        subresource entries) own the union of their fields."""
        self.owned = self.owned or other.owned
        for elem, sub in other.children.items():
            mine = self.children.get(elem)
            if mine is None:
                self.children[elem] = copy.deepcopy(sub)
            elif mine.is_leaf:
                continue  # already owns the whole value
            elif sub.is_leaf:
                self.children[elem] = FieldSet()
            else:
                mine.merge(sub)


@dataclass(frozen=True)
class PathElement:
    """`kind` is one of "f", "k", "v", "i"; `raw` is the text after the colon, kept so that two
    spellings of one key stay distinct only if the server wrote them differently (it does not)."""

    kind: str
    raw: str

    def value(self) -> Any:
        if self.kind == "f":
            return self.raw
        if self.kind == "i":
            return int(self.raw)
        return json.loads(self.raw)


class InvalidFieldsV1(ValueError):
    """A managedFields entry that is not a well-formed fieldsV1 trie."""


def decode(trie: Any) -> FieldSet:
    """A FieldSet from one entry's `fieldsV1` value."""
    if not isinstance(trie, Mapping):
        raise InvalidFieldsV1(f"fieldsV1 must be an object, not {type(trie).__name__}")
    node = FieldSet()
    for key, sub in trie.items():
        if key == ".":
            node.owned = True
            continue
        kind, sep, raw = str(key).partition(":")
        if not sep or kind not in ("f", "k", "v", "i"):
            raise InvalidFieldsV1(f"unknown fieldsV1 key {key!r}")
        elem = PathElement(kind, raw)
        try:
            elem.value()  # validate the JSON or index now, not halfway through a removal
        except ValueError as exc:
            raise InvalidFieldsV1(f"bad fieldsV1 key {key!r}: {exc}") from exc
        node.children[elem] = decode(sub)
    return node


def owned_by(managed_fields: Iterable[Any], managers: Iterable[str]) -> FieldSet:
    """The union of the fields the named managers own, over all their entries (Apply, Update and
    subresource entries alike: an HPA's scale writes are an Update on the `scale` subresource)."""
    wanted = set(managers)
    out = FieldSet()
    for entry in managed_fields:
        if not isinstance(entry, Mapping) or entry.get("manager") not in wanted:
            continue
        if entry.get("fieldsType", "FieldsV1") != "FieldsV1":
            continue
        try:
            out.merge(decode(entry.get("fieldsV1") or {}))
        except InvalidFieldsV1 as exc:
            # The API server validates what it stores; a broken entry means a broken input, and
            # one unreadable entry must not make the whole comparison fail.
            _log.warning("skipping unreadable managedFields entry", manager=entry.get("manager"),
                         error=str(exc))
    return out


def remove_owned(obj: dict[str, Any], owned: FieldSet) -> dict[str, Any]:
    """A copy of `obj` without the fields in `owned`."""
    result = copy.deepcopy(obj)
    _remove_in(result, owned)
    return result


def _remove_in(value: Any, fs: FieldSet) -> None:
    """Remove the children of `fs` from `value` (a map or a list), in place."""
    if isinstance(value, dict):
        for elem, sub in fs.children.items():
            if elem.kind != "f" or elem.raw not in value:
                continue
            if _drop_whole(value[elem.raw], sub):
                del value[elem.raw]
    elif isinstance(value, list):
        doomed: set[int] = set()
        for elem, sub in fs.children.items():
            for i in _matching_items(value, elem):
                if _drop_whole(value[i], sub):
                    doomed.add(i)
        for i in sorted(doomed, reverse=True):
            del value[i]


def _drop_whole(child: Any, sub: FieldSet) -> bool:
    """Strip what `sub` owns from `child`; True when `child` itself should go.

    A leaf owns its whole value. A `.` with children owns the node, but other managers may own
    fields inside it (Update entries put `.` on maps such as `metadata.annotations` that they merely
    added a key to), so the node goes only when nothing is left in it once the owned children are
    removed: ignoring one manager must not hide the fields that Git sets next to its own.
    """
    if sub.is_leaf:
        return True
    _remove_in(child, sub)
    return sub.owned and isinstance(child, dict | list) and not child


def _matching_items(items: list[Any], elem: PathElement) -> list[int]:
    want = elem.value()
    if elem.kind == "i":
        return [want] if isinstance(want, int) and 0 <= want < len(items) else []
    if elem.kind == "v":
        return [i for i, item in enumerate(items) if _same(item, want)]
    if elem.kind == "k" and isinstance(want, dict):
        return [i for i, item in enumerate(items)
                if isinstance(item, dict) and all(k in item and _same(item[k], v)
                                                  for k, v in want.items())]
    return []


def _same(a: Any, b: Any) -> bool:
    # JSON equality: True is not 1 (Python says it is).
    return (type(a) is type(b) and a == b) or (
        isinstance(a, int | float) and isinstance(b, int | float)
        and not isinstance(a, bool) and not isinstance(b, bool) and a == b)
