"""An Application's `ignoreDifferences`: which rules match a resource, and applying them.

Called by `compare.py` after generic normalisation, on both sides with the same rules; the engine
may call `validate_rules` when it reads an Application, to report a broken rule before any diff.
Semantics follow Argo CD: group and kind are globs ("*" matches any, "" is the core group), an
empty name or namespace matches any; a JSON pointer or jq path that selects nothing is not an error.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
from collections.abc import Sequence
from typing import Any

import jq

from ..errors import PermanentError
from ..log import get_logger
from ..model.application import IgnoreDifference
from ..model.resources import ResourceKey
from . import managedfields

Obj = dict[str, Any]
Path = tuple[str | int, ...]

_log = get_logger(component="diff")


class InvalidIgnoreRule(PermanentError):
    """An ignoreDifferences entry that can never work (a jq expression that does not compile or is
    not a path expression). Permanent: only an edit of the Application fixes it."""

    def __init__(self, expression: str, reason: str, *, app: str | None = None) -> None:
        self.expression = expression
        super().__init__(f"ignoreDifferences: invalid jqPathExpression {expression!r}: {reason}",
                         app=app)


def ignore_rules_for(key: ResourceKey, rules: Sequence[IgnoreDifference]) -> list[IgnoreDifference]:
    """The rules that apply to the resource `key`, in their original order."""
    return [r for r in rules
            if fnmatch.fnmatchcase(key.group, r.group)
            and fnmatch.fnmatchcase(key.kind, r.kind)
            and (not r.name or r.name == key.name)
            and (not r.namespace or r.namespace == key.namespace)]


def validate_rules(rules: Sequence[IgnoreDifference]) -> None:
    """Compile every jq expression; raises InvalidIgnoreRule for the first that does not."""
    for rule in rules:
        for expression in rule.jq_path_expressions:
            _compiled(expression)


def apply_ignore_rules(
    obj: Obj,
    rules: Sequence[IgnoreDifference],
    *,
    managed_fields: list[dict[str, Any]] | None = None,
) -> Obj:
    """A copy of `obj` without the fields the rules select. `rules` are taken as already matched
    to this object (see `ignore_rules_for`). `managed_fields` is the LIVE object's
    metadata.managedFields; compare.py passes the same list for both sides so one manager's fields
    disappear from both. When None, `obj`'s own managedFields are used."""
    out = copy.deepcopy(obj)
    paths: list[Path] = []
    for rule in rules:
        for pointer in rule.json_pointers:
            if not pointer.startswith("/"):
                continue  # the Application parser rejects these; "" would be the whole object
            path = _resolve(out, parse_pointer(pointer))
            if path is not None:
                paths.append(path)
        for expression in rule.jq_path_expressions:
            paths.extend(_jq_paths(out, expression))
    _delete_paths(out, paths)

    managers = [m for rule in rules for m in rule.managed_fields_managers]
    if managers:
        if managed_fields is None:
            managed_fields = (obj.get("metadata") or {}).get("managedFields") or []
        owned = managedfields.owned_by(managed_fields, managers)
        out = managedfields.remove_owned(out, owned)
    return out


def parse_pointer(pointer: str) -> list[str]:
    """RFC 6901 reference tokens ("/metadata/annotations/a~1b" -> metadata, annotations, a/b)."""
    if not pointer:
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


@functools.lru_cache(maxsize=512)
def _compiled(expression: str) -> Any:
    try:
        # Compiled alone first so a syntax error is reported against the user's text, not our
        # `path(...)` wrapper.
        jq.compile(expression)
        # The newline keeps a trailing `# comment` in the expression from swallowing the `)`.
        return jq.compile(f"path({expression}\n)")
    except ValueError as exc:
        raise InvalidIgnoreRule(expression, _first_line(str(exc))) from exc


def _jq_paths(obj: Obj, expression: str) -> list[Path]:
    program = _compiled(expression)
    try:
        raw = program.input_value(obj).all()
    except ValueError as exc:
        message = str(exc)
        if "Invalid path expression" in message:
            raise InvalidIgnoreRule(expression, _first_line(message)) from exc
        # "Cannot iterate over null" and the like: the selected structure is absent from this
        # object, so there is nothing to ignore (Argo CD skips the rule the same way).
        _log.debug("jq path expression selects nothing", expression=expression, error=message)
        return []
    out: list[Path] = []
    for path in raw:
        if isinstance(path, list):
            out.extend(p for p in _expand(obj, path) if p)
    return out


def _expand(obj: Any, path: list[Any]) -> list[Path]:
    """Concrete paths for a jq path: negative indices made positive, slices ({"start", "end"})
    expanded to their indices, paths into nothing dropped."""
    if not path:
        return [()]
    head, rest = path[0], path[1:]
    if isinstance(obj, dict) and isinstance(head, str):
        return [(head, *tail) for tail in _expand(obj[head], rest)] if head in obj else []
    if isinstance(obj, list):
        if isinstance(head, int) and not isinstance(head, bool):
            i = head + len(obj) if head < 0 else head
            return [(i, *tail) for tail in _expand(obj[i], rest)] if 0 <= i < len(obj) else []
        if isinstance(head, dict):
            start, end = head.get("start"), head.get("end")
            indices = range(len(obj))[slice(start, end)]
            return [(i, *tail) for i in indices for tail in _expand(obj[i], rest)]
    return []


def _resolve(obj: Any, tokens: list[str]) -> Path | None:
    """The concrete path of JSON pointer tokens, or None when the pointer selects nothing."""
    path: list[str | int] = []
    for token in tokens:
        if isinstance(obj, dict) and token in obj:
            path.append(token)
            obj = obj[token]
        elif isinstance(obj, list) and token.isdigit() and int(token) < len(obj):
            path.append(int(token))
            obj = obj[int(token)]
        else:
            return None
    return tuple(path) or None


def _delete_paths(obj: Obj, paths: list[Path]) -> None:
    # Deepest and highest indices first, so an earlier deletion never shifts a later one's target.
    for path in sorted(set(paths), key=_sort_key, reverse=True):
        parent: Any = obj
        for part in path[:-1]:
            parent = parent[part]
        del parent[path[-1]]


def _sort_key(path: Path) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in path)


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    first = lines[0].removeprefix("jq: error: ") if lines else message
    # jq's "at <top-level>, line 1, column N" counts from our `path(` wrapper: misleading.
    return first.split(" at <top-level>")[0].rstrip(":")
