"""The management API, served by the receiver process (`gitops-tasks webhook`): read and drive
Applications over HTTP as the `app` commands do, through `gitops_tasks.appops`.

Every route needs a bearer token (or the panel's session cookie, `scheduler.panel`): read-only
tokens read, admin tokens also sync, refresh, roll back and terminate. No token (or an unknown
one) is 401, a read-only token on a write is 403. Tokens come from the settings and the Secret
`gitops-tasks-api`, are compared in constant time (as SHA-256 digests) and never logged.
Blocking work (the API server, Redis, a worker's diff) runs in a thread.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import redis
from aiohttp import web
from kombu.exceptions import OperationalError

from gitops_tasks import appops, views
from gitops_tasks.errors import GitOpsError, TransientError
from gitops_tasks.log import get_logger
from gitops_tasks.model.operation import SyncRequest
from gitops_tasks.model.resources import ResourceKey
from gitops_tasks.operations import OperationInProgress
from gitops_tasks.runtime import Runtime
from gitops_tasks.settings import ApiSettings, tokens

from .openapi import spec
from .panel import COOKIE, Panel, Sessions, digest
from .secretdata import SecretData

READ, ADMIN = "read", "admin"
PREFIX = "/api/v1/applications"
_log = get_logger(component="api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="gitops-tasks"'} if status == 401 else None
    return web.json_response({"error": message}, status=status, headers=headers)


class Api:
    def __init__(self, settings: ApiSettings, runtime: Runtime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.secret = SecretData(runtime, settings.secret_name, settings.secret_refresh)
        self.panel: Panel | None = None

    def add_routes(self, app: web.Application, *, panel: bool = True) -> None:
        if panel:
            self.panel = Panel(Sessions(self.runtime.redis), self.roles_of_digest)
            self.panel.add_routes(app)
        app.router.add_get("/openapi.json", self.openapi)
        app.router.add_get(PREFIX, self._guard(READ, self.list))
        item = PREFIX + "/{namespace}/{name}"
        app.router.add_get(item, self._guard(READ, self.get))
        app.router.add_get(item + "/diff", self._guard(READ, self.diff))
        app.router.add_get(item + "/history", self._guard(READ, self.history))
        app.router.add_get(item + "/resource-tree", self._guard(READ, self.resource_tree))
        app.router.add_get(item + "/revisions/{revision}/metadata",
                           self._guard(READ, self.revision_metadata))
        app.router.add_post(item + "/sync", self._guard(ADMIN, self.sync))
        app.router.add_post(item + "/refresh", self._guard(ADMIN, self.refresh))
        app.router.add_post(item + "/rollback", self._guard(ADMIN, self.rollback))
        app.router.add_delete(item + "/operation", self._guard(ADMIN, self.terminate))

    # ------------------------------------------------------------------ access

    def roles_of_digest(self, token_digest: str) -> set[str]:
        """The roles of the token whose SHA-256 is `token_digest` (the panel's sessions keep
        only the digest). Every configured token is compared, each in constant time."""
        data = self.secret.data()
        admin = self.settings.admin_tokens + tokens(data.get("admin.tokens", ""))
        readonly = self.settings.readonly_tokens + tokens(data.get("readonly.tokens", ""))
        given = token_digest.encode()
        is_admin = any([hmac.compare_digest(given, digest(t).encode()) for t in admin])
        is_reader = any([hmac.compare_digest(given, digest(t).encode()) for t in readonly])
        return {ADMIN, READ} if is_admin else ({READ} if is_reader else set())

    def _roles(self, token: str) -> set[str]:
        return self.roles_of_digest(digest(token))

    async def _request_roles(self, request: web.Request) -> set[str] | web.Response:
        """The roles of a bearer token, else of the panel's session cookie (whose writes
        need the session's CSRF token); an error answer when neither is there or valid."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            roles = await asyncio.to_thread(self._roles, token.strip())
            return roles or _error(401, "unknown token")
        if self.panel is not None and COOKIE in request.cookies:
            roles, session = await asyncio.to_thread(self.panel.session_roles, request)
            if not roles or session is None:
                return _error(401, "the panel session has ended: sign in again")
            if request.method not in ("GET", "HEAD") and \
                    not self.panel.csrf_ok(request, session):
                return _error(403, "missing or wrong X-CSRF-Token for this session")
            return roles
        return _error(401, "a bearer token is required (Authorization: Bearer ...)")

    def _guard(self, need: str, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                roles = await self._request_roles(request)
            except redis.RedisError as exc:
                return _error(503, f"try again: {exc}")
            if isinstance(roles, web.Response):
                return roles
            if need not in roles:
                return _error(403, "this token may only read")
            namespace = request.match_info.get("namespace")
            if namespace is not None and namespace != self.runtime.apps.namespace:
                return _error(404, f"the controller serves namespace "
                                   f"{self.runtime.apps.namespace}, not {namespace}")
            try:
                return await handler(request)
            except appops.Refused as exc:
                return _error(exc.status, exc.message)
            except OperationInProgress as exc:
                return _error(409, exc.message)
            except (TransientError, redis.RedisError, OperationalError, OSError) as exc:
                return _error(503, f"try again: {exc}")
            except GitOpsError as exc:
                return _error(422, str(exc))
        return guarded

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(spec())

    # ------------------------------------------------------------------ reads

    async def list(self, request: web.Request) -> web.Response:
        objs = await asyncio.to_thread(self.runtime.apps.list)
        rows = [dict(views.app_row(o), namespace=self.runtime.apps.namespace)
                for o in sorted(objs, key=lambda o: str(o["metadata"]["name"]))]
        return web.json_response({"items": rows})

    async def get(self, request: web.Request) -> web.Response:
        obj = await asyncio.to_thread(appops.get, self.runtime, request.match_info["name"])
        return web.json_response(obj)

    async def history(self, request: web.Request) -> web.Response:
        obj = await asyncio.to_thread(appops.get, self.runtime, request.match_info["name"])
        return web.json_response({"items": (obj.get("status") or {}).get("history") or []})

    async def resource_tree(self, request: web.Request) -> web.Response:
        answer = await asyncio.to_thread(appops.resource_tree, self.runtime,
                                         request.match_info["name"])
        return web.json_response(answer)

    async def revision_metadata(self, request: web.Request) -> web.Response:
        answer = await asyncio.to_thread(appops.revision_metadata, self.runtime,
                                         request.match_info["name"],
                                         request.match_info["revision"])
        return web.json_response(answer)

    async def diff(self, request: web.Request) -> web.Response:
        answer = await asyncio.to_thread(appops.diff, self.runtime,
                                         request.match_info["name"],
                                         self.settings.diff_timeout)
        return web.json_response(answer)

    # ------------------------------------------------------------------ writes

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        raw = await request.content.read(65537)
        if len(raw) > 65536:
            raise appops.Refused("the request body is over 64 KiB", status=413)
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise appops.Refused(f"the body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise appops.Refused("the body must be a JSON object")
        return body

    @staticmethod
    def _field(body: dict[str, Any], name: str, kind: type, default: Any) -> Any:
        value = body.get(name, default)
        if (kind is bool and not isinstance(value, bool)) or \
                (kind is str and not isinstance(value, str)) or \
                (kind is int and (not isinstance(value, int) or isinstance(value, bool))):
            raise appops.Refused(f"{name} must be a {kind.__name__}")
        return value

    @staticmethod
    def _resources(value: Any) -> tuple[ResourceKey, ...]:
        """`resources`: [{group, kind, namespace, name}], the subset to sync (empty: all)."""
        if not isinstance(value, list):
            raise appops.Refused("resources must be a list of {group, kind, namespace, name}")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict) or set(item) - {"group", "kind", "namespace", "name"}:
                raise appops.Refused(f"resources[{i}] must be an object with group, kind, "
                                     "namespace and name")
            fields = {k: item.get(k, "") for k in ("group", "kind", "namespace", "name")}
            if not all(isinstance(v, str) for v in fields.values()) or \
                    not fields["kind"] or not fields["name"]:
                raise appops.Refused(f"resources[{i}]: kind and name are required strings; "
                                     "group and namespace are strings")
            out.append(ResourceKey(fields["group"], fields["kind"], fields["namespace"],
                                   fields["name"]))
        return tuple(out)

    @staticmethod
    def _known(body: dict[str, Any], allowed: set[str]) -> None:
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise appops.Refused(f"unknown field(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(sorted(allowed))}")

    async def sync(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        self._known(body, {"revision", "prune", "dryRun", "force", "resources"})
        sync = SyncRequest(revision=self._field(body, "revision", str, ""),
                           prune=self._field(body, "prune", bool, False) or None,
                           dry_run=self._field(body, "dryRun", bool, False),
                           force=self._field(body, "force", bool, False) or None,
                           resources=self._resources(body.get("resources", [])))
        op = await asyncio.to_thread(appops.sync, self.runtime, request.match_info["name"],
                                     sync, "api")
        return web.json_response({"operation": op.id}, status=202)

    async def refresh(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        self._known(body, {"hard"})
        hard = self._field(body, "hard", bool, False)
        queued = await asyncio.to_thread(appops.refresh, self.runtime,
                                         request.match_info["name"], hard=hard)
        return web.json_response({"queued": queued}, status=202)

    async def rollback(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        self._known(body, {"id", "force"})
        if "id" not in body:
            raise appops.Refused("id (a history entry's id) is required")
        op = await asyncio.to_thread(appops.rollback, self.runtime,
                                     request.match_info["name"],
                                     self._field(body, "id", int, 0), "api",
                                     force=self._field(body, "force", bool, False))
        return web.json_response({"operation": op.id}, status=202)

    async def terminate(self, request: web.Request) -> web.Response:
        done = await asyncio.to_thread(appops.terminate, self.runtime,
                                       request.match_info["name"])
        if not done:
            return _error(409, "no operation is running")
        return web.json_response({"terminating": True}, status=202)
