"""Exported commit trees: one directory per (repository, commit), extracted once and shared.

Called by `GitMirrors.export`. A commit's tree never changes, so every reader (render tasks in
any worker process of the host) can use the same directory; it is written to a temporary
directory beside its final place and renamed into place, so nobody ever sees half a tree, and two
processes exporting the same commit at once both end up with the winner's complete copy.

Layout: `<cache_dir>/trees/<mirror name>/<sha>/`, and `<mirror name>/.source` holding the
(redacted) repository URL, which lets `safety` name the repository in its messages.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from git.cmd import Git

from gitops_tasks.errors import SourceError, SourceTooLarge
from gitops_tasks.settings import GitSettings
from gitops_tasks.source.commands import run_git
from gitops_tasks.source.urls import redact

SOURCE_FILE = ".source"
_CHUNK = 1024 * 1024
_GITLINK = "160000"  # a submodule: exported as an empty directory, never fetched


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
