"""The kubesim HTTP server: the Kubernetes REST API on top of `store`.

Started by `python -m kubesim` or in-process by tests (`KubeSim().start()`). All request handling
runs on one asyncio event loop, so store operations never interleave; watches are streamed.
Admin endpoints live under `/_kubesim/`, a path no Kubernetes client uses: the request log,
fault injection, watch-history compaction and the workload simulation switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from . import discovery, errors, negotiation, protobuf, tables, workloads
from .errors import StatusError
from .negotiation import Representation
from .registry import Registry, ResourceType
from .selectors import parse_field_selector, parse_label_selector
from .store import ETCD_MAX_REQUEST_BYTES, Obj, Store, WatchEvent, scale_of

T = TypeVar("T")
VERB = web.RequestKey("verb", str)

try:
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _YamlLoader = yaml.SafeLoader

_PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}
_BODY_TYPES = ("application/json", "application/yaml", "")
_MAX_MANAGER_LEN = 128
# kube-apiserver's --max-request-bytes default (3 MiB, twice etcd's 1.5 MiB because JSON bodies
# shrink as protobuf): every body of a write (create, update, patch, delete options) over it is
# refused with 413 before it is decoded.
MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024
_DEFAULT_WATCH_TIMEOUT = 1800.0


@dataclass
class RequestRecord:
    """One served request, for tests that check what a client did and when."""

    method: str
    path: str
    query: dict[str, str]
    field_manager: str
    user_agent: str
    status: int
    start: float
    end: float
    verb: str = ""
    accept: str = ""  # the raw Accept header: `as=PartialObjectMetadataList` marks metadata lists
    content_type: str = ""  # of the body: tells an apply from a merge or JSON patch


@dataclass
class Fault:
    """A failure to inject into matching requests."""

    id: int
    path: str = ""  # a regular expression searched in the request path
    method: str = ""  # "" matches every method
    status: int = 0  # 0: no error (latency only)
    reason: str = ""
    message: str = "injected fault"
    retry_after: int | None = None
    latency: float = 0.0  # seconds to wait before answering (or failing)
    timeout: bool = False  # hold the request without answering until the client gives up
    count: int | None = None  # remaining matches; None is unlimited
    # The chance that a matching request is hit (0.2: one in five, at random); a request the
    # dice spare goes on to the next fault, or is served.
    probability: float = 1.0
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not self.path or re.search(self.path, path) is not None


@dataclass
class _Target:
    rt: ResourceType
    namespace: str
    name: str
    subresource: str


@dataclass
class _QueueWatcher:
    type_key: tuple[str, str]
    namespace: str
    queue: asyncio.Queue[WatchEvent] = field(default_factory=asyncio.Queue)

    def deliver(self, event: WatchEvent) -> None:
        self.queue.put_nowait(event)

    def __hash__(self) -> int:
        return id(self)


_REASONS = {
    400: "BadRequest",
    404: "NotFound",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # The real server encodes with json.Encoder, which ends every document with a newline.
    return web.Response(
        body=json.dumps(obj, separators=(",", ":")).encode() + b"\n",
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _status_response(err: StatusError) -> web.Response:
    headers = {}
    if err.retry_after is not None:
        headers["Retry-After"] = str(err.retry_after)
    return _json(err.to_status(), err.code, headers)


def _bool_param(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


class KubeSim:
    """One emulated API server. Use `start()`/`stop()` from tests, `serve_forever()` from main."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        simulate: bool = True,
        sim_settings: workloads.SimSettings | None = None,
        history_size: int = 10_000,
        record_requests: bool = True,
        bookmark_interval: float = 60.0,
        max_request_bytes: int = MAX_REQUEST_BODY_BYTES,
        etcd_max_request_bytes: int = ETCD_MAX_REQUEST_BYTES,
    ) -> None:
        self.host = host
        self.port = port
        self.registry = Registry()
        self.store = Store(self.registry, history_size=history_size, simulate=simulate,
                           sim_settings=sim_settings,
                           etcd_max_request_bytes=etcd_max_request_bytes)
        self.record_requests = record_requests
        self.max_request_bytes = max_request_bytes
        # Seconds of silence after which a watch that allows bookmarks gets one.
        self.bookmark_interval = bookmark_interval
        self.request_log: list[RequestRecord] = []
        self.faults: list[Fault] = []
        self._fault_ids = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._wake: asyncio.Event | None = None
        self._timer_task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._middleware])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def _start_async(self) -> None:
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.store.wakeup = self._wake.set
        self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False,
                                     shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        self._timer_task = asyncio.create_task(self._timer_loop())

    async def _stop_async(self) -> None:
        if self._timer_task:
            self._timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer_task
        if self._stopping:
            self._stopping.set()
        if self._runner:
            await self._runner.cleanup()

    async def _timer_loop(self) -> None:
        assert self._wake is not None
        while True:
            try:
                delay = self.store.run_timers()
            except Exception:  # pragma: no cover - a timer bug must not stop the loop
                import logging

                logging.getLogger("kubesim").exception("timer failed")
                delay = 0.1
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=3600 if delay is None else delay)

    def start(self) -> KubeSim:
        """Serve in a background thread until `stop()`; returns once the port is listening."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_async())
            except BaseException as exc:  # pragma: no cover - e.g. port in use
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop_async())
            loop.close()

        self._thread = threading.Thread(target=run, name="kubesim", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> KubeSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def serve_until(
        self, stop: asyncio.Event, ready: Callable[[], None] | None = None
    ) -> None:
        """Serve on the running loop until `stop` is set (used by `python -m kubesim`)."""
        self._loop = asyncio.get_running_loop()
        await self._start_async()
        if ready is not None:
            ready()
        try:
            await stop.wait()
        finally:
            await self._stop_async()

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the server's loop thread (store access from a test thread)."""
        assert self._loop is not None

        async def wrapper() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout=30)

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubesim", "cluster": {"server": self.url}}],
            "users": [{"name": "kubesim", "user": {"token": "kubesim"}}],
            "contexts": [
                {
                    "name": "kubesim",
                    "context": {"cluster": "kubesim", "user": "kubesim", "namespace": namespace},
                }
            ],
            "current-context": "kubesim",
            "preferences": {},
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # ------------------------------------------------------------------ faults and log

    def add_fault(self, **kwargs: Any) -> Fault:
        self._fault_ids += 1
        fault = Fault(id=self._fault_ids, **kwargs)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path):
                if fault.probability < 1.0 and random.random() >= fault.probability:
                    continue
                fault.hits += 1
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        start = time.time()
        status = 500
        try:
            fault = None
            if self.faults and not request.path.startswith("/_kubesim"):
                fault = self._take_fault(request.method, request.path)
            if fault is not None:
                if fault.latency:
                    await asyncio.sleep(fault.latency)
                if fault.timeout and self._stopping is not None:
                    # Hold the request open without answering, like an overloaded server,
                    # until the client gives up or the server stops.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), timeout=600)
                    raise ConnectionResetError("held request released")
                if fault.status:
                    err = StatusError(
                        fault.status,
                        fault.reason or _REASONS.get(fault.status, "InternalError"),
                        fault.message,
                        retry_after=fault.retry_after,
                    )
                    response: web.StreamResponse = _status_response(err)
                    status = response.status
                    return response
            try:
                response = await handler(request)
            except StatusError as err:
                response = _status_response(err)
            except web.HTTPException:
                raise
            except Exception as exc:  # a bug here must still answer like an API server
                import logging

                logging.getLogger("kubesim").exception("internal error")
                response = _status_response(StatusError(500, "InternalError",
                                                        f"Internal error occurred: {exc}"))
            status = response.status
            return response
        finally:
            if self.record_requests and not request.path.startswith("/_kubesim"):
                self.request_log.append(
                    RequestRecord(
                        method=request.method,
                        path=request.path,
                        query=dict(request.query),
                        field_manager=request.query.get("fieldManager", ""),
                        user_agent=request.headers.get("User-Agent", ""),
                        status=status,
                        start=start,
                        end=time.time(),
                        verb=request.get(VERB, ""),
                        accept=request.headers.get("Accept", ""),
                        content_type=request.headers.get("Content-Type", ""),
                    )
                )

    # ------------------------------------------------------------------ dispatch

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_kubesim/"):
            return await self._admin(request)
        parts = [p for p in path.split("/") if p]
        method = request.method
        is_resource = len(parts) >= 3 and parts[0] in ("api", "apis") and not (
            parts[0] == "apis" and len(parts) == 3)
        if not is_resource:
            # Resource endpoints negotiate once they know what they answer (_collection, _item).
            _negotiate(request, negotiation.PLAIN_ONLY)
        if method != "GET" and not is_resource:
            raise errors.method_not_allowed()
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path == "/version" or path == "/version/":
            return _json(discovery.SERVER_VERSION)
        if parts == ["api"]:
            return _json(discovery.api_versions())
        if parts == ["apis"]:
            return _json(discovery.api_group_list(self.registry))
        if parts[:1] == ["openapi"]:
            return self._openapi(parts)
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 2:
            if len(parts) == 2:
                doc = discovery.api_group(self.registry, parts[1])
                if doc is None:
                    raise _not_found_path()
                return _json(doc)
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _not_found_path()
        if not rest:
            if method != "GET":
                raise errors.method_not_allowed()
            doc = discovery.resource_list(self.registry, group, version)
            if doc is None:
                raise _not_found_path()
            return _json(doc)
        target, is_collection = self._resolve(group, version, rest)
        if is_collection:
            return await self._collection(request, target)
        return await self._item(request, target)

    def _openapi(self, parts: list[str]) -> web.Response:
        if parts == ["openapi", "v3"]:
            return _json(discovery.openapi_v3_root(self.registry))
        if len(parts) >= 4 and parts[1] == "v3":
            if parts[2] == "api" and len(parts) == 4:
                doc = discovery.openapi_v3_doc(self.registry, "", parts[3])
            elif parts[2] == "apis" and len(parts) == 5:
                doc = discovery.openapi_v3_doc(self.registry, parts[3], parts[4])
            else:
                doc = None
            if doc is not None:
                return _json(doc)
        raise _not_found_path()

    def _resolve(self, group: str, version: str, rest: list[str]) -> tuple[_Target, bool]:
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace = rest[1]
            rest = rest[2:]
        plural = rest[0]
        rt = self.registry.lookup(group, version, plural)
        if rt is None:
            raise _not_found_path()
        if namespace and not rt.namespaced:
            raise _not_found_path()
        if len(rest) == 1:
            return _Target(rt, namespace, "", ""), True
        name = rest[1]
        sub = ""
        if len(rest) == 3:
            sub = rest[2]
            if not (
                (sub == "status" and rt.has_status)
                or (sub == "scale" and rt.has_scale)
                or (sub == "finalize" and rt.kind == "Namespace" and rt.group == "")
            ):
                raise _not_found_path()
        elif len(rest) > 3:
            raise _not_found_path()
        if rt.namespaced and not namespace:
            raise _not_found_path()
        return _Target(rt, namespace, name, sub), False

    # ------------------------------------------------------------------ request bodies

    async def _read_limited(self, request: web.Request) -> bytes:
        """The request body, or 413 when it is over `max_request_bytes`. The body is read whole
        even then (aiohttp caps it at `client_max_size`): answering before the client has sent
        it would make most clients see a reset connection instead of the 413."""
        raw = await request.read()
        if len(raw) > self.max_request_bytes:
            raise errors.request_entity_too_large(self.max_request_bytes)
        return raw

    async def _read_body(self, request: web.Request, *, patch: bool) -> tuple[Any, str]:
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        raw = await self._read_limited(request)
        if ctype == protobuf.CONTENT_TYPE and not patch:
            # kubectl's typed commands (create namespace, create configmap...) send protobuf.
            try:
                return protobuf.decode(raw), "json"
            except protobuf.ProtobufError as exc:
                if exc.unsupported:
                    raise errors.unsupported_media_type(f"{ctype}: {exc.message}") from exc
                raise errors.bad_request(f"unable to decode protobuf body: {exc.message}") from exc
        if "protobuf" in ctype or "cbor" in ctype:
            raise errors.unsupported_media_type(ctype)
        if patch:
            kind = _PATCH_TYPES.get(ctype)
            if kind is None:
                raise errors.unsupported_media_type(ctype)
        else:
            if ctype not in _BODY_TYPES:
                raise errors.unsupported_media_type(ctype)
            kind = "yaml" if ctype == "application/yaml" else "json"
        if not raw.strip():
            raise errors.bad_request("the request body is empty")
        text = raw.decode("utf-8", errors="replace")
        if kind in ("apply", "yaml"):
            # JSON is YAML, and parsing it as JSON is far faster.
            if text.lstrip().startswith("{"):
                try:
                    return json.loads(text), kind
                except ValueError:
                    pass
            try:
                body = yaml.load(text, Loader=_YamlLoader)
            except yaml.YAMLError as exc:
                raise errors.bad_request(f"error decoding YAML: {exc}") from exc
            return body, kind
        try:
            return json.loads(text), kind
        except ValueError as exc:
            raise errors.bad_request(
                f"couldn't get version/kind; json parse error: {exc}"
            ) from exc

    def _write_params(self, request: web.Request) -> tuple[bool, str]:
        q = request.query
        dry = q.getall("dryRun", [])
        for d in dry:
            if d != "All":
                raise errors.invalid("", "", "", [("dryRun", f'Unsupported value: "{d}": '
                                                   'supported values: "All"')])
        fv = q.get("fieldValidation", "")
        if fv not in ("", "Ignore", "Warn", "Strict"):
            raise errors.bad_request(f'fieldValidation must be one of "Ignore", "Warn", or '
                                     f'"Strict", got "{fv}"')
        return bool(dry), fv

    def _manager(self, request: web.Request, apply: bool) -> str:
        manager = request.query.get("fieldManager", "")
        if len(manager) > _MAX_MANAGER_LEN:
            raise errors.invalid("", "", "", [("fieldManager", "Too long: may not be longer "
                                                               "than 128")])
        if manager or apply:
            return manager
        ua = request.headers.get("User-Agent", "unknown")
        return ua.split("/")[0] or "unknown"

    # ------------------------------------------------------------------ collections

    def _predicates(self, request: web.Request, rt: ResourceType) -> list[Callable[[Obj], bool]]:
        q = request.query
        return [
            parse_label_selector(q.get("labelSelector", "")),
            parse_field_selector(q.get("fieldSelector", ""), rt.kind),
        ]

    async def _collection(self, request: web.Request, t: _Target) -> web.StreamResponse:
        method = request.method
        rt = t.rt
        watch = method == "GET" and _bool_param(request.query.get("watch"))
        rep = _negotiate(request, _offers(method, watch=watch))
        if method == "GET":
            preds = self._predicates(request, rt)
            if watch:
                request[VERB] = "watch"
                return await self._watch(request, t, preds, rep)
            request[VERB] = "list"
            limit_s = request.query.get("limit", "0") or "0"
            try:
                limit = int(limit_s)
            except ValueError as exc:
                raise errors.bad_request(f"invalid limit: {limit_s}") from exc
            rv = request.query.get("resourceVersion", "")
            if rv and not rv.isdigit():
                raise errors.bad_request(f"invalid resource version: {rv}")
            items, token, remaining = self.store.list_objects(
                rt, t.namespace, preds, max(limit, 0), request.query.get("continue", "")
            )
            meta: dict[str, Any] = {"resourceVersion": str(self.store.rv)}
            if token:
                meta["continue"] = token
                meta["remainingItemCount"] = remaining
            return _json(_list_body(request, rt, rep, items, meta))
        if method == "POST":
            request[VERB] = "create"
            if rt.namespaced and not t.namespace:
                raise errors.method_not_allowed()
            dry, fv = self._write_params(request)
            body, _ = await self._read_body(request, patch=False)
            obj, warnings = self.store._create(rt, t.namespace, body,
                                               self._manager(request, False), dry, fv)
            return self._written(self.store.view(rt, obj), 201, _warning_headers(warnings))
        if method == "DELETE":
            request[VERB] = "deletecollection"
            dry, _ = self._write_params(request)
            options = await self._delete_options(request)
            preds = self._predicates(request, rt)
            deleted = self.store.delete_collection(rt, t.namespace, preds, options, dry_run=dry)
            return _json({"kind": rt.list_kind, "apiVersion": rt.api_version,
                          "metadata": {"resourceVersion": str(self.store.rv)},
                          "items": deleted})
        raise errors.method_not_allowed()

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if request.can_read_body:
            raw = await self._read_limited(request)
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError as exc:
                    raise errors.bad_request(f"invalid DeleteOptions: {exc}") from exc
                if not isinstance(body, dict):
                    raise errors.bad_request("DeleteOptions must be an object")
                options.update(body)
        q = request.query
        if "propagationPolicy" in q:
            options["propagationPolicy"] = q["propagationPolicy"]
        if "gracePeriodSeconds" in q:
            options["gracePeriodSeconds"] = q["gracePeriodSeconds"]
        if "orphanDependents" in q:
            options["orphanDependents"] = _bool_param(q["orphanDependents"])
        return options

    # ------------------------------------------------------------------ items

    async def _item(self, request: web.Request, t: _Target) -> web.StreamResponse:
        method = request.method
        rt = t.rt
        rep = _negotiate(request, _offers(method, scale=t.subresource == "scale"))
        if t.subresource == "scale":
            return await self._scale(request, t, rep)
        if method == "GET":
            request[VERB] = "get"
            return _json(_object_body(request, rt, rep, self.store.get(rt, t.namespace, t.name)))
        sub = "status" if t.subresource in ("status",) else ""
        if method == "PUT":
            request[VERB] = "update"
            dry, fv = self._write_params(request)
            body, _ = await self._read_body(request, patch=False)
            if t.subresource == "finalize":
                body = self._finalize_body(t, body)
            warnings: list[str] = []
            obj, created = self.store.update(rt, t.namespace, t.name, body,
                                             manager=self._manager(request, False),
                                             subresource=sub, dry_run=dry, field_validation=fv,
                                             warnings=warnings)
            return self._written(obj, 201 if created else 200, _warning_headers(warnings))
        if method == "PATCH":
            request[VERB] = "patch"
            dry, fv = self._write_params(request)
            body, kind = await self._read_body(request, patch=True)
            force_s = request.query.get("force")
            force = _bool_param(force_s)
            if force_s is not None and kind != "apply":
                raise errors.bad_request("force is only allowed for apply patches")
            warnings = []
            obj, created = self.store.patch(
                rt, t.namespace, t.name, kind, body,
                manager=self._manager(request, kind == "apply"), force=force,
                subresource=sub, dry_run=dry, field_validation=fv, warnings=warnings,
            )
            return self._written(obj, 201 if created else 200, _warning_headers(warnings))
        if method == "DELETE":
            request[VERB] = "delete"
            if t.subresource:
                raise errors.method_not_allowed()
            dry, _ = self._write_params(request)
            options = await self._delete_options(request)
            code, body = self.store.delete(rt, t.namespace, t.name, options, dry_run=dry)
            return _json(body, code)
        raise errors.method_not_allowed()

    def _written(self, obj: Obj, status: int, headers: dict[str, str] | None) -> web.Response:
        """The response to a write: the store already serialised the object it stored."""
        body = self.store.encoded(obj)
        if body is None:
            return _json(obj, status, headers)
        return web.Response(body=body + b"\n", status=status,
                            content_type="application/json", headers=headers)

    def _finalize_body(self, t: _Target, body: Any) -> Any:
        """PUT namespaces/x/finalize changes only spec.finalizers."""
        current = self.store.get(t.rt, "", t.name)
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be an object")
        new = json.loads(json.dumps(current))
        new.setdefault("spec", {})["finalizers"] = (body.get("spec") or {}).get("finalizers", [])
        new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return new

    async def _scale(self, request: web.Request, t: _Target, rep: Representation
                     ) -> web.Response:
        rt = t.rt
        if request.method == "GET":
            obj = self.store.get(rt, t.namespace, t.name)
            return _json(negotiation.as_object(rep, scale_of(obj)))
        if request.method in ("PUT", "PATCH"):
            dry, _ = self._write_params(request)
            patch = request.method == "PATCH"
            body, kind = await self._read_body(request, patch=patch)
            force_s = request.query.get("force")
            if force_s is not None and kind != "apply":
                raise errors.bad_request("force is only allowed for apply patches")
            scale = self.store.write_scale(
                rt, t.namespace, t.name, kind if patch else "update", body,
                manager=self._manager(request, kind == "apply"), force=_bool_param(force_s),
                dry_run=dry,
            )
            return _json(scale)
        raise errors.method_not_allowed()

    # ------------------------------------------------------------------ watch

    async def _watch(
        self, request: web.Request, t: _Target, preds: list[Callable[[Obj], bool]],
        rep: Representation,
    ) -> web.StreamResponse:
        q = request.query
        rt = t.rt
        # Every event carries one object: a PartialObjectMetadataList cannot be streamed.
        negotiation.require(rep, is_list=False, what=rt.kind)
        rv_param = q.get("resourceVersion", "")
        send_initial = _bool_param(q.get("sendInitialEvents"))
        if rv_param and not rv_param.isdigit():
            raise errors.bad_request(f"invalid resource version: {rv_param}")
        try:
            timeout = float(q.get("timeoutSeconds", "") or _DEFAULT_WATCH_TIMEOUT)
        except ValueError as exc:
            raise errors.bad_request("invalid timeoutSeconds") from exc

        def matches(o: Obj | None) -> bool:
            return o is not None and all(p(o) for p in preds)

        # Register and take the snapshot in one step of the loop so no event falls between.
        watcher = _QueueWatcher(rt.key, t.namespace)
        initial: list[dict[str, Any]] = []
        error: StatusError | None = None
        if send_initial or rv_param in ("", "0"):
            items, _, _ = self.store.list_objects(rt, t.namespace, preds)
            initial = [{"type": "ADDED", "object": negotiation.as_object(rep, o)} for o in items]
            if send_initial:
                initial.append(self._bookmark(rt, rep, {"k8s.io/initial-events-end": "true"}))
        else:
            try:
                past = self.store.events_since(int(rv_param), rt.key, t.namespace)
            except StatusError as exc:
                error = exc
                past = []
            for ev in past:
                converted = self._filter_event(rt, ev, matches, rep)
                if converted is not None:
                    initial.append(converted)
        if error is None:
            self.store.watchers.add(watcher)
        response = web.StreamResponse(status=200, headers={
            "Content-Type": "application/json",
            "Cache-Control": "no-cache, private",
        })
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            if error is not None:
                await response.write(_line({"type": "ERROR", "object": error.to_status()}))
                await response.write_eof()
                return response
            for ev_dict in initial:
                await response.write(_line(ev_dict))
            deadline = time.monotonic() + timeout
            stopping = self._stopping
            bookmarks = _bool_param(q.get("allowWatchBookmarks"))
            last_sent = time.monotonic()
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (stopping is not None and stopping.is_set()):
                    break
                try:
                    ev = await asyncio.wait_for(watcher.queue.get(), timeout=min(remaining, 1.0))
                except TimeoutError:
                    if bookmarks and time.monotonic() - last_sent >= self.bookmark_interval:
                        # Periodic bookmarks let a client resume from a recent resourceVersion
                        # even when nothing it watches changes.
                        await response.write(_line(self._bookmark(rt, rep)))
                        last_sent = time.monotonic()
                    continue
                converted = self._filter_event(rt, ev, matches, rep)
                if converted is not None:
                    await response.write(_line(converted))
                    last_sent = time.monotonic()
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.watchers.discard(watcher)
        return response

    def _bookmark(self, rt: ResourceType, rep: Representation,
                  annotations: dict[str, str] | None = None) -> dict[str, Any]:
        """An object of the watched kind (or a PartialObjectMetadata, as negotiated) carrying
        only the current resourceVersion and `annotations`."""
        meta: dict[str, Any] = {"resourceVersion": str(self.store.rv)}
        if annotations:
            meta["annotations"] = annotations
        obj = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
        return {"type": "BOOKMARK", "object": negotiation.as_object(rep, obj)}

    def _filter_event(
        self, rt: ResourceType, ev: WatchEvent, matches: Callable[[Obj | None], bool],
        rep: Representation,
    ) -> dict[str, Any] | None:
        """Selectors on a watch turn an object moving out of the selection into DELETED and one
        moving in into ADDED, as the API server's watch cache does."""
        now_in = matches(ev.obj)
        if ev.type == "MODIFIED":
            was_in = matches(ev.old)
            if now_in and not was_in:
                etype = "ADDED"
            elif was_in and not now_in:
                etype = "DELETED"
            elif now_in:
                etype = "MODIFIED"
            else:
                return None
        elif now_in:
            etype = ev.type
        else:
            return None
        return {"type": etype, "object": negotiation.as_object(rep, self.store.view(rt, ev.obj))}

    # ------------------------------------------------------------------ admin

    async def _admin(self, request: web.Request) -> web.Response:
        what = request.path[len("/_kubesim/"):].strip("/")
        method = request.method
        if what == "requests":
            if method == "GET":
                # ?since=<epoch seconds>: only requests that started then or later.
                since = float(request.query.get("since") or 0)
                return _json([asdict(r) for r in self.request_log if r.start >= since])
            if method == "DELETE":
                self.request_log.clear()
                return _json({"cleared": True})
        if what == "faults":
            if method == "GET":
                return _json([asdict(f) for f in self.faults])
            if method == "POST":
                try:
                    spec = json.loads(await request.read())
                    fault = self.add_fault(**spec)
                except (ValueError, TypeError) as exc:
                    raise errors.bad_request(f"invalid fault: {exc}") from exc
                return _json(asdict(fault), 201)
            if method == "DELETE":
                self.clear_faults()
                return _json({"cleared": True})
        if what == "compact" and method == "POST":
            self.store.compact()
            return _json({"compactedResourceVersion": str(self.store.compacted_rv)})
        if what == "simulation":
            if method == "PUT":
                try:
                    spec = json.loads(await request.read())
                except ValueError as exc:
                    raise errors.bad_request(f"invalid body: {exc}") from exc
                self.store.simulate = bool(spec.get("enabled", True))
            return _json({"enabled": self.store.simulate})
        raise _not_found_path()


