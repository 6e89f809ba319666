"""The engine objects of the current process, for the tasks: built after the fork.

A prefork worker's children inherit the parent's memory, and with it any connection pool the
parent opened; sharing one between processes corrupts both. So the parent only keeps the
settings, and each process builds its own `Runtime` (clients, caches, mirrors) the first time a
task needs it (or eagerly in `worker_process_init`), keyed by pid.
"""

from __future__ import annotations

import os
import threading

from ..runtime import Runtime
from ..settings import Settings
from ..settings import load as load_settings

_lock = threading.Lock()
_settings: Settings | None = None
_runtime: Runtime | None = None
_pid = 0
_role = "worker"
_queues: tuple[str, ...] = ()  # the queues this worker consumes


def set_settings(settings: Settings, role: str = "worker") -> None:
    global _settings, _role
    _settings = settings
    _role = role


def has_settings() -> bool:
    return _settings is not None


def set_queues(queues: tuple[str, ...]) -> None:
    global _queues
    _queues = queues


def runs_syncs() -> bool:
    """Whether this process is a worker that consumes the sync queue."""
    return "sync" in _queues


def settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def runtime() -> Runtime:
    global _runtime, _pid
    with _lock:
        if _runtime is None or _pid != os.getpid():
            # After a fork the inherited runtime is the parent's: never closed here, since
            # closing would shut the parent's sockets too; just replaced.
            _runtime = Runtime.build(settings(), role=_role, require_redis=True)
            _pid = os.getpid()
        return _runtime


def reset() -> None:
    """Forget this process's runtime (after a fork, or in tests)."""
    global _runtime, _pid
    with _lock:
        _runtime = None
        _pid = 0
