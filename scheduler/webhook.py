"""`gitops-tasks webhook`: the push receiver. It answers at once and never waits for a sync: a
genuine push becomes one coalesced refresh per Application it touched, queued with the pushed
commit recorded, so the refresh cannot pick up the commit before it.

aiohttp, because kubesim already brings it (one HTTP stack for the project), it serves many
slow clients on one thread, and it hands us the body as a stream: a body over the limit is
refused from its Content-Length, or after reading just past the limit, never read whole. The
work after the signature check (listing Applications, asking Git what changed, queueing) is
blocking I/O and runs in a thread, so probes and other deliveries are not held up by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import redis
from aiohttp import web
from kombu.exceptions import OperationalError
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gitops_tasks import metrics as engine_metrics
from gitops_tasks.errors import GitOpsError, TransientError
from gitops_tasks.log import get_logger
from gitops_tasks.render.cache import recorded_inputs
from gitops_tasks.runtime import Runtime
from gitops_tasks.settings import WebhookSecrets, WebhookSettings
from gitops_tasks.webhooks import (
    Ping,
    Push,
    Target,
    WebhookError,
    affected,
    authenticate,
    delivery_id,
    detect,
    parse,
    target_of,
    touches,
)
from gitops_tasks.webhooks.providers import PROVIDERS, load, lower

from .secretdata import SecretData

DELIVERY_KEY = "gitops:webhook-delivery:{provider}:{id}"
PROCESSING_TTL = 60
RESULTS = ("queued", "unmatched", "ignored", "ping", "duplicate", "unauthorized",
           "bad_request", "too_large", "unavailable")
# Keys of the webhook Secret (Argo CD's argocd-secret spells them with a "webhook." prefix;
# both are read).
SECRET_KEYS = {
    "github": "github.secret", "gitlab": "gitlab.secret", "bitbucket_uuid": "bitbucket.uuid",
    "bitbucket_server": "bitbucketserver.secret", "gitea": "gitea.secret",
    "gogs": "gogs.secret", "azure_devops_username": "azuredevops.username",
    "azure_devops_password": "azuredevops.password",
}

_log = get_logger(component="webhook")


@dataclass
class Producers:
    """What the receiver calls to queue work (the task layer's functions)."""
    enqueue: Callable[..., Any]
    publish_pushed: Callable[[dict[tuple[str, str], str]], None]


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "gitops_tasks_webhook_requests", "Webhook deliveries by provider and result",
            ["provider", "result"], registry=self.registry)
        self.duration = Histogram(
            "gitops_tasks_webhook_duration_seconds",
            "Time from a delivery's arrival to its answer", ["provider"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry)
        self.refreshes = Counter(
            "gitops_tasks_webhook_refreshes", "Refreshes queued (or coalesced) for pushes",
            ["provider"], registry=self.registry)
        for provider in (*PROVIDERS, "unknown"):
            for result in RESULTS:
                self.requests.labels(provider, result)


class Secrets:
    """The providers' secrets: the variables, overridden key by key by the webhook Secret in
    the control namespace (re-read every `secret_refresh` seconds)."""

    def __init__(self, settings: WebhookSettings, runtime: Runtime | None) -> None:
        self.settings = settings
        self.secret = SecretData(runtime, settings.secret_name, settings.secret_refresh)

    def current(self) -> WebhookSecrets:
        data = self.secret.data()
        values: dict[str, str] = {}
        for name, key in SECRET_KEYS.items():
            value = data.get(key, data.get(f"webhook.{key}"))
            if value:
                values[name] = value
        if "gitea" in values and "gogs" not in values:
            values["gogs"] = values["gitea"]
        return replace(self.settings.secrets, **values)


class AppIndex:
    """The Applications of the control namespace as Targets, listed at most every
    `apps_cache` seconds: a storm of pushes shares one list."""

    def __init__(self, runtime: Runtime, ttl: float) -> None:
        self.runtime = runtime
        self.ttl = ttl
        self._lock = threading.Lock()
        self._read_at = -1e9
        self._targets: list[tuple[Target, dict[str, Any]]] = []
        self.loaded = False

    def targets(self) -> list[tuple[Target, dict[str, Any]]]:
        with self._lock:
            if not self.loaded or time.monotonic() - self._read_at >= self.ttl:
                items = self.runtime.apps.list()  # raises TransientError when unreachable
                targets = []
                for obj in items:
                    target = target_of(obj)
                    if target is not None:
                        targets.append((target, obj))
                self._targets = targets
                self._read_at = time.monotonic()
                self.loaded = True
            return self._targets


QUEUE_NAMES = ("refresh", "sync")


class StateCollector:
    """Cluster-wide families computed at scrape time: one `gitops_tasks_app_info` series per
    Application (Argo CD's `argocd_app_info`), and the queues' depth in the broker."""

    def __init__(self, index: AppIndex, runtime: Runtime) -> None:
        self.index = index
        self.runtime = runtime

    def describe(self) -> list[Any]:
        return []  # collected only on scrape: registering must not list anything

    def collect(self) -> Iterator[Any]:
        info = GaugeMetricFamily(
            "gitops_tasks_app_info", "One series per Application: its sync status and health",
            labels=["namespace", "name", "project", "repo", "dest_server", "dest_namespace",
                    "sync_status", "health_status", "operation_phase", "autosync"])
        try:
            apps = self.index.targets()
        except GitOpsError as exc:
            _log.warning("metrics: cannot list Applications", error=str(exc))
            apps = []
        for target, obj in apps:
            spec = obj.get("spec") or {}
            status = obj.get("status") or {}
            dest = spec.get("destination") or {}
            policy = spec.get("syncPolicy") or {}
            info.add_metric([
                target.namespace, target.name, str(spec.get("project") or "default"),
                str((spec.get("source") or {}).get("repoURL", "")),
                str(dest.get("server") or dest.get("name") or ""),
                str(dest.get("namespace") or ""),
                str((status.get("sync") or {}).get("status") or "Unknown"),
                str((status.get("health") or {}).get("status") or "Unknown"),
                str((status.get("operationState") or {}).get("phase") or ""),
                "true" if policy.get("automated") is not None else "false"], 1.0)
        yield info
        queued = GaugeMetricFamily("gitops_tasks_queue_length",
                                   "Messages waiting in each queue", labels=["queue"])
        reserved = GaugeMetricFamily(
            "gitops_tasks_queue_reserved",
            "Messages workers took and have not acknowledged (running, or held for a "
            "countdown)")
        try:
            assert self.runtime.redis is not None
            pipe = self.runtime.redis.pipeline(transaction=False)
            for name in QUEUE_NAMES:
                pipe.llen(name)
            pipe.hlen("unacked")
            *lengths, unacked = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            _log.warning("metrics: cannot read the queues", error=str(exc))
            return
        for name, length in zip(QUEUE_NAMES, lengths, strict=True):
            queued.add_metric([name], float(length))
        reserved.add_metric([], float(unacked))
        yield queued
        yield reserved


class Receiver:
    def __init__(self, settings: WebhookSettings, runtime: Runtime, producers: Producers, *,
                 insecure: bool = False, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.runtime = runtime
        self.producers = producers
        self.insecure = insecure
        self.metrics = metrics or Metrics()
        self.secrets = Secrets(settings, runtime)
        self.index = AppIndex(runtime, settings.apps_cache)
        self.metrics.registry.register(StateCollector(self.index, runtime))

    # ------------------------------------------------------------------ HTTP

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.settings.max_payload_bytes + 1)
        app.router.add_post("/api/webhook", self.webhook)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics_page)
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(self, request: web.Request) -> web.Response:
        problems = await asyncio.to_thread(self._readiness)
        if problems:
            return web.json_response({"ready": False, "problems": problems}, status=503)
        return web.json_response({"ready": True})

    def _readiness(self) -> list[str]:
        problems = []
        try:
            assert self.runtime.redis is not None
            self.runtime.redis.ping()
        except (redis.RedisError, OSError) as exc:
            problems.append(f"redis: {exc}")
        try:
            self.index.targets()
        except GitOpsError as exc:
            problems.append(f"applications: {exc}")
        return problems

    async def metrics_page(self, request: web.Request) -> web.Response:
        # The cluster-wide families read Redis and the Application list: not on the loop.
        body = await asyncio.to_thread(
            lambda: generate_latest(self.metrics.registry) + engine_metrics.render())
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def webhook(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        headers = lower(request.headers)
        provider = detect(headers) or "unknown"
        try:
            status, result, body = await self._webhook(request, headers, provider)
        except WebhookError as exc:
            status, result, body = exc.status, _result_of(exc.status), {"error": exc.message}
            _log.info("webhook refused", provider=provider, status=exc.status,
                      reason=exc.message, remote=request.remote)
        self.metrics.requests.labels(provider, result).inc()
        self.metrics.duration.labels(provider).observe(time.monotonic() - started)
        response = web.json_response(body, status=status)
        if status == 413:
            response.force_close()  # the rest of the body is never read
        return response

    async def _webhook(self, request: web.Request, headers: dict[str, str], provider: str
                       ) -> tuple[int, str, dict[str, Any]]:
        limit = self.settings.max_payload_bytes
        if request.content_length is not None and request.content_length > limit:
            raise WebhookError(413, f"payload of {request.content_length} bytes is over the "
                                    f"limit of {limit} bytes")
        body = await _read_capped(request, limit)
        if provider == "unknown":
            raise WebhookError(400, "not a push webhook of a known provider (GitHub, GitLab, "
                                    "Bitbucket, Bitbucket Server, Gitea, Gogs, Azure DevOps)")
        secrets = await asyncio.to_thread(self.secrets.current)
        authenticate(provider, headers, body, secrets, insecure=self.insecure)
        payload = load(provider, body)
        try:
            events = parse(provider, headers, payload)
        except WebhookError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A shape the parsers did not foresee: the sender's fault, never a 500.
            raise WebhookError(400, f"{provider} payload not understood: {exc!r}",
                               provider) from exc
        if all(isinstance(e, Ping) for e in events):
            return 200, "ping", {"provider": provider, "ping": True}
        pushes = [e for e in events if isinstance(e, Push)]
        if not pushes:
            names = sorted({getattr(e, "event", "") for e in events})
            return 202, "ignored", {"provider": provider, "ignored": names}
        delivery = delivery_id(provider, headers, payload)
        return await asyncio.to_thread(self._pushes, provider, delivery, pushes)

    # ------------------------------------------------------------------ the work (a thread)

    def _pushes(self, provider: str, delivery: str, pushes: list[Push]
                ) -> tuple[int, str, dict[str, Any]]:
        key = DELIVERY_KEY.format(provider=provider, id=delivery) if delivery else ""
        client = self.runtime.redis
        assert client is not None
        try:
            # Claimed for a minute while it is processed (a receiver killed meanwhile leaves
            # the provider's redelivery to be processed then), remembered once it was.
            if key and not client.set(key, "1", nx=True, ex=PROCESSING_TTL):
                return 202, "duplicate", {"provider": provider, "delivery": delivery,
                                          "duplicate": True, "apps": []}
            apps = self._refresh(provider, pushes)
            if key:
                client.expire(key, int(self.settings.delivery_ttl))
        except Exception as exc:  # Redis, the broker, the API server, Git: retry later
            if not isinstance(exc, redis.RedisError | OperationalError | TransientError |
                              OSError):
                _log.exception("webhook processing failed", provider=provider)
            if key:
                # Not recorded as delivered: the provider's retry will be processed.
                with contextlib.suppress(redis.RedisError, OSError):
                    client.delete(key)
            _log.warning("webhook not processed; the provider may retry", provider=provider,
                         delivery=delivery, error=str(exc))
            return 503, "unavailable", {"error": f"cannot queue the refresh now: {exc}"}
        result = "queued" if apps else "unmatched"
        _log.info("webhook", provider=provider, delivery=delivery, result=result,
                  refs=sorted({p.ref for p in pushes}), apps=len(apps))
        return 202, result, {"provider": provider, "delivery": delivery, "apps": apps}

    def _refresh(self, provider: str, pushes: list[Push]) -> list[str]:
        client = self.runtime.redis
        assert client is not None
        targets = self.index.targets()
        raw = dict(targets)  # Target -> the Application as listed
        chosen: dict[tuple[str, str], tuple[Target, dict[str, Any], Push]] = {}
        for push in pushes:
            matched = affected(push, [t for t, _ in targets])
            if not matched:
                continue
            changed = push.changed if push.changed is not None else \
                self._changed_from_git(push, matched, raw)
            # Without an annotation, what the app's last render read counts too (a Kustomize
            # base outside its path, a Helm value file).
            read = recorded_inputs(client, [(t.namespace, t.name) for t in matched
                                            if not t.annotated]) if changed is not None else {}
            for target in matched:
                paths = (*target.paths, *read.get((target.namespace, target.name), ()))
                if touches(paths, changed):
                    chosen[(target.namespace, target.name)] = (target, raw[target], push)
        pushed: dict[tuple[str, str], str] = {}
        for _target, obj, push in chosen.values():
            if not push.deleted:
                source = obj["spec"]["source"]
                pushed[(source["repoURL"], str(source.get("targetRevision") or "HEAD"))] = \
                    push.after
        # Recorded before queueing: the refresh must find the pushed commit, not the last one
        # a sweep resolved.
        self.producers.publish_pushed(pushed)
        names = []
        for (namespace, name) in sorted(chosen):
            self.producers.enqueue("refresh", namespace, name)
            self.metrics.refreshes.labels(provider).inc()
            names.append(f"{namespace}/{name}")
        return names

    def _changed_from_git(self, push: Push, matched: list[Target],
                          raw: dict[Target, dict[str, Any]]) -> frozenset[str] | None:
        """The files `push` changed, from the mirror (the payload did not list them all), or
        None when Git cannot say (a new ref, an unreachable repository): then every app the
        push matched is refreshed, since a push is never dropped."""
        if push.created or push.deleted:
            return None
        repo_url = raw[matched[0]]["spec"]["source"]["repoURL"]
        try:
            files = self.runtime.mirrors.changed_files(repo_url, push.before, push.after)
        except GitOpsError as exc:
            _log.warning("could not list the pushed changes from Git; refreshing every app "
                         "of the ref", repo=repo_url, error=str(exc))
            return None
        return frozenset(files)


def _result_of(status: int) -> str:
    return {401: "unauthorized", 413: "too_large"}.get(status, "bad_request")


async def _read_capped(request: web.Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise WebhookError(413, f"payload over the limit of {limit} bytes")
        chunks.append(chunk)
