"""Turning failed API requests into our typed errors.

Called by `transport` for every failed request: an HTTP error status with its Kubernetes
`Status` body, or a transport failure (timeout, refused or reset connection, TLS). The classes
live in `gitops_tasks.errors` so the engine can catch them without importing this package; they
are re-exported here for callers of the cluster layer.

Retrying is not decided here: transient errors only carry `retry_after` for the task layer.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Mapping
from typing import Any

import urllib3.exceptions as u3

from ..errors import (
    ApiBadRequest,
    ApiConflict,
    ApiError,
    ApiForbidden,
    ApiInvalid,
    ApiNotFound,
    ApiPermanent,
    ApiTransient,
    ApiUnauthorized,
    UnknownKind,
)
from ..model.resources import ResourceKey

__all__ = [
    "ApiBadRequest",
    "ApiConflict",
    "ApiError",
    "ApiForbidden",
    "ApiInvalid",
    "ApiNotFound",
    "ApiPermanent",
    "ApiTransient",
    "ApiUnauthorized",
    "UnknownKind",
    "from_response",
    "from_transport",
]

# Server messages can be kilobytes (a whole rejected object, an HTML page from a proxy); a
# condition on an Application must stay readable in `kubectl get -o yaml`.
MAX_SERVER_MESSAGE = 300
_MANAGER_RE = re.compile(r'conflict with "([^"]+)"')
# etcd refusing an object too large for it (over its --max-request-bytes, or over the 2 MiB its
# client in kube-apiserver will send): the API server passes the error on as a reasonless 500,
# but no retry can help until the object is smaller.
_TOO_LARGE_FOR_ETCD = ("etcdserver: request is too large",
                       "ResourceExhausted desc = trying to send message larger than max")


def trim(text: str, limit: int = MAX_SERVER_MESSAGE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def parse_status(body: bytes) -> dict[str, Any]:
    """The `Status` object of an error response; a non-JSON body becomes its message."""
    try:
        status = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {"message": body.decode("utf-8", "replace")}
    return status if isinstance(status, dict) else {"message": str(status)}


def retry_after(headers: Mapping[str, str], details: Mapping[str, Any]) -> float | None:
    """Seconds to wait from the Retry-After header (seconds form) or details.retryAfterSeconds."""
    for value in (headers.get("Retry-After"), details.get("retryAfterSeconds")):
        try:
            if value is not None and float(value) >= 0:
                return float(value)
        except (TypeError, ValueError):
            continue  # an HTTP-date: ignore it rather than guess the server's clock
    return None


def _what(verb: str, resource: ResourceKey | None, cluster: str) -> str:
    target = f" {resource}" if resource is not None else ""
    return f"{verb}{target} on cluster {cluster}"


def from_response(
    code: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    verb: str,
    resource: ResourceKey | None,
    cluster: str,
) -> ApiError:
    """The error for an HTTP error status, with the server's message trimmed and a hint."""
    status = parse_status(body)
    reason = str(status.get("reason") or "")
    details = status.get("details") or {}
    if not isinstance(details, dict):
        details = {}
    causes = [c for c in details.get("causes") or [] if isinstance(c, dict)]
    message = trim(str(status.get("message") or reason or f"HTTP {code}"))
    what = _what(verb, resource, cluster)
    common: dict[str, Any] = {"resource": resource, "status": code, "reason": reason,
                              "cluster": cluster}

    if code == 500 and any(text in message for text in _TOO_LARGE_FOR_ETCD):
        return ApiPermanent(f"{what}: too large for the cluster's etcd: {message} (make the "
                            "object smaller, e.g. move data out of it)", **common)
    if code == 413:
        return ApiBadRequest(f"{what}: request too large: {message} (make the object "
                             "smaller)", **common)
    if code == 429 or code >= 500 or code == 408:
        return ApiTransient(f"{what}: the API server is overloaded or failing ({code}): "
                            f"{message}", retry_after=retry_after(headers, details), **common)
    if code == 422:
        pairs = [(str(c.get("field", "")), str(c.get("message", ""))) for c in causes]
        listed = "; ".join(f"{f}: {m}" if f else m for f, m in pairs)
        text = trim(listed) if listed else message
        return ApiInvalid(f"{what}: invalid: {text} (fix the manifest in Git)", causes=pairs,
                          **common)
    if code == 401:
        return ApiUnauthorized(f"{what}: unauthorized: {message} (check the cluster's "
                               "credentials)", **common)
    if code == 403:
        if any(c.get("reason") == "NamespaceTerminating" for c in causes):
            ns = resource.namespace if resource is not None else "the namespace"
            return ApiForbidden(f"{what}: namespace {ns} is being deleted: {message} (sync "
                                "again once it is gone)", **common)
        return ApiForbidden(f"{what}: forbidden: {message} (grant gitops-tasks the RBAC "
                            "permission, or exclude this resource)", **common)
    if code == 409:
        fields = [
            (m.group(1) if (m := _MANAGER_RE.search(str(c.get("message", "")))) else
             str(c.get("message", "")), str(c.get("field", "")))
            for c in causes if c.get("reason") == "FieldManagerConflict"
        ]
        if fields:
            owned = ", ".join(f"{path} (owned by {manager})" for manager, path in fields)
            return ApiConflict(f"{what}: fields owned by another manager: {trim(owned)} "
                               "(apply with force to take them over)", fields=fields, **common)
        if reason == "AlreadyExists":
            return ApiConflict(f"{what}: already exists: {message}", **common)
        return ApiConflict(f"{what}: conflict: {message} (re-read the object and retry)",
                           **common)
    if code == 404:
        return ApiNotFound(f"{what}: not found: {message}", **common)
    if code in (400, 405, 406, 413, 415):
        return ApiBadRequest(f"{what}: bad request ({code}): {message}", **common)
    return ApiPermanent(f"{what}: refused ({code} {reason}): {message}", **common)


def _root_cause(exc: BaseException) -> BaseException:
    # MaxRetryError wraps the real failure; urllib3 errors often carry the OSError as a cause.
    seen = 0
    while isinstance(exc, u3.MaxRetryError) and exc.reason is not None and seen < 5:
        exc = exc.reason
        seen += 1
    return exc


def from_transport(
    exc: BaseException,
    *,
    verb: str,
    resource: ResourceKey | None,
    cluster: str,
    server: str,
    timeout: float,
) -> ApiError:
    """The error for a request that got no HTTP response."""
    exc = _root_cause(exc)
    what = _what(verb, resource, cluster)
    common: dict[str, Any] = {"resource": resource, "cluster": cluster}
    detail = trim(str(exc))
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2: test it first.
    if isinstance(exc, u3.NewConnectionError | u3.NameResolutionError):
        return ApiTransient(f"{what}: cannot connect to {server}: {detail}", **common)
    if isinstance(exc, u3.TimeoutError | TimeoutError):
        return ApiTransient(f"{what}: no answer from {server} within {timeout:g}s", **common)
    if isinstance(exc, u3.SSLError | ssl.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in str(exc) or isinstance(
                exc.__context__, ssl.SSLCertVerificationError):
            return ApiPermanent(f"{what}: TLS verification of {server} failed: {detail} (check "
                                "the cluster's CA data, server name or insecure setting)",
                                **common)
        return ApiTransient(f"{what}: TLS error talking to {server}: {detail}", **common)
    if isinstance(exc, u3.LocationParseError | u3.URLSchemeUnknown):
        return ApiPermanent(f"{what}: invalid server URL {server}: {detail}", **common)
    return ApiTransient(f"{what}: connection to {server} failed: {detail}", **common)
