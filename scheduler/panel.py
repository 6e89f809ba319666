"""The application panel: a web page at `/` of the receiver, over the management API.

Served by the receiver process with the API (one port, one set of tokens). The page is static
(`panel_static/`: HTML, one JavaScript module, CSS, shipped in the wheel; no build step) and
builds everything it shows from `/api/v1` answers with DOM text nodes, never HTML strings,
so nothing from the cluster or Git is ever markup.

Signing in: the login form posts the token once (JSON, same origin); the receiver checks it
and answers with a session cookie (HttpOnly, SameSite=Strict, random, kept in Redis for
`SESSION_TTL`) and the session's CSRF token. The browser never keeps the bearer token (not in
storage, not in a URL), and Redis keeps only a digest of it, so a token removed from the
settings or the Secret ends its sessions within the Secret's refresh. The API takes the cookie
like a bearer token; a request that changes something must also carry the CSRF token in
`X-CSRF-Token` (a cross-site form cannot set a header) and, when the browser sends one, an
`Origin` of this host.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import redis
from aiohttp import web

from gitops_tasks.log import get_logger

COOKIE = "gitops_tasks_session"
SESSION_KEY = "gitops:ui-session:{digest}"
# A browser session lasts a working day; signing in again costs one paste.
SESSION_TTL = 8 * 3600
CSRF_HEADER = "X-CSRF-Token"
STATIC = {"panel.js": "text/javascript", "panel.css": "text/css"}
# The page loads only its own script and style, talks only to its origin, and may not be
# framed: together with text-only rendering, markup in a name cannot run.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

_log = get_logger(component="panel")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# token digest -> roles ({"admin", "read"}, {"read"} or empty): the API's check.
Roles = Callable[[str], set[str]]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Browser sessions in Redis: sha256(session id) -> {token digest, csrf}."""

    def __init__(self, client: redis.Redis | None, ttl: int = SESSION_TTL) -> None:
        self.client = client
        self.ttl = ttl

    def create(self, token_digest: str) -> tuple[str, str]:
        """(session id, csrf token) of a new session. Raises RedisError."""
        if self.client is None:
            raise redis.ConnectionError("the panel needs Redis (GITOPS_TASKS_REDIS_URL)")
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.client.set(SESSION_KEY.format(digest=digest(sid)),
                        json.dumps({"token": token_digest, "csrf": csrf}), ex=self.ttl)
        return sid, csrf

    def get(self, sid: str) -> dict[str, str] | None:
        if self.client is None or not sid:
            return None
        raw = self.client.get(SESSION_KEY.format(digest=digest(sid)))
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("token"), str) or \
                not isinstance(value.get("csrf"), str):
            return None
        return value

    def delete(self, sid: str) -> None:
        if self.client is not None and sid:
            self.client.delete(SESSION_KEY.format(digest=digest(sid)))


def same_origin(request: web.Request) -> bool:
    """False when the browser says the request comes from another origin."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return origin.split("://", 1)[-1] == request.host


def security_headers(response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if request.path == "/" or request.path.startswith(("/static/", "/ui/", "/api/v1/")):
        security_headers(response)
    return response


def _asset(name: str) -> bytes:
    return resources.files("scheduler").joinpath("panel_static", name).read_bytes()


class Panel:
    def __init__(self, sessions: Sessions, roles: Roles) -> None:
        self.sessions = sessions
        self.roles = roles

    def add_routes(self, app: web.Application) -> None:
        app.middlewares.append(headers_middleware)
        app.router.add_get("/", self.index)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_post("/ui/login", self.login)
        app.router.add_get("/ui/session", self.session)
        app.router.add_post("/ui/logout", self.logout)

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(body=_asset("index.html"), content_type="text/html",
                            charset="utf-8")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=_asset(name), content_type=STATIC[name], charset="utf-8")

    def session_roles(self, request: web.Request) -> tuple[set[str], dict[str, str] | None]:
        """(roles, session) of the request's session cookie; blocking (Redis)."""
        session = self.sessions.get(request.cookies.get(COOKIE, ""))
        if session is None:
            return set(), None
        return self.roles(session["token"]), session

    @staticmethod
    def csrf_ok(request: web.Request, session: dict[str, str]) -> bool:
        given = request.headers.get(CSRF_HEADER, "")
        return bool(given) and hmac.compare_digest(given.encode(), session["csrf"].encode()) \
            and same_origin(request)

    async def login(self, request: web.Request) -> web.Response:
        # JSON only: a cross-site HTML form cannot send it without the page's consent (CORS).
        if request.content_type != "application/json" or not same_origin(request):
            return web.json_response({"error": "sign in from the panel's own page"},
                                     status=403)
        raw = await request.content.read(4097)
        try:
            body: Any = json.loads(raw) if len(raw) <= 4096 else None
        except ValueError:
            body = None
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token.strip():
            return web.json_response({"error": "give a token"}, status=400)
        token_digest = digest(token.strip())
        roles = await asyncio.to_thread(self.roles, token_digest)
        if not roles:
            _log.info("panel sign-in refused", remote=request.remote)
            return web.json_response({"error": "unknown token"}, status=401)
        try:
            sid, csrf = await asyncio.to_thread(self.sessions.create, token_digest)
        except redis.RedisError as exc:
            return web.json_response({"error": f"try again: {exc}"}, status=503)
        role = "admin" if "admin" in roles else "read"
        _log.info("panel sign-in", role=role, remote=request.remote)
        response = web.json_response({"role": role, "csrf": csrf})
        response.set_cookie(COOKIE, sid, max_age=self.sessions.ttl, path="/", httponly=True,
                            samesite="Strict", secure=_is_https(request))
        return response

    async def session(self, request: web.Request) -> web.Response:
        try:
            roles, session = await asyncio.to_thread(self.session_roles, request)
        except redis.RedisError as exc:
            return web.json_response({"error": f"try again: {exc}"}, status=503)
        if not roles or session is None:
            return web.json_response({"error": "not signed in"}, status=401)
        return web.json_response({"role": "admin" if "admin" in roles else "read",
                                  "csrf": session["csrf"]})

    async def logout(self, request: web.Request) -> web.Response:
        sid = request.cookies.get(COOKIE, "")
        try:
            session = await asyncio.to_thread(self.sessions.get, sid)
            if session is not None:
                if not self.csrf_ok(request, session):
                    return web.json_response({"error": "missing or wrong X-CSRF-Token"},
                                             status=403)
                await asyncio.to_thread(self.sessions.delete, sid)
        except redis.RedisError as exc:
            return web.json_response({"error": f"try again: {exc}"}, status=503)
        response = web.json_response({"signedOut": True})
        response.del_cookie(COOKIE, path="/")
        return response


def _is_https(request: web.Request) -> bool:
    # Behind an ingress that ends TLS the receiver sees http: trust its forwarded scheme.
    return request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"
