"""Running a Celery worker of gitops-tasks in this process, and what it tells its probe.

Called by `workers.main` (`gitops-tasks worker`). The worker consumes the `refresh` and/or
`sync` queues with a prefork pool: each child builds its own clients after the fork
(`worker_process_init`). SIGTERM is Celery's warm shutdown: the running step finishes (its
message is acknowledged only then), nothing new is taken, the process exits; a SIGKILLed
worker's unacknowledged messages come back after the visibility timeout, and the sweep resumes
its operations as soon as their locks expire.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from celery import signals

from .. import metrics
from ..log import configure as configure_logging
from ..log import get_logger
from ..settings import Settings
from . import context
from .app import QUEUES, celery_app, configure

_log = get_logger(component="worker")


class Liveness:
    """What the probe reports: the consumer's last heartbeat and whether it is consuming."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.last_beat = 0.0
        self.ready = False
        self.stopping = False

    def beat(self) -> None:
        with self._lock:
            self.last_beat = time.monotonic()

    def alive(self, max_silence: float) -> bool:
        """Heartbeats are sent every 2 s while the consumer's event loop runs; a worker that
        is still starting counts as alive for `max_silence` too."""
        with self._lock:
            last = self.last_beat or self.started
            return time.monotonic() - last < max_silence


liveness = Liveness()


@signals.heartbeat_sent.connect
def _on_heartbeat(**_: Any) -> None:
    liveness.beat()


@signals.worker_ready.connect
def _on_ready(**_: Any) -> None:
    liveness.ready = True
    liveness.beat()


@signals.worker_shutting_down.connect
def _on_shutdown(**_: Any) -> None:
    liveness.stopping = True
    liveness.ready = False


@signals.setup_logging.connect
def _on_setup_logging(**_: Any) -> None:
    # Connecting this signal stops Celery from configuring logging itself: every line, ours
    # and Celery's, goes through the one structlog configuration.
    configure_logging(context.settings().log)


@signals.worker_process_init.connect
def _on_process_init(**_: Any) -> None:
    context.reset()
    try:
        context.runtime()
    except Exception as exc:  # the first task will try again, and say why
        _log.warning("could not build the engine in the worker process", error=str(exc))


@signals.worker_process_shutdown.connect
def _on_process_shutdown(pid: int | None = None, **_: Any) -> None:
    # Its live gauges (none yet) leave with it; its counters stay summed in.
    metrics.process_exited(pid or os.getpid())


def start(settings: Settings, *, queues: Sequence[str] = QUEUES, concurrency: int = 0,
          hostname: str = "", pool: str = "prefork") -> None:
    """Run a worker until it is told to stop (SIGTERM, SIGINT)."""
    unknown = sorted(set(queues) - set(QUEUES))
    if unknown:
        raise ValueError(f"unknown queue(s) {', '.join(unknown)}; the queues are "
                         f"{', '.join(QUEUES)}")
    hostname = hostname or f"gitops-tasks@{socket.gethostname()}"
    # The node name goes into the user agent of every API request, so the API server's audit
    # log (and kubesim's request log) tells workers apart.
    context.set_settings(settings, role=f"worker {hostname}")
    context.set_queues(tuple(queues))
    configure(settings)
    worker = celery_app.Worker(
        hostname=hostname,
        queues=list(queues),
        concurrency=concurrency or None,
        pool=pool,
        loglevel=settings.log.level,
        # Our logging and our signals: no Celery banner on stdout.
        quiet=True,
        without_mingle=True,
        without_gossip=True,
    )
    worker.start()
    if worker.exitcode:
        raise SystemExit(worker.exitcode)
