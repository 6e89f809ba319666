"""`gitops-tasks beat`: the producers that run on a schedule or a watch, on one elected leader.

Every beat process competes for one Redis lock (`AppLock` on the name `beat-leader`, with its
heartbeat); the holder queues the sweeps and runs the Application watch, the others wait to
take over within one lock TTL. Why a Redis leader lock rather than RedBeat: the schedule is two
entries (the full sweep every reconciliation interval, the resume sweep every few seconds) and
the watch must be elected with them; one lock in the Redis we already run does both, where
RedBeat would elect only its own schedule and add a dependency. Even two leaders at once (a
partition) cannot double the work: every sweep and every refresh is coalesced by its queue
marker.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gitops_tasks.errors import LockBusy, LockLost
from gitops_tasks.locks import AppLock
from gitops_tasks.log import get_logger
from gitops_tasks.runtime import Runtime
from gitops_tasks.settings import Settings
from gitops_tasks.sweeping import SeenStore

from .watch import ApplicationWatch

LEADER = "beat-leader"
_TICK = 0.5

_log = get_logger(component="beat")


@dataclass
class Producers:
    """What beat calls to queue work (the task layer's enqueue functions)."""

    enqueue: Callable[..., Any]
    enqueue_sweep: Callable[[str], Any]
    request_hard: Callable[[str, str], None]


class Beat:
    def __init__(self, settings: Settings, runtime: Runtime, producers: Producers, *,
                 watch: bool = True) -> None:
        assert runtime.redis is not None, "beat needs Redis"
        self.settings = settings
        self.runtime = runtime
        self.producers = producers
        self.watch = watch
        self.stop = threading.Event()
        self.leading = threading.Event()

    def run(self) -> None:
        ttl = self.settings.tasks.lock_ttl
        assert self.runtime.redis is not None
        while not self.stop.is_set():
            lock = AppLock(self.runtime.redis, LEADER, ttl=ttl)
            try:
                acquired = lock.acquire()
            except LockBusy as exc:
                _log.warning("Redis unavailable; cannot elect a leader", error=exc.message)
                acquired = False
            except Exception as exc:  # never let beat die of a Redis hiccup
                _log.warning("cannot elect a leader", error=str(exc))
                acquired = False
            if not acquired:
                self.stop.wait(max(_TICK, ttl / 3))
                continue
            with lock.holding():
                _log.info("leading", epoch=lock.epoch)
                self.leading.set()
                try:
                    self._lead(lock)
                except LockLost as exc:
                    _log.warning("no longer the leader", reason=exc.reason)
                finally:
                    self.leading.clear()

    def _lead(self, lock: AppLock) -> None:
        watch_stop = threading.Event()
        watcher = None
        if self.watch:
            watcher = threading.Thread(target=self._watch, args=(watch_stop,),
                                       name="application-watch", daemon=True)
            watcher.start()
        cfg = self.settings.reconcile
        now = time.monotonic()
        next_full, next_resume = now, now + cfg.resume_interval
        try:
            while not self.stop.is_set():
                lock.check()
                now = time.monotonic()
                if now >= next_full:
                    self._queue("full")
                    # The jitter moves the whole sweep a little each time, so several
                    # installations (or a restarted leader) do not fall into step.
                    next_full = now + cfg.interval + random.uniform(0, min(cfg.jitter,
                                                                           cfg.interval / 2))
                if now >= next_resume:
                    self._queue("resume")
                    next_resume = now + cfg.resume_interval
                self.stop.wait(_TICK)
        finally:
            watch_stop.set()
            if watcher is not None:
                # It ends with its current watch (at most its timeout); a daemon thread, it
                # does not hold up the exit, and what it may still queue is coalesced.
                watcher.join(1)

    def _queue(self, mode: str) -> None:
        try:
            queued = self.producers.enqueue_sweep(mode)
            if queued:
                _log.debug("sweep queued", mode=mode)
        except Exception as exc:  # Redis down (a redis error, not ours): next tick tries again
            _log.warning("could not queue the sweep", mode=mode, error=str(exc))

    def _watch(self, stop: threading.Event) -> None:
        ApplicationWatch(self.runtime.control, self.runtime.apps.namespace,
                         SeenStore(self.runtime.redis), self.producers.enqueue,
                         self.producers.request_hard).run(stop)

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            _log.info("stopping", signal=signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
