"""Shared helpers of the render tests: the fixture repository, contexts, a tree fingerprint."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gitops_tasks.render import RenderContext
from gitops_tasks.settings import RenderSettings

REPO = Path(__file__).resolve().parent / "testdata" / "repo"
APP = "guestbook"
NAMESPACE = "dest-ns"
REVISION = "0123456789abcdef0123456789abcdef01234567"


def ctx(*, plugins: Mapping[str, tuple[str, ...]] | None = None, timeout: float = 30.0,
        max_output: int = 16 * 1024 * 1024, app: str = APP,
        namespace: str = NAMESPACE) -> RenderContext:
    return RenderContext(
        app_name=app, namespace=namespace, revision=REVISION,
        repo_url="https://git.example.com/org/repo.git",
        settings=RenderSettings(tool_timeout=timeout, plugins=dict(plugins or {}),
                                max_output_bytes=max_output),
    )


def names(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in objects]


def by_name(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["metadata"]["name"] == name]
    assert len(matches) == 1, names(objects)
    return matches[0]


def tree_fingerprint(root: Path) -> str:
    """Hash of every path, type, mode, content and symlink target under `root`."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted([*dirnames, *filenames]):
            path = Path(dirpath) / name
            st = path.lstat()
            digest.update(f"{path.relative_to(root)}\0{st.st_mode:o}\0".encode())
            if path.is_symlink():
                digest.update(os.readlink(path).encode())
            elif path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()


def copy_repo(dest: Path) -> Path:
    """A private copy of the fixture repository, for tests that add files (symlinks...)."""
    shutil.copytree(REPO, dest, symlinks=True)
    return dest
