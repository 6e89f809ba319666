"""`gitops-tasks up` as a user runs it: a separate process that starts a redis-server, kubesim,
a worker, beat, the receiver with the API and Flower, prints where they are, and stops every
process it started (grandchildren included) on SIGTERM, or when one of them dies."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).parent / "gitops-tasks")


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


class Up:
    def __init__(self, workdir: Path) -> None:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GITOPS_TASKS_", "KUBECONFIG"))}
        self.proc = subprocess.Popen(
            [CLI, "up", "--workers", "1", "--webhook-port", "0", "--flower-port", "0",
             "--workdir", str(workdir), "--kubesim"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.shown: dict[str, str] = {}
        assert self.proc.stdout is not None and self.proc.stderr is not None
        deadline = time.monotonic() + 120
        for line in self.proc.stdout:
            if line.startswith("logs in "):
                break
            key, _, value = line.rstrip("\n").partition("  ")
            self.shown[key.strip()] = value.strip()
            assert time.monotonic() < deadline
        else:
            raise AssertionError(f"up exited: {self.proc.wait()} {self.proc.stderr.read()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    started = Up(tmp_path / "up")
    yield started
    started.stop()


def _wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and {p for p in pids if _alive(p)}:
        time.sleep(0.2)
    return {p for p in pids if _alive(p)}


def test_up_serves_every_role_and_sigterm_stops_every_process(up: Up) -> None:
    shown = up.shown
    assert shown["cluster"].startswith("kubesim (KUBECONFIG=")
    assert shown["Redis"].startswith("redis://127.0.0.1:")
    api = shown["receiver and API"]
    token = shown["API admin token"]
    assert _get(f"{api}/healthz", {})[0] == 200
    status, body = _get(f"{api}/api/v1/applications", {"Authorization": f"Bearer {token}"})
    assert status == 200 and json.loads(body) == {"items": []}
    login = base64.b64encode(shown["Flower login"].encode()).decode()
    assert _get(f"{shown['Flower']}/api/workers", {"Authorization": f"Basic {login}"})[0] == 200
    kubeconfig = shown["cluster"].removeprefix("kubesim (KUBECONFIG=").rstrip(")")
    crd = subprocess.run([str(Path(sys.executable).parent / "kubectl"), "--kubeconfig",
                          kubeconfig, "get", "crd", "applications.gitops-tasks.io"],
                         capture_output=True, text=True, timeout=60)
    assert crd.returncode == 0, crd.stderr

    started = _descendants(up.proc.pid)
    # redis, kubesim, worker (and its pool process), beat, receiver, Flower.
    assert len(started) >= 7, started
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(60) == 0
    assert _wait_gone(started, 10) == set()


def test_when_a_role_dies_up_says_which_and_stops_the_others(up: Up) -> None:
    started = _descendants(up.proc.pid)
    beat = [p for p in started
            if b"\0beat" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert len(beat) == 1
    os.kill(beat[0], signal.SIGKILL)
    assert up.proc.wait(60) == 1
    assert up.proc.stderr is not None
    assert "beat exited" in up.proc.stderr.read()
    assert _wait_gone(started, 10) == set()
