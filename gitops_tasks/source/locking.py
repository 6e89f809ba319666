"""An inter-process lock on a file (`fcntl.flock`), with a timeout.

Called by `mirror.GitMirrors` around every clone and fetch of a mirror, which all worker
processes of a host share, and by `trees.evict_trees` around the eviction of a repository's
exported trees. The kernel releases a flock when its holder dies, so a killed worker
never leaves a mirror locked. Readers take no lock: git's object and ref writes are atomic, so a
`rev-parse` or `archive` alongside a fetch sees the old or the new state, never a broken one.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gitops_tasks.errors import MirrorBusy


@contextmanager
def file_lock(path: Path, *, timeout: float, what: str, app: str | None = None) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing) for the block; `MirrorBusy` if
    another process holds it for longer than `timeout` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise MirrorBusy(
                        f"{what} stayed locked by another process for {timeout:g}s "
                        f"(lock file {path}); will retry",
                        app=app,
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
