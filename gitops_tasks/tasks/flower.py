"""`gitops-tasks flower`: Flower on our Celery app and broker. The workers send task events
(`worker_send_task_events`, `task_send_sent_event`), so Flower lists every `gitops.*` task with
its arguments, the app's namespace and name. Flower shows the broker URL through kombu, which
masks its password."""

from __future__ import annotations

from ..settings import Settings
from .app import configure


def argv(settings: Settings, *, port: int, address: str) -> list[str]:
    """Flower's command line (inside this process: the basic-auth password never reaches the
    process table)."""
    args = ["flower", f"--port={port}", f"--address={address}",
            # Keep the event history bounded: thousands of apps send many tasks.
            "--max_tasks=10000", "--purge_offline_workers=300"]
    if settings.flower.basic_auth:
        args.append(f"--basic-auth={settings.flower.basic_auth}")
    return args


def start(settings: Settings, *, port: int, address: str) -> None:
    configure(settings).start(argv(settings, port=port, address=address))
