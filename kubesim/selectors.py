"""Label and field selectors, parsed the way apimachinery's `labels.Parse` and `fields` do.

The server calls `parse_label_selector` / `parse_field_selector` once per list or watch request
and then matches every candidate object with the returned predicate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import StatusError, bad_request

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_KEY_RE = re.compile(rf"^({_PREFIX}/)?{_NAME}$")
_VALUE_RE = re.compile(rf"^({_NAME})?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("gt", "lt"):
            try:
                have = int(value) if value is not None else None
            except ValueError:
                return False
            if have is None:
                return False
            want = int(self.values[0])
            return have > want if self.op == "gt" else have < want
        return False


Predicate = Callable[[dict[str, Any]], bool]


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside the parentheses of an `in (...)` set."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _check_key(key: str, selector: str) -> None:
    if not _KEY_RE.match(key) or len(key.split("/")[-1]) > 63:
        raise bad_request(
            f'unable to parse requirement: invalid label key "{key}": name part must consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an "
            f"alphanumeric character (selector {selector!r})"
        )


def _check_value(value: str, selector: str) -> None:
    if len(value) > 63 or not _VALUE_RE.match(value):
        raise bad_request(
            f'unable to parse requirement: invalid label value: "{value}": a valid label must '
            "be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
            f"must start and end with an alphanumeric character (selector {selector!r})"
        )


_SET_RE = re.compile(r"^\s*(\S+?)\s+(in|notin)\s*\((.*)\)\s*$")
_OP_RE = re.compile(r"^\s*([^=!<>\s]+)\s*(==|=|!=|>|<)\s*(.*?)\s*$")


def parse_requirements(selector: str) -> list[Requirement]:
    """Parse a label selector string; raises a 400 StatusError for malformed input."""
    selector = selector.strip()
    if not selector:
        return []
    reqs: list[Requirement] = []
    for raw in _split_top_level(selector):
        part = raw.strip()
        if not part:
            raise bad_request(f"unable to parse requirement: found '', expected: identifier "
                              f"(selector {selector!r})")
        if m := _SET_RE.match(part):
            key, op, inner = m.group(1), m.group(2), m.group(3)
            _check_key(key, selector)
            values = tuple(v.strip() for v in inner.split(",")) if inner.strip() else ()
            if not values:
                raise bad_request(f"unable to parse requirement: for 'in', 'notin' operators, "
                                  f"values set can't be empty (selector {selector!r})")
            for v in values:
                _check_value(v, selector)
            reqs.append(Requirement(key, op, values))
        elif m := _OP_RE.match(part):
            key, op, value = m.group(1), m.group(2), m.group(3)
            _check_key(key, selector)
            if op in (">", "<"):
                if not re.fullmatch(r"-?\d+", value):
                    raise bad_request(f"unable to parse requirement: for 'Gt', 'Lt' operators, "
                                      f"the value must be an integer (selector {selector!r})")
                reqs.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
                continue
            _check_value(value, selector)
            reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
        elif part.startswith("!"):
            key = part[1:].strip()
            _check_key(key, selector)
            reqs.append(Requirement(key, "!"))
        else:
            _check_key(part, selector)
            reqs.append(Requirement(part, "exists"))
    return reqs


def parse_label_selector(selector: str) -> Predicate:
    reqs = parse_requirements(selector)
    if not reqs:
        return lambda obj: True

    def match(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(r.matches(labels) for r in reqs)

    return match


# Fields every kind can be selected by, plus the per-kind extras real servers register.
_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
_EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
            "spec.serviceAccountName", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
              "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
              "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    "Secret": ("type",),
    "Namespace": ("status.phase",),
    "Job": ("status.successful",),
    "ReplicaSet": ("status.replicas",),
}


def _field_value(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    return str(cur)


def parse_field_selector(selector: str, kind: str) -> Predicate:
    """Parse a field selector for objects of `kind`; unsupported fields give 400 like a real
    server ("field label not supported")."""
    selector = selector.strip()
    if not selector:
        return lambda obj: True
    allowed = set(_COMMON_FIELDS) | set(_EXTRA_FIELDS.get(kind, ()))
    terms: list[tuple[str, bool, str]] = []
    for raw in selector.split(","):
        part = raw.strip()
        m = re.match(r"^([^=!]+?)\s*(==|=|!=)\s*(.*)$", part)
        if not m:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{part}'")
        key, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        if key not in allowed:
            raise StatusError(400, "BadRequest",
                              f'"{key}" is not a known field selector: only '
                              f'"{", ".join(sorted(allowed))}"')
        terms.append((key, op != "!=", value))

    def match(obj: dict[str, Any]) -> bool:
        return all((_field_value(obj, k) == v) == eq for k, eq, v in terms)

    return match
