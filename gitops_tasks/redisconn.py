"""Redis clients from the URLs operators already write for Celery.

Called by everything that talks to Redis outside Celery itself (the app locks, queue markers and
shared rate limits of `gitops_tasks.locks`, the render and dry-run caches) as
`client_from_url(settings.redis.url)`. The settings layer validates the URL first; the checks
here are a second line of defence, and their messages never repeat a password.

Accepted forms (Celery's result-backend and kombu's broker spellings):

    redis://[[user]:password@]host[:port][/db]
    rediss://[[user]:password@]host[:port][/db][?ssl_cert_reqs=required|optional|none]
             [&ssl_ca_certs=PATH][&ssl_certfile=PATH&ssl_keyfile=PATH]
    unix:///path/to/redis.sock[?db=N][&password=...]     (also socket:// and redis+socket://)
    sentinel://[[user]:password@]host[:port][/db];sentinel://host2[:port];...

`ssl_cert_reqs` takes Celery's values (`required`, `CERT_REQUIRED`, ...) and defaults to
`required`; the hostname is checked only when certificates are required. For Sentinel the
password, user and db are the master's (as in kombu); the sentinels themselves are asked
without credentials, each in turn until one names the master, and the client follows failovers.

No network I/O happens here: the first command connects.
"""

from __future__ import annotations

import os
import socket
import ssl
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379

_CERT_REQS = {
    "required": ssl.CERT_REQUIRED,
    "cert_required": ssl.CERT_REQUIRED,
    "optional": ssl.CERT_OPTIONAL,
    "cert_optional": ssl.CERT_OPTIONAL,
    "none": ssl.CERT_NONE,
    "cert_none": ssl.CERT_NONE,
}
_SSL_FILE_PARAMS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
_UNIX_SCHEMES = ("unix", "socket", "redis+socket")


def client_from_url(
    url: str,
    *,
    sentinel_master: str = "mymaster",
    socket_timeout: float = 5.0,
    socket_connect_timeout: float = 2.0,
    health_check_interval: int = 30,
    retry_on_timeout: bool = True,
    retries: int = 2,
) -> redis.Redis:
    """A client for `url`; raises ValueError (naming the problem) for a URL it cannot use.

    `health_check_interval`: a connection idle longer than this is PINGed before reuse, so a
    connection a load balancer or failover silently dropped is replaced instead of failing a
    command. `retries`: connection errors (and timeouts, unless `retry_on_timeout` is False)
    are retried this often with a short jittered backoff, so one dead connection costs a
    reconnect, not an error, while a Redis that is down is reported within a second or so.
    """
    common: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
        "health_check_interval": health_check_interval,
        "retry": _retry(retries, retry_on_timeout),
    }
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss"):
        return redis.Redis(**_tcp_params(url, scheme), **common)
    if scheme in _UNIX_SCHEMES:
        return redis.Redis(**_unix_params(url), **common)
    if scheme == "sentinel":
        return _sentinel_client(url, sentinel_master, common)
    raise ValueError(
        f"unsupported Redis URL {redact(url)!r}: expected redis://, rediss://, unix:// or "
        "sentinel://"
    )


def redact(url: str) -> str:
    """`url` with any password replaced by `***`, for messages and logs."""
    out = []
    for piece in url.split(";"):
        try:
            parts = urlsplit(piece)
        except ValueError:
            out.append("<unparsable URL>")
            continue
        if parts.password is None:
            out.append(piece)
            continue
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        out.append(parts._replace(netloc=f"{user}:***@{host}").geturl())
    return ";".join(out)


# ----------------------------------------------------------------------------- parsing


def _retry(retries: int, on_timeout: bool) -> Retry:
    if retries < 0:
        raise ValueError("retries must be >= 0")
    errors: tuple[type[Exception], ...] = (redis.ConnectionError,)
    if on_timeout:
        errors += (redis.TimeoutError, socket.timeout)
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries, errors)


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError as exc:
        raise ValueError(f"invalid Redis URL {redact(url)!r}: {exc}") from None
    if parts.port == 0:
        raise ValueError(f"invalid Redis URL {redact(url)!r}: port 0")
    if parts.fragment:
        raise ValueError(f"invalid Redis URL {redact(url)!r}: unexpected '#' fragment")
    return parts


def _query(url: str, parts: SplitResult, allowed: tuple[str, ...]) -> dict[str, str]:
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ValueError(f"invalid query string in Redis URL {redact(url)!r}") from None
    query: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            supported = ", ".join(allowed) if allowed else "none"
            raise ValueError(
                f"unknown parameter {name!r} in Redis URL {redact(url)!r} (supported: {supported})"
            )
        if name in query:
            raise ValueError(f"parameter {name!r} given twice in Redis URL {redact(url)!r}")
        query[name] = value
    return query


def _db(url: str, text: str) -> int:
    text = text.strip("/")
    if not text:
        return 0
    if not text.isdigit():
        raise ValueError(
            f"invalid Redis URL {redact(url)!r}: the database must be a number, got {text!r}"
        )
    return int(text)


