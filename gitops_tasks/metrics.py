"""Prometheus metrics of the work the engine and the tasks do (the receiver adds its own).

Every label has a small fixed set of values (a verb, a status class, a phase), never an app
name, so the number of series does not grow with the number of apps; `gitops_tasks_app_info`
(one series per app, as Argo CD's `argocd_app_info`) is computed at scrape time from the
Application list by the receiver, not kept here.

Celery's prefork pool runs tasks in child processes: the worker sets `PROMETHEUS_MULTIPROC_DIR`
before anything imports prometheus_client (`enable_multiprocess`), each process writes its
samples to files there, and the worker's endpoint sums them (`render_multiprocess`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_GIT_COMMANDS = frozenset({"ls-remote", "fetch", "diff", "archive", "cat-file", "rev-parse",
                           "init", "config", "show", "ls-tree", "worktree", "read-tree"})


class Metrics:
    """Built on first use, not at import: prometheus_client picks its storage (in memory, or
    the multiprocess files) when the first sample is created, and the worker must have set
    PROMETHEUS_MULTIPROC_DIR by then; the CLI imports this module long before."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.refresh_seconds = Histogram(
            "gitops_tasks_refresh_duration_seconds", "Duration of one refresh task",
            ["result"], buckets=_SECONDS)
        self.sync_step_seconds = Histogram(
            "gitops_tasks_sync_step_duration_seconds", "Duration of one sync step",
            ["outcome"], buckets=_SECONDS)
        self.syncs = Counter("gitops_tasks_syncs", "Sync operations finished, by phase",
                             ["phase"])
        self.lock_busy = Counter(
            "gitops_tasks_lock_busy",
            "Tasks that found their app's lock held by another worker and retried later")
        self.lock_lost = Counter(
            "gitops_tasks_lock_lost",
            "Steps that lost their app's lock and stopped before their next write")
        self.git_commands = Counter("gitops_tasks_git_commands", "Git commands run",
                                    ["command", "result"])
        self.kube_requests = Counter(
            "gitops_tasks_kube_requests", "Kubernetes API requests, by verb and status class",
            ["verb", "code"])


_metrics: Metrics | None = None
_lock = threading.Lock()


def metrics() -> Metrics:
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = Metrics()
    return _metrics


def refresh_done(result: str, seconds: float) -> None:
    """result: ok | error | invalid."""
    metrics().refresh_seconds.labels(result).observe(seconds)


def sync_step_done(outcome: str, seconds: float) -> None:
    """outcome: continued | finished | idle | busy | lost | error."""
    metrics().sync_step_seconds.labels(outcome).observe(seconds)


def sync_finished(phase: str) -> None:
    metrics().syncs.labels(phase).inc()


def lock_busy() -> None:
    metrics().lock_busy.inc()


def lock_lost() -> None:
    metrics().lock_lost.inc()


def git_command(args: Any, ok: bool) -> None:
    first = ""
    items = iter(str(a) for a in args)
    for arg in items:
        if arg in ("-c", "-C"):
            next(items, None)  # its value
        elif not arg.startswith("-"):
            first = arg
            break
    metrics().git_commands.labels(first if first in _GIT_COMMANDS else "other",
                                  "ok" if ok else "error").inc()


def kube_request(verb: str, status: int | None) -> None:
    code = "error" if status is None else f"{status // 100}xx"
    metrics().kube_requests.labels(verb, code).inc()


def enable_multiprocess(directory: str | None = None) -> Path:
    """Before prometheus_client is first imported in a process that forks workers: a fresh
    directory for the children's samples (a stale one would add a dead run's counts)."""
    path = Path(directory or tempfile.mkdtemp(prefix="gitops-tasks-metrics-"))
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def process_exited(pid: int) -> None:
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def render() -> bytes:
    """This process's metrics, or every process's when multiprocess mode is on."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    metrics()  # every family shows, at zero, before its first sample
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
