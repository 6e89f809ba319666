"""`Cluster`: the operations the engine performs on one API server, on plain dicts.

Called by the diff (dry-run apply, get), health (get, list), sync (apply, create, replace,
delete) and task layers (Application status), through `Destinations.resolve()` or a Cluster
built on the process's default ApiClient. Every method is safe to call from many threads.
Errors are the typed `ApiError`s of `gitops_tasks.errors`; nothing here retries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import ApiError, ApiInvalid, ApiNotFound, ApiTransient, UnknownKind
from ..model.resources import ResourceKey
from .discovery import Discovery, ResourceInfo
from .throttling import Limiter
from .transport import JSON, METADATA_LIST, USER_AGENT, Response, Transport

APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": APPLY_PATCH,
}
PROPAGATION_POLICIES = ("Foreground", "Background", "Orphan")
DEFAULT_PAGE_SIZE = 500

# (A module-level alias: inside `Cluster`, `list` is the method.)
Objects = list[dict[str, Any]]


class WatchExpired(ApiTransient):
    """410 Gone: the resourceVersion a watch started from is no longer in the server's history;
    list again and watch from the list's resourceVersion."""


# The message of a 404 for a path the server does not serve at all (a kind whose CRD is gone),
# as opposed to a missing object or namespace.
_NO_SUCH_PATH = "could not find the requested resource"


