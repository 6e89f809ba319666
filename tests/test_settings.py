"""`settings.load()`: defaults, every variable parsed, every bad value reported in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.errors import GitOpsError
from gitops_tasks.settings import (
    LogSettings,
    ReconcileSettings,
    Settings,
    SettingsError,
    TaskSettings,
    load,
)

CLI = str(Path(sys.executable).parent / "gitops-tasks")
P = "GITOPS_TASKS_"


def setting(settings: Settings, path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


def error_for(env: dict[str, str]) -> SettingsError:
    with pytest.raises(SettingsError) as info:
        load({P + k: v for k, v in env.items()})
    return info.value


def test_defaults() -> None:
    s = load({})
    assert s == Settings()
    assert s.reconcile == ReconcileSettings(interval=180.0, jitter=30.0, hard_interval=3600.0,
                                            resume_interval=10.0, self_heal_backoff=5.0,
                                            self_heal_backoff_max=300.0)
    assert s.tasks == TaskSettings(
        lock_ttl=30.0, time_limit=300.0, soft_time_limit=240.0, visibility_timeout=3600.0,
        sync_poll_interval=2.0, sync_wave_delay=0.0, step_budget=20.0, retry_backoff=1.0,
        retry_backoff_max=120.0, max_retries=10, queued_ttl=900.0, worker_probe_port=8081)
    assert s.log == LogSettings(format="", level="INFO")
    assert s.redis.sentinel_master == "mymaster"
    assert s.redis.url == "redis://127.0.0.1:6379/0"
    assert s.control_namespace == "gitops-tasks"
    assert s.cluster.qps == 50.0 and s.cluster.burst == 100


def test_settings_error_is_a_gitops_error() -> None:
    assert issubclass(SettingsError, GitOpsError)


@pytest.mark.parametrize("var, value, path, expected", [
    ("RECONCILE_INTERVAL", "60", "reconcile.interval", 60.0),
    ("RECONCILE_JITTER", "0", "reconcile.jitter", 0.0),
    ("RECONCILE_JITTER", "500", "reconcile.jitter", 500.0),  # more than the interval is fine
    ("HARD_RECONCILE_INTERVAL", "7200", "reconcile.hard_interval", 7200.0),
    ("RESUME_INTERVAL", "2.5", "reconcile.resume_interval", 2.5),
    ("SELF_HEAL_BACKOFF", "0", "reconcile.self_heal_backoff", 0.0),
    ("SELF_HEAL_BACKOFF_MAX", "600", "reconcile.self_heal_backoff_max", 600.0),
    ("LOCK_TTL", "15", "tasks.lock_ttl", 15.0),
    ("TASK_TIME_LIMIT", "600", "tasks.time_limit", 600.0),
    ("TASK_SOFT_TIME_LIMIT", "100", "tasks.soft_time_limit", 100.0),
    ("VISIBILITY_TIMEOUT", "301", "tasks.visibility_timeout", 301.0),
    ("SYNC_POLL_INTERVAL", "0.5", "tasks.sync_poll_interval", 0.5),
    ("SYNC_WAVE_DELAY", "3", "tasks.sync_wave_delay", 3.0),
    ("SYNC_STEP_BUDGET", "5", "tasks.step_budget", 5.0),
    ("RETRY_BACKOFF", "0.25", "tasks.retry_backoff", 0.25),
    ("RETRY_BACKOFF_MAX", "30", "tasks.retry_backoff_max", 30.0),
    ("TASK_MAX_RETRIES", "0", "tasks.max_retries", 0),
    ("QUEUED_TTL", "60", "tasks.queued_ttl", 60.0),
    ("WORKER_PROBE_PORT", "0", "tasks.worker_probe_port", 0),
    ("WORKER_PROBE_PORT", "65535", "tasks.worker_probe_port", 65535),
    ("LOG_FORMAT", "JSON", "log.format", "json"),
    ("LOG_FORMAT", "console", "log.format", "console"),
    ("LOG_LEVEL", "debug", "log.level", "DEBUG"),
    ("LOG_LEVEL", "Warning", "log.level", "WARNING"),
    ("REDIS_SENTINEL_MASTER", "cache-master", "redis.sentinel_master", "cache-master"),
    ("REDIS_URL", "rediss://:pw@redis.example:6380/2", "redis.url",
     "rediss://:pw@redis.example:6380/2"),
    ("REDIS_URL", "unix:///run/redis.sock?db=1", "redis.url", "unix:///run/redis.sock?db=1"),
    ("REDIS_URL", "sentinel://:pw@s1:26379;sentinel://s2:26379;sentinel://s3", "redis.url",
     "sentinel://:pw@s1:26379;sentinel://s2:26379;sentinel://s3"),
    ("REDIS_URL", "redis://localhost", "redis.url", "redis://localhost"),
    ("GIT_TIMEOUT", "5", "git.timeout", 5.0),
    ("GIT_MAX_TREES", "0", "git.max_trees_per_repo", 0),
    ("GIT_RESOLVE_TTL", "0", "git.resolve_ttl", 0.0),
    ("GIT_TREE_MIN_IDLE", "1e3", "git.tree_min_idle_seconds", 1000.0),
    ("KUBE_QPS", "0", "cluster.qps", 0.0),
    ("KUBE_BURST", "1", "cluster.burst", 1),
    ("RENDER_CACHE_TTL", "60", "redis.render_cache_ttl", 60),
    ("NAMESPACE", "argo-cd-2", "control_namespace", "argo-cd-2"),
    ("PLUGINS", "cdk8s=cdk8s synth --stdout; tanka = tk show . ;",
     "render.plugins", {"cdk8s": ("cdk8s", "synth", "--stdout"), "tanka": ("tk", "show", ".")}),
])
def test_each_variable_is_parsed(var: str, value: str, path: str, expected: Any) -> None:
    assert setting(load({P + var: value}), path) == expected


def test_an_empty_value_counts_as_unset() -> None:
    assert load({P + "RECONCILE_INTERVAL": "", P + "NAMESPACE": " ", P + "LOG_FORMAT": ""}) \
        == Settings()


@pytest.mark.parametrize("var, value, expected", [
    ("RECONCILE_INTERVAL", "3m", "a number of seconds greater than 0"),
    ("RECONCILE_INTERVAL", "0", "greater than 0"),
    ("RECONCILE_JITTER", "-1", "0 or more"),
    ("HARD_RECONCILE_INTERVAL", "nan", "greater than 0"),
    ("RESUME_INTERVAL", "inf", "greater than 0"),
    ("SELF_HEAL_BACKOFF", "soon", "0 or more"),
    ("SELF_HEAL_BACKOFF_MAX", "1", "no less than GITOPS_TASKS_SELF_HEAL_BACKOFF (5)"),
    ("LOCK_TTL", "0", "greater than 0"),
    ("TASK_TIME_LIMIT", "-5", "greater than 0"),
    ("TASK_SOFT_TIME_LIMIT", "300", "less than GITOPS_TASKS_TASK_TIME_LIMIT (300)"),
    ("VISIBILITY_TIMEOUT", "300", "greater than GITOPS_TASKS_TASK_TIME_LIMIT (300)"),
    ("SYNC_POLL_INTERVAL", "0", "greater than 0"),
    ("SYNC_WAVE_DELAY", "-0.1", "0 or more"),
    ("SYNC_STEP_BUDGET", "x", "greater than 0"),
    ("RETRY_BACKOFF", "0", "greater than 0"),
    ("RETRY_BACKOFF_MAX", "0.5", "no less than GITOPS_TASKS_RETRY_BACKOFF (1)"),
    ("TASK_MAX_RETRIES", "-1", "a whole number of 0 or more"),
    ("TASK_MAX_RETRIES", "2.5", "a whole number of 0 or more"),
    ("QUEUED_TTL", "0", "greater than 0"),
    ("WORKER_PROBE_PORT", "65536", "from 0 to 65535"),
    ("WORKER_PROBE_PORT", "http", "from 0 to 65535"),
    ("LOG_FORMAT", "text", "one of json, console"),
    ("LOG_LEVEL", "verbose", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("REDIS_SENTINEL_MASTER", "my master", "without spaces"),
    ("REDIS_URL", "http://redis:6379", "a redis://, rediss://, unix:// or sentinel:// URL"),
    ("REDIS_URL", "127.0.0.1:6379", "a redis://, rediss://, unix:// or sentinel:// URL"),
    ("REDIS_URL", "redis://:6379/0", "a host"),
    ("REDIS_URL", "redis://host:port/0", "a port number"),
    ("REDIS_URL", "redis://host:6379/zero", "a database number"),
    ("REDIS_URL", "unix://", "a socket path"),
    ("REDIS_URL", "redis://a:6379;redis://b:6379", "several URLs only as sentinel://"),
    ("REDIS_URL", "sentinel://a:26379;redis://b", "several URLs only as sentinel://"),
    ("GIT_TIMEOUT", "1m", "greater than 0"),
    ("GIT_MAX_FILE_BYTES", "8MB", "a number of bytes of 1 or more"),
    ("GIT_MAX_REPO_BYTES", "0", "a number of bytes of 1 or more"),
    ("GIT_RESOLVE_TTL", "-1", "0 or more"),
    ("GIT_MAX_TREES", "-1", "0 or more"),
    ("GIT_TREE_MIN_IDLE", "ten", "0 or more"),
    ("RENDER_TIMEOUT", "0", "greater than 0"),
    ("RENDER_MAX_OUTPUT_BYTES", "-1", "a number of bytes"),
    ("RENDER_CACHE_TTL", "0", "a whole number of seconds of 1 or more"),
    ("KUBE_QPS", "-1", "0 or more (0: unlimited)"),
    ("KUBE_BURST", "0", "a number of requests of 1 or more"),
    ("KUBE_TIMEOUT", "0", "greater than 0"),
    ("HOOK_TIMEOUT", "5m", "greater than 0"),
    ("NAMESPACE", "GitOps", "a DNS-1123 label"),
    ("NAMESPACE", "-ns", "a DNS-1123 label"),
    ("NAMESPACE", "a" * 64, "a DNS-1123 label"),
])
def test_each_invalid_value_names_the_variable(var: str, value: str, expected: str) -> None:
    message = str(error_for({var: value}))
    assert message.startswith(f"{P}{var}={value!r}: expected ")
    assert expected in message
    assert "\n" not in message


def test_the_example_message_of_the_brief() -> None:
    assert str(error_for({"RECONCILE_INTERVAL": "3m"})) == (
        "GITOPS_TASKS_RECONCILE_INTERVAL='3m': expected a number of seconds greater than 0")


def test_several_problems_are_reported_together_in_one_line() -> None:
    exc = error_for({"RECONCILE_INTERVAL": "3m", "KUBE_BURST": "lots", "LOG_LEVEL": "loud",
                     "GIT_TIMEOUT": "-1"})
    assert len(exc.problems) == 4
    assert str(exc) == "; ".join(exc.problems)
    assert "\n" not in str(exc)
    for var in ("RECONCILE_INTERVAL", "KUBE_BURST", "LOG_LEVEL", "GIT_TIMEOUT"):
        assert sum(p.startswith(P + var + "=") for p in exc.problems) == 1


def test_a_constraint_against_a_default_says_the_value_is_the_default() -> None:
    exc = error_for({"TASK_TIME_LIMIT": "7200"})
    assert exc.problems == [
        "GITOPS_TASKS_VISIBILITY_TIMEOUT (unset, default 3600): expected a number of seconds "
        "greater than GITOPS_TASKS_TASK_TIME_LIMIT (7200), or Redis hands a task that is still "
        "running to another worker"]


def test_an_invalid_value_is_not_reported_again_by_a_constraint() -> None:
    exc = error_for({"TASK_TIME_LIMIT": "five minutes", "TASK_SOFT_TIME_LIMIT": "400"})
    assert [p.split(":")[0] for p in exc.problems] == [
        "GITOPS_TASKS_TASK_TIME_LIMIT='five minutes'"]


def test_credentials_in_a_bad_url_are_not_shown() -> None:
    message = str(error_for({"REDIS_URL": "http://admin:hunter2@redis:6379/0"}))
    assert "hunter2" not in message and "admin" not in message
    assert "GITOPS_TASKS_REDIS_URL='http://***@redis:6379/0'" in message


@pytest.mark.parametrize("entry, why", [
    ("kustomize-lite", "expected name=command"),
    ("=cmd", "expected name=command"),
    ("name=", "expected name=command"),
    ("name=cmd 'unclosed", "quotes closed"),
])
def test_a_bad_plugin_entry_is_named(entry: str, why: str) -> None:
    exc = error_for({"PLUGINS": f"ok=run it;{entry}"})
    assert exc.problems == [exc.problems[0]]
    assert exc.problems[0].startswith(f"GITOPS_TASKS_PLUGINS entry {entry!r}: ")
    assert why in exc.problems[0]


def test_a_plugin_defined_twice_is_an_error() -> None:
    message = str(error_for({"PLUGINS": "a=one;a=two"}))
    assert "GITOPS_TASKS_PLUGINS entry 'a=two'" in message and "'a' is repeated" in message


def test_a_cache_dir_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert load({P + "GIT_CACHE_DIR": str(tmp_path / "new")}).git.cache_dir == tmp_path / "new"
    message = str(error_for({"GIT_CACHE_DIR": str(tmp_path / "file")}))
    assert message.startswith(f"GITOPS_TASKS_GIT_CACHE_DIR='{tmp_path / 'file'}': expected a "
                              "directory")


def test_load_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(P + "RECONCILE_INTERVAL", "42")
    assert load().reconcile.interval == 42.0
    monkeypatch.setenv(P + "RECONCILE_INTERVAL", "never")
    with pytest.raises(SettingsError, match="GITOPS_TASKS_RECONCILE_INTERVAL='never'"):
        load()


def test_the_cli_reports_a_bad_setting_in_one_line_and_exits_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(P)}
    env.update({P + "RECONCILE_INTERVAL": "3m", P + "REDIS_URL": "http://u:secret@r",
                P + "GIT_CACHE_DIR": str(tmp_path / "cache")})
    result = subprocess.run([CLI, "render", "-f", "x"], capture_output=True, text=True, env=env,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: GITOPS_TASKS_")
    assert "GITOPS_TASKS_RECONCILE_INTERVAL='3m'" in lines[0]
    assert "GITOPS_TASKS_REDIS_URL='http://***@r'" in lines[0]
    assert "secret" not in lines[0]
    assert result.stdout == ""


def test_webhook_and_flower_settings_never_show_their_secrets() -> None:
    from gitops_tasks.settings import load as load_env

    s = load_env({"GITOPS_TASKS_WEBHOOK_GITHUB_SECRET": "gh-very-secret",
                  "GITOPS_TASKS_WEBHOOK_GITEA_SECRET": "tea",
                  "GITOPS_TASKS_FLOWER_BASIC_AUTH": "ops:pw1, dev:pw2"})
    assert s.webhook.secrets.github == "gh-very-secret"
    assert s.webhook.secrets.gogs == "tea"  # Gogs signs like Gitea: one secret for both
    assert s.flower.basic_auth == "ops:pw1,dev:pw2"
    assert "gh-very-secret" not in repr(s) and "pw1" not in repr(s)
    with pytest.raises(SettingsError) as exc:
        load_env({"GITOPS_TASKS_FLOWER_BASIC_AUTH": "ops-without-password",
                  "GITOPS_TASKS_WEBHOOK_AZURE_DEVOPS_PASSWORD": "az-secret",
                  "GITOPS_TASKS_WEBHOOK_MAX_PAYLOAD_BYTES": "lots"})
    message = str(exc.value)
    assert "GITOPS_TASKS_FLOWER_BASIC_AUTH: expected user:password" in message
    assert "GITOPS_TASKS_WEBHOOK_AZURE_DEVOPS_USERNAME too" in message
    assert "GITOPS_TASKS_WEBHOOK_MAX_PAYLOAD_BYTES='lots'" in message
    assert "ops-without-password" not in message and "az-secret" not in message