def _offers(method: str, *, watch: bool = False, scale: bool = False) -> frozenset[str]:
    """The representations an endpoint can convert its answer into (see `negotiation`)."""
    if method != "GET":
        return negotiation.PLAIN_ONLY
    if watch or scale:
        return negotiation.NO_TABLE
    return negotiation.RESOURCE_READ


def _negotiate(request: web.Request, offers: frozenset[str]) -> Representation:
    return negotiation.negotiate(request.headers.get("Accept", ""), offers)


def _list_body(request: web.Request, rt: ResourceType, rep: Representation, items: list[Obj],
               meta: dict[str, Any]) -> dict[str, Any]:
    """A list answer as negotiated: the kind's own list, a Table or a metadata-only list."""
    if rep.kind == negotiation.TABLE:
        return tables.to_table(rt, items, meta, request.query.get("includeObject", "Metadata"),
                               rep.api_version)
    return negotiation.as_list(rep, rt.list_kind, rt.api_version, items, meta)


def _object_body(request: web.Request, rt: ResourceType, rep: Representation, obj: Obj
                 ) -> dict[str, Any]:
    """One object as negotiated: itself, a one-row Table or its PartialObjectMetadata."""
    if rep.kind == negotiation.TABLE:
        meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
        return tables.to_table(rt, [obj], meta, request.query.get("includeObject", "Metadata"),
                               rep.api_version)
    return negotiation.as_object(rep, obj)


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def _warning_headers(warnings: list[str]) -> dict[str, str] | None:
    if not warnings:
        return None
    # A quoted-string with `"` and `\` escaped, as apimachinery's NewWarningHeader writes it;
    # kubectl prints the text unescaped: Warning: unknown field "spec.x"
    quoted = (w.replace("\\", "\\\\").replace('"', '\\"') for w in warnings)
    return {"Warning": ", ".join(f'299 - "{q}"' for q in quoted)}


def _not_found_path() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource")
