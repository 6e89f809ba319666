"""`gitops-tasks beat`: load the settings, configure logging, elect a leader, produce."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from gitops_tasks import tasks
from gitops_tasks.log import configure as configure_logging
from gitops_tasks.log import get_logger
from gitops_tasks.settings import Settings
from gitops_tasks.source import GitMirrors
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


def run_webhook(settings: Settings, *, host: str, port: int, insecure: bool) -> int:
    """`gitops-tasks webhook`: the push receiver (see `scheduler.webhook`)."""
    from gitops_tasks.tasks.resolved import publish_pushed

    from .webhook import Producers as WebhookProducers
    from .webhook import Receiver

    configure_logging(settings.log)
    GitMirrors(settings.git).check_cache_dir()  # the receiver diffs pushes in mirrors
    tasks.configure(settings)
    context.set_settings(settings, role="webhook")
    runtime = context.runtime()
    receiver = Receiver(settings.webhook, runtime,
                        WebhookProducers(tasks.enqueue, publish_pushed), insecure=insecure)
    if not receiver.secrets.current().any() and not insecure:
        _log.error("no webhook secret is configured (GITOPS_TASKS_WEBHOOK_*_SECRET, or the "
                   f"Secret {settings.webhook.secret_name} in {settings.control_namespace}); "
                   "refusing to accept unsigned pushes: configure one, or start with "
                   "--insecure")
        runtime.close()
        return 2
    if insecure:
        _log.warning("webhook receiver is insecure: providers without a secret are accepted "
                     "unsigned")

    from .api import Api

    app = receiver.app()
    # The management API shares the process (one Service, one port).
    Api(settings.api, runtime).add_routes(app)
    try:
        asyncio.run(_serve(app, host, port))
    finally:
        runtime.close()
    _log.info("webhook receiver stopped")
    return 0


async def _serve(app: Any, host: str, port: int) -> None:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    # The bound address (port 0 asks the kernel for one).
    get_logger(component="webhook").info(
        "webhook receiver listening", addresses=[list(a)[:2] for a in runner.addresses])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
