"""The management API, served by the receiver process (`gitops-tasks webhook`): read and drive
Applications over HTTP as the `app` commands do, through `gitops_tasks.appops`.

Every route needs a bearer token: read-only tokens read, admin tokens also sync, refresh, roll
back and terminate. No token (or an unknown one) is 401, a read-only token on a write is 403.
Tokens come from the settings and the Secret `gitops-tasks-api`, are compared in constant time
and never logged. Blocking work (the API server, Redis, a worker's diff) runs in a thread.
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
from gitops_tasks.operations import OperationInProgress
from gitops_tasks.runtime import Runtime
from gitops_tasks.settings import ApiSettings, tokens

from .openapi import spec
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

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/openapi.json", self.openapi)
        app.router.add_get(PREFIX, self._guard(READ, self.list))
        item = PREFIX + "/{namespace}/{name}"
        app.router.add_get(item, self._guard(READ, self.get))
        app.router.add_get(item + "/diff", self._guard(READ, self.diff))
        app.router.add_get(item + "/history", self._guard(READ, self.history))
        app.router.add_post(item + "/sync", self._guard(ADMIN, self.sync))
        app.router.add_post(item + "/refresh", self._guard(ADMIN, self.refresh))
        app.router.add_post(item + "/rollback", self._guard(ADMIN, self.rollback))
        app.router.add_delete(item + "/operation", self._guard(ADMIN, self.terminate))

    # ------------------------------------------------------------------ access

    def _roles(self, token: str) -> set[str]:
        data = self.secret.data()
        admin = self.settings.admin_tokens + tokens(data.get("admin.tokens", ""))
        readonly = self.settings.readonly_tokens + tokens(data.get("readonly.tokens", ""))
        given = token.encode()
        # Every token is compared (no early exit), each in constant time.
        is_admin = any([hmac.compare_digest(given, t.encode()) for t in admin])
        is_reader = any([hmac.compare_digest(given, t.encode()) for t in readonly])
        return {ADMIN, READ} if is_admin else ({READ} if is_reader else set())

    def _guard(self, need: str, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return _error(401, "a bearer token is required (Authorization: Bearer ...)")
            roles = await asyncio.to_thread(self._roles, token.strip())
            if not roles:
                return _error(401, "unknown token")
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
    def _known(body: dict[str, Any], allowed: set[str]) -> None:
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise appops.Refused(f"unknown field(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(sorted(allowed))}")

    async def sync(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        self._known(body, {"revision", "prune", "dryRun", "force"})
        sync = SyncRequest(revision=self._field(body, "revision", str, ""),
                           prune=self._field(body, "prune", bool, False) or None,
                           dry_run=self._field(body, "dryRun", bool, False),
                           force=self._field(body, "force", bool, False) or None)
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
