"""Prometheus metrics end to end: the worker's endpoint (summed over its prefork processes)
and the receiver's, parsed with prometheus-client's own parser, move as the work happens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from prometheus_client.parser import text_string_to_metric_families

from tests.source.gitservers import free_port

from .stack import Stack, configmap, wait_for
from .test_webhooks import SECRETS, Hosted, app, delivery

_HTTP = urllib3.PoolManager(retries=False, timeout=10)


@pytest.fixture
def hosted(tmp_path: Path) -> Iterator[Hosted]:
    repo = Hosted(tmp_path)
    yield repo
    repo.daemon.stop()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = _HTTP.request("GET", url)
    assert resp.status == 200
    samples = {}
    for family in text_string_to_metric_families(resp.data.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], family: str,
          **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items()
               if n == family and all(dict(ls).get(k) == want for k, want in labels.items()))


def test_worker_and_receiver_metrics_move_with_the_work(stack: Stack, hosted: Hosted) -> None:
    first = hosted.origin.commit({"apps/web/cm.yaml": configmap("web", {"v": "0"})})
    port = free_port()
    stack.worker("w1", concurrency=2, probe_port=port)
    stack.beat()
    _, base = stack.webhook(**SECRETS)
    worker_url = f"http://127.0.0.1:{port}/metrics"
    stack.apply_app(app(stack, hosted, "web", "apps/web"))
    wait_for(lambda: stack.synced_healthy("web", first), 30, what="first sync")
    wait_for(lambda: total(scrape(worker_url), "gitops_tasks_syncs_total",
                           phase="Succeeded") >= 1, 10, what="a sync counted")
    before = scrape(worker_url)
    assert total(before, "gitops_tasks_refresh_duration_seconds_count", result="ok") >= 1
    assert total(before, "gitops_tasks_sync_step_duration_seconds_count") >= 1
    assert total(before, "gitops_tasks_kube_requests_total") > 0
    assert total(before, "gitops_tasks_git_commands_total", command="fetch") >= 1
    assert total(before, "gitops_tasks_lock_lost_total") == 0

    second = hosted.origin.commit({"apps/web/cm.yaml": configmap("web", {"v": "1"})})
    status, body = _post(base, delivery("github", hosted, first, second, ["apps/web/cm.yaml"]))
    assert status == 202 and body["apps"], body
    wait_for(lambda: stack.synced_healthy("web", second), 30, what="pushed commit synced")
    wait_for(lambda: total(scrape(worker_url), "gitops_tasks_syncs_total", phase="Succeeded")
             > total(before, "gitops_tasks_syncs_total", phase="Succeeded"), 10,
             what="the second sync counted")
    after = scrape(worker_url)
    for name in ("gitops_tasks_refresh_duration_seconds_count",
                 "gitops_tasks_kube_requests_total", "gitops_tasks_git_commands_total"):
        assert total(after, name) > total(before, name), name

    receiver = scrape(base + "/metrics")
    assert total(receiver, "gitops_tasks_webhook_requests_total", provider="github",
                 result="queued") == 1
    assert total(receiver, "gitops_tasks_webhook_duration_seconds_count") >= 1
    assert total(receiver, "gitops_tasks_app_info", name="web", sync_status="Synced",
                 health_status="Healthy", autosync="true") == 1
    assert ("gitops_tasks_queue_length", (("queue", "refresh"),)) in receiver
    assert ("gitops_tasks_queue_reserved", ()) in receiver
    # A bad signature is counted as such.
    _post(base, delivery("github", hosted, first, second, ["x"], secret="wrong"))
    receiver = scrape(base + "/metrics")
    assert total(receiver, "gitops_tasks_webhook_requests_total", provider="github",
                 result="unauthorized") == 1


def _post(base: str, d: object) -> tuple[int, dict[str, object]]:
    from tests.webhooks.payloads import Delivery

    assert isinstance(d, Delivery)
    resp = _HTTP.request("POST", base + "/api/webhook", body=d.body, headers=d.headers)
    return resp.status, json.loads(resp.data)
