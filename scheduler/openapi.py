"""The OpenAPI document of the management API (`GET /openapi.json`)."""

from __future__ import annotations

from typing import Any

_ERROR = {"description": "what went wrong",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _responses(ok: int, description: str, schema: dict[str, Any] | None = None,
               *extra: int) -> dict[str, Any]:
    body: dict[str, Any] = {"description": description}
    if schema is not None:
        body["content"] = {"application/json": {"schema": schema}}
    out: dict[str, Any] = {str(ok): body, "401": _ERROR, "403": _ERROR, "404": _ERROR,
                           "503": _ERROR}
    for code in extra:
        out[str(code)] = _ERROR
    return out


def _op(summary: str, responses: dict[str, Any], body: dict[str, Any] | None = None
        ) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses,
                          "parameters": [{"$ref": "#/components/parameters/namespace"},
                                         {"$ref": "#/components/parameters/name"}]}
    if body is not None:
        op["requestBody"] = {"required": False, "content": {"application/json": {
            "schema": {"type": "object", "additionalProperties": False, "properties": body}}}}
    return op


def spec() -> dict[str, Any]:
    obj = {"type": "object"}
    operation = {"type": "object", "properties": {"operation": {"type": "string"}},
                 "required": ["operation"]}
    item = "/api/v1/applications/{namespace}/{name}"
    return {
        "openapi": "3.0.3",
        "info": {"title": "gitops-tasks management API", "version": "v1"},
        # A bearer token, or the panel's session cookie (writes then need X-CSRF-Token).
        "security": [{"bearer": []}, {"panelSession": []}],
        "paths": {
            "/api/v1/applications": {"get": {
                "summary": "Applications with their sync status and health",
                "responses": {"200": {"description": "the Applications", "content": {
                    "application/json": {"schema": {"type": "object", "properties": {
                        "items": {"type": "array", "items": obj}}}}}},
                    "401": _ERROR, "403": _ERROR, "503": _ERROR}}},
            item: {"get": _op("One Application as stored", _responses(200, "it", obj))},
            item + "/diff": {"get": _op("What differs between Git and the cluster",
                                        _responses(200, "the diff", obj, 422))},
            item + "/history": {"get": _op("The deployed revisions",
                                           _responses(200, "the entries", obj))},
            item + "/resource-tree": {"get": _op(
                "The app's resources with the objects their controllers made (ReplicaSets, "
                "Pods, Jobs)", _responses(200, "the tree", {
                    "type": "object", "properties": {"nodes": {"type": "array",
                                                               "items": obj}},
                    "required": ["nodes"]}, 422))},
            item + "/revisions/{revision}/metadata": {"get": {
                **_op("Author, date and message of a commit of the app's repository",
                      _responses(200, "the commit", {
                          "type": "object", "required": ["sha", "author", "date", "message"],
                          "properties": {k: {"type": "string"}
                                         for k in ("sha", "author", "date", "message")}},
                                 400, 422)),
                "parameters": [{"$ref": "#/components/parameters/namespace"},
                               {"$ref": "#/components/parameters/name"},
                               {"name": "revision", "in": "path", "required": True,
                                "schema": {"type": "string"}}]}},
            item + "/sync": {"post": _op(
                "Request a sync", _responses(202, "requested", operation, 400, 409, 413),
                {"revision": {"type": "string"}, "prune": {"type": "boolean"},
                 "dryRun": {"type": "boolean"}, "force": {"type": "boolean"},
                 "resources": {"type": "array", "items": {
                     "type": "object", "additionalProperties": False, "required": ["kind", "name"],
                     "properties": {k: {"type": "string"}
                                    for k in ("group", "kind", "namespace", "name")}}}})},
            item + "/refresh": {"post": _op(
                "Compare again now", _responses(202, "requested", obj, 400, 413),
                {"hard": {"type": "boolean"}})},
            item + "/rollback": {"post": _op(
                "Sync a history entry's revision again",
                _responses(202, "requested", operation, 400, 409, 413),
                {"id": {"type": "integer"}, "force": {"type": "boolean"}})},
            item + "/operation": {"delete": _op(
                "Terminate the running operation", _responses(202, "terminating", obj, 409))},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "panelSession": {"type": "apiKey", "in": "cookie",
                                                 "name": "gitops_tasks_session"}},
            "parameters": {
                "namespace": {"name": "namespace", "in": "path", "required": True,
                              "schema": {"type": "string"}},
                "name": {"name": "name", "in": "path", "required": True,
                         "schema": {"type": "string"}}},
            "schemas": {"Error": {"type": "object", "properties": {
                "error": {"type": "string"}}, "required": ["error"]}},
        },
    }
