"""The task layer: the Celery app and the tasks (the only Celery importer).

Producers call `enqueue`/`enqueue_sweep`; workers run `worker.start`. The tasks take an app's
namespace and name, never an object: the Application in the cluster is the source of truth.
"""

from . import diff, refresh, sweep, sync
from .app import QUEUES, REFRESH_QUEUE, SYNC_QUEUE, celery_app, celery_config, configure
from .enqueue import enqueue, enqueue_sweep, request_hard_refresh

__all__ = [
    "QUEUES",
    "REFRESH_QUEUE",
    "SYNC_QUEUE",
    "celery_app",
    "celery_config",
    "configure",
    "diff",
    "enqueue",
    "enqueue_sweep",
    "refresh",
    "request_hard_refresh",
    "sweep",
    "sync",
]
