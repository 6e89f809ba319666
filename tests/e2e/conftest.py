"""Fixtures of the end-to-end tests: one kubesim process and one redis-server per xdist worker,
and a fresh `Stack` (control namespace, Redis database, repository, processes) per test."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.redisserver import RedisServer

from .stack import CRD, KubeSimProcess, Stack

_databases = itertools.cycle(range(1, 16))


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSimProcess]:
    process = KubeSimProcess(tmp_path_factory.mktemp("kubesim"))
    stack_tmp = tmp_path_factory.mktemp("crd")
    installer = Stack.__new__(Stack)
    installer.sim, installer.tmp = process, stack_tmp
    installer.kubectl("apply", "--server-side", "-f", str(CRD))
    yield process
    process.close()


@pytest.fixture(scope="session")
def e2e_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("e2e-redis")).start()
    yield server
    server.stop()


@pytest.fixture
def stack(sim: KubeSimProcess, e2e_redis: RedisServer, tmp_path: Path,
          request: pytest.FixtureRequest) -> Iterator[Stack]:
    db = next(_databases)
    url = f"redis://127.0.0.1:{e2e_redis.port}/{db}"
    redis.Redis.from_url(url).flushdb()
    env = getattr(request, "param", {}) or {}
    installed = Stack(sim, url, tmp_path, **env)
    yield installed
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        sys.stderr.write(installed.logs())  # shown with the failure
    installed.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)
