"""Resource identity shared by every layer: group, kind, namespace, name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class ResourceKey:
    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: dict[str, Any], default_namespace: str = "") -> ResourceKey:
        api_version = str(obj.get("apiVersion", ""))
        group = api_version.rpartition("/")[0]
        meta = obj.get("metadata") or {}
        return cls(group, str(obj.get("kind", "")), str(meta.get("namespace") or
                                                        default_namespace),
                   str(meta.get("name", "")))

    @property
    def group_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.group_kind} {where}{self.name}"


def api_group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def api_version_of(obj: dict[str, Any]) -> str:
    return str(obj.get("apiVersion", ""))
