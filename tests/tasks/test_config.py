"""The Celery configuration of gitops-tasks (`celery_config`, a pure function of the settings),
and one real round trip: the app configured against the test redis-server, an in-process Celery
worker (solo pool) running `gitops.diff`, its result read back through the result backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.settings import RedisSettings, Settings, TaskSettings
from gitops_tasks.tasks import app as app_mod
from gitops_tasks.tasks import context
from gitops_tasks.tasks.app import (
    DIFF,
    PRUNE,
    REFRESH,
    REFRESH_QUEUE,
    SWEEP,
    SYNC,
    SYNC_QUEUE,
    celery_app,
    celery_config,
)


def _settings(url: str = "redis://127.0.0.1:6390/2", **tasks: Any) -> Settings:
    return Settings(redis=RedisSettings(url=url, sentinel_master="primary-7"),
                    tasks=TaskSettings(**tasks))


def test_json_only() -> None:
    cfg = celery_config(_settings())
    assert cfg["task_serializer"] == "json"
    assert cfg["result_serializer"] == "json"
    assert cfg["accept_content"] == ["json"]  # never pickle, whatever a message claims


def test_at_least_once_delivery() -> None:
    cfg = celery_config(_settings())
    assert cfg["task_acks_late"] is True
    assert cfg["task_reject_on_worker_lost"] is True
    assert cfg["worker_prefetch_multiplier"] == 1


def test_visibility_timeout_and_time_limits_from_the_settings() -> None:
    cfg = celery_config(_settings(time_limit=50.0, soft_time_limit=40.0,
                                  visibility_timeout=123.9))
    assert cfg["broker_transport_options"]["visibility_timeout"] == 123
    assert cfg["result_backend_transport_options"]["visibility_timeout"] == 123
    assert cfg["task_time_limit"] == 50.0
    assert cfg["task_soft_time_limit"] == 40.0
    # Above the hard time limit, or a task still running is handed to a second worker.
    assert cfg["broker_transport_options"]["visibility_timeout"] > cfg["task_time_limit"]
    defaults = celery_config(Settings())
    assert defaults["broker_transport_options"]["visibility_timeout"] == int(
        TaskSettings().visibility_timeout)
    assert defaults["task_time_limit"] == TaskSettings().time_limit


def test_routes() -> None:
    cfg = celery_config(_settings())
    routes = cfg["task_routes"]
    assert routes[SYNC] == {"queue": SYNC_QUEUE} == routes[PRUNE]
    for name in (REFRESH, DIFF, SWEEP):
        assert routes[name] == {"queue": REFRESH_QUEUE}
    assert (SYNC, PRUNE, REFRESH, DIFF, SWEEP) == (
        "gitops.sync", "gitops.prune", "gitops.refresh", "gitops.diff", "gitops.sweep")
    assert (SYNC_QUEUE, REFRESH_QUEUE) == ("sync", "refresh")
    assert cfg["task_default_queue"] == REFRESH_QUEUE


def test_broker_and_backend_are_the_settings_redis() -> None:
    cfg = celery_config(_settings("redis://:pw@10.0.0.5:6379/3"))
    assert cfg["broker_url"] == "redis://:pw@10.0.0.5:6379/3" == cfg["result_backend"]
    assert "master_name" not in cfg["broker_transport_options"]
    assert "master_name" not in cfg["result_backend_transport_options"]


def test_sentinel_urls_carry_the_master_name() -> None:
    url = "sentinel://10.0.0.1:26379;sentinel://10.0.0.2:26379"
    cfg = celery_config(_settings(url))
    assert cfg["broker_url"] == url
    assert cfg["broker_transport_options"]["master_name"] == "primary-7"
    assert cfg["result_backend_transport_options"]["master_name"] == "primary-7"
    # Two dicts, not one shared: Celery may change one of them.
    assert cfg["broker_transport_options"] is not cfg["result_backend_transport_options"]


def test_logging_and_events() -> None:
    cfg = celery_config(_settings())
    assert cfg["worker_hijack_root_logger"] is False
    assert cfg["worker_redirect_stdouts"] is False
    assert cfg["worker_send_task_events"] is True and cfg["task_send_sent_event"] is True
    assert cfg["task_ignore_result"] is True  # only gitops.diff keeps a result


def test_pure() -> None:
    settings = _settings()
    assert celery_config(settings) == celery_config(settings)
    first = celery_config(settings)
    first["broker_transport_options"]["visibility_timeout"] = 1
    assert celery_config(settings)["broker_transport_options"]["visibility_timeout"] != 1


def test_registered_task_names_are_stable() -> None:
    import gitops_tasks.tasks  # noqa: F401 - registers the tasks

    assert {SWEEP, REFRESH, DIFF, SYNC, PRUNE} <= set(celery_app.tasks)
    assert celery_app.tasks[DIFF].ignore_result is False


# ------------------------------------------------------------------------- round trip


@pytest.fixture
def configured(redis_url: str, kubeconfig: Path, namespace: str,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The Celery app and the task context pointed at the test Redis (its own db, so no other
    test's queues mix in) and kubesim; everything put back afterwards."""
    import gitops_tasks.tasks  # noqa: F401 - registers the tasks

    url = redis_url.rsplit("/", 1)[0] + "/7"
    settings = Settings(redis=RedisSettings(url=url), control_namespace=namespace)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setattr(context, "_settings", None)
    monkeypatch.setattr(context, "_runtime", None)
    monkeypatch.setattr(context, "_pid", 0)
    monkeypatch.setattr(app_mod, "_configured", [])
    before = {k: celery_app.conf.get(k) for k in celery_config(settings)}
    app_mod.configure(settings)
    context.set_settings(settings)
    yield settings
    rt = context._runtime
    if rt is not None:
        if rt.redis is not None:
            rt.redis.flushdb()
        rt.close()
    celery_app.conf.update(before)


def test_diff_of_a_missing_app_through_a_real_worker(configured: Settings) -> None:
    from celery.contrib.testing.worker import start_worker

    namespace = configured.control_namespace
    with start_worker(celery_app, pool="solo", perform_ping_check=False,
                      queues=[REFRESH_QUEUE], shutdown_timeout=20):
        result = celery_app.send_task(DIFF, args=[namespace, "no-such-app"])
        assert result.get(timeout=20) == {"app": "no-such-app",
                                          "error": "Application no-such-app not found"}
        # The route put it on the refresh queue (a worker of only that queue ran it), and a
        # namespace the worker does not serve is refused, not looked up.
        other = celery_app.send_task(DIFF, args=["someone-else", "x"])
        assert other.get(timeout=20) == {"app": "x", "error": "outside the control namespace"}
