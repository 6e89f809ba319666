"""Exported commit trees: one directory per (repository, commit), extracted once and shared.

Called by `GitMirrors.export`. A commit's tree never changes, so every reader (render tasks in
any worker process of the host) can use the same directory; it is written to a temporary
directory beside its final place and renamed into place, so nobody ever sees half a tree, and two
processes exporting the same commit at once both end up with the winner's complete copy.

Layout: `<cache_dir>/trees/<mirror name>/<sha>/`, and `<mirror name>/.source` holding the
(redacted) repository URL, which lets `safety` name the repository in its messages.

Retention: every export stamps the tree directory's own mtime (`touch_tree`, one `utime`), so
the mtime says when the tree was last handed to a reader. After a new tree is extracted,
`evict_trees` removes that repository's least recently used trees beyond
`GitSettings.max_trees_per_repo`, under `<cache_dir>/trees/<mirror name>.lock` so two processes
never evict at once. It never removes the tree just exported, nor one used less than
`GitSettings.tree_min_idle_seconds` ago. Readers take no lock: the ASSUMPTION that keeps them
safe is that a reader is done with a path within `tree_min_idle_seconds` of the `export()` call
that returned it (a render takes seconds; the default threshold is ten minutes). A reader that
needs a tree for longer must call `export()` again, which stamps it again. A victim is first
renamed to `.trash-*` in the same directory (atomic: its sha name then either holds the whole
tree or nothing, and a later export of that sha simply extracts it again), then deleted; if it
was used between our look at it and the rename, it is renamed back.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from git.cmd import Git

from gitops_tasks.errors import MirrorBusy, SourceError, SourceTooLarge
from gitops_tasks.log import get_logger
from gitops_tasks.settings import GitSettings
from gitops_tasks.source.commands import run_git
from gitops_tasks.source.fetching import FULL_SHA
from gitops_tasks.source.locking import file_lock
from gitops_tasks.source.urls import redact

SOURCE_FILE = ".source"
TRASH_PREFIX = ".trash-"
_CHUNK = 1024 * 1024
_GITLINK = "160000"  # a submodule: exported as an empty directory, never fetched

log = get_logger(component="source")


@dataclass(frozen=True)
class _Entry:
    mode: str
    kind: str
    size: int
    path: str


def _list_tree(mirror: Path, sha: str) -> list[_Entry]:
    result = run_git(["ls-tree", "-r", "-l", "-z", "--full-tree", sha], cwd=mirror)
    if not result.ok:
        raise SourceError(f"cannot list commit {sha}: {redact(result.stderr.strip())}")
    entries = []
    for record in result.stdout.split("\0"):
        if not record:
            continue
        meta, _, path = record.partition("\t")
        mode, kind, _obj, size = meta.split()
        entries.append(_Entry(mode, kind, int(size) if size.isdigit() else 0, path))
    return entries


def _check_limits(
    entries: list[_Entry], settings: GitSettings, where: str, app: str | None
) -> None:
    """Refuse before writing anything: ls-tree knows every blob's size."""
    total = 0
    for entry in entries:
        if entry.size > settings.max_file_bytes:
            raise SourceTooLarge(
                f"file {entry.path!r} in {where} is {entry.size} bytes, over the limit of "
                f"{settings.max_file_bytes} (GITOPS_TASKS_GIT_MAX_FILE_BYTES): remove it from "
                "the repository or raise the limit",
                app=app,
            )
        total += entry.size
    if total > settings.max_repo_bytes:
        raise SourceTooLarge(
            f"the tree of {where} holds {total} bytes, over the limit of "
            f"{settings.max_repo_bytes} (GITOPS_TASKS_GIT_MAX_REPO_BYTES): split the "
            "repository or raise the limit",
            app=app,
        )


