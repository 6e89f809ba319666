"""A worker or receiver that cannot write its Git cache refuses to start, saying which setting
and what to do, instead of failing every refresh of every app later."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).parent / "gitops-tasks")


@pytest.mark.parametrize("argv", [["worker"], ["webhook", "--insecure", "--port", "0"]])
def test_an_unwritable_git_cache_stops_the_process_at_start(tmp_path: Path,
                                                            argv: list[str]) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_TASKS_")}
    env["GITOPS_TASKS_GIT_CACHE_DIR"] = str(not_a_dir / "cache")
    # Nothing answers here: the check comes before any connection.
    env["GITOPS_TASKS_REDIS_URL"] = "redis://127.0.0.1:1/0"
    done = subprocess.run([CLI, *argv], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: GITOPS_TASKS_GIT_CACHE_DIR={not_a_dir}/cache is not "
                           "writable") and "Traceback" not in done.stderr
