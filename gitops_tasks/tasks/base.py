"""What every task does around its work: release its queue marker as it starts, bind the log
context (app, task id, and later revision and operation), and check the app's namespace."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..log import bound, clear, get_logger
from ..sweeping import app_id
from .context import runtime

_log = get_logger(component="tasks")


@contextmanager
def running(task: Any, kind: str, namespace: str, name: str) -> Iterator[bool]:
    """Yields False (and logs why) when this process cannot serve the app's namespace."""
    rt = runtime()
    task_id = str(task.request.id or "")
    if rt.markers is not None:
        # From now on a new request queues a new run: nothing that arrives during this run
        # is lost, and at most one run waits behind it.
        rt.markers.release(kind, app_id(namespace, name), task_id)
    clear()  # nothing bound by a previous task in this process
    try:
        with bound(app=name, namespace=namespace, task_id=task_id, task=kind):
            if namespace != rt.apps.namespace:
                _log.error("application outside the control namespace; ignored",
                           control_namespace=rt.apps.namespace)
                yield False
                return
            yield True
    finally:
        clear()  # what the task bound (revision, operation) must not outlive it
