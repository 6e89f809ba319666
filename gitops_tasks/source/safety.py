"""The app path inside an exported tree, refused if it (or anything under it) leaves the tree.

Called by the render layer with the tree from `GitMirrors.export` and the Application's
`source.path`, before any tool reads a file: a renderer that follows a symlink to `/etc` or to
another app's secrets must never get the chance.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from gitops_tasks.errors import AppPathNotFound, UnsafePath
from gitops_tasks.source.trees import describe_tree


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _check_link(link: Path, root: Path, shown: str, where: str, app: str | None) -> None:
    target = link.resolve()  # follows chains of links; a dangling one resolves lexically
    if not _inside(target, root):
        raise UnsafePath(
            f"symlink {shown!r} in {where} points to {os.readlink(link)!r}, outside the "
            "repository: make it relative and inside the repository",
            app=app,
        )


def resolve_app_path(tree: Path, path: str, *, app: str | None = None) -> Path:
    """`tree/path`, after refusing absolute paths, `..` escapes and any symlink on the path or
    anywhere below it that points outside the tree (`UnsafePath`, naming it); a missing path is
    `AppPathNotFound`, naming the path, the repository and the commit."""
    root = tree.resolve()
    where = describe_tree(tree)
    pure = PurePosixPath(path.strip() or ".")
    if pure.is_absolute():
        raise UnsafePath(
            f"path {path!r} is absolute; Application paths are relative to the repository root",
            app=app,
        )
    # Lexically first, as Argo CD's path join does: 'a/x/../b' is 'a/b' even if 'a/x' is not
    # there, and 'a/../../x' is refused before anything on disk is looked at.
    parts: list[str] = []
    for part in pure.parts:
        if part == "..":
            if not parts:
                raise UnsafePath(f"path {path!r} leaves the repository through '..'", app=app)
            parts.pop()
        elif part != ".":
            parts.append(part)
    # Then each component on disk, so a symlinked directory on the way is named precisely.
    current = root
    shown = PurePosixPath()
    for part in parts:
        shown = shown / part
        current = current / part
        if current.is_symlink():
            _check_link(current, root, str(shown), where, app)
        if not current.exists():
            raise AppPathNotFound(
                f"path {path!r} does not exist in {where}: check the Application's source.path "
                "and targetRevision",
                app=app,
            )
        current = current.resolve()
    if current.is_dir():
        _check_tree_below(current, root, where, app)
    return tree.joinpath(*current.relative_to(root).parts)


def _check_tree_below(start: Path, root: Path, where: str, app: str | None) -> None:
    """Every symlink reachable from `start`: those under it, and those under directories that
    its in-tree symlinks lead to (a renderer reading `app/shared/x` follows them too)."""
    pending = [start]
    seen: set[Path] = set()
    while pending:
        top = pending.pop()
        if top in seen:
            continue
        seen.add(top)
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [*dirnames, *filenames]:
                entry = Path(dirpath) / name
                if not entry.is_symlink():
                    continue
                shown = str(PurePosixPath(*entry.relative_to(root).parts))
                _check_link(entry, root, shown, where, app)
                target = entry.resolve()
                if target.is_dir():
                    pending.append(target)
