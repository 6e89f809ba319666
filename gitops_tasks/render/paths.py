"""Path safety for rendering, called by every renderer before it reads or copies a file.

The tree a renderer gets is a Git export, so its content is untrusted: a path with `..`, a
symlink to `/etc`, or a value file named `../../secrets.yaml` must never let a tool read outside
the tree. The source layer checks the app path too, but render does not rely on it: these checks
are cheap and make render safe on its own.

Everything here also hands out scratch copies of the tree, because the tree itself is shared
and read-only (other workers may be rendering from it at the same moment).
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import RenderError, UnsafePath

# Version-control metadata is never a manifest and never needed by a tool.
SKIP_DIRS = frozenset({".git", ".hg", ".svn"})


def relative(tree: Path, path: Path) -> str:
    """`path` as a repo-relative string for messages (absolute paths leak the worker's layout)."""
    try:
        rel = path.relative_to(tree)
    except ValueError:
        return str(path)
    return rel.as_posix() or "."


def is_inside(tree: Path, path: Path) -> bool:
    """True when the fully resolved `path` is `tree` or below it. `tree` must be resolved."""
    resolved = path.resolve()
    return resolved == tree or tree in resolved.parents


def safe_join(tree: Path, rel: str, *, app: str, what: str = "path") -> Path:
    """`tree / rel`, refusing anything that leaves the tree lexically or through a symlink.

    The result is the unresolved joined path (messages keep the user's spelling), guaranteed to
    resolve inside `tree`. A leading `/` means the repo root, as Argo CD reads value files.
    """
    cleaned = rel.strip()
    parts = [p for p in cleaned.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(f"{what} {rel!r} leaves the repository (contains '..')", app=app)
    joined = tree.joinpath(*parts)
    if not is_inside(tree, joined):
        raise UnsafePath(f"{what} {rel!r} resolves outside the repository through a symlink",
                         app=app)
    return joined


def check_symlinks(tree: Path, root: Path, *, app: str) -> None:
    """Refuse if any symlink under `root` points outside `tree` (or dangles out of it).

    Tools (kustomize, helm, jsonnet imports, plugins) follow symlinks freely, so the only safe
    moment to check is before they run. Directory symlinks are checked but not descended into:
    their target is inside the tree and gets checked on its own account.
    """
    if root.is_symlink() and not is_inside(tree, root):
        raise UnsafePath(f"symlink {relative(tree, root)!r} points outside the repository",
                         app=app)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        base = Path(dirpath)
        for name in (*dirnames, *filenames):
            entry = base / name
            if entry.is_symlink() and not is_inside(tree, entry):
                raise UnsafePath(
                    f"symlink {relative(tree, entry)!r} points outside the repository "
                    f"(to {os.readlink(entry)!r})", app=app)


def check_symlinks_reached(tree: Path, roots: list[Path], *, app: str) -> None:
    """Refuse a symlink out of `tree` that a tool reading `roots` would reach: under a root,
    or under an in-tree directory that a symlink there leads to (followed, since the tool
    follows it too). Links elsewhere in the tree are none of this render's business: in a
    monorepo one team's bad link must not stop every other app."""
    pending = list(roots)
    seen: set[Path] = set()
    while pending:
        top = pending.pop()
        resolved = top.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        if top.is_symlink() and not is_inside(tree, top):
            raise UnsafePath(f"symlink {relative(tree, top)!r} points outside the repository "
                             f"(to {os.readlink(top)!r})", app=app)
        if top.is_symlink() and resolved.is_dir():
            pending.append(resolved)
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
            base = Path(dirpath)
            for name in (*dirnames, *filenames):
                entry = base / name
                if not entry.is_symlink():
                    continue
                if not is_inside(tree, entry):
                    raise UnsafePath(
                        f"symlink {relative(tree, entry)!r} points outside the repository "
                        f"(to {os.readlink(entry)!r})", app=app)
                if entry.resolve().is_dir():
                    pending.append(entry.resolve())


def copy_tree(tree: Path, dest: Path, *, app: str, outside: Path | None = None) -> None:
    """Copy `tree` to `dest` (which must not exist) so a tool may write in the copy.

    Symlinks are re-created relative and pointing into the copy, never back into `tree`: a tool
    that writes through a symlink must change the copy only. Call `check_symlinks` first; a link
    that leaves the tree is refused here as well, in case the caller did not. With `outside`
    (the app's directory), a leaving link not under it is left out of the copy instead: the
    tool never sees it, and the app does not fail for another team's link.
    """
    dest.mkdir(parents=True)
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        src_dir = Path(dirpath)
        dst_dir = dest / src_dir.relative_to(tree)
        kept_dirs = []
        for name in dirnames:
            src = src_dir / name
            if src.is_symlink():
                _copy_link(tree, src, dst_dir / name, app=app, outside=outside)
            else:
                (dst_dir / name).mkdir()
                kept_dirs.append(name)
        dirnames[:] = kept_dirs
        for name in filenames:
            src = src_dir / name
            if src.is_symlink():
                _copy_link(tree, src, dst_dir / name, app=app, outside=outside)
            elif src.is_file():
                shutil.copyfile(src, dst_dir / name)
                # Keep the execute bit (plugins may run scripts from the repo), drop the rest:
                # the export may be read-only and the copy must be writable and removable.
                mode = 0o755 if os.stat(src).st_mode & stat.S_IXUSR else 0o644
                os.chmod(dst_dir / name, mode)


def _copy_link(tree: Path, src: Path, dst: Path, *, app: str,
               outside: Path | None = None) -> None:
    target = src.resolve()
    if not (target == tree or tree in target.parents):
        if outside is not None and not (src == outside or outside in src.parents):
            return
        raise UnsafePath(f"symlink {relative(tree, src)!r} points outside the repository",
                         app=app)
    os.symlink(os.path.relpath(target, src.parent.resolve()), dst)


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A private temporary directory, removed afterwards even if a tool made files read-only."""
    path = Path(tempfile.mkdtemp(prefix=f"gitops-render-{prefix}-"))
    try:
        yield path
    finally:
        _force_rmtree(path)


def _force_rmtree(path: Path) -> None:
    def make_writable_and_retry(_func: object, failed: str, _exc: object) -> None:
        # A plugin may leave read-only files or directories behind; the scratch dir is ours.
        try:
            os.chmod(os.path.dirname(failed), 0o700)
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, 0o700)
                shutil.rmtree(failed, ignore_errors=True)
            else:
                os.unlink(failed)
        except OSError:
            pass

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=make_writable_and_retry)
    else:
        shutil.rmtree(path, onerror=make_writable_and_retry)


def require_dir(tree: Path, rel: str, *, app: str) -> Path:
    """The app directory `tree/rel`, checked to be inside the tree and to exist."""
    path = safe_join(tree, rel, app=app, what="app path")
    if not path.is_dir():
        raise RenderError(f"app path {rel!r} does not exist or is not a directory", app=app,
                          file=rel)
    return path
