"""`gitops-tasks beat`: load the settings, configure logging, elect a leader, produce."""

from __future__ import annotations

from gitops_tasks import tasks
from gitops_tasks.log import configure as configure_logging
from gitops_tasks.log import get_logger
from gitops_tasks.settings import Settings
from gitops_tasks.tasks import context

from .beat import Beat, Producers

_log = get_logger(component="beat")


def run(settings: Settings, *, watch: bool = True) -> int:
    configure_logging(settings.log)
    tasks.configure(settings)
    context.set_settings(settings, role="beat")
    runtime = context.runtime()
    beat = Beat(settings, runtime, Producers(tasks.enqueue, tasks.enqueue_sweep,
                                             tasks.request_hard_refresh), watch=watch)
    beat.install_signal_handlers()
    _log.info("beat started", interval=settings.reconcile.interval,
              resume_interval=settings.reconcile.resume_interval, watch=watch)
    try:
        beat.run()
    finally:
        runtime.close()
    _log.info("beat stopped")
    return 0
