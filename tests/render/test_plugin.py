"""Config-management plugins: configured commands only, Argo CD's environment, scratch copy,
errors with stderr, hangs killed after the tool timeout."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gitops_tasks.errors import RenderError, ToolTimeout
from gitops_tasks.model.application import PluginSource, Source
from gitops_tasks.render import render

from .helpers import APP, NAMESPACE, REPO, REVISION, ctx, names, tree_fingerprint

URL = "https://git.example.com/org/repo.git"


def plugin(name: str = "gen", env: tuple[tuple[str, str], ...] = ()) -> Source:
    return Source(URL, path="apps/plugin", plugin=PluginSource(name=name, env=env))


def alive(pid: int) -> bool:
    """Running (zombies count as dead: in a container nobody may reap them)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def test_plugin_output_and_argo_environment() -> None:
    objects = render(REPO, plugin(env=(("GREETING", "hello from $ARGOCD_APP_NAME"),)),
                     ctx(plugins={"gen": ("sh", "generate.sh")}))
    assert names(objects) == [("ConfigMap", f"plugin-{APP}")]
    cm = objects[0]
    assert cm["metadata"]["namespace"] == NAMESPACE
    assert cm["data"] == {"revision": REVISION, "greeting": f"hello from {APP}",
                          "path": "apps/plugin", "input": "from the repository"}


def test_plugin_env_cannot_override_the_environment() -> None:
    # Entries are prefixed ARGOCD_ENV_, so PATH and the build variables stay ours.
    objects = render(REPO, plugin(env=(("ARGOCD_APP_NAME", "evil"), ("PATH", "/nowhere"))),
                     ctx(plugins={"gen": ("sh", "generate.sh")}))
    assert objects[0]["metadata"]["name"] == f"plugin-{APP}"


def test_worker_environment_does_not_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_TASKS_REDIS_URL", "redis://secret")
    script = ('printf "apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: env}\\n'
              'data: {redis: \\"%s\\"}\\n" "${GITOPS_TASKS_REDIS_URL:-absent}"')
    objects = render(REPO, plugin(), ctx(plugins={"gen": ("sh", "-c", script)}))
    assert objects[0]["data"]["redis"] == "absent"


def test_unknown_plugin_lists_configured_ones() -> None:
    with pytest.raises(RenderError) as info:
        render(REPO, plugin("nope"), ctx(plugins={"gen": ("true",), "other": ("true",)}))
    assert "'nope'" in str(info.value) and "gen, other" in str(info.value)
    assert info.value.app == APP


def test_non_zero_exit_carries_stderr() -> None:
    script = "echo 'starting' >&2; echo 'cannot find values for env prod' >&2; exit 3"
    with pytest.raises(RenderError) as info:
        render(REPO, plugin(), ctx(plugins={"gen": ("sh", "-c", script)}))
    message = str(info.value)
    assert "status 3" in message and "cannot find values for env prod" in message
    assert not isinstance(info.value, ToolTimeout)


def test_missing_command_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="cannot run"):
        render(REPO, plugin(), ctx(plugins={"gen": ("/nonexistent/tool",)}))


def test_hanging_plugin_is_killed_after_the_timeout(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    # The shell and a child it started: both must die (the whole process group is killed).
    script = 'echo $$ > "$ARGOCD_ENV_PIDFILE"; sleep 30 & echo $! >> "$ARGOCD_ENV_PIDFILE"; wait'
    started = time.monotonic()
    with pytest.raises(ToolTimeout) as info:
        render(REPO, plugin(env=(("PIDFILE", str(pidfile)),)),
               ctx(plugins={"gen": ("sh", "-c", script)}, timeout=1))
    elapsed = time.monotonic() - started
    assert 1 <= elapsed < 2.5
    assert "plugin gen" in str(info.value) and info.value.app == APP
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 1
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(alive(p) for p in pids)


def test_background_child_does_not_hold_the_render(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    script = ('sleep 30 & echo $! > "$ARGOCD_ENV_PIDFILE"; '
              'echo "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: quick}"')
    started = time.monotonic()
    objects = render(REPO, plugin(env=(("PIDFILE", str(pidfile)),)),
                     ctx(plugins={"gen": ("sh", "-c", script)}, timeout=10))
    assert time.monotonic() - started < 2
    assert names(objects) == [("ConfigMap", "quick")]
    assert not alive(int(pidfile.read_text()))


def test_output_over_the_limit_is_refused() -> None:
    with pytest.raises(RenderError, match="more than 1000 bytes"):
        render(REPO, plugin(), ctx(plugins={"gen": ("sh", "-c", "yes | head -c 100000")},
                                   max_output=1000))


def test_plugin_writes_go_to_a_scratch_copy() -> None:
    before = tree_fingerprint(REPO)
    script = ("echo changed > input.txt; rm generate.sh; mkdir -p new; touch new/file; "
              "echo 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: wrote}'")
    render(REPO, plugin(), ctx(plugins={"gen": ("sh", "-c", script)}))
    assert tree_fingerprint(REPO) == before


def test_invalid_output_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="invalid YAML"):
        render(REPO, plugin(), ctx(plugins={"gen": ("sh", "-c", "echo 'a: [b'")}))
