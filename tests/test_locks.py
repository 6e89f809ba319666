"""AppLock, QueueMarkers and RedisTokenBucket against real redis-server processes, with real
worker processes (forked) contending, being paused with SIGSTOP and outliving a Redis restart.

Timings use small TTLs (0.3-1 s); CLOCK_MONOTONIC is one clock for every process of the host,
so times recorded by different processes compare directly.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from gitops_tasks.cluster.throttling import TokenBucket
from gitops_tasks.errors import LockBusy, LockLost, TransientError
from gitops_tasks.locks import (
    EPOCH_KEY,
    LOCK_KEY,
    AppLock,
    QueueMarkers,
    RedisTokenBucket,
    held_by,
    held_many,
)
from gitops_tasks.redisconn import client_from_url
from tests.test_redisconn import RedisServer, free_port, servers, start

__all__ = ["servers"]  # the fixture, re-used from test_redisconn

FORK = multiprocessing.get_context("fork")


def fresh(prefix: str = "app") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = client_from_url(redis_url, socket_timeout=2, retries=1)
    yield c
    c.close()


@contextmanager
def processes(*procs: BaseProcess) -> Iterator[tuple[BaseProcess, ...]]:
    """Start `procs`; on exit make sure none is left (SIGCONT first, in case one is stopped)."""
    for p in procs:
        p.start()
    try:
        yield procs
    finally:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGCONT)
                p.terminate()
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)


# ----------------------------------------------------------------------------- mutual exclusion


def _contender(url: str, app: str, log_path: str, until: float) -> None:
    client = client_from_url(url)
    with open(log_path, "a") as log:
        while time.monotonic() < until:
            lock = AppLock(client, app, ttl=2)
            if not lock.acquire():
                time.sleep(0.001)
                continue
            with lock.holding():
                enter = time.monotonic()
                lock.check()
                time.sleep(0.005)  # the critical section
                leave = time.monotonic()
                log.write(f"{os.getpid()} {lock.epoch} {enter:.6f} {leave:.6f}\n")
                log.flush()


def test_processes_never_overlap_and_epochs_increase(redis_url: str, tmp_path: Path) -> None:
    app, log_path = fresh(), tmp_path / "sections.log"
    until = time.monotonic() + 1.5
    procs = [FORK.Process(target=_contender, args=(redis_url, app, str(log_path), until))
             for _ in range(4)]
    with processes(*procs):
        for p in procs:
            p.join(20)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    rows = [line.split() for line in log_path.read_text().splitlines()]
    sections = sorted((float(enter), float(leave), int(epoch), pid)
                      for pid, epoch, enter, leave in rows)
    assert len(sections) >= 20
    holders = [pid for *_, pid in sections]
    assert len(set(holders)) >= 3, "the lock passed between processes"
    assert sum(a != b for a, b in itertools.pairwise(holders)) >= 10
    for (_, prev_leave, prev_epoch, _), (enter, _, epoch, _) in itertools.pairwise(sections):
        assert enter >= prev_leave, "two processes were in the critical section at once"
        assert epoch > prev_epoch, "the fencing epoch must grow with every holder"


# ----------------------------------------------------------------------------- heartbeat


def test_heartbeat_keeps_the_lock_far_beyond_its_ttl(client: redis.Redis) -> None:
    app = fresh()
    lock, rival = AppLock(client, app, ttl=0.5), AppLock(client, app, ttl=0.5)
    assert lock.acquire()
    with lock.holding():
        deadline = time.monotonic() + 2.0  # four TTLs
        while time.monotonic() < deadline:
            lock.check()
            assert not rival.acquire()
            time.sleep(0.05)
        assert held_by(client, app) == lock.token
        assert 0 < client.pttl(LOCK_KEY.format(app=app)) <= 500
    assert held_by(client, app) is None  # released on exit
    assert rival.acquire()
    rival.release()


def test_without_heartbeat_the_lock_expires(client: redis.Redis) -> None:
    app = fresh()
    lock = AppLock(client, app, ttl=0.3)
    assert lock.acquire()  # acquired, but never inside holding(): nothing renews it
    time.sleep(0.4)
    assert held_by(client, app) is None
    with pytest.raises(LockLost, match="TTL passed since the last renewal"):
        lock.check()


def test_holding_releases_on_exceptions_and_needs_an_acquire(client: redis.Redis) -> None:
    app = fresh()
    lock = AppLock(client, app, ttl=1)
    with pytest.raises(RuntimeError, match="needs a successful acquire"), lock.holding():
        pass
    assert lock.acquire()
    with pytest.raises(ZeroDivisionError), lock.holding():
        _ = 1 / 0
    assert held_by(client, app) is None
    assert lock._heartbeat is None  # the heartbeat thread was stopped and joined


def test_local_clock_fails_fast_even_while_redis_says_held(client: redis.Redis) -> None:
    app = fresh()
    now = [100.0]
    lock = AppLock(client, app, ttl=5, clock=lambda: now[0])
    assert lock.acquire()
    lock.check()
    now[0] += 5  # the local clock says a TTL passed (Redis still has the key for ~5 s)
    with pytest.raises(LockLost) as info:
        lock.check()
    assert held_by(client, app) == lock.token, "Redis was not consulted: it still says held"
    assert info.value.app == app
    assert "stopping before the next write" in str(info.value)
    assert isinstance(info.value, LockLost) and not isinstance(info.value, TransientError)
    with pytest.raises(LockLost):  # and it stays lost
        lock.check()
    assert lock.release()  # still ours in Redis: compare-and-delete removes it
    assert held_by(client, app) is None


# ----------------------------------------------------------------------------- SIGSTOP


def _paused_writer(url: str, app: str, ttl: float, writes: str, conn: Connection) -> None:
    client = client_from_url(url, socket_timeout=1, retries=0)
    lock = AppLock(client, app, ttl=ttl)
    assert lock.acquire()
    conn.send(("acquired", lock.token, lock.epoch))
    with lock.holding(), open(writes, "a") as out:
        while True:
            conn.recv()  # the parent says when to attempt the next write
            started = time.monotonic()
            try:
                lock.check()
            except LockLost as exc:
                conn.send(("lost", exc.reason, time.monotonic() - started))
                return
            out.write(f"write {time.monotonic():.6f}\n")
            out.flush()
            conn.send(("wrote", None, None))


def test_paused_holder_cannot_write_after_resume(tmp_path: Path,
                                                 servers: list[RedisServer]) -> None:
    server = start(servers, tmp_path / "redis")
    client = client_from_url(server.url, socket_timeout=1, retries=0)
    app, ttl, writes = fresh(), 0.5, tmp_path / "writes.log"
    parent, child = FORK.Pipe()
    holder = FORK.Process(target=_paused_writer,
                          args=(server.url, app, ttl, str(writes), child))
    with processes(holder):
        assert parent.poll(10)
        _, holder_token, holder_epoch = parent.recv()
        for _ in range(3):
            parent.send("write")
            assert parent.poll(5) and parent.recv()[0] == "wrote"
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGSTOP)  # stopped while waiting, not between check and write
        stopped_at = time.monotonic()

        rival = AppLock(client, app, ttl=10)
        while not rival.acquire():  # possible once the holder's TTL ran out in Redis
            assert time.monotonic() < stopped_at + 5
            time.sleep(0.02)
        assert time.monotonic() - stopped_at >= ttl * 0.9
        assert rival.epoch is not None and rival.epoch > holder_epoch

        server.pause()  # Redis now answers nobody: a check that asked it would hang
        try:
            os.kill(holder.pid, signal.SIGCONT)
            resumed_at = time.monotonic()
            parent.send("write")
            assert parent.poll(5), "check() waited on Redis instead of failing fast"
            kind, reason, took = parent.recv()
        finally:
            server.resume()
        assert kind == "lost"
        assert "TTL" in reason or "renewal" in reason
        assert took < 0.5
        holder.join(10)
        assert holder.exitcode == 0

    lines = writes.read_text().splitlines()
    assert len(lines) == 3
    assert all(float(line.split()[1]) < stopped_at for line in lines)
    assert all(float(line.split()[1]) < resumed_at for line in lines)
    # The old holder's release on exit did not remove the rival's lock.
    assert held_by(client, app) == rival.token != holder_token
    assert rival.release()


# ----------------------------------------------------------------------------- ownership


def test_release_by_a_non_holder_is_refused(client: redis.Redis) -> None:
    app = fresh()
    holder, other = AppLock(client, app, ttl=0.3), AppLock(client, app, ttl=5)
    assert holder.acquire()
    assert not other.release()  # never acquired
    assert held_by(client, app) == holder.token
    assert not other.acquire()
    time.sleep(0.4)  # the holder's TTL runs out (no heartbeat)
    assert other.acquire()
    assert not holder.release(), "an expired holder must not delete the new holder's lock"
    assert held_by(client, app) == other.token
    with pytest.raises(LockLost):
        holder.check()
    assert other.epoch is not None and holder.epoch is not None
    assert other.epoch > holder.epoch
    other.check()
    assert other.release()


def test_held_many_and_held_by(client: redis.Redis) -> None:
    apps = [fresh() for _ in range(4)]
    locks = [AppLock(client, a, ttl=5) for a in apps[:2]]
    assert all(lock.acquire() for lock in locks)
    assert held_many(client, apps) == set(apps[:2])
    assert held_many(client, []) == set()
    assert held_by(client, apps[0]) == locks[0].token
    assert held_by(client, apps[3]) is None
    for lock in locks:
        lock.release()
    assert held_many(client, apps) == set()


# ----------------------------------------------------------------------------- Redis restart


def test_redis_killed_and_restarted_empty(tmp_path: Path, servers: list[RedisServer]) -> None:
    server = start(servers, tmp_path / "redis", port=free_port())
    client = client_from_url(server.url, socket_timeout=1, retries=1)
    app = fresh()
    lock = AppLock(client, app, ttl=1)
    assert lock.acquire() and lock.epoch == 1
    with lock.holding():
        lock.check()
        server.kill()
        started = time.monotonic()
        with pytest.raises(LockLost, match="Redis did not answer"):
            lock.check()
        assert time.monotonic() - started < 1.5
        with pytest.raises(LockBusy) as busy:  # taking a lock needs Redis: retry later
            AppLock(client, fresh(), ttl=1).acquire()
        assert isinstance(busy.value, TransientError)

        server.start()  # same port, no data
        with pytest.raises(LockLost):
            lock.check()  # lost stays lost
        successor = AppLock(client, app, ttl=5)
        assert successor.acquire()
        assert successor.epoch == 1  # the fencing counter restarted with the empty Redis
    # The lost holder's release did not touch the successor's lock.
    assert held_by(client, app) == successor.token
    successor.check()
    assert successor.release()


def test_redis_restarted_before_the_next_check(tmp_path: Path,
                                               servers: list[RedisServer]) -> None:
    server = start(servers, tmp_path / "redis")
    client = client_from_url(server.url, socket_timeout=1, retries=2)
    lock = AppLock(client, fresh(), ttl=1)
    assert lock.acquire()
    with lock.holding():
        server.kill()
        server.start()  # the key is gone, though Redis answers again
        with pytest.raises(LockLost):
            lock.check()
    assert client.get(EPOCH_KEY.format(app=lock.app)) is None


# ----------------------------------------------------------------------------- markers


def test_queue_markers(client: redis.Redis) -> None:
    markers, app = QueueMarkers(client, ttl=5), fresh()
    assert markers.claim("refresh", app, "t1")
    assert not markers.claim("refresh", app, "t2")
    assert not markers.claim("refresh", app, "t1")  # never claimed twice, even by the same id
    assert markers.claim("sync", app, "s1")  # kinds are independent
    assert markers.queued("refresh", app) == "t1"
    assert not markers.release("refresh", app, "t2")  # not its marker: kept
    assert markers.queued("refresh", app) == "t1"
    assert markers.release("refresh", app, "t1")
    assert markers.queued("refresh", app) is None
    assert not markers.release("refresh", app, "t1")
    assert markers.claim("refresh", app, "t3")  # a request during the run queues the next
    markers.forget("refresh", app)
    assert markers.queued("refresh", app) is None
    markers.forget("sync", app)
    with pytest.raises(ValueError):
        markers.claim("bad:kind", app, "x")


def test_queue_markers_expire_and_queued_many(client: redis.Redis) -> None:
    markers = QueueMarkers(client, ttl=0.3)
    apps = [fresh() for _ in range(3)]
    assert markers.claim("refresh", apps[0], "a") and markers.claim("refresh", apps[2], "c")
    assert markers.queued_many("refresh", apps) == {apps[0]: "a", apps[2]: "c"}
    assert markers.queued_many("sync", apps) == {}
    time.sleep(0.4)
    assert markers.queued_many("refresh", apps) == {}
    assert markers.claim("refresh", apps[0], "a2")
    markers.forget("refresh", apps[0])


# ----------------------------------------------------------------------------- token bucket

QPS, BURST, RUN = 20.0, 5, 1.5


def _taker(url: str, key: str, shared: bool, start_at: float, until: float,
           results: Any) -> None:
    bucket: RedisTokenBucket | TokenBucket
    if shared:
        bucket = RedisTokenBucket(client_from_url(url), key, qps=QPS, burst=BURST)
    else:
        bucket = TokenBucket(QPS, BURST)
    time.sleep(max(0.0, start_at - time.monotonic()))
    taken = 0
    while True:
        bucket.acquire()
        if time.monotonic() >= until:
            break
        taken += 1
    results.put((shared, taken))


def _script_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))


def test_one_bucket_is_shared_by_processes(redis_url: str, client: redis.Redis) -> None:
    key = fresh("cluster")
    start_at = time.monotonic() + 0.5  # all six processes forked and waiting by then
    until = start_at + RUN
    results = FORK.Queue()
    procs = [FORK.Process(target=_taker, args=(redis_url, key, shared, start_at, until, results))
             for shared in (True, True, True, False, False, False)]
    calls_before = _script_calls(client)
    with processes(*procs):
        counts = [results.get(timeout=20) for _ in procs]
        for p in procs:
            p.join(10)
    calls = _script_calls(client) - calls_before
    shared_total = sum(n for shared, n in counts if shared)
    local_total = sum(n for shared, n in counts if not shared)
    allowed = BURST + QPS * RUN  # 35
    assert shared_total <= allowed + 3
    assert shared_total >= allowed * 0.8, "the shared bucket should still serve its rate"
    assert local_total >= 2.5 * allowed, "three local buckets take about three times as much"
    # One script call per token (plus the last, late one per process and a script load):
    # waiters sleep until their reserved token, they do not poll Redis.
    assert calls <= shared_total + 3 + 3


def test_bucket_disabled_with_zero_qps(client: redis.Redis) -> None:
    bucket = RedisTokenBucket(client, fresh("cluster"), qps=0, burst=1)
    started = time.monotonic()
    assert all(bucket.acquire() == 0.0 for _ in range(100))
    assert time.monotonic() - started < 0.5
    assert client.exists(bucket.key) == 0


def test_bucket_falls_back_to_a_local_limit_when_redis_is_down() -> None:
    dead = client_from_url(f"redis://127.0.0.1:{free_port()}/0", retries=0,
                           socket_connect_timeout=0.5)
    bucket = RedisTokenBucket(dead, "cluster", qps=10, burst=2)
    with capture_logs() as logs:
        started = time.monotonic()
        for _ in range(7):
            bucket.acquire()
        elapsed = time.monotonic() - started
    assert bucket.degraded
    assert elapsed >= (7 - 2) / 10 - 0.05, "without Redis the local bucket must still limit"
    assert elapsed < 2
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1, warnings
    assert "limiting this process alone" in warnings[0]["event"]


def test_bucket_returns_to_redis_after_an_outage(tmp_path: Path,
                                                 servers: list[RedisServer]) -> None:
    server = start(servers, tmp_path / "redis")
    client = client_from_url(server.url, retries=0, socket_timeout=1)
    bucket = RedisTokenBucket(client, "cluster", qps=100, burst=10, retry_interval=0.2)
    bucket.acquire()
    assert client.exists(bucket.key) == 1 and not bucket.degraded
    server.kill()
    bucket.acquire()
    assert bucket.degraded
    server.start()
    time.sleep(0.25)
    bucket.acquire()
    assert not bucket.degraded
    assert client.exists(bucket.key) == 1  # the restarted Redis holds the bucket again
