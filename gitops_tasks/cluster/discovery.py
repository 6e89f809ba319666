"""Which resources a cluster serves: apiVersion + kind -> plural, scope, verbs, subresources.

Used by `Cluster` to build request paths. Documents are fetched lazily, one group-version at a
time (an app of ConfigMaps and Deployments costs two requests, not the forty of a full
discovery), and kept for the life of the Cluster. A lookup that misses refreshes its document
once, since a CRD may have been created since (a sync applies CRDs before their objects).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

# Fetches a discovery path; None when the server does not serve it (404).
Fetch = Callable[[str], dict[str, Any] | None]


@dataclass(frozen=True)
class ResourceInfo:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: frozenset[str]
    subresources: frozenset[str] = frozenset()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "", subresource: str = "") -> str:
        """The REST path; `namespace` only matters for namespaced kinds (empty: all)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base


def group_version_path(api_version: str) -> str | None:
    """`/api/v1` or `/apis/<group>/<version>`; None for a malformed apiVersion."""
    group, _, version = api_version.rpartition("/")
    if not version or "/" in group or (not group and version != "v1"):
        return None
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def parse_resource_list(group: str, version: str, doc: dict[str, Any]) -> dict[str, ResourceInfo]:
    """kind -> ResourceInfo from an APIResourceList (subresources attach to their parent)."""
    entries = [r for r in doc.get("resources") or [] if isinstance(r, dict)]
    subs: dict[str, set[str]] = {}
    for r in entries:
        parent, _, sub = str(r.get("name", "")).partition("/")
        if sub:
            subs.setdefault(parent, set()).add(sub)
    kinds: dict[str, ResourceInfo] = {}
    for r in entries:
        name = str(r.get("name", ""))
        if "/" in name or not name or not r.get("kind"):
            continue
        info = ResourceInfo(
            group=group,
            version=version,
            kind=str(r["kind"]),
            plural=name,
            namespaced=bool(r.get("namespaced")),
            verbs=frozenset(str(v) for v in r.get("verbs") or ()),
            subresources=frozenset(subs.get(name, ())),
        )
        # Two resources with one kind (rare, e.g. aliases): keep the first, as kubectl does.
        kinds.setdefault(info.kind, info)
    return kinds


class Discovery:
    """Thread-safe, lazily filled discovery cache of one cluster."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._lock = threading.Lock()
        self._kinds: dict[str, dict[str, ResourceInfo]] = {}  # apiVersion -> kind -> info
        self._preferred: dict[str, str] | None = None  # group -> preferred version

    def invalidate(self, api_version: str | None = None) -> None:
        with self._lock:
            if api_version is None:
                self._kinds.clear()
                self._preferred = None
            else:
                self._kinds.pop(api_version, None)

    def lookup(self, api_version: str, kind: str) -> ResourceInfo | None:
        # Fast path without the lock: dict reads are atomic and entries are replaced whole.
        cached = self._kinds.get(api_version)
        if cached is not None and kind in cached:
            return cached[kind]
        with self._lock:
            cached = self._kinds.get(api_version)
            if cached is None or kind not in cached:
                # Not cached, or cached before a CRD added this kind: (re)load once.
                cached = self._load(api_version)
            return cached.get(kind)

    def _load(self, api_version: str) -> dict[str, ResourceInfo]:
        path = group_version_path(api_version)
        doc = self._fetch(path) if path is not None else None
        group, _, version = api_version.rpartition("/")
        kinds = parse_resource_list(group, version, doc) if doc else {}
        self._kinds[api_version] = kinds
        return kinds

    def preferred_kinds(self) -> list[ResourceInfo]:
        """Every kind the server serves, in each group's preferred version, for the rare scan
        that must look everywhere: the group list is read again (a CRD may have added a
        group), each group-version's kinds only when not known yet."""
        with self._lock:
            preferred = self._load_groups()
        versions = ["v1", *(f"{g}/{v}" for g, v in sorted(preferred.items()))]
        out: list[ResourceInfo] = []
        for api_version in versions:
            with self._lock:
                kinds = self._kinds.get(api_version)
                if kinds is None:
                    kinds = self._load(api_version)
            out.extend(kinds.values())
        return out

    def preferred_version(self, group: str) -> str | None:
        """The version the server prefers for `group` ("v1" for the core group); the group
        list is reloaded once when `group` is not in it (a CRD may have added it)."""
        if not group:
            return "v1"
        preferred = self._preferred
        if preferred is not None and group in preferred:
            return preferred[group]
        with self._lock:
            return self._load_groups().get(group)

    def _load_groups(self) -> dict[str, str]:
        doc = self._fetch("/apis") or {}
        preferred = {}
        for g in doc.get("groups") or []:
            version = (g.get("preferredVersion") or {}).get("version")
            if not version and g.get("versions"):
                version = g["versions"][0].get("version")
            if g.get("name") and version:
                preferred[str(g["name"])] = str(version)
        self._preferred = preferred
        return preferred
