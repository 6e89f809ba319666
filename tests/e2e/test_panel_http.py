"""The panel's sign-in, sessions and CSRF protection over real HTTP against a receiver process
(the browser tests are in test_panel.py): what a browser is allowed to do, and what another
site's page cannot make it do."""

from __future__ import annotations

import json
from typing import Any

import urllib3

from .stack import Stack, configmap, wait_for

ADMIN = "admin-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"
_HTTP = urllib3.PoolManager(retries=False, timeout=60)


def request(base: str, method: str, path: str, *, body: Any = None, cookie: str = "",
            headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
    sent = {"Content-Type": "application/json", **(headers or {})}
    if cookie:
        sent["Cookie"] = cookie
    data = json.dumps(body).encode() if body is not None else None
    return _HTTP.request(method, base + path, body=data, headers=sent)


def login(base: str, token: str) -> tuple[str, str, str]:
    """(cookie header, csrf token, the Set-Cookie line)."""
    resp = request(base, "POST", "/ui/login", body={"token": token})
    assert resp.status == 200, resp.data
    set_cookie = resp.headers["Set-Cookie"]
    return set_cookie.split(";", 1)[0], json.loads(resp.data)["csrf"], set_cookie


def test_sessions_csrf_and_security_headers(stack: Stack) -> None:
    stack.origin.commit({"web/cm.yaml": configmap("web")})
    stack.worker()
    receiver, base = stack.webhook("webhook", "--insecure",
                                   GITOPS_TASKS_API_ADMIN_TOKENS=ADMIN,
                                   GITOPS_TASKS_API_READONLY_TOKENS=READER)
    stack.apply_app(stack.app_manifest("web", "web"))
    item = f"/api/v1/applications/{stack.control}/web"

    page = request(base, "GET", "/")
    assert page.status == 200 and b'<script type="module" src="/static/panel.js">' in page.data
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert request(base, "GET", "/static/panel.js").headers["Content-Type"].startswith(
        "text/javascript")
    assert request(base, "GET", "/static/../api.py").status == 404
    assert request(base, "GET", "/static/secret.txt").status == 404

    # Sign-in: JSON from the same origin only; an unknown token is refused.
    assert request(base, "POST", "/ui/login", body={"token": "nope"}).status == 401
    assert request(base, "POST", "/ui/login", body={}).status == 400
    assert request(base, "POST", "/ui/login", body={"token": ADMIN},
                   headers={"Origin": "https://evil.example"}).status == 403
    form = _HTTP.request("POST", base + "/ui/login", body=f"token={ADMIN}".encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 403
    cookie, csrf, set_cookie = login(base, ADMIN)
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    assert ADMIN not in set_cookie
    assert json.loads(request(base, "GET", "/ui/session", cookie=cookie).data)["role"] == "admin"

    # The session reads like a token; a write needs its CSRF token and this origin.
    assert request(base, "GET", "/api/v1/applications", cookie=cookie).status == 200
    assert request(base, "POST", item + "/refresh", body={}, cookie=cookie).status == 403
    assert request(base, "POST", item + "/refresh", body={}, cookie=cookie,
                   headers={"X-CSRF-Token": "guess"}).status == 403
    assert request(base, "POST", item + "/refresh", body={}, cookie=cookie,
                   headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
                   ).status == 403
    assert request(base, "POST", item + "/refresh", body={}, cookie=cookie,
                   headers={"X-CSRF-Token": csrf, "Origin": base}).status == 202
    assert request(base, "GET", "/api/v1/applications",
                   cookie="gitops_tasks_session=forged").status == 401

    # A read-only session reads and may not write, CSRF token or not.
    reader_cookie, reader_csrf, _ = login(base, READER)
    assert request(base, "GET", item, cookie=reader_cookie).status == 200
    assert request(base, "POST", item + "/sync", body={}, cookie=reader_cookie,
                   headers={"X-CSRF-Token": reader_csrf}).status == 403

    # The tree and a commit's metadata, for the panel.
    wait_for(lambda: (stack.status("web").get("sync") or {}).get("revision"), 30,
             what="the first refresh")
    tree = json.loads(request(base, "GET", item + "/resource-tree", cookie=cookie).data)
    assert [(n["kind"], n["name"]) for n in tree["nodes"]] == [("ConfigMap", "web")]
    sha = stack.status("web")["sync"]["revision"]
    meta = json.loads(request(base, "GET", item + f"/revisions/{sha}/metadata",
                              cookie=cookie).data)
    assert meta["sha"] == sha and meta["message"] == "change"
    assert request(base, "GET", item + "/revisions/not-a-sha/metadata",
                   cookie=cookie).status == 400

    # Signing out ends the session at the server, not only in the browser.
    assert request(base, "POST", "/ui/logout", cookie=cookie).status == 403  # no CSRF token
    assert request(base, "POST", "/ui/logout", cookie=cookie,
                   headers={"X-CSRF-Token": csrf}).status == 200
    assert request(base, "GET", "/api/v1/applications", cookie=cookie).status == 401
    for token in (ADMIN, READER, csrf):
        assert token not in receiver.log()
