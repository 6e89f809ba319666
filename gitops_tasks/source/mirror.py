"""Git mirrors as the engine sees them: resolve a revision, export a commit, diff two commits.

Called by the refresh and sync tasks (through the engine): `resolve` a targetRevision to a
commit, `export` that commit's tree for rendering, `changed_files` for webhook path filters.

One bare mirror per normalised repo URL under `<cache_dir>/mirrors/` (see `fetching`), shared by
the worker processes of a host. A branch or tag costs one `ls-remote` round trip; the fetch
happens only when that commit is not in the mirror yet, so an unchanged remote is cheap.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from gitops_tasks.errors import (
    GitOpsError,
    InvalidApplication,
    RepoUnreachable,
    RevisionNotFound,
    SourceError,
)
from gitops_tasks.log import get_logger
from gitops_tasks.settings import GitSettings
from gitops_tasks.source.commands import run_git, run_git_input
from gitops_tasks.source.credentials import FROM_URL, RepoCredentials
from gitops_tasks.source.fetching import FULL_SHA, SHORT_SHA, Mirror, MirrorStats
from gitops_tasks.source.trees import evict_trees, export_tree, touch_tree
from gitops_tasks.source.urls import mirror_name, redact, split_userinfo, transport

CredentialLookup = Callable[[str], RepoCredentials | None]

# What git's check-ref-format refuses, plus a leading "-" (it would be read as an option).
_BAD_REVISION = re.compile(r"^-|[\s~^:?*\[\\\x00-\x1f\x7f]|\.\.|@\{|^/|/$|//|\.lock$|^\.|/\.")
_REMOTE_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_TRANSPORTS = ("http", "ssh", "git", "file")

log = get_logger(component="source")
_PRESENT_MAX = 4096


class GitMirrors:
    """Resolve, export and diff commits of remote repositories through local bare mirrors."""

    def __init__(
        self, settings: GitSettings, credentials: CredentialLookup | None = None
    ) -> None:
        self.settings = settings
        self._credentials = credentials
        self.stats = MirrorStats()
        self._resolved: dict[tuple[Path, str], tuple[str, float]] = {}
        # Commits known to be in a mirror: the render-input reads of one commit (several git
        # calls) check its presence once, not once per call.
        self._present: OrderedDict[tuple[Path, str], None] = OrderedDict()

    def check_cache_dir(self) -> None:
        """Fail at start, with what to do, when the cache directory cannot be written: else
        every refresh of every app fails later with a bare PermissionError (seen in a container
        whose cache volume was owned by root)."""
        path = self.settings.cache_dir
        try:
            (path / "mirrors").mkdir(parents=True, exist_ok=True)
            probe = path / f".writable-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise SourceError(
                f"GITOPS_TASKS_GIT_CACHE_DIR={path} is not writable by uid {os.getuid()} "
                f"({exc.strerror}): point it at a writable directory, or mount one there "
                "(an emptyDir in Kubernetes) owned by that user") from exc

    def mirror_path(self, repo_url: str) -> Path:
        return self.settings.cache_dir / "mirrors" / mirror_name(split_userinfo(repo_url)[0])

    def resolve(self, repo_url: str, revision: str, *, app: str | None = None) -> str:
        """The commit SHA that `revision` (branch, tag, full or short SHA, HEAD) names now."""
        mirror = self._mirror(repo_url, app)
        rev = revision.strip() or "HEAD"
        if _BAD_REVISION.search(rev):
            raise RevisionNotFound(
                f"targetRevision {rev!r} is not a valid branch, tag or commit name "
                f"(repository {mirror.shown})",
                app=app,
            )
        if FULL_SHA.match(rev.lower()) or SHORT_SHA.match(rev.lower()):
            return self._resolve_sha(mirror, rev, app)
        return self._resolve_ref(mirror, rev, app)

    def resolve_many(self, repo_url: str, revisions: Sequence[str]
                     ) -> dict[str, str | GitOpsError]:
        """{revision: commit SHA, or the error resolving it} for every revision of one repo,
        with a single ls-remote for all branch and tag names (a sweep's per-repo cost). Full
        SHAs need no remote at all. Commits are not fetched here: the refresh that renders one
        fetches it, under the mirror lock."""
        out: dict[str, str | GitOpsError] = {}
        try:
            mirror = self._mirror(repo_url, None)
        except GitOpsError as exc:
            return {rev: exc for rev in revisions}
        names = []
        for revision in dict.fromkeys(revisions):
            rev = revision.strip() or "HEAD"
            if _BAD_REVISION.search(rev):
                out[revision] = RevisionNotFound(
                    f"targetRevision {rev!r} is not a valid branch, tag or commit name "
                    f"(repository {mirror.shown})")
            elif FULL_SHA.match(rev.lower()):
                out[revision] = rev.lower()
            else:
                names.append(revision)
        if not names:
            return out
        try:
            refs, _ = mirror.ls_remote_many([n.strip() or "HEAD" for n in names], None)
        except GitOpsError as exc:
            return {**out, **{n: exc for n in names}}
        for revision in names:
            rev = revision.strip() or "HEAD"
            _, listed = _pick(refs, rev)
            if listed is not None:
                out[revision] = listed
            elif SHORT_SHA.match(rev.lower()):
                try:  # a short SHA: only the mirror knows it (no second ls-remote for names)
                    out[revision] = self.resolve(repo_url, revision)
                except GitOpsError as exc:
                    out[revision] = exc
            else:
                out[revision] = _not_found(mirror, rev, None,
                                           "(it may have been deleted or renamed)")
        return out

    def export(self, repo_url: str, sha: str, *, app: str | None = None) -> Path:
        """The directory holding commit `sha`'s tree, shared and read-only by convention.

        Use it right away: a tree not exported again for `settings.tree_min_idle_seconds` may
        be evicted (see `trees`). Each call stamps the tree as used; a new tree makes the
        repository's least recently used trees beyond `settings.max_trees_per_repo` go."""
        mirror = self._mirror(repo_url, app)
        trees = self.settings.cache_dir / "trees" / mirror.path.name
        if FULL_SHA.match(sha) and touch_tree(trees / sha):
            return trees / sha  # commits are immutable: no git at all, one utime
        full = self._commit(mirror, sha, app)
        self.stats.exports += 1
        tree = export_tree(mirror.path, full, trees / full, settings=self.settings,
                           repo=mirror.url, app=app)
        touch_tree(tree)
        self._evict(trees, tree, mirror, app)
        return tree

    def _evict(self, trees: Path, tree: Path, mirror: Mirror, app: str | None) -> None:
        """Bound the repository's exported trees; never fails the export that asked."""
        try:
            evicted = evict_trees(trees, keep=tree.name,
                                  max_trees=self.settings.max_trees_per_repo,
                                  min_idle=self.settings.tree_min_idle_seconds,
                                  repo=mirror.url, app=app)
        except Exception as exc:  # disk trouble must not fail a render: the tree is there
            log.warning("tree eviction failed; trees left in place", repo=mirror.shown,
                        app=app, error=str(exc))
            return
        self.stats.evicted_trees += len(evicted)

    def changed_files(
        self, repo_url: str, old_sha: str, new_sha: str, *, app: str | None = None
    ) -> list[str]:
        """Paths added, changed or deleted between two commits (both sides of a rename)."""
        mirror = self._mirror(repo_url, app)
        old, new = self._commit(mirror, old_sha, app), self._commit(mirror, new_sha, app)
        result = run_git(["diff", "--name-only", "--no-renames", "--no-ext-diff",
                          "--no-textconv", "-z", old, new], cwd=mirror.path)
        if not result.ok:
            raise RepoUnreachable(f"git diff in the mirror of {mirror.shown} failed: "
                                  f"{redact(result.stderr.strip())}", app=app)
        return sorted(p for p in result.stdout.split("\0") if p)

    def commit_info(self, repo_url: str, sha: str, *, app: str | None = None
                    ) -> dict[str, str]:
        """{sha, author, date, message} of a commit (fetched into the mirror if need be)."""
        mirror = self._mirror(repo_url, app)
        full = self._present_commit(mirror, sha, app)
        result = run_git(["show", "-s", "--no-show-signature",
                          "--format=%H%x00%an <%ae>%x00%aI%x00%B", full], cwd=mirror.path,
                         timeout=self.settings.timeout)
        if not result.ok:
            raise RepoUnreachable(f"git show in the mirror of {mirror.shown} failed: "
                                  f"{redact(result.stderr.strip())}", app=app)
        parts = result.stdout.split("\0", 3)
        if len(parts) != 4:
            raise RepoUnreachable(f"git show in the mirror of {mirror.shown} gave no commit",
                                  app=app)
        return {"sha": parts[0].strip(), "author": parts[1], "date": parts[2],
                "message": parts[3].strip()}

    def read_files(self, repo_url: str, sha: str, paths: Sequence[str], *,
                   app: str | None = None) -> dict[str, bytes | None]:
        """The content of each file at commit `sha` (None: no such file), with one git call
        and no export."""
        if not paths:
            return {}
        mirror = self._mirror(repo_url, app)
        full = self._present_commit(mirror, sha, app)
        stdin = "".join(f"{full}:{p}\n" for p in paths).encode()
        code, out = run_git_input(["cat-file", "--batch"], stdin, cwd=mirror.path,
                                  timeout=self.settings.timeout)
        if code != 0:
            raise RepoUnreachable(f"git cat-file in the mirror of {mirror.shown} failed",
                                  app=app)
        result: dict[str, bytes | None] = {}
        pos = 0
        for path in paths:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            pos = end + 1
            if len(header) == 3 and header[1] == b"blob":
                size = int(header[2])
                result[path] = out[pos:pos + size]
                pos += size + 1
            elif len(header) == 3:  # a tree or other object: its body is there, skip it
                pos += int(header[2]) + 1
                result[path] = None
            else:  # "<name> missing"
                result[path] = None
        return result

    def content_id(self, repo_url: str, sha: str, paths: Sequence[str], *,
                   app: str | None = None) -> str | None:
        """A digest of every file (path, mode, object id) under `paths` at commit `sha`: the
        same for two commits exactly when those files are. None when one is a symlink (what it
        points at may lie outside `paths`)."""
        mirror = self._mirror(repo_url, app)
        full = self._present_commit(mirror, sha, app)
        spec = [p for p in paths if p]
        result = run_git(["ls-tree", "-r", "-z", "--full-tree", full,
                          *(["--", *spec] if spec and len(spec) == len(paths) else [])],
                         cwd=mirror.path, timeout=self.settings.timeout)
        if not result.ok:
            raise RepoUnreachable(f"git ls-tree in the mirror of {mirror.shown} failed: "
                                  f"{redact(result.stderr.strip())}", app=app)
        if "\n120000 " in "\n" + result.stdout.replace("\0", "\n"):
            return None
        digest = hashlib.sha256("\0".join(paths).encode() + b"\1" + result.stdout.encode())
        return digest.hexdigest()[:32]

    # -- resolution ------------------------------------------------------------------------

    def _resolve_sha(self, mirror: Mirror, revision: str, app: str | None) -> str:
        rev = revision.lower()
        found = mirror.local_commit(rev)
        if found is None:
            mirror.fetch(app, done=lambda: mirror.local_commit(rev) is not None)
            found = mirror.local_commit(rev)
        if found is None and FULL_SHA.match(rev) and mirror.fetch_pinned(rev, app):
            found = mirror.local_commit(rev)
        if found is not None:
            return found
        if len(rev) < 40:
            # Hex-looking but maybe a branch or tag name after all ("cafe123" is a valid name).
            try:
                return self._resolve_ref(mirror, revision, app)
            except RevisionNotFound:
                pass
        raise _not_found(mirror, revision, app, "or that the commit was pushed (a short SHA "
                         "must also be unambiguous)")

    def _resolve_ref(self, mirror: Mirror, rev: str, app: str | None) -> str:
        key = (mirror.path, rev)
        cached = self._resolved.get(key)
        if cached and time.monotonic() - cached[1] < self.settings.resolve_ttl:
            return cached[0]
        refs, head_target = mirror.ls_remote(rev, app)
        ref, listed = _pick(refs, rev)
        if ref is None or listed is None:
            raise _not_found(mirror, rev, app, "(it may have been deleted or renamed)")
        sha: str = listed
        if mirror.local_commit(sha) is None:
            # Refs beyond branches and tags (refs/pull/1/head, ...) are fetched by name.
            extra = () if ref == "HEAD" or ref.startswith(("refs/heads/", "refs/tags/")) \
                else (f"+{ref}:{ref}",)
            mirror.fetch(app, extra, done=lambda: mirror.local_commit(listed) is not None)
            if mirror.local_commit(sha) is None:
                # Pushed to again between our ls-remote and fetch: what we fetched is newer.
                local_ref = head_target if ref == "HEAD" else ref
                moved = mirror.local_commit(local_ref) if local_ref else None
                if moved is None and not mirror.fetch_pinned(sha, app):
                    raise _not_found(mirror, rev, app, "(it moved while we fetched it)")
                sha = moved or sha
        self._resolved[key] = (sha, time.monotonic())
        return sha

    def _commit(self, mirror: Mirror, sha: str, app: str | None) -> str:
        """A full commit SHA present in the mirror (fetched if need be)."""
        sha = sha.strip().lower()
        if not (FULL_SHA.match(sha) or SHORT_SHA.match(sha)):
            raise RevisionNotFound(
                f"{sha!r} is not a commit SHA of {mirror.shown}; resolve() the revision first",
                app=app,
            )
        return self._resolve_sha(mirror, sha, app)

    def _present_commit(self, mirror: Mirror, sha: str, app: str | None) -> str:
        """As `_commit`, remembering (a bounded number of) full SHAs found present. Should one
        be pruned later, the git call that reads it fails and the caller falls back."""
        key = (mirror.path, sha)
        if key in self._present:
            self._present.move_to_end(key)
            return sha
        full = self._commit(mirror, sha, app)
        self._present[(mirror.path, full)] = None
        while len(self._present) > _PRESENT_MAX:
            self._present.popitem(last=False)
        return full

    def _mirror(self, repo_url: str, app: str | None) -> Mirror:
        url, username, password = split_userinfo(repo_url)
        # No options in disguise ("-u..."), no remote helpers ("ext::sh -c ..."), no transports
        # beyond those `auth` allows: a repoURL must never make git run a command.
        if (not url or url.startswith("-") or _REMOTE_HELPER.match(url)
                or transport(url) not in _TRANSPORTS):
            raise InvalidApplication(
                [("spec.source.repoURL", f"{redact(repo_url)!r} is not a repository URL git "
                  "can fetch from here (use https://, ssh://, git@host:path, git:// or file://)")],
                app=app,
            )
        creds = self._credentials(url) if self._credentials else None
        if creds is None and (username or password):
            creds = RepoCredentials(url=url, username=username, password=password,
                                    kind=FROM_URL, secret="the repoURL")
        return Mirror(url=url, shown=redact(repo_url), path=self.mirror_path(url), creds=creds,
                      settings=self.settings, stats=self.stats)


def _not_found(mirror: Mirror, rev: str, app: str | None, hint: str) -> RevisionNotFound:
    return RevisionNotFound(
        f"revision {rev!r} not found in {mirror.shown}: check that the branch, tag or commit "
        f"exists there {hint}",
        app=app,
    )


def _pick(refs: dict[str, str], rev: str) -> tuple[str | None, str | None]:
    """(ref, commit) that `rev` names in ls-remote output. Branches before tags, as Argo CD
    does; an annotated tag gives the commit it points to."""
    if rev == "HEAD":
        return ("HEAD", refs["HEAD"]) if "HEAD" in refs else (None, None)
    names = [rev] if rev.startswith("refs/") else [f"refs/heads/{rev}", f"refs/tags/{rev}",
                                                   f"refs/{rev}"]
    for name in names:
        peeled = refs.get(f"{name}^{{}}")
        if peeled:
            return name, peeled
        if name in refs:
            return name, refs[name]
    return None, None
