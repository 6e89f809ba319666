"""Typed reads from unstructured objects, shared by the health checks.

Checks read live objects as plain dicts, exactly as the API server returns them. The API server
omits zero integers, false booleans and empty lists, so an absent (or null) field reads as its
zero value here. A field that is present with the wrong type raises `FieldTypeError` naming the
path; `resource_health` turns that into Unknown, so garbage never passes for a healthy object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class FieldTypeError(TypeError):
    """A field exists but does not have the type the Kubernetes API gives it."""


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def _get(obj: Mapping[str, Any], path: Sequence[str]) -> Any:
    current: Any = obj
    for depth, key in enumerate(path):
        if current is None:
            return None
        if not isinstance(current, Mapping):
            where = ".".join(path[:depth]) or "object"
            raise FieldTypeError(f"{where}: expected an object, got {_describe(current)}")
        current = current.get(key)
    return current


def _wrong(path: Sequence[str], expected: str, value: Any) -> FieldTypeError:
    return FieldTypeError(f"{'.'.join(path)}: expected {expected}, got {_describe(value)}")


def mapping(obj: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    value = _get(obj, path)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _wrong(path, "an object", value)
    return value


def integer(obj: Mapping[str, Any], *path: str, default: int = 0) -> int:
    value = _get(obj, path)
    if value is None:
        return default
    # bool is an int subclass in Python, but `replicas: true` is not a replica count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(path, "an integer", value)
    return value


def string(obj: Mapping[str, Any], *path: str, default: str = "") -> str:
    value = _get(obj, path)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _wrong(path, "a string", value)
    return value


def boolean(obj: Mapping[str, Any], *path: str) -> bool:
    value = _get(obj, path)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _wrong(path, "a boolean", value)
    return value


def objects(obj: Mapping[str, Any], *path: str) -> list[Mapping[str, Any]]:
    """A list of objects (containerStatuses, ingress points, ...); absent means empty."""
    value = _get(obj, path)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _wrong(path, "a list", value)
    for item in value:
        if not isinstance(item, Mapping):
            raise _wrong(path, "a list of objects", item)
    return value


def timestamp(obj: Mapping[str, Any], *path: str) -> datetime | None:
    """An RFC 3339 time as the API server writes it ("2024-05-02T10:15:32Z"), or None."""
    text = string(obj, *path)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _wrong(path, "an RFC 3339 time", text) from None
    # The API server always writes UTC with "Z"; an offset-less time is taken as UTC too, so
    # that any two timestamps compare.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Condition:
    """One entry of `status.conditions` (metav1.Condition and the older per-kind variants)."""

    type: str
    status: str
    reason: str = ""
    message: str = ""

    @property
    def is_true(self) -> bool:
        return self.status == "True"

    @property
    def is_false(self) -> bool:
        return self.status == "False"

    def describe(self) -> str:
        """The reason and message as "Reason: message", or whichever of the two is set."""
        if self.reason and self.message:
            return f"{self.reason}: {self.message}"
        return self.message or self.reason


def parse_conditions(items: Sequence[Mapping[str, Any]], where: str) -> list[Condition]:
    result = []
    for item in items:
        values: list[str] = []
        for key in ("type", "status", "reason", "message"):
            value = item.get(key)
            if value is not None and not isinstance(value, str):
                raise FieldTypeError(f"{where}: malformed condition {_describe(dict(item))}")
            values.append(value or "")
        result.append(Condition(*values))
    return result


def conditions(obj: Mapping[str, Any], *path: str) -> list[Condition]:
    """The conditions at `path` (default `status.conditions`)."""
    path = path or ("status", "conditions")
    return parse_conditions(objects(obj, *path), ".".join(path))


def find(conds: Sequence[Condition], ctype: str) -> Condition | None:
    """The condition of type `ctype`; controllers keep at most one per type."""
    return next((c for c in conds if c.type == ctype), None)
