"""The Celery application of gitops-tasks, configured from the settings at process start.

Imported by every task module (`@celery_app.task`) and by the producers' `enqueue`. Task names
are explicit and stable (`gitops.refresh`, ...), so a refactor never orphans queued messages;
refreshes and syncs go to their own queues so sync workers can be scaled apart.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from ..settings import Settings

REFRESH_QUEUE = "refresh"
SYNC_QUEUE = "sync"
QUEUES = (REFRESH_QUEUE, SYNC_QUEUE)

SWEEP = "gitops.sweep"
REFRESH = "gitops.refresh"
DIFF = "gitops.diff"
SYNC = "gitops.sync"
PRUNE = "gitops.prune"
ROUTES: dict[str, dict[str, str]] = {
    SWEEP: {"queue": REFRESH_QUEUE},
    REFRESH: {"queue": REFRESH_QUEUE},
    DIFF: {"queue": REFRESH_QUEUE},
    SYNC: {"queue": SYNC_QUEUE},
    PRUNE: {"queue": SYNC_QUEUE},
}

celery_app = Celery("gitops_tasks", include=[
    "gitops_tasks.tasks.refresh", "gitops_tasks.tasks.sync", "gitops_tasks.tasks.sweep",
    "gitops_tasks.tasks.diff",
])


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery's configuration for these settings (a pure function, tested without Redis)."""
    tasks = settings.tasks
    url = settings.redis.url
    transport: dict[str, Any] = {
        # Above the longest a task may run (its hard time limit), or Redis hands a message
        # that is still being worked on to a second worker.
        "visibility_timeout": int(tasks.visibility_timeout),
    }
    if url.startswith("sentinel://"):
        transport["master_name"] = settings.redis.sentinel_master
    return {
        "broker_url": url,
        "result_backend": url,
        "broker_transport_options": transport,
        "result_backend_transport_options": dict(transport),
        "broker_connection_retry_on_startup": True,
        # JSON only: a message can never make a worker unpickle code.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # At least once: a message is acknowledged after its task ran, and given back when the
        # worker process running it dies; one message reserved per worker process at a time.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": tasks.soft_time_limit,
        "task_time_limit": tasks.time_limit,
        "task_routes": ROUTES,
        "task_default_queue": REFRESH_QUEUE,
        # Only gitops.diff returns something anyone reads.
        "task_ignore_result": True,
        "result_expires": 3600,
        # Our structlog configuration, not Celery's, owns the root logger and stdout.
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        # Events for Flower.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "enable_utc": True,
        "timezone": "UTC",
    }


_configured: list[Settings] = []


def configure(settings: Settings) -> Celery:
    celery_app.conf.update(celery_config(settings))
    _configured[:] = [settings]
    return celery_app


def ensure_configured(settings: Settings) -> Celery:
    """Configure once per process, before the first message is sent: an unconfigured app would
    send to Celery's default broker and cache a backend that is not ours."""
    if not _configured:
        configure(settings)
    return celery_app
