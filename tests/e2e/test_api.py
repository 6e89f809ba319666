"""The management API end to end: a real receiver process serving it, a worker and beat, and
kubesim; every route with and without the right token."""

from __future__ import annotations

import base64
import json
from typing import Any

import urllib3

from .stack import Stack, configmap, wait_for

ADMIN = "admin-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"
_HTTP = urllib3.PoolManager(retries=False, timeout=60)


def call(base: str, method: str, path: str, token: str | None = None,
         body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    resp = _HTTP.request(method, base + path, body=data, headers=headers)
    try:
        return resp.status, json.loads(resp.data) if resp.data else None
    except ValueError:
        return resp.status, resp.data.decode()


def test_the_api_reads_and_drives_applications_by_role(stack: Stack) -> None:
    v1 = stack.origin.commit({"web/cm.yaml": configmap("web", {"v": "1"})})
    stack.worker()
    stack.beat()
    receiver, base = stack.webhook("webhook", "--insecure",
                                   GITOPS_TASKS_API_ADMIN_TOKENS=ADMIN,
                                   GITOPS_TASKS_API_READONLY_TOKENS=READER)
    stack.apply_app(stack.app_manifest("web", "web"))
    item = f"/api/v1/applications/{stack.control}/web"

    assert call(base, "GET", "/api/v1/applications")[0] == 401
    assert call(base, "GET", "/api/v1/applications", "not-a-token")[0] == 401
    status, listed = call(base, "GET", "/api/v1/applications", READER)
    assert status == 200 and [a["name"] for a in listed["items"]] == ["web"]
    assert call(base, "POST", item + "/sync", READER, {})[0] == 403
    assert call(base, "GET", "/api/v1/applications/elsewhere/web", READER)[0] == 404
    assert call(base, "GET", f"/api/v1/applications/{stack.control}/nope", READER)[0] == 404

    status, answer = call(base, "POST", item + "/sync", ADMIN, {"prune": True})
    assert status == 202, answer
    op = answer["operation"]

    def succeeded() -> bool:
        state = (stack.status("web").get("operationState") or {})
        return state.get("operation", {}).get("id") == op and state.get("phase") == "Succeeded"
    wait_for(succeeded, 30, what="the API's sync")
    status, obj = call(base, "GET", item, READER)
    assert status == 200 and obj["status"]["sync"]["status"] == "Synced"

    v2 = stack.origin.commit({"web/cm.yaml": configmap("web", {"v": "2"})})
    assert call(base, "POST", item + "/refresh", ADMIN, {"hard": True})[0] == 202
    wait_for(lambda: (stack.status("web").get("sync") or {}).get("revision") == v2, 30,
             what="the refresh saw v2")
    status, diff = call(base, "GET", item + "/diff", READER)
    assert status == 200 and diff["sync"] == "OutOfSync", diff
    assert call(base, "POST", item + "/sync", ADMIN, {"revision": v2})[0] == 202
    wait_for(lambda: stack.synced_healthy("web", v2), 30, what="v2 synced")
    status, history = call(base, "GET", item + "/history", READER)
    assert [h["revision"] for h in history["items"]] == [v1, v2]
    status, answer = call(base, "POST", item + "/rollback", ADMIN,
                          {"id": history["items"][0]["id"]})
    assert status == 202, answer
    wait_for(lambda: (stack.live("/api/v1/namespaces/{ns}/configmaps", "web") or {})
             .get("data") == {"v": "1"}, 30, what="rolled back")
    wait_for(lambda: (stack.status("web").get("operationState") or {}).get("phase")
             == "Succeeded", 30, what="rollback finished")
    assert call(base, "DELETE", item + "/operation", ADMIN)[0] == 409  # nothing runs

    # Bad requests: clear 4xx, never a 5xx.
    assert call(base, "POST", item + "/sync", ADMIN, raw=b"{nope")[0] == 400
    assert call(base, "POST", item + "/sync", ADMIN, raw=b"[1]")[0] == 400
    status, answer = call(base, "POST", item + "/sync", ADMIN, {"prun": True})
    assert status == 400 and "prun" in answer["error"]
    assert call(base, "POST", item + "/sync", ADMIN, {"prune": "yes"})[0] == 400
    assert call(base, "POST", item + "/rollback", ADMIN, {})[0] == 400
    assert call(base, "POST", item + "/rollback", ADMIN, {"id": 999})[0] == 404
    assert call(base, "POST", item + "/sync", ADMIN, raw=b"x" * 70000)[0] == 413

    status, doc = call(base, "GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert set(doc["paths"]) >= {"/api/v1/applications",
                                 "/api/v1/applications/{namespace}/{name}/sync"}
    for token in (ADMIN, READER):
        assert token not in receiver.log()


def test_tokens_from_the_api_secret(stack: Stack) -> None:
    stack.apply_app({"apiVersion": "v1", "kind": "Secret",
                     "metadata": {"name": "gitops-tasks-api", "namespace": stack.control},
                     "data": {"readonly.tokens": base64.b64encode(
                         f"{READER}\nsecond-reader-token-0123".encode()).decode()}})
    _, base = stack.webhook("webhook", "--insecure")
    assert call(base, "GET", "/api/v1/applications", READER)[0] == 200
    assert call(base, "GET", "/api/v1/applications", "second-reader-token-0123")[0] == 200
    assert call(base, "GET", "/api/v1/applications", ADMIN)[0] == 401
    item = f"/api/v1/applications/{stack.control}/web"
    assert call(base, "POST", item + "/refresh", READER, {})[0] == 403