def _extract(stream: IO[bytes], root: Path) -> None:
    """Write the members of git's tar stream under `root`: regular files, directories and
    symlinks as symlinks (the `safety` module judges where they point)."""
    links: set[str] = set()
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            parts = member.name.rstrip("/").split("/")
            if member.name.startswith("/") or any(p in ("", ".", "..") for p in parts):
                raise SourceError(f"refusing tar member {member.name!r} from git archive")
            # git never makes "a/b" where "a" is a symlink, but never write through one anyway.
            if any("/".join(parts[:i]) in links for i in range(1, len(parts))):
                raise SourceError(f"refusing {member.name!r}: a parent is a symlink")
            target = root.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            if member.isdir():
                target.mkdir(exist_ok=True)
            elif member.issym():
                os.symlink(member.linkname, target)
                links.add("/".join(parts))
            elif member.isreg():
                source = tar.extractfile(member)
                assert source is not None
                mode = 0o755 if member.mode & 0o111 else 0o644
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                with os.fdopen(os.open(target, flags, mode), "wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)


def _archive_into(mirror: Path, sha: str, root: Path) -> None:
    # --worktree-attributes in a bare repo with no attributes file: the tree's own
    # .gitattributes (export-ignore, export-subst) must not change what we render.
    process = Git(str(mirror)).execute(
        ["git", "-c", "core.attributesFile=/dev/null", "archive", "--format=tar",
         "--worktree-attributes", sha],
        as_process=True,
    )
    proc = process.proc
    assert proc is not None and proc.stdout is not None
    try:
        _extract(proc.stdout, root)
        if proc.wait() != 0:
            stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise SourceError(f"git archive of {sha} failed: {redact(stderr.strip())}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _record_source(directory: Path, repo: str) -> None:
    marker = directory / SOURCE_FILE
    if marker.exists():
        return
    handle, temp = tempfile.mkstemp(dir=directory, prefix=".source.")
    with os.fdopen(handle, "w") as out:
        out.write(redact(repo) + "\n")
    os.replace(temp, marker)


def export_tree(
    mirror: Path, sha: str, dest: Path, *, settings: GitSettings, repo: str, app: str | None
) -> Path:
    """`dest` holding the tree of commit `sha` of `mirror`, extracted if not there yet."""
    if dest.is_dir():
        return dest
    where = f"{redact(repo)}@{sha}"
    _check_limits(_list_tree(mirror, sha), settings, where, app)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _record_source(dest.parent, repo)
    temp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{sha[:12]}.tmp-"))
    try:
        _archive_into(mirror, sha, temp)
        temp.chmod(0o755)  # mkdtemp made it 0700; other readers (plugins) need to enter it
        try:
            os.rename(temp, dest)
        except OSError:
            # Another process won the race and its tree is complete: use it.
            if not dest.is_dir():
                raise
            shutil.rmtree(temp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return dest


def describe_tree(tree: Path) -> str:
    """`<repo>@<sha>` for an exported tree (for messages), or the directory if not one of ours."""
    try:
        repo = (tree.parent / SOURCE_FILE).read_text().strip()
    except OSError:
        return str(tree)
    return f"{repo}@{tree.name}"


# -- retention -----------------------------------------------------------------------------


def touch_tree(tree: Path) -> bool:
    """Record that `tree` is being used now: set its own mtime (one `utime` syscall, atomic).
    False if there is no such tree (never extracted, or evicted)."""
    # An explicit fine-grained time, not the kernel's "now": that is stamped from a coarse clock
    # (a few ms), and two uses in quick succession must still be ordered.
    now = time.time_ns()
    try:
        os.utime(tree, ns=(now, now))
        return True
    except FileNotFoundError:
        return False
    except OSError:
        pass
    # Explicit times need ownership (a tree extracted by another user): "now" only needs write
    # access. If even that is refused, the tree is still perfectly usable, just not stamped.
    with contextlib.suppress(OSError):
        os.utime(tree)
        return True
    return tree.is_dir()


def evict_trees(
    repo_dir: Path, *, keep: str, max_trees: int, min_idle: float, repo: str,
    app: str | None = None,
) -> list[str]:
    """Delete the least recently used trees of one repository (`<cache_dir>/trees/<mirror>`)
    beyond `max_trees`, sparing `keep` (the tree just exported) and every tree used less than
    `min_idle` seconds ago. The SHAs deleted. Skipped if another process is evicting this
    repository's trees right now: the next new tree catches up. Deletion failures are logged,
    not raised (the debris is removed by a later eviction)."""
    trees, trash = _scan(repo_dir)
    if not trash and len(trees) <= max(max_trees, 1):
        return []  # the common case: no lock, one directory listing
    try:
        with file_lock(repo_dir.with_name(repo_dir.name + ".lock"), timeout=0,
                       what=f"the exported trees of {redact(repo)}", app=app):
            return _evict_locked(repo_dir, keep, max_trees, min_idle, repo, app)
    except MirrorBusy:
        log.debug("tree eviction skipped: another process is evicting", repo=redact(repo),
                  app=app)
        return []


def _scan(repo_dir: Path) -> tuple[dict[str, int], list[str]]:
    """({sha: mtime_ns} of the trees, names of `.trash-*` debris) in `repo_dir`."""
    trees: dict[str, int] = {}
    trash: list[str] = []
    try:
        entries = list(os.scandir(repo_dir))
    except FileNotFoundError:
        return trees, trash
    for entry in entries:
        if entry.name.startswith(TRASH_PREFIX):
            trash.append(entry.name)
        elif FULL_SHA.match(entry.name):
            with contextlib.suppress(OSError):  # evicted while we looked: not a tree any more
                if entry.is_dir(follow_symlinks=False):
                    trees[entry.name] = entry.stat(follow_symlinks=False).st_mtime_ns
    return trees, trash


def _evict_locked(
    repo_dir: Path, keep: str, max_trees: int, min_idle: float, repo: str, app: str | None
) -> list[str]:
    trees, trash = _scan(repo_dir)  # again: another process may have evicted meanwhile
    # Only lock holders make `.trash-*` entries, and nobody reads them: any found now is left
    # by an evictor that crashed or failed to delete.
    for name in trash:
        _delete(repo_dir / name, repo, app)
    now = time.time_ns()
    # Most recently used first; the tree just exported always leads and is always kept.
    ranked = sorted((sha for sha in trees if sha != keep), key=trees.__getitem__, reverse=True)
    evicted: list[str] = []
    for sha in ranked[max(max_trees - 1, 0):]:
        idle = (now - trees[sha]) / 1e9
        if idle < min_idle:
            continue  # a render may still be reading it
        tree = repo_dir / sha
        victim = repo_dir / f"{TRASH_PREFIX}{sha[:12]}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.rename(tree, victim)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not evict exported tree", repo=redact(repo), app=app,
                        sha=sha, error=str(exc))
            continue
        if _used_since(victim, trees[sha]):
            # Exported again between our scan and the rename (a reader holds its path now):
            # put it back. If that sha was meanwhile extracted anew, that copy serves.
            try:
                os.rename(victim, tree)
                continue
            except OSError:
                pass
        evicted.append(sha)
        log.info("evicted exported tree", repo=redact(repo), app=app, sha=sha,
                 idle_seconds=round(idle, 1))
        _delete(victim, repo, app)
    return evicted


def _used_since(tree: Path, mtime_ns: int) -> bool:
    try:
        return os.stat(tree, follow_symlinks=False).st_mtime_ns != mtime_ns
    except OSError:
        return False


def _delete(path: Path, repo: str, app: str | None) -> None:
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not delete evicted tree; will retry at the next eviction",
                    repo=redact(repo), app=app, path=str(path), error=str(exc))
