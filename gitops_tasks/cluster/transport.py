"""HTTP requests to one API server through an official `kubernetes.client.ApiClient`.

Used by `Cluster` (and its discovery) for every request. It reuses the ApiClient's urllib3 pool
(TLS, client certificates, proxy) and its configured credentials, but sends raw JSON and parses
the answer with `json.loads`: no model classes, no `sanitize_for_serialization` walk over large
objects. It calls the pool directly rather than `ApiClient.call_api` because only the pool
accepts per-request `retries`: the client's pool would otherwise retry reads up to three times
on its own, hiding timeouts from the task layer (which owns retries) and multiplying the load on
a server that is already slow.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3

from .. import metrics
from ..model.resources import ResourceKey
from . import errors
from .throttling import Limiter, TokenBucket

USER_AGENT = "gitops-tasks"
# Seconds credential headers are reused before the client's refresh hook runs again.
AUTH_REFRESH_SECONDS = 10.0
JSON = "application/json"
# The metadata-only representation of a list (and of watch events): `PartialObjectMetadata`.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


@dataclass(frozen=True)
class Response:
    status: int
    body: Any  # the decoded JSON document (an error Status for accepted error codes)


class Transport:
    """Counts, throttles, sends and classifies; one per Cluster, shared by its threads."""

    def __init__(
        self,
        api_client: Any,
        *,
        cluster: str,
        qps: float,
        burst: int,
        timeout: float,
        limiter: Limiter | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.api_client = api_client
        self.configuration = api_client.configuration
        self.server = str(self.configuration.host).rstrip("/")
        self.cluster = cluster
        self.timeout = timeout
        self.limiter: Limiter = limiter or TokenBucket(qps, burst)
        self.user_agent = user_agent
        self._pool = api_client.rest_client.pool_manager
        self._timeout = urllib3.Timeout(total=timeout)
        self._count_lock = threading.Lock()
        self.requests = 0
        self._auth: dict[str, str] = {}
        self._auth_read_at = float("-inf")

    def _auth_headers(self) -> dict[str, str]:
        """The credential headers, read again every few seconds: kubeconfig exec/OIDC
        credentials refresh through a hook that `auth_settings()` runs, and that hook rebuilds
        the whole client configuration (proxy lookup from the environment included) on every
        call, which per request cost more than the request itself."""
        now = time.monotonic()
        with self._count_lock:
            if now - self._auth_read_at < AUTH_REFRESH_SECONDS:
                return self._auth
        found = {}
        for setting in self.configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                found[str(setting["key"])] = str(setting["value"])
        with self._count_lock:
            self._auth, self._auth_read_at = found, now
        return found

    def _headers(self, content_type: str | None, accept: str = JSON) -> dict[str, str]:
        headers = {str(k): str(v) for k, v in self.api_client.default_headers.items()}
        headers["User-Agent"] = self.user_agent
        headers["Accept"] = accept
        if content_type:
            headers["Content-Type"] = content_type
        headers.update(self._auth_headers())
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = JSON,
        verb: str,
        resource: ResourceKey | None = None,
        accept: Iterable[int] = (),
        media: str = JSON,
    ) -> Response:
        """Send one request; 2xx and the statuses in `accept` return, others raise ApiError.
        `media` is the representation asked for (the Accept header)."""
        url = self.server + path
        if query:
            url += "?" + urlencode(query)
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        self.limiter.acquire()
        with self._count_lock:
            self.requests += 1
        try:
            resp = self._pool.urlopen(
                method,
                url,
                body=data,
                headers=self._headers(content_type if data is not None else None, media),
                timeout=self._timeout,
                retries=False,
                redirect=False,
                preload_content=True,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            metrics.kube_request(verb, None)
            raise errors.from_transport(exc, verb=verb, resource=resource,
                                        cluster=self.cluster, server=self.server,
                                        timeout=self.timeout) from exc
        status = int(resp.status)
        metrics.kube_request(verb, status)
        raw: bytes = resp.data
        if 200 <= status < 300 or status in accept:
            try:
                return Response(status, json.loads(raw) if raw else None)
            except ValueError as exc:
                if status >= 300:
                    return Response(status, errors.parse_status(raw))
                raise errors.ApiTransient(
                    f"{verb} on cluster {self.cluster}: undecodable answer from {self.server}: "
                    f"{errors.trim(raw.decode('utf-8', 'replace'))}",
                    resource=resource, status=status, cluster=self.cluster) from exc
        raise errors.from_response(status, raw, resp.headers, verb=verb, resource=resource,
                                   cluster=self.cluster)

    def stream(self, path: str, *, query: Mapping[str, str], verb: str, read_timeout: float,
               resource: ResourceKey | None = None, media: str = JSON,
               accept: Iterable[int] = ()) -> Iterator[Any]:
        """A watch: one decoded JSON document per line until the server ends the stream. A
        status in `accept` (410 Gone) is yielded as its Status document, others raise."""
        url = self.server + path + "?" + urlencode(query)
        self.limiter.acquire()
        with self._count_lock:
            self.requests += 1
        try:
            resp = self._pool.urlopen("GET", url, headers=self._headers(None, media),
                                      timeout=urllib3.Timeout(connect=self.timeout,
                                                              read=read_timeout),
                                      retries=False, redirect=False, preload_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise errors.from_transport(exc, verb=verb, resource=resource, cluster=self.cluster,
                                        server=self.server, timeout=self.timeout) from exc
        try:
            status = int(resp.status)
            if not 200 <= status < 300:
                raw = resp.read()
                if status in accept:
                    yield errors.parse_status(raw)
                    return
                raise errors.from_response(status, raw, resp.headers, verb=verb,
                                           resource=resource, cluster=self.cluster)
            buffer = b""
            try:
                for chunk in resp.stream(64 * 1024, decode_content=True):
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        if line.strip():
                            yield json.loads(line)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise errors.from_transport(exc, verb=verb, resource=resource,
                                            cluster=self.cluster, server=self.server,
                                            timeout=read_timeout) from exc
            if buffer.strip():
                yield json.loads(buffer)
        finally:
            resp.release_conn()
