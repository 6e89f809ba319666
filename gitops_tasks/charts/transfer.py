"""One bounded HTTP GET for the Helm repository and OCI clients: a timeout, a size cap,
redirects only to http(s) and never carrying credentials to another host, and HTTP failures
turned into the source layer's errors (unreachable: retry later; refused credentials, missing,
too large: permanent).

Called by `repository` and `oci`. Uses the standard library only: the requests stack is not a
declared dependency, and nothing here needs more than urllib gives.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import IO, Any

from ..errors import (
    AuthenticationFailed,
    PermanentError,
    RepoUnreachable,
    SourceError,
    SourceTooLarge,
)
from ..log import get_logger
from ..source.urls import redact

_log = get_logger(component="charts.transfer")
_MAX_REDIRECTS = 5
_CHUNK = 64 * 1024


class ChartNotFound(SourceError, PermanentError):
    """The repository has no such chart, version or file (HTTP 404, not in the index)."""


class ChartRepoError(SourceError, PermanentError):
    """The repository answered, but with something unusable (bad index, digest mismatch)."""


@dataclass(frozen=True)
class Auth:
    """Credentials for one repository host; `bearer` is a registry token (OCI)."""

    username: str = ""
    password: str = ""
    bearer: str = ""

    def __repr__(self) -> str:
        return f"Auth(username={self.username!r}, password=***, bearer=***)"

    def header(self) -> str | None:
        if self.bearer:
            return f"Bearer {self.bearer}"
        if self.username or self.password:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return f"Basic {token}"
        return None


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Limits:
    timeout: float = 60.0
    max_bytes: int = 64 * 1024 * 1024
    # Extra headers (Accept for OCI manifests).
    headers: Mapping[str, str] = field(default_factory=dict)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # Redirects are followed by `get` itself, so it can check the scheme and drop credentials
    # when the host changes (urllib would forward the Authorization header anywhere).
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc.rpartition("@")[2].lower()


def get(url: str, *, auth: Auth | None = None, limits: Limits | None = None,
        allow_status: tuple[int, ...] = ()) -> Response:
    """GET `url`. Raises RepoUnreachable (network, 5xx, 429), AuthenticationFailed (401/403),
    ChartNotFound (404), SourceTooLarge, ChartRepoError (other statuses); a status listed in
    `allow_status` is returned instead (the OCI client reads 401 challenges)."""
    limits = limits or Limits()
    origin = _origin(url)
    current = url
    for _ in range(_MAX_REDIRECTS + 1):
        scheme = urllib.parse.urlsplit(current).scheme
        if scheme not in ("http", "https"):
            raise ChartRepoError(f"refusing to fetch {redact(current)}: only http and https")
        headers = {"User-Agent": "gitops-tasks", **limits.headers}
        header = auth.header() if auth is not None and _origin(current) == origin else None
        if header:
            headers["Authorization"] = header
        request = urllib.request.Request(current, headers=headers, method="GET")
        try:
            with _OPENER.open(request, timeout=limits.timeout) as resp:
                body = _read(resp, current, limits.max_bytes)
                _log.debug("chart repository request", url=redact(current),
                           status=resp.status, bytes=len(body))
                return Response(current, resp.status, _headers(resp.headers), body)
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("Location") if exc.headers else None
            if exc.code in (301, 302, 303, 307, 308) and location:
                current = urllib.parse.urljoin(current, location)
                continue
            _log.debug("chart repository request", url=redact(current), status=exc.code)
            if exc.code in allow_status:
                body = _read(exc, current, 1024 * 1024) if exc.fp is not None else b""
                return Response(current, exc.code, _headers(exc.headers), body)
            raise _status_error(exc.code, current) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RepoUnreachable(f"{redact(current)} is unreachable: {reason}") from None
    raise ChartRepoError(f"{redact(url)}: more than {_MAX_REDIRECTS} redirects")


def _headers(message: Message | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (message.items() if message is not None else [])}


def _read(stream: IO[bytes], url: str, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        try:
            chunk = stream.read(_CHUNK)
        except (OSError, TimeoutError) as exc:
            raise RepoUnreachable(f"{redact(url)}: download interrupted: {exc}") from None
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > max_bytes:
            raise SourceTooLarge(f"{redact(url)} is larger than {max_bytes} bytes")
        chunks.append(chunk)


def _status_error(status: int, url: str) -> SourceError:
    where = redact(url)
    if status in (401, 403):
        return AuthenticationFailed(f"{where}: access refused (HTTP {status}); check the "
                                    f"repository credentials")
    if status == 404:
        return ChartNotFound(f"{where}: not found (HTTP 404)")
    if status == 429 or status >= 500:
        return RepoUnreachable(f"{where}: HTTP {status}")
    return ChartRepoError(f"{where}: HTTP {status}")
