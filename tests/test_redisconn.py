"""client_from_url: URL forms checked by what the client would send, then used for real against
private redis-server processes (password and db, ACL user, unix socket, TLS, Sentinel)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.connection import SSLConnection, UnixDomainSocketConnection
from redis.sentinel import SentinelConnectionPool

from gitops_tasks.redisconn import client_from_url, redact

from .redisserver import REDIS_SERVER, RedisServer, free_port, needs_redis

__all__ = ["REDIS_SERVER", "RedisServer", "free_port", "needs_redis"]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[RedisServer]]:
    """Append the servers a test starts; all are stopped afterwards, whatever happened."""
    started: list[RedisServer] = []
    yield started
    for server in reversed(started):
        server.stop()


def start(servers: list[RedisServer], workdir: Path, *args: str, **kwargs: Any) -> RedisServer:
    server = RedisServer(workdir, *args, **kwargs)
    servers.append(server)
    return server.start()


def kwargs_of(client: redis.Redis) -> dict[str, Any]:
    return dict(client.connection_pool.connection_kwargs)


# ----------------------------------------------------------------------------- parsing


def test_redis_url_with_password_port_and_db() -> None:
    client = client_from_url("redis://:p%40ss%2Fword@redis.example:6380/3")
    kw = kwargs_of(client)
    assert (kw["host"], kw["port"], kw["db"]) == ("redis.example", 6380, 3)
    assert kw["password"] == "p@ss/word"
    assert kw["username"] is None
    assert client.connection_pool.connection_class is redis.Connection


def test_redis_url_defaults_and_acl_user() -> None:
    kw = kwargs_of(client_from_url("redis://localhost"))
    assert (kw["host"], kw["port"], kw["db"], kw["password"]) == ("localhost", 6379, 0, None)
    kw = kwargs_of(client_from_url("redis://worker:s3cret@10.0.0.5/"))
    assert (kw["username"], kw["password"], kw["db"]) == ("worker", "s3cret", 0)


def test_timeouts_health_check_and_retry_defaults() -> None:
    kw = kwargs_of(client_from_url("redis://h/0"))
    assert kw["socket_timeout"] == 5.0
    assert kw["socket_connect_timeout"] == 2.0
    assert kw["health_check_interval"] == 30
    retry = kw["retry"]
    assert retry.get_retries() == 2
    assert redis.TimeoutError in retry._supported_errors
    assert redis.ConnectionError in retry._supported_errors
    kw = kwargs_of(client_from_url("redis://h/0", retry_on_timeout=False, retries=0,
                                   socket_timeout=1.5, health_check_interval=0))
    assert redis.TimeoutError not in kw["retry"]._supported_errors
    assert kw["retry"].get_retries() == 0
    assert (kw["socket_timeout"], kw["health_check_interval"]) == (1.5, 0)


@pytest.mark.parametrize("query, reqs, check_hostname", [
    ("", ssl.CERT_REQUIRED, True),
    ("?ssl_cert_reqs=required", ssl.CERT_REQUIRED, True),
    ("?ssl_cert_reqs=CERT_REQUIRED", ssl.CERT_REQUIRED, True),
    ("?ssl_cert_reqs=optional", ssl.CERT_OPTIONAL, False),
    ("?ssl_cert_reqs=CERT_NONE", ssl.CERT_NONE, False),
    ("?ssl_cert_reqs=none", ssl.CERT_NONE, False),
])
def test_rediss_cert_reqs(query: str, reqs: ssl.VerifyMode, check_hostname: bool) -> None:
    client = client_from_url(f"rediss://:pw@redis.example:6380/1{query}")
    kw = kwargs_of(client)
    assert client.connection_pool.connection_class is SSLConnection
    assert (kw["ssl_cert_reqs"], kw["ssl_check_hostname"]) == (reqs, check_hostname)
    assert (kw["host"], kw["port"], kw["db"], kw["password"]) == ("redis.example", 6380, 1, "pw")


def test_rediss_certificate_files(tmp_path: Path) -> None:
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("x")
    kw = kwargs_of(client_from_url(
        f"rediss://h?ssl_cert_reqs=required&ssl_ca_certs={tmp_path}/ca.pem"
        f"&ssl_certfile={tmp_path}/client.pem&ssl_keyfile={tmp_path}/client.key"))
    assert kw["ssl_ca_certs"] == f"{tmp_path}/ca.pem"
    assert kw["ssl_certfile"] == f"{tmp_path}/client.pem"
    assert kw["ssl_keyfile"] == f"{tmp_path}/client.key"


@pytest.mark.parametrize("url, path, db, password", [
    ("unix:///var/run/redis/redis.sock", "/var/run/redis/redis.sock", 0, None),
    ("unix:///tmp/r.sock?db=4&password=s%26cret", "/tmp/r.sock", 4, "s&cret"),
    ("unix://:pw@/tmp/r.sock?db=2", "/tmp/r.sock", 2, "pw"),
    ("socket:///tmp/r.sock", "/tmp/r.sock", 0, None),
    ("redis+socket:///tmp/r.sock?db=1", "/tmp/r.sock", 1, None),
])
def test_unix_socket_urls(url: str, path: str, db: int, password: str | None) -> None:
    client = client_from_url(url)
    kw = kwargs_of(client)
    assert client.connection_pool.connection_class is UnixDomainSocketConnection
    assert (kw["path"], kw["db"], kw["password"]) == (path, db, password)


def test_sentinel_url_lists_every_sentinel_and_takes_password_and_db() -> None:
    client = client_from_url(
        "sentinel://:pw@s1.example:26380/2;sentinel://s2.example;sentinel://:pw@10.0.0.3:5000",
        sentinel_master="cache")
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "cache"
    kw = pool.connection_kwargs
    assert (kw["db"], kw["password"], kw["health_check_interval"]) == (2, "pw", 30)
    addresses = [(s.connection_pool.connection_kwargs["host"],
                  s.connection_pool.connection_kwargs["port"])
                 for s in pool.sentinel_manager.sentinels]
    assert addresses == [("s1.example", 26380), ("s2.example", 26379), ("10.0.0.3", 5000)]
    for s in pool.sentinel_manager.sentinels:
        skw = s.connection_pool.connection_kwargs
        assert skw["password"] is None  # the password is the master's, as in kombu
        assert skw["retry"].get_retries() == 0


@pytest.mark.parametrize("url, message", [
    ("http://h:6379", "unsupported Redis URL"),
    ("h:6379", "unsupported Redis URL"),
    ("redis://h:notaport/0", "invalid Redis URL"),
    ("redis://h:70000/0", "invalid Redis URL"),
    ("redis://h:0/0", "port 0"),
    ("redis://h/abc", "database must be a number"),
    ("redis://h/-1", "database must be a number"),
    ("redis://h/0?ssl_cert_reqs=none", "unknown parameter 'ssl_cert_reqs'"),
    ("redis://h/0?socket_timeout=1", "unknown parameter"),
    ("rediss://h?ssl_cert_reqs=maybe", "invalid ssl_cert_reqs 'maybe'"),
    ("rediss://h?ssl_ca_certs=/nonexistent/ca.pem", "does not exist"),
    ("rediss://h?ssl_cert_reqs=none&ssl_cert_reqs=required", "given twice"),
    ("unix://", "must be absolute"),
    ("unix://host/tmp/r.sock", "names no host"),
    ("unix:///tmp/r.sock?db=x", "database must be a number"),
    ("sentinel://", "needs a host"),
    ("sentinel://h1:26379;redis://h2:6379", "must be a sentinel:// URL"),
    ("sentinel://:a@h1/0;sentinel://:b@h2/0", "disagree on the password"),
    ("sentinel://h1/1;sentinel://h2/2", "disagree on the db"),
    ("sentinel://h1:x", "invalid Redis URL"),
])
def test_invalid_urls_raise_value_error(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        client_from_url(url)


def test_error_messages_never_show_the_password() -> None:
    with pytest.raises(ValueError) as info:
        client_from_url("redis://:hunter2@h/notadb")
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)
    assert redact("sentinel://:a@h1/0;sentinel://u:b@h2") == "sentinel://:***@h1/0;sentinel://u:***@h2"


# ----------------------------------------------------------------------------- real servers


@needs_redis
def test_password_and_db_against_a_real_server(
        tmp_path: Path, servers: list[RedisServer]) -> None:
    server = start(servers, tmp_path, "--requirepass", "pa:ss@word")
    client = client_from_url(f"redis://:pa%3Ass%40word@127.0.0.1:{server.port}/3")
    client.set("where", "db3")
    # The key landed in db 3 of that server, not in db 0.
    raw = redis.Redis(port=server.port, password="pa:ss@word", db=3)
    assert raw.get("where") == b"db3"
    assert redis.Redis(port=server.port, password="pa:ss@word", db=0).get("where") is None
    # The same server through the ACL form of the default user.
    acl = client_from_url(f"redis://default:pa%3Ass%40word@127.0.0.1:{server.port}/3")
    assert acl.get("where") == b"db3"
    with pytest.raises(redis.AuthenticationError):
        client_from_url(f"redis://:wrong@127.0.0.1:{server.port}/3").ping()
    with pytest.raises(redis.AuthenticationError):
        client_from_url(f"redis://127.0.0.1:{server.port}/3").ping()


@needs_redis
def test_unix_socket_against_a_real_server(tmp_path: Path, servers: list[RedisServer]) -> None:
    sock = tmp_path / "redis.sock"
    server = start(servers, tmp_path, "--unixsocket", str(sock), "--unixsocketperm", "700",
                   "--requirepass", "pw")
    client = client_from_url(f"unix://{sock}?db=2&password=pw")
    client.set("via", "socket")
    assert redis.Redis(unix_socket_path=str(sock), password="pw", db=2).get("via") == b"socket"
    assert redis.Redis(port=server.port, password="pw", db=2).get("via") == b"socket"


@needs_redis
def test_sentinel_finds_the_master_skipping_a_dead_sentinel(
        tmp_path: Path, servers: list[RedisServer]) -> None:
    master = start(servers, tmp_path / "master", "--requirepass", "secret")
    sentinel = start(servers, tmp_path / "sentinel", sentinel_conf=(
        f"sentinel monitor cache 127.0.0.1 {master.port} 1\n"
        "sentinel auth-pass cache secret\n"))
    dead = free_port()  # nothing listens there: the client must go on to the next sentinel
    client = client_from_url(
        f"sentinel://127.0.0.1:{dead};sentinel://:secret@127.0.0.1:{sentinel.port}/5",
        sentinel_master="cache")
    client.set("found", "master")
    assert redis.Redis(port=master.port, password="secret", db=5).get("found") == b"master"
    # An unknown master name is an error, not a hang.
    wrong = client_from_url(f"sentinel://:secret@127.0.0.1:{sentinel.port}/5",
                            sentinel_master="nosuch")
    with pytest.raises(redis.ConnectionError):
        wrong.ping()


@needs_redis
def test_sentinel_client_follows_a_failover(tmp_path: Path, servers: list[RedisServer]) -> None:
    master = start(servers, tmp_path / "master")
    replica = start(servers, tmp_path / "replica", "--replicaof", "127.0.0.1", str(master.port))
    sentinel = start(servers, tmp_path / "sentinel", sentinel_conf=(
        f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n"
        "sentinel down-after-milliseconds mymaster 1000\n"
        "sentinel failover-timeout mymaster 5000\n"))
    client = client_from_url(f"sentinel://127.0.0.1:{sentinel.port}/0")
    client.set("before", "1")
    assert client.wait(1, 10_000) == 1  # replication is asynchronous: make sure it arrived
    admin = redis.Redis(port=sentinel.port)

    def master_port() -> int:
        address: Any = admin.sentinel_get_master_addr_by_name("mymaster")
        return int(address[1])

    assert master_port() == master.port
    deadline = time.monotonic() + 15
    while True:  # sentinel learns of the replica from INFO, then must see it in sync
        try:
            admin.execute_command(  # type: ignore[no-untyped-call]
                "SENTINEL", "FAILOVER", "mymaster")
            break
        except redis.ResponseError as exc:
            assert "NOGOODSLAVE" in str(exc), exc
            assert time.monotonic() < deadline, "sentinel never found the replica usable"
            time.sleep(0.2)
    while master_port() != replica.port:
        assert time.monotonic() < deadline, "failover did not happen"
        time.sleep(0.1)
    master.kill()
    # The same client object now reaches the promoted replica.
    while True:
        try:
            client.set("after", "2")
            break
        except (redis.ConnectionError, redis.ReadOnlyError):
            assert time.monotonic() < deadline, "client never reached the new master"
            time.sleep(0.1)
    assert redis.Redis(port=replica.port).get("after") == b"2"
    assert redis.Redis(port=replica.port).get("before") == b"1"


def _make_certs(workdir: Path) -> tuple[Path, Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed, cannot make test certificates")
    ca_key, ca, key, csr, cert, ext = (workdir / n for n in (
        "ca.key", "ca.pem", "server.key", "server.csr", "server.pem", "ext.cnf"))
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
        "-out", str(ca), "-days", "1", "-subj", "/CN=gitops-tasks test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "1", "-extfile", str(ext))
    return ca, cert, key


@needs_redis
def test_rediss_against_a_real_tls_server(tmp_path: Path, servers: list[RedisServer]) -> None:
    ca, cert, key = _make_certs(tmp_path)
    tls_port = free_port()
    try:
        start(servers, tmp_path / "tls", "--tls-port", str(tls_port), "--tls-cert-file",
              str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
              "--tls-auth-clients", "no", "--requirepass", "pw")
    except RuntimeError as exc:
        if "tls" in str(exc).lower():
            pytest.skip(f"this redis-server has no TLS support: {exc}")
        raise
    base = f"rediss://:pw@127.0.0.1:{tls_port}/1"
    verified = client_from_url(f"{base}?ssl_cert_reqs=required&ssl_ca_certs={ca}")
    verified.set("tls", "yes")
    assert verified.get("tls") == b"yes"
    # A CA the client does not trust fails verification (required is the default)...
    with pytest.raises(redis.ConnectionError):
        client_from_url(base).ping()
    # ...and "none" accepts the unverified server, as Celery's CERT_NONE does.
    assert client_from_url(f"{base}?ssl_cert_reqs=CERT_NONE").get("tls") == b"yes"