def _credentials(parts: SplitResult) -> dict[str, Any]:
    creds: dict[str, Any] = {}
    if parts.username:
        creds["username"] = unquote(parts.username)
    if parts.password is not None:
        creds["password"] = unquote(parts.password)
    return creds


def _tcp_params(url: str, scheme: str) -> dict[str, Any]:
    parts = _split(url)
    allowed = ("ssl_cert_reqs", *_SSL_FILE_PARAMS) if scheme == "rediss" else ()
    query = _query(url, parts, allowed)
    params: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or DEFAULT_PORT,
        "db": _db(url, parts.path),
        **_credentials(parts),
    }
    if scheme == "rediss":
        params.update(_ssl_params(url, query))
    return params


def _ssl_params(url: str, query: dict[str, str]) -> dict[str, Any]:
    raw = query.get("ssl_cert_reqs", "required")
    cert_reqs = _CERT_REQS.get(raw.lower())
    if cert_reqs is None:
        raise ValueError(
            f"invalid ssl_cert_reqs {raw!r} in Redis URL {redact(url)!r}: expected required, "
            "optional or none (or CERT_REQUIRED, CERT_OPTIONAL, CERT_NONE)"
        )
    params: dict[str, Any] = {
        "ssl": True,
        "ssl_cert_reqs": cert_reqs,
        # Python refuses hostname checks without verification; with "optional" a server
        # without a certificate is accepted, so there may be no name to check either.
        "ssl_check_hostname": cert_reqs == ssl.CERT_REQUIRED,
    }
    for name in _SSL_FILE_PARAMS:
        path = query.get(name)
        if path is None:
            continue
        if not os.path.isfile(path):
            raise ValueError(f"{name} file {path!r} of Redis URL {redact(url)!r} does not exist")
        params[name] = path
    if ("ssl_certfile" in params) != ("ssl_keyfile" in params):
        raise ValueError(
            f"Redis URL {redact(url)!r}: ssl_certfile and ssl_keyfile go together"
        )
    return params


def _unix_params(url: str) -> dict[str, Any]:
    parts = _split(url)
    query = _query(url, parts, ("db", "password"))
    if parts.hostname:
        raise ValueError(
            f"invalid Redis URL {redact(url)!r}: a socket URL names no host "
            "(write unix:///absolute/path/to/redis.sock)"
        )
    path = unquote(parts.path)
    if not path.startswith("/") or path == "/":
        raise ValueError(
            f"invalid Redis URL {redact(url)!r}: the socket path must be absolute "
            "(unix:///path/to/redis.sock)"
        )
    params: dict[str, Any] = {
        "unix_socket_path": path,
        "db": _db(url, query.get("db", "")),
        **_credentials(parts),
    }
    if "password" in query:
        if "password" in params:
            raise ValueError(f"Redis URL {redact(url)!r} gives the password twice")
        params["password"] = query["password"]
    return params


def _sentinel_client(url: str, master: str, common: dict[str, Any]) -> redis.Redis:
    if not master:
        raise ValueError("the Sentinel master name must not be empty")
    sentinels: list[tuple[str, int]] = []
    shared: dict[str, Any] = {}
    for piece in (p.strip() for p in url.split(";")):
        if not piece:
            continue
        if not piece.lower().startswith("sentinel://"):
            raise ValueError(
                f"invalid Redis URL {redact(url)!r}: every ';'-separated part must be a "
                f"sentinel:// URL, got {redact(piece)!r}"
            )
        parts = _split(piece)
        _query(piece, parts, ())
        if not parts.hostname:
            raise ValueError(f"invalid Redis URL {redact(url)!r}: a sentinel needs a host")
        sentinels.append((parts.hostname, parts.port or DEFAULT_SENTINEL_PORT))
        found = dict(_credentials(parts))
        if parts.path.strip("/"):
            found["db"] = _db(piece, parts.path)
        for name, value in found.items():
            if shared.setdefault(name, value) != value:
                raise ValueError(
                    f"invalid Redis URL {redact(url)!r}: the sentinel URLs disagree on the {name}"
                )
    if not sentinels:
        raise ValueError(f"invalid Redis URL {redact(url)!r}: no sentinel address")
    manager = Sentinel(  # type: ignore[no-untyped-call]
        sentinels,
        # Sentinels are tried in turn, so one that is down should cost one attempt, not the
        # backoff of a retried command.
        sentinel_kwargs={
            "socket_timeout": common["socket_timeout"],
            "socket_connect_timeout": common["socket_connect_timeout"],
            "retry": Retry(NoBackoff(), 0),
        },
    )
    client: redis.Redis = manager.master_for(  # type: ignore[no-untyped-call]
        master, redis_class=redis.Redis, db=shared.get("db", 0),
        username=shared.get("username"), password=shared.get("password"), **common,
    )
    return client
