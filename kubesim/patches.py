"""The three non-apply PATCH flavours the emulated API server accepts.

`kubesim.store` (its non-apply PATCH path) calls `json_patch` for `application/json-patch+json`,
`merge_patch` for `application/merge-patch+json` and `strategic_merge_patch` for
`application/strategic-merge-patch+json` (kubectl's default for built-in kinds, also what
client-side `kubectl apply` sends). Server-side apply lives elsewhere (`fieldmanager`).

Everything here is pure: inputs are never mutated, every call returns a fresh dict, and failures
raise `PatchError`, whose `reason` the server turns into 400 (BadRequest) or 422 (Invalid).

`strategic_merge_patch` is a port of the apply half of apimachinery's
`pkg/util/strategicpatch` (`mergeMap`, `mergeSlice`, `mergePatchIntoOriginal`,
`normalizeElementOrder`, ...) with the struct-tag lookups replaced by `listtypes.list_type`. The
odd-looking ordering rules are theirs, kept because clients diff against what a real server
returns.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
from jsonpointer import JsonPointerException

from kubesim.listtypes import list_type

__all__ = ["PatchError", "json_patch", "merge_patch", "strategic_merge_patch"]

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_PATCH_VALUES = frozenset({"replace", "delete", "merge"})


class PatchError(Exception):
    """A patch that cannot be applied.

    `reason` is "BadRequest" for a malformed patch document and "Invalid" for a well-formed one
    that cannot apply (a failed json-patch `test`, a missing path); the server maps them to 400
    and 422.
    """

    def __init__(self, message: str, reason: str = "BadRequest") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


# --------------------------------------------------------------------------- JSON patch


def json_patch(obj: dict[str, Any], ops: Any) -> dict[str, Any]:
    """Apply an RFC 6902 JSON patch to `obj` and return the result as a new dict."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a JSON array of operations")
    # Copied up front: jsonpatch places `value` objects into the result as they are, so the
    # result would otherwise alias the caller's patch document.
    ops = copy.deepcopy(ops)
    for op in ops:
        if not isinstance(op, dict):
            raise PatchError(f"json patch operation must be an object, got {op!r}")
        if not isinstance(op.get("path"), str):
            raise PatchError(f"json patch operation {op!r} has no string 'path'")
        # jsonpatch only checks 'from' while applying, where a bad pointer looks like a
        # conflict rather than a malformed document.
        src = op.get("from")
        if op.get("op") in ("move", "copy") and not (
            isinstance(src, str) and (src == "" or src.startswith("/"))
        ):
            raise PatchError(f"json patch operation {op!r} has no valid 'from'")
    try:
        patch = jsonpatch.JsonPatch(ops)
    except (jsonpatch.JsonPatchException, JsonPointerException) as exc:
        raise PatchError(f"invalid json patch: {exc}") from exc
    try:
        result = patch.apply(obj)
    except jsonpatch.InvalidJsonPatch as exc:
        # Raised lazily at apply time for a missing 'value' or 'from' member.
        raise PatchError(f"invalid json patch: {exc}") from exc
    except (jsonpatch.JsonPatchException, JsonPointerException) as exc:
        raise PatchError(f"the json patch cannot be applied: {exc}", "Invalid") from exc
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PatchError(f"the json patch cannot be applied: {exc!r}", "Invalid") from exc
    if not isinstance(result, dict):
        raise PatchError("the json patch must leave a JSON object", "Invalid")
    return result


# --------------------------------------------------------------------------- JSON merge patch


