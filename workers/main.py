"""`gitops-tasks worker`: the consumer. Loads the settings, configures logging, starts the
probe server and runs a Celery worker on the chosen queues (see `gitops_tasks.tasks.worker`).
"""

from __future__ import annotations

from collections.abc import Sequence

from gitops_tasks import metrics
from gitops_tasks.log import configure as configure_logging
from gitops_tasks.log import get_logger
from gitops_tasks.settings import Settings
from gitops_tasks.source import GitMirrors
from gitops_tasks.tasks import worker

from .probe import serve

_log = get_logger(component="worker")

# A worker whose consumer sent no heartbeat (every 2 s) for this long is reported dead.
MAX_SILENCE = 30.0


def run(settings: Settings, *, queues: Sequence[str], concurrency: int = 0,
        probe_port: int | None = None, hostname: str = "") -> int:
    configure_logging(settings.log)
    GitMirrors(settings.git).check_cache_dir()
    port = settings.tasks.worker_probe_port if probe_port is None else probe_port
    server = None
    if port:
        server = serve(port, lambda: worker.liveness.alive(MAX_SILENCE),
                       lambda: worker.liveness.ready and not worker.liveness.stopping,
                       metrics=metrics.render)
        _log.info("probe listening", port=server.server_address[1])
    try:
        worker.start(settings, queues=queues, concurrency=concurrency, hostname=hostname)
    finally:
        if server is not None:
            server.shutdown()
    return 0
