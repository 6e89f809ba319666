"""Fixtures for the source tests: repositories, servers on loopback, settings, mirrors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_tasks.settings import GitSettings
from gitops_tasks.source import GitMirrors
from tests.source.gitservers import GitDaemon, GitHTTPServer, HungServer, Origin

HTTP_USER = "alice"
HTTP_PASSWORD = "s3cret-t0ken-xyz"


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory every server serves; each test's repository gets a unique name in it."""
    return tmp_path_factory.mktemp("served")


@pytest.fixture
def origin(served: Path, tmp_path: Path) -> Origin:
    repo = Origin(served, tmp_path / "work", f"repo-{uuid.uuid4().hex[:8]}")
    repo.commit({"app/deploy.yaml": "kind: ConfigMap\n", "README.md": "hello\n"}, "initial")
    return repo


@pytest.fixture(scope="session")
def daemon(served: Path) -> Iterator[GitDaemon]:
    server = GitDaemon(served)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http_server(served: Path) -> Iterator[GitHTTPServer]:
    server = GitHTTPServer(served, HTTP_USER, HTTP_PASSWORD)
    yield server
    server.stop()


@pytest.fixture
def hung_server() -> Iterator[HungServer]:
    server = HungServer()
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path: Path) -> GitSettings:
    return GitSettings(cache_dir=tmp_path / "cache", timeout=10.0)


@pytest.fixture
def mirrors(settings: GitSettings) -> GitMirrors:
    return GitMirrors(settings)