def merge_patch(obj: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply an RFC 7386 JSON merge patch: null deletes, lists and scalars replace."""
    if not isinstance(patch, dict):
        # RFC 7386 would replace the whole document, but an API object must stay an object.
        raise PatchError("merge patch must be a JSON object")
    result = _merge_patch_value(obj, patch)
    assert isinstance(result, dict)
    return result


def _merge_patch_value(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch_value(result.get(key), value)
    # Untouched members are shared with `target` until copied here, so the result never
    # aliases the caller's object.
    return {k: (v if k in patch else copy.deepcopy(v)) for k, v in result.items()}


# --------------------------------------------------------------------------- strategic merge


def strategic_merge_patch(
    obj: dict[str, Any], patch: Any, *, builtin: bool = True
) -> dict[str, Any]:
    """Apply a strategic merge patch the way kube-apiserver does.

    Lists that `listtypes` gives a merge strategy are merged by their merge key (or unioned, for
    primitive lists); every other list is replaced. `builtin=False` (custom resources) leaves
    only the metadata lists mergeable.
    """
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object")
    _validate_directives(patch)
    # The port below follows Go in editing its arguments, so it only ever sees copies.
    merged = _SMP(builtin).merge_map(copy.deepcopy(obj), copy.deepcopy(patch), ())
    return merged


def _validate_directives(value: Any) -> None:
    """Reject `$` keys kubectl never sends before touching anything.

    A real server would take an unknown `$key` for an ordinary (unknown, hence dropped) field;
    we fail loudly instead so that a typo in a test's patch does not pass silently.
    """
    if isinstance(value, list):
        for item in value:
            _validate_directives(item)
        return
    if not isinstance(value, dict):
        return
    for key, sub in value.items():
        if not key.startswith("$"):
            _validate_directives(sub)
            continue
        if key == _DIRECTIVE:
            if not isinstance(sub, str) or sub not in _PATCH_VALUES:
                raise PatchError(f"unknown patch type: {sub!r} in map: {value!r}")
        elif key == _RETAIN_KEYS:
            if not isinstance(sub, list) or not all(isinstance(k, str) for k in sub):
                raise PatchError("invalid patch format of retainKeys")
        elif key.startswith(_SET_ORDER):
            if not key[len(_SET_ORDER) :] or not isinstance(sub, list):
                raise PatchError("invalid patch format of setElementOrder list")
        elif key.startswith(_DELETE_PRIMITIVE):
            if not key[len(_DELETE_PRIMITIVE) :] or not isinstance(sub, list):
                raise PatchError("invalid patch format of primitive list")
        else:
            raise PatchError(f"unknown strategic merge patch directive {key!r}")


def _kind(value: Any) -> str:
    """The Go type a JSON value decodes to, which is what decides how SMP treats it."""
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "slice"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _same(a: Any, b: Any) -> bool:
    """Go's interface `==` on decoded JSON scalars (Python alone would have True == 1)."""
    return _kind(a) == _kind(b) and bool(a == b)


def _element_kind(*lists: list[Any]) -> str | None:
    """sliceElementType: the one kind shared by all elements, None for no elements."""
    kind: str | None = None
    for items in lists:
        for item in items:
            current = _kind(item)
            if kind is None:
                if current == "slice":
                    raise PatchError("lists of lists are not supported", "Invalid")
                kind = current
            elif current != kind:
                raise PatchError(f"list element types are not identical: {lists!r}")
    return kind


def _is_directive_key(key: str) -> bool:
    return key.startswith("$")


def _clean(value: Any) -> Any:
    """Drop `$` keys and nulls from a subtree that is stored as the patch gave it.

    Go stores such subtrees raw and the decoder into the typed object then drops directive keys
    as unknown fields and nulls as unset ones; we store JSON, so we do that dropping here.
    """
    if isinstance(value, dict):
        return {
            k: _clean(v) for k, v in value.items() if v is not None and not _is_directive_key(k)
        }
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _remove_directives(value: Any) -> tuple[Any, bool]:
    """removeDirectives: for a value not in the live object, a map carrying `$patch` vanishes.

    Returns the value to store and whether to store it at all.
    """
    if isinstance(value, dict):
        if _DIRECTIVE in value:
            return None, False
        out: dict[str, Any] = {}
        for k, v in value.items():
            # discardNullValuesFromPatch: nulls in a new subtree have nothing to delete.
            if v is None or _is_directive_key(k):
                continue
            sub, keep = _remove_directives(v)
            if keep:
                out[k] = sub
        return out, True
    if isinstance(value, list):
        items = []
        for v in value:
            sub, keep = _remove_directives(v)
            if keep:
                items.append(sub)
        return items, True
    return value, True


def _merge_key_value(item: Any, merge_key: str) -> Any:
    if not isinstance(item, dict):
        raise PatchError(f"expected a map in a list merged by {merge_key!r}, got {item!r}")
    if merge_key not in item:
        raise PatchError(f"map: {item!r} does not contain declared merge key: {merge_key}")
    return item[merge_key]


def _find_by_key(items: list[Any], merge_key: str, value: Any) -> int:
    """findMapInSliceBasedOnKeyValue: index of the first item whose key equals `value`, or -1."""
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise PatchError(f"value for key {i} is not a map")
        if merge_key in item and _same(item[merge_key], value):
            return i
    return -1


def _index(items: list[Any], value: Any, merge_key: str, maps: bool) -> int:
    """index(): position of `value` in `items`, by merge key for maps; -1 when absent."""

    def val(item: Any) -> Any:
        if maps:
            return item.get(merge_key) if isinstance(item, dict) else None
        return item

    wanted = val(value)
    for i, item in enumerate(items):
        if _same(wanted, val(item)):
            return i
    return -1


def _normalize_slice_order(
    to_sort: list[Any], order: list[Any], merge_key: str, maps: bool
) -> list[Any]:
    """normalizeSliceOrder: sort `to_sort` by position in `order`, deletions last."""
    to_delete: list[Any] = []
    if maps:
        for item in [*to_sort, *order]:
            _merge_key_value(item, merge_key)
        kept = [i for i in to_sort if i.get(_DIRECTIVE) != "delete"]
        to_delete = [i for i in to_sort if i.get(_DIRECTIVE) == "delete"]
        to_sort = kept

    def less(a: Any, b: Any) -> bool:
        # Go's comparator, including its "true when either is unknown" quirk.
        ia = _index(order, a, merge_key, maps)
        if ia >= 0:
            ib = _index(order, b, merge_key, maps)
            if ib >= 0:
                return ia < ib
        return True

    # sort.SliceStable is an insertion sort for the short lists SMP deals with; replaying it
    # keeps the quirky comparator's results identical.
    out = list(to_sort)
    for i in range(1, len(out)):
        j = i
        while j > 0 and less(out[j], out[j - 1]):
            out[j], out[j - 1] = out[j - 1], out[j]
            j -= 1
    return out + to_delete


def _merge_sorted(
    left: list[Any], right: list[Any], server_order: list[Any], merge_key: str, maps: bool
) -> list[Any]:
    """mergeSortedSlice: interleave server-only items (left) into patch items (right).

    A left item goes first only when both items are in the live list and it was earlier there;
    so an item the live object never had puts the patch items ahead of the server-only ones.
    """
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index(server_order, left[i], merge_key, maps)
            ri = _index(server_order, right[j], merge_key, maps)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _normalize_element_order(
    patch_items: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
    maps: bool,
) -> list[Any]:
    patch_items = _normalize_slice_order(patch_items, patch_order, merge_key, maps)
    server_only = _normalize_slice_order(server_only, server_order, merge_key, maps)
    return _merge_sorted(server_only, patch_items, server_order, merge_key, maps)


def _partition(merged: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Split merged items into (those named in `by`, server-only ones), keeping their order."""
    present: list[Any] = []
    server_only: list[Any] = []
    for item in merged:
        if merge_key:
            found = _find_by_key(by, merge_key, _merge_key_value(item, merge_key)) >= 0
        else:
            found = any(_same(item, other) for other in by)
        (present if found else server_only).append(item)
    return present, server_only


def _dedupe_scalars(items: list[Any]) -> list[Any]:
    """deduplicateScalars, replayed exactly: it moves the last item into a duplicate's slot."""
    s = list(items)
    length = len(s) - 1
    i = 0
    while i < length:
        j = i + 1
        while j <= length:
            if _same(s[i], s[j]):
                s[j] = s[length]
                s = s[:length]
                length -= 1
                j -= 1
            j += 1
        i += 1
    return s


class _SMP:
    """One strategic-merge-patch application; `builtin` selects the list semantics."""

    def __init__(self, builtin: bool) -> None:
        self.builtin = builtin

    def _merge_key(self, path: tuple[str, ...]) -> tuple[bool, str]:
        lt = list_type(path, self.builtin)
        return lt.smp_merge, lt.smp_key

    def merge_map(
        self, original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]
    ) -> dict[str, Any]:
        directive = patch.pop(_DIRECTIVE, None)
        if directive == "replace":
            return dict(_clean(patch))
        if directive == "delete":
            # Go answers an empty map, not an absent field: `{"$patch": "delete"}` on
            # securityContext leaves `securityContext: {}`.
            return {}
        # "merge" (or no directive) falls through to an ordinary merge.

        self._apply_retain_keys(original, patch)
        self._merge_ordered_lists(original, patch, path)

        for key, patch_v in list(patch.items()):
            is_delete_list = key.startswith(_DELETE_PRIMITIVE)
            if is_delete_list:
                key = key[len(_DELETE_PRIMITIVE) :]
            sub_path = (*path, key)

            if patch_v is None:
                original.pop(key, None)
                continue

            if key not in original or _kind(original[key]) != _kind(patch_v):
                if not is_delete_list:
                    value, keep = _remove_directives(patch_v)
                    if keep:
                        original[key] = value
                    else:
                        original.pop(key, None)
                continue

            current = original[key]
            if isinstance(current, dict):
                original[key] = self.merge_map(current, patch_v, sub_path)
            elif isinstance(current, list):
                original[key] = self.merge_slice_handler(current, patch_v, sub_path, is_delete_list)
            else:
                original[key] = patch_v
        return original

    def _apply_retain_keys(self, original: dict[str, Any], patch: dict[str, Any]) -> None:
        if _RETAIN_KEYS not in patch:
            return
        retain = set(patch.pop(_RETAIN_KEYS))
        for key, value in patch.items():
            if value is None or key.startswith((_DELETE_PRIMITIVE, _SET_ORDER)):
                continue
            if key not in retain:
                raise PatchError(
                    f"invalid patch format of retainKeys: {key!r} is patched but not retained"
                )
        for key in list(original):
            if key not in retain:
                del original[key]

    def _merge_ordered_lists(
        self, original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]
    ) -> None:
        """mergePatchIntoOriginal: merge each list named by `$setElementOrder/<field>`."""
        for order_key in [k for k in patch if k.startswith(_SET_ORDER)]:
            order = patch.pop(order_key)
            field = order_key[len(_SET_ORDER) :]
            mergeable, merge_key = self._merge_key((*path, field))
            if not mergeable:
                # Go would try to order a replaced list too (and crash on lists of maps);
                # a replaced list already has the order the client sent.
                continue
            found_original = field in original
            found_patch = field in patch
            original_list = original.get(field)
            patch_list = patch.get(field)
            if found_original and not isinstance(original_list, list):
                raise PatchError(f"{field} is not a list in the object", "Invalid")
            if found_patch and not isinstance(patch_list, list):
                raise PatchError(f"{field} must be a list next to {order_key}")
            original_items: list[Any] = original_list if isinstance(original_list, list) else []
            patch_items: list[Any] = patch_list if isinstance(patch_list, list) else []
            _validate_patch_with_order(patch_items, order, merge_key)

            if found_original and not found_patch:
                merged = original_items
            elif found_patch and not found_original:
                merged, _ = _remove_directives(patch_items)
            elif found_original and found_patch:
                merged = self.merge_slice_handler(
                    original_items, patch_items, (*path, field), False
                )
            else:
                continue

            present, server_only = _partition(merged, order, merge_key)
            kind = _element_kind(original_items, patch_items)
            original[field] = _normalize_element_order(
                present, server_only, order, original_items, merge_key, kind == "map"
            )
            patch.pop(field, None)

    def merge_slice_handler(
        self,
        original: list[Any],
        patch: list[Any],
        path: tuple[str, ...],
        is_delete_list: bool,
    ) -> list[Any]:
        mergeable, merge_key = self._merge_key(path)
        if not mergeable:
            # Also for `$deleteFromPrimitiveList/` on a replaced list, which Go stores as the
            # new value of the list; kubectl never sends that.
            return list(_clean(patch))
        return self.merge_slice(original, patch, path, merge_key, is_delete_list)

    def merge_slice(
        self,
        original: list[Any],
        patch: list[Any],
        path: tuple[str, ...],
        merge_key: str,
        is_delete_list: bool,
    ) -> list[Any]:
        if not original and not patch:
            return original
        kind = _element_kind(original, patch)
        maps = kind == "map"
        if not maps:
            if is_delete_list:
                return [v for v in original if not any(_same(v, d) for d in patch)]
            merged = _dedupe_scalars([*original, *patch])
        else:
            if not merge_key:
                raise PatchError(f"cannot merge lists without merge key for {'.'.join(path)}")
            original, patch = self._special_elements(original, patch, merge_key)
            merged = self._merge_without_special(original, patch, path, merge_key)

        present, server_only = _partition(merged, patch, merge_key)
        return _normalize_element_order(present, server_only, patch, original, merge_key, maps)

    def _special_elements(
        self, original: list[Any], patch: list[Any], merge_key: str
    ) -> tuple[list[Any], list[Any]]:
        """mergeSliceWithSpecialElements: apply `$patch` items, return (original, rest)."""
        rest: list[Any] = []
        replace = False
        for item in patch:
            directive = item.get(_DIRECTIVE)
            if directive is None:
                rest.append(item)
            elif directive == "delete":
                value = _merge_key_value(item, merge_key)
                original = [
                    o
                    for o in original
                    if not (isinstance(o, dict) and merge_key in o and _same(o[merge_key], value))
                ]
            elif directive == "replace":
                replace = True
            else:
                # `$patch: merge` on an item just asks for the default.
                plain = dict(item)
                del plain[_DIRECTIVE]
                rest.append(plain)
        if replace:
            return [_clean(i) for i in rest], []
        return original, rest

    def _merge_without_special(
        self, original: list[Any], patch: list[Any], path: tuple[str, ...], merge_key: str
    ) -> list[Any]:
        merged = list(original)
        for item in patch:
            index = _find_by_key(merged, merge_key, _merge_key_value(item, merge_key))
            if index >= 0:
                merged[index] = self.merge_map(merged[index], item, path)
            else:
                merged.append(_clean(item))
        return merged


def _validate_patch_with_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """validatePatchWithSetOrderList: patch items must appear in `order`, in the same order."""
    if not order or not patch_list:
        return
    if merge_key:
        for item in patch_list:
            if not isinstance(item, dict):
                raise PatchError(f"expected a map in a list merged by {merge_key!r}")
        candidates = [i for i in patch_list if i.get(_DIRECTIVE) != "delete"]
    else:
        candidates = patch_list
    p = s = 0
    while p < len(candidates) and s < len(order):
        item = candidates[p]
        if isinstance(item, dict) and _DIRECTIVE in item:
            p += 1
            continue
        if merge_key:
            equal = _same(_merge_key_value(item, merge_key), _merge_key_value(order[s], merge_key))
        else:
            equal = _same(item, order[s])
        if equal:
            p += 1
        s += 1
    if p < len(candidates) and s >= len(order):
        raise PatchError(
            f"the order in patch list {patch_list!r} doesn't match $setElementOrder list {order!r}"
        )