class Cluster:
    """One API server: cached discovery, a rate limit, one connection pool."""

    def __init__(
        self,
        api_client: Any,
        *,
        name: str = "in-cluster",
        server: str = "",
        qps: float = 50.0,
        burst: int = 100,
        field_manager: str = "gitops-tasks",
        request_timeout: float = 30.0,
        page_size: int = DEFAULT_PAGE_SIZE,
        limiter: Limiter | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.api_client = api_client
        self.name = name
        self._http = Transport(api_client, cluster=name, qps=qps, burst=burst,
                               timeout=request_timeout, limiter=limiter,
                               user_agent=user_agent)
        self.server = server or self._http.server
        self.field_manager = field_manager
        self.page_size = page_size
        self._discovery = Discovery(self._fetch_discovery)

    def __repr__(self) -> str:
        return f"Cluster(name={self.name!r}, server={self.server!r})"

    @property
    def requests(self) -> int:
        """HTTP requests made so far, discovery included (for benchmarks and tests)."""
        return self._http.requests

    # ------------------------------------------------------------------ discovery

    def _fetch_discovery(self, path: str) -> dict[str, Any] | None:
        resp = self._http.request("GET", path, verb="discover", accept=(404,))
        return None if resp.status == 404 or not isinstance(resp.body, dict) else resp.body

    def resource(self, api_version: str, kind: str) -> ResourceInfo:
        """What the server serves for apiVersion/kind; UnknownKind if nothing, even after one
        discovery refresh."""
        return self._info(api_version, kind, None)

    def resource_by_group_kind(self, group: str, kind: str) -> ResourceInfo:
        """As `resource()` for the group's preferred version (for inventories that store only
        group and kind)."""
        version = self._discovery.preferred_version(group)
        if version is None:
            raise UnknownKind(f"cluster {self.name} serves no API group {group!r} (install "
                              f"the CRD that defines {kind} first)",
                              resource=ResourceKey(group, kind, "", ""), cluster=self.name)
        return self.resource(f"{group}/{version}" if group else version, kind)

    def served_kinds(self) -> list[ResourceInfo]:
        """Every kind served, in its group's preferred version (a full discovery)."""
        return self._discovery.preferred_kinds()

    def invalidate_discovery(self) -> None:
        self._discovery.invalidate()

    def _info(self, api_version: str, kind: str, key: ResourceKey | None) -> ResourceInfo:
        info = self._discovery.lookup(api_version, kind)
        if info is None:
            raise UnknownKind(
                f"cluster {self.name} serves no kind {kind!r} in apiVersion {api_version!r} "
                "(install its CRD first, or fix apiVersion/kind in the manifest)",
                resource=key or ResourceKey(api_version.rpartition("/")[0], kind, "", ""),
                cluster=self.name)
        return info

    def _key(self, api_version: str, kind: str, namespace: str, name: str) -> ResourceKey:
        return ResourceKey(api_version.rpartition("/")[0], kind, namespace, name)

    def _gone_kind(self, info: ResourceInfo, resp_or_exc: Response | ApiError) -> bool:
        """True for a 404 on the path itself (the kind is no longer served, e.g. its CRD was
        deleted); forgets that group-version so the next lookup sees the change."""
        text = (str(resp_or_exc) if isinstance(resp_or_exc, ApiError)
                else str((resp_or_exc.body or {}).get("message", "")))
        if _NO_SUCH_PATH not in text:
            return False
        self._discovery.invalidate(info.api_version)
        return True

    # ------------------------------------------------------------------ reads

    def get(self, api_version: str, kind: str, name: str,
            namespace: str = "") -> dict[str, Any] | None:
        """The live object, None when it (or its namespace) does not exist; UnknownKind when
        the server does not serve the kind."""
        key = self._key(api_version, kind, namespace, name)
        info = self._info(api_version, kind, key)
        self._require_namespace(info, namespace, key, "get")
        resp = self._http.request("GET", info.path(namespace, name), verb="get", resource=key,
                                  accept=(404,))
        if resp.status == 404:
            self._gone_kind(info, resp)
            return None
        obj: dict[str, Any] = resp.body
        return obj

    def list(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str = "",
    ) -> list[dict[str, Any]]:
        """Every matching object, page by page (`page_size` per request); namespace None (or
        "") lists all namespaces. Items carry apiVersion and kind, which list items lack."""
        return self.list_versioned(api_version, kind, namespace=namespace,
                                   label_selector=label_selector)[0]

    def list_versioned(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str = "",
    ) -> tuple[Objects, str]:
        """As `list`, with the list's resourceVersion: where a watch that must miss nothing
        after this list starts."""
        return self._list(api_version, kind, namespace, label_selector, JSON)

    def _list(self, api_version: str, kind: str, namespace: str | None, label_selector: str,
              media: str) -> tuple[Objects, str]:
        key = self._key(api_version, kind, namespace or "", "")
        info = self._info(api_version, kind, key)
        path = info.path(namespace or "")
        query: dict[str, str] = {}
        if label_selector:
            query["labelSelector"] = label_selector
        if self.page_size > 0:
            query["limit"] = str(self.page_size)
        items: Objects = []
        version = ""
        while True:
            resp = self._http.request("GET", path, query=query, verb="list", resource=key,
                                      media=media,
                                      accept=(410,) if "continue" in query else ())
            if resp.status == 410:
                # The continue token expired (the server compacted its history mid-list):
                # what we have is from an older snapshot, so take one whole list instead.
                items, version = [], ""
                query.pop("continue", None)
                query.pop("limit", None)
                continue
            body = resp.body or {}
            # An empty metadata-only list has `"items": null` (a Go nil slice).
            items.extend(body.get("items") or [])
            meta = body.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            token = meta.get("continue")
            if not token:
                break
            query["continue"] = str(token)
        for item in items:
            item["apiVersion"] = info.api_version
            item["kind"] = info.kind
        return items, version

    def list_metadata(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str = "",
    ) -> tuple[Objects, str]:
        """(every matching object's metadata, the list's resourceVersion): the metadata-only
        representation (PartialObjectMetadataList), which is what a sweep needs to see whether
        anything moved, at a fraction of a full list's bytes. Items carry the kind's own
        apiVersion and kind."""
        return self._list(api_version, kind, namespace, label_selector, METADATA_LIST)

    def watch(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        resource_version: str = "",
        timeout_seconds: int = 300,
        label_selector: str = "",
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event type, object) from resourceVersion on, until the server ends the watch
        (after about `timeout_seconds`). BOOKMARK events carry only a resourceVersion. A
        resourceVersion too old to watch from raises WatchExpired: list again."""
        key = self._key(api_version, kind, namespace or "", "")
        info = self._info(api_version, kind, key)
        query = {"watch": "1", "timeoutSeconds": str(timeout_seconds),
                 "allowWatchBookmarks": "true"}
        if resource_version:
            query["resourceVersion"] = resource_version
        if label_selector:
            query["labelSelector"] = label_selector
        for event in self._http.stream(info.path(namespace or ""), query=query, verb="watch",
                                       resource=key, read_timeout=timeout_seconds + 30,
                                       accept=(410,)):
            if not isinstance(event, dict):
                continue
            if event.get("kind") == "Status" or event.get("type") == "ERROR":
                status = event.get("object", event) if event.get("type") == "ERROR" else event
                if int(status.get("code") or 0) == 410:
                    raise WatchExpired(f"watch of {kind} on cluster {self.name}: "
                                       f"{status.get('message', 'too old resource version')}",
                                       resource=key, status=410, cluster=self.name)
                raise ApiTransient(f"watch of {kind} on cluster {self.name} ended: "
                                   f"{status.get('message', status)}", resource=key,
                                   status=int(status.get("code") or 0), cluster=self.name)
            obj = event.get("object")
            if isinstance(obj, dict):
                obj.setdefault("apiVersion", info.api_version)
                obj.setdefault("kind", info.kind)
                yield str(event.get("type", "")), obj

    # ------------------------------------------------------------------ writes

    def _require_namespace(self, info: ResourceInfo, namespace: str, key: ResourceKey,
                           verb: str) -> None:
        if info.namespaced and not namespace:
            raise ApiInvalid(
                f"{verb} {key} on cluster {self.name}: {info.kind} is namespaced but no "
                "namespace was given (set metadata.namespace or the destination namespace)",
                resource=key, cluster=self.name)

    def _prepare(self, obj: dict[str, Any], verb: str, *, apply: bool = False
                 ) -> tuple[ResourceInfo, dict[str, Any], ResourceKey]:
        """(info, body to send, key): checks name and namespace, drops a cluster-scoped kind's
        namespace and, for apply, managedFields (which the server rejects in an apply body).
        The caller's dict is never modified."""
        api_version = str(obj.get("apiVersion", ""))
        kind = str(obj.get("kind", ""))
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        name = str(meta.get("name") or "")
        key = self._key(api_version, kind, namespace, name)
        info = self._info(api_version, kind, key)
        if not name and not (verb == "create" and meta.get("generateName")):
            raise ApiInvalid(f"{verb} {key} on cluster {self.name}: metadata.name is required",
                             resource=key, cluster=self.name)
        self._require_namespace(info, namespace, key, verb)
        drop: set[str] = set()
        if not info.namespaced and "namespace" in meta:
            drop.add("namespace")
            key = ResourceKey(key.group, key.kind, "", key.name)
        if apply and "managedFields" in meta:
            drop.add("managedFields")
        if drop:
            obj = {**obj, "metadata": {k: v for k, v in meta.items() if k not in drop}}
        return info, obj, key

    def _write(self, method: str, info: ResourceInfo, path: str, *, query: dict[str, str],
               body: Any, content_type: str = "application/json", verb: str,
               key: ResourceKey) -> dict[str, Any]:
        try:
            resp = self._http.request(method, path, query=query, body=body,
                                      content_type=content_type, verb=verb, resource=key)
        except ApiNotFound as exc:
            if self._gone_kind(info, exc):
                raise UnknownKind(f"{verb} {key} on cluster {self.name}: the server no longer "
                                  f"serves {info.kind} in {info.api_version} (was its CRD "
                                  "deleted?)", resource=key, cluster=self.name) from exc
            raise
        result: dict[str, Any] = resp.body
        return result

    def _query(self, *, dry_run: bool, field_manager: str | None = None,
               validate: bool = True) -> dict[str, str]:
        query = {"fieldManager": field_manager or self.field_manager,
                 # Strict: a field the server does not know (a typo in Git) is an error, not
                 # silently dropped; Validate=false on the object or app relaxes it.
                 "fieldValidation": "Strict" if validate else "Ignore"}
        if dry_run:
            query["dryRun"] = "All"
        return query

    def apply(
        self,
        obj: dict[str, Any],
        *,
        force: bool = False,
        dry_run: bool = False,
        field_manager: str | None = None,
        validate: bool = True,
    ) -> dict[str, Any]:
        """Server-side apply `obj` (creating it if missing); returns the object the server
        holds (or would hold, with dry_run). ApiConflict lists fields other managers own."""
        info, body, key = self._prepare(obj, "apply", apply=True)
        query = self._query(dry_run=dry_run, field_manager=field_manager, validate=validate)
        if force:
            query["force"] = "true"
        return self._write("PATCH", info, info.path(key.namespace, key.name), query=query,
                           body=body, content_type=APPLY_PATCH, verb="apply", key=key)

    def create(self, obj: dict[str, Any], *, dry_run: bool = False,
               validate: bool = True) -> dict[str, Any]:
        info, body, key = self._prepare(obj, "create")
        return self._write("POST", info, info.path(key.namespace), query=self._query(
            dry_run=dry_run, validate=validate), body=body, verb="create", key=key)

    def replace(self, obj: dict[str, Any], *, dry_run: bool = False,
                validate: bool = True) -> dict[str, Any]:
        """PUT `obj` whole (the Replace=true sync option); uses the live resourceVersion when
        `obj` has none, and creates the object when it does not exist."""
        info, body, key = self._prepare(obj, "replace")
        meta = body.get("metadata") or {}
        if not meta.get("resourceVersion"):
            live = self.get(info.api_version, info.kind, key.name, key.namespace)
            if live is None:
                return self.create(body, dry_run=dry_run, validate=validate)
            version = (live.get("metadata") or {}).get("resourceVersion")
            body = {**body, "metadata": {**meta, "resourceVersion": version}}
        return self._write("PUT", info, info.path(key.namespace, key.name),
                           query=self._query(dry_run=dry_run, validate=validate), body=body,
                           verb="replace",
                           key=key)

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str = "",
        *,
        propagation: str = "Foreground",
        dry_run: bool = False,
    ) -> bool:
        """Delete (or start deleting, with finalizers) an object; False when already gone."""
        key = self._key(api_version, kind, namespace, name)
        if propagation not in PROPAGATION_POLICIES:
            raise ApiInvalid(f"delete {key}: propagation must be one of "
                             f"{', '.join(PROPAGATION_POLICIES)}, not {propagation!r}",
                             resource=key, cluster=self.name)
        info = self._info(api_version, kind, key)
        self._require_namespace(info, namespace, key, "delete")
        query = {"dryRun": "All"} if dry_run else None
        options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        resp = self._http.request("DELETE", info.path(namespace, name), query=query,
                                  body=options, verb="delete", resource=key, accept=(404,))
        if resp.status == 404:
            self._gone_kind(info, resp)
            return False
        return True

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str,
        patch: Any,
        *,
        patch_type: str = "merge",
        subresource: str = "",
    ) -> dict[str, Any]:
        """A merge (default), JSON or strategic merge patch; returns the patched object."""
        key = self._key(api_version, kind, namespace, name)
        content_type = PATCH_TYPES.get(patch_type)
        if content_type is None:
            raise ApiInvalid(f"patch {key}: unknown patch type {patch_type!r} (one of "
                             f"{', '.join(PATCH_TYPES)})", resource=key, cluster=self.name)
        info = self._info(api_version, kind, key)
        self._require_namespace(info, namespace, key, "patch")
        return self._write("PATCH", info, info.path(namespace, name, subresource),
                           query=self._query(dry_run=False), body=patch,
                           content_type=content_type, verb="patch", key=key)

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str,
                     status: dict[str, Any]) -> dict[str, Any]:
        """Merge `status` into the object's status, through the status subresource when the
        kind has one (writes to the main resource ignore status there), else the object."""
        info = self._info(api_version, kind, self._key(api_version, kind, namespace, name))
        sub = "status" if "status" in info.subresources else ""
        return self.patch(api_version, kind, name, namespace, {"status": status},
                          subresource=sub)
