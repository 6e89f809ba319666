"""The engine's metrics in one process (the worker's multiprocess mode is tested end to end)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from gitops_tasks import metrics


def value(name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def test_git_commands_are_named_past_their_options() -> None:
    before = value("gitops_tasks_git_commands_total", command="fetch", result="ok")
    metrics.git_command(["-c", "fetch.unpackLimit=1", "-C", "/x", "fetch", "--quiet"], True)
    assert value("gitops_tasks_git_commands_total", command="fetch", result="ok") == before + 1
    metrics.git_command(["frobnicate"], False)  # unknown commands share one label value
    assert value("gitops_tasks_git_commands_total", command="other", result="error") >= 1


def test_api_requests_are_counted_by_status_class() -> None:
    before = value("gitops_tasks_kube_requests_total", verb="get", code="4xx")
    metrics.kube_request("get", 404)
    metrics.kube_request("get", 409)
    metrics.kube_request("get", None)
    assert value("gitops_tasks_kube_requests_total", verb="get", code="4xx") == before + 2
    assert value("gitops_tasks_kube_requests_total", verb="get", code="error") >= 1


def test_every_family_is_exposed_before_its_first_sample() -> None:
    names = {f.name for f in text_string_to_metric_families(metrics.render().decode())}
    assert {"gitops_tasks_refresh_duration_seconds", "gitops_tasks_sync_step_duration_seconds",
            "gitops_tasks_syncs", "gitops_tasks_lock_busy", "gitops_tasks_lock_lost",
            "gitops_tasks_git_commands", "gitops_tasks_kube_requests"} <= names
