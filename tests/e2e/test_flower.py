"""`gitops-tasks flower` end to end: a real Flower process on a password-protected
redis-server, a worker and beat. Its UI and API ask for basic auth, list the `gitops.*` tasks
with the app each is for, and never show the broker's password."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from tests.redisserver import RedisServer
from tests.source.gitservers import free_port

from .stack import CLI, KubeSimProcess, Proc, Stack, configmap, wait_for

PASSWORD = "br0ker-Pa55"
AUTH = "ops:flower-pw"


@pytest.fixture
def private(sim: KubeSimProcess, tmp_path: Path) -> Iterator[Stack]:
    server = RedisServer(tmp_path / "redis", "--requirepass", PASSWORD).start()
    stack = Stack(sim, f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0", tmp_path)
    yield stack
    stack.close()
    server.stop()


def test_flower_lists_the_tasks_with_their_apps_behind_basic_auth(private: Stack) -> None:
    stack = private
    stack.origin.commit({"web/cm.yaml": configmap("web", {"v": "1"})})
    stack.worker()
    stack.beat()
    port = free_port()
    flower = Proc("flower", [CLI, "flower", "--port", str(port), "--address", "127.0.0.1"],
                  {**stack.env, "GITOPS_TASKS_FLOWER_BASIC_AUTH": AUTH},
                  stack.tmp / "flower.log")
    stack.procs.append(flower)
    http = urllib3.PoolManager(retries=False, timeout=10)
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": "Basic " + base64.b64encode(AUTH.encode()).decode()}

    def up() -> bool:
        try:
            return http.request("GET", base + "/healthcheck").status == 200
        except urllib3.exceptions.HTTPError:
            return not flower.alive
    wait_for(up, 30, what="flower up")
    assert flower.alive, flower.log()
    stack.apply_app(stack.app_manifest("web", "web", automated={"prune": True}))
    wait_for(lambda: stack.synced_healthy("web"), 30, what="web synced")

    assert http.request("GET", base + "/").status == 401
    assert http.request("GET", base + "/api/tasks").status == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ops:nope").decode()}
    assert http.request("GET", base + "/api/tasks", headers=wrong).status == 401
    assert http.request("GET", base + "/", headers=auth).status == 200

    def tasks() -> dict[str, dict[str, object]]:
        reply = http.request("GET", base + "/api/tasks", headers=auth)
        assert reply.status == 200
        return dict(json.loads(reply.data))
    listed = wait_for(lambda: {t["name"] for t in tasks().values()} >= {"gitops.refresh"}
                      and tasks(), 30, what="gitops tasks listed")
    refreshes = [t for t in listed.values() if t["name"] == "gitops.refresh"]
    assert any(stack.control in str(t["args"]) and "web" in str(t["args"])
               for t in refreshes), refreshes
    # The workers answer Flower's inspect broadcast.
    workers = wait_for(lambda: json.loads(http.request(
        "GET", base + "/api/workers?refresh=1", headers=auth).data), 30, what="workers listed")
    assert any(name.startswith("w1@") for name in workers), workers
    for page in ("/", "/broker", "/tasks", "/workers"):
        body = http.request("GET", base + page, headers=auth).data.decode()
        assert PASSWORD not in body, page
    assert PASSWORD not in flower.log()
