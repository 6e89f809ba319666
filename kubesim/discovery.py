"""Discovery and OpenAPI documents, built from the registry on every request.

kubectl and the Python client read these to map kinds to paths; kubectl also reads
`/openapi/v3` to learn that the server validates fields itself (`fieldValidation`), which is how
`kubectl apply` works with its default validation.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .registry import Registry

SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0",
    "gitCommit": "kubesim",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    }


def _group_doc(registry: Registry, group: str) -> dict[str, Any]:
    versions = [
        {"groupVersion": f"{group}/{v}", "version": v} for v in registry.versions_of(group)
    ]
    # The Python client compares preferredVersion with the versions entries as whole dicts.
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions,
        "preferredVersion": dict(versions[0]),
    }


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group_doc(registry, g) for g in registry.groups()]
    for g in groups:
        g.pop("kind")
        g.pop("apiVersion")
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    if group not in registry.groups():
        return None
    return _group_doc(registry, group)


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    if not registry.has_group_version(group, version):
        return None
    resources: list[dict[str, Any]] = []
    for rt in registry:
        if rt.group == group and rt.version == version:
            resources.extend(rt.discovery_entries())
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def openapi_v3_doc(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    """A minimal OpenAPI v3 document for one group-version: for each kind, the item path with a
    PATCH operation that declares its GVK and the `fieldValidation` query parameter. That is all
    kubectl needs to decide the server validates fields itself."""
    if not registry.has_group_version(group, version):
        return None
    paths: dict[str, Any] = {}
    for rt in registry:
        if rt.group != group or rt.version != version:
            continue
        prefix = "/" + _gv_path(group, version)
        if rt.namespaced:
            item = f"{prefix}/namespaces/{{namespace}}/{rt.plural}/{{name}}"
        else:
            item = f"{prefix}/{rt.plural}/{{name}}"
        params = [
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string",
                                                               "uniqueItems": True}},
            {"name": "fieldValidation", "in": "query",
             "schema": {"type": "string", "uniqueItems": True}},
            {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": True}},
        ]
        paths[item] = {
            "patch": {
                "operationId": f"patch{rt.kind}",
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {
                    "group": group,
                    "version": version,
                    "kind": rt.kind,
                },
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {}},
    }


def openapi_v3_root(registry: Registry) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    gvs: list[tuple[str, str]] = []
    for rt in registry:
        if (rt.group, rt.version) not in gvs:
            gvs.append((rt.group, rt.version))
    for group, version in gvs:
        doc = openapi_v3_doc(registry, group, version)
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
        path = _gv_path(group, version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}
