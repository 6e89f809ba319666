"""Coordination through Redis for the task layer: the fenced per-app lock, the coalescing
queue markers and the API rate limit shared by every worker process on every host.

Called by the Celery tasks (`gitops_tasks.tasks`): a sync or prune step runs inside
`AppLock.holding()` and calls `check()` before every write; producers `claim()` a marker before
enqueueing and the task `release()`s it when it starts; the sweep asks `held_many()` and
`queued_many()` to tell running work from abandoned work. Plain redis-py, no Celery here.
Build the client with `gitops_tasks.redisconn.client_from_url`.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import redis
from redis.exceptions import LockError, LockNotOwnedError

from .errors import LockBusy, LockLost
from .log import get_logger

if TYPE_CHECKING:  # imported when first needed: the cluster package loads the kubernetes client
    from .cluster.throttling import TokenBucket

# The lock: a random token, set with NX and a TTL, renewed by its holder's heartbeat.
LOCK_KEY = "gitops:lock:{app}"
# Incremented on every successful acquire, never expires: the holder's fencing epoch.
EPOCH_KEY = "gitops:lock-epoch:{app}"
# The id of the one queued task of `kind` for `app`.
MARKER_KEY = "gitops:queued:{kind}:{app}"
# A hash {tokens, stamp} per bucket (e.g. per destination cluster).
BUCKET_KEY = "gitops:ratelimit:{name}"

_log = get_logger(component="locks")


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return bytes(value).decode("utf-8", "replace")


def _millis(seconds: float) -> int:
    return max(1, int(seconds * 1000))


# ----------------------------------------------------------------------------- app lock


class AppLock:
    """The per-application lock of a sync or prune step, fenced three ways:

    - a random token, so only the holder can renew or release it (redis-py's `Lock` does the
      compare-and-renew and compare-and-delete in Lua);
    - `epoch`, a per-app counter incremented on every acquire, that a write may carry so a
      store can refuse an older holder's write (the Application's resourceVersion does this
      for status writes);
    - `check()`, called before every write, which trusts the local clock first: once `ttl` has
      passed since the last renewal that Redis acknowledged (measured from when it was sent,
      so never later than Redis expires the key), it fails without asking Redis. A worker that
      was paused past its TTL cannot write, however slowly Redis answers after it resumes.

    While held inside `holding()`, a heartbeat thread renews the TTL every `ttl / 3`; a renewal
    that fails (key gone or someone else's, Redis down) marks the lock lost for good.
    Redis errors while acquiring raise `LockBusy` (retry later).
    """

    def __init__(
        self,
        client: redis.Redis,
        app: str,
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0:
            raise ValueError("the lock TTL must be positive")
        self.client = client
        self.app = app
        self.ttl = ttl
        self.key = LOCK_KEY.format(app=app)
        self.token: str | None = None
        self.epoch: int | None = None
        self._clock = clock
        # thread_local=False: the heartbeat thread renews with the token the caller acquired.
        self._lock = client.lock(self.key, timeout=ttl, blocking=False, thread_local=False)
        self._state = threading.Lock()
        self._renewed_at = 0.0
        self._lost: str | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def acquire(self) -> bool:
        """Take the lock if nobody holds it (never waits); False if another worker does."""
        if self.token is not None and self._lost is None:
            raise RuntimeError(f"{self.app}: this AppLock is already held")
        self._stop_heartbeat()
        token = secrets.token_hex(16)
        sent = self._clock()
        try:
            if not self._lock.acquire(blocking=False, token=token):
                return False
        except redis.RedisError as exc:
            raise LockBusy(self.app, reason=f"Redis did not answer ({exc})") from exc
        try:
            epoch = int(self.client.incr(EPOCH_KEY.format(app=self.app)))
        except redis.RedisError as exc:
            self._release_in_redis()
            raise LockBusy(self.app, reason=f"Redis did not answer ({exc})") from exc
        with self._state:
            self.token, self.epoch, self._renewed_at, self._lost = token, epoch, sent, None
        return True

    def check(self) -> None:
        """Raise LockLost unless this holder still holds the lock; call before every write."""
        with self._state:
            token, lost = self.token, self._lost
        if token is None:
            raise LockLost(self.app, reason="this worker never acquired it, or released it")
        if lost is not None:
            raise LockLost(self.app, reason=lost)
        self._check_clock()
        try:
            owned = self._lock.owned()
        except redis.RedisError as exc:
            raise LockLost(self.app, reason=self._mark_lost(
                f"Redis did not answer, so the lock cannot be confirmed ({exc})")) from exc
        if not owned:
            raise LockLost(self.app, reason=self._mark_lost(
                "the lock key is gone or holds another worker's token"))
        # An answer that arrives after the TTL ran out proves nothing about now.
        self._check_clock()

    @contextmanager
    def holding(self) -> Iterator[AppLock]:
        """After a successful `acquire()`: keep the lock renewed for the block, then release it
        (on every exit, exceptions included)."""
        if self.token is None:
            raise RuntimeError(f"{self.app}: holding() needs a successful acquire() first")
        self._start_heartbeat()
        try:
            yield self
        finally:
            self.release()

    def release(self) -> bool:
        """Stop the heartbeat and delete the lock if it is still ours; True if it was."""
        self._stop_heartbeat()
        with self._state:
            token, self.token = self.token, None
        return token is not None and self._release_in_redis()

    @property
    def lost(self) -> bool:
        return self._lost is not None

    # ------------------------------------------------------------------------- internals

    def _check_clock(self) -> None:
        with self._state:
            renewed_at = self._renewed_at
        if self._clock() - renewed_at >= self.ttl:
            raise LockLost(self.app, reason=self._mark_lost(
                f"its {self.ttl:g}s TTL passed since the last renewal"))

    def _mark_lost(self, reason: str) -> str:
        with self._state:
            if self._lost is None:
                self._lost = reason
                _log.warning("app lock lost", app=self.app, epoch=self.epoch, reason=reason)
            self._stop.set()
            return self._lost

    def _release_in_redis(self) -> bool:
        try:
            self._lock.release()
        except LockError:  # LockNotOwnedError included: expired or someone else's by now
            return False
        except redis.RedisError as exc:
            _log.warning("could not release app lock; it expires by its TTL", app=self.app,
                         error=str(exc))
            return False
        return True

    def _start_heartbeat(self) -> None:
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(
            target=self._beat, args=(self._stop,), name=f"lock-heartbeat:{self.app}",
            daemon=True,
        )
        self._heartbeat.start()

    def _stop_heartbeat(self) -> None:
        self._stop.set()
        thread, self._heartbeat = self._heartbeat, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.ttl + 10)

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.ttl / 3):
            sent = self._clock()
            try:
                self._lock.reacquire()
            except LockNotOwnedError:
                self._mark_lost("a renewal found the lock key gone or holding another token")
                return
            except (LockError, redis.RedisError) as exc:
                self._mark_lost(f"a renewal failed ({exc})")
                return
            with self._state:
                self._renewed_at = max(self._renewed_at, sent)


def held_by(client: redis.Redis, app: str) -> str | None:
    """The token of whoever holds `app`'s lock, or None when nobody does."""
    return _text(client.get(LOCK_KEY.format(app=app)))


def held_many(client: redis.Redis, apps: Iterable[str]) -> set[str]:
    """Which of `apps` have their lock held, in one round trip."""
    names = list(apps)
    pipe = client.pipeline(transaction=False)
    for app in names:
        pipe.exists(LOCK_KEY.format(app=app))
    return {app for app, found in zip(names, pipe.execute(), strict=True) if found}


# ----------------------------------------------------------------------------- queue markers

# Delete the marker only if it still names this task.
_RELEASE_MARKER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class QueueMarkers:
    """At most one queued task of a kind per app: producers `claim()` before enqueueing (and
    enqueue only on True, with that task id); the task `release()`s its marker when it starts,
    so a request that arrives while it runs queues the next run. `ttl` bounds the life of a
    marker whose task was lost; the sweep re-enqueues from the Application after that.
    Redis errors propagate (without Redis there is no broker to enqueue on either)."""

    def __init__(self, client: redis.Redis, *, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError("the marker TTL must be positive")
        self.client = client
        self.ttl = ttl
        self._release = client.register_script(_RELEASE_MARKER)

    def claim(self, kind: str, app: str, task_id: str, *, ttl: float | None = None) -> bool:
        """True: enqueue the task with `task_id`; False: one is queued already (even one with
        the same id: a marker is never claimed twice). Should a reply be lost and the SET
        retried, the claim looks taken; that marker then frees itself by its TTL. `ttl`
        overrides the default lifetime (a countdown message's marker lives a little past its
        due time: see `enqueue`)."""
        return bool(self.client.set(_marker_key(kind, app), task_id, nx=True,
                                    px=_millis(self.ttl if ttl is None else ttl)))

    def release(self, kind: str, app: str, task_id: str) -> bool:
        """Remove the marker if it names `task_id` (True); another task's marker stays."""
        return bool(self._release(keys=[_marker_key(kind, app)], args=[task_id]))

    def queued(self, kind: str, app: str) -> str | None:
        """The id of the queued task of `kind` for `app`, if any."""
        return _text(self.client.get(_marker_key(kind, app)))

    def queued_many(self, kind: str, apps: Iterable[str]) -> dict[str, str]:
        """app -> queued task id, for those of `apps` that have one, in one round trip."""
        names = list(apps)
        pipe = self.client.pipeline(transaction=False)
        for app in names:
            pipe.get(_marker_key(kind, app))
        found = (_text(value) for value in pipe.execute())
        return {app: task_id for app, task_id in zip(names, found, strict=True)
                if task_id is not None}

    def forget(self, kind: str, app: str) -> None:
        """Drop the marker whoever set it (the queued task was revoked or is known lost)."""
        self.client.delete(_marker_key(kind, app))


def _marker_key(kind: str, app: str) -> str:
    if not kind or ":" in kind:
        raise ValueError(f"invalid task kind {kind!r} for a queue marker")
    return MARKER_KEY.format(kind=kind, app=app)


# ----------------------------------------------------------------------------- shared bucket

# Refill by the time elapsed on Redis's clock (one clock for every host), take a token, and
# return how long the caller must wait for it. Tokens go negative: each caller reserves the next
# free slot, so waiters are spread at qps. Values travel as strings (Lua numbers become
# truncated integers in replies, and tostring() keeps too few digits for a timestamp).
_TAKE_TOKEN = """
local qps = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = burst
  stamp = now
end
if now > stamp then
  tokens = math.min(burst, tokens + (now - stamp) * qps)
end
tokens = tokens - 1
local wait = 0
if tokens < 0 then
  wait = -tokens / qps
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'stamp', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / qps * 1000) + 1000)
return string.format('%.6f', wait)
"""


class RedisTokenBucket:
    """`gitops_tasks.cluster.throttling.TokenBucket`, but one bucket for every process that
    uses `key` (e.g. a destination cluster's name): `burst` tokens refilled at `qps` per
    second, one round trip per token, then a sleep until the reserved token is due.

    Requests to a cluster must not fail because the limiter is down: when Redis errors, the
    process falls back to a local `TokenBucket(qps, burst)` and asks Redis again after
    `retry_interval` seconds. The switch is logged once per outage, the recovery too.
    """

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        *,
        qps: float,
        burst: int,
        retry_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self.key = BUCKET_KEY.format(name=key)
        self.retry_interval = retry_interval
        self._clock = clock
        self._sleep = sleep
        self._script = client.register_script(_TAKE_TOKEN)
        self._state = threading.Lock()
        self._local: TokenBucket | None = None
        self._down_until: float | None = None  # set while falling back

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; returns the seconds waited."""
        if self.qps <= 0:
            return 0.0
        wait = self._reserve()
        if wait is None:
            return self._fallback().acquire()
        if wait > 0:
            self._sleep(wait)
        return wait

    @property
    def degraded(self) -> bool:
        """True while the local fallback is in use."""
        return self._down_until is not None

    def _reserve(self) -> float | None:
        down_until = self._down_until
        if down_until is not None and self._clock() < down_until:
            return None
        try:
            reply = self._script(keys=[self.key], args=[repr(float(self.qps)), self.burst])
            wait = float(_text(reply) or 0.0)
        except (redis.RedisError, ValueError) as exc:
            with self._state:
                if self._down_until is None:
                    _log.warning("shared rate limit unavailable; limiting this process alone",
                                 bucket=self.key, error=str(exc), retry_in=self.retry_interval)
                self._down_until = self._clock() + self.retry_interval
            return None
        if down_until is not None:
            with self._state:
                if self._down_until is not None:
                    self._down_until = None
                    _log.info("shared rate limit available again", bucket=self.key)
        return wait

    def _fallback(self) -> TokenBucket:
        with self._state:
            if self._local is None:
                from .cluster.throttling import TokenBucket

                self._local = TokenBucket(self.qps, self.burst, clock=self._clock,
                                          sleep=self._sleep)
            return self._local
