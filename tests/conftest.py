"""Shared fixtures: one in-process kubesim per test session (per xdist worker), kubectl, clients."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubesim.server import KubeSim
from kubesim.workloads import SimSettings

KUBECTL = str(Path(sys.executable).parent / "kubectl")

# Hypothesis (and schemathesis on it) keep a cache dir; in the temp dir, not the repository.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY",
                      str(Path(tempfile.gettempdir()) / "gitops-tasks-hypothesis"))


@pytest.fixture(scope="session")
def kubesim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSim]:
    sim = KubeSim(sim_settings=SimSettings(ready_delay=0.3)).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def kubeconfig(kubesim: KubeSim, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kubesim.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


@pytest.fixture
def namespace(kubesim: KubeSim) -> str:
    """A fresh namespace per test, so tests sharing one server never see each other's objects."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    ns_rt = kubesim.registry.lookup("", "v1", "namespaces")
    assert ns_rt is not None
    kubesim.call(lambda: kubesim.store.create(
        ns_rt, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        manager="test"))
    return name


@dataclass
class Kubectl:
    kubeconfig: Path
    cache_dir: Path

    def run(self, *args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir",
               str(self.cache_dir), *args]
        result = subprocess.run(cmd, input=stdin, text=True, capture_output=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    # A cache dir per test: kubectl caches discovery, and CRDs change it.
    return Kubectl(kubeconfig, tmp_path / "kubectl-cache")


@pytest.fixture
def api_client(kubesim: KubeSim) -> Iterator[Any]:
    from kubernetes import client

    config = client.Configuration()
    config.host = kubesim.url
    api = client.ApiClient(config)
    yield api
    api.close()


@pytest.fixture
def dynamic(api_client: Any, tmp_path: Path) -> Any:
    from kubernetes.dynamic import DynamicClient

    # Its own discovery cache file per test, since CRDs change discovery.
    return DynamicClient(api_client, cache_file=str(tmp_path / "discovery.json"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server per test session (per xdist worker), never the shared one."""
    import time

    import redis

    from gitops_tasks.redisserver import find_redis_server

    binary = find_redis_server()
    if binary is None:
        pytest.fail("redis-server is required for these tests (apt-get install redis-server, "
                    "or the `local` extra)")
    workdir = tmp_path_factory.mktemp("redis")
    for _attempt in range(5):
        port = _free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        if proc.poll() is None:
            break
    else:
        pytest.fail("could not start redis-server")
    url = f"redis://127.0.0.1:{port}/0"
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def application_crd(kubesim: KubeSim) -> None:
    """The Application CRD, installed once per session (as a user would, with its file)."""
    import yaml

    from tests.kubesim.http import call

    crd = yaml.safe_load((Path(__file__).resolve().parents[1] / "deploy/crds/application.yaml")
                         .read_text())
    r = call(kubesim.url, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert r.status in (201, 409), r.body


@pytest.fixture
def env(kubesim: KubeSim, api_client: Any, redis_client: Any, tmp_path: Path,
        application_crd: None) -> Iterator[Any]:
    """One test's world: a repo, a control namespace, a reconciler (tests/test_reconcile)."""
    from tests.test_reconcile import Env

    yield Env(kubesim, api_client, redis_client, tmp_path)
