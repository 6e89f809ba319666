"""Bare mirrors of remote repositories, shared by the worker processes of a host.

Called by the refresh and sync tasks (through the engine): `resolve` a targetRevision to a
commit, `export` that commit's tree for rendering, `changed_files` for webhook path filters.

One bare mirror per normalised repo URL under `<cache_dir>/mirrors/`. Network commands run with
a hard timeout and credentials from `auth`; clones and fetches run under a per-mirror flock, so
concurrent workers never fetch into one mirror at once. A branch or tag costs one `ls-remote`
round trip; the fetch happens only when that commit is not in the mirror yet.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitops_tasks.errors import InvalidApplication, RepoUnreachable, RevisionNotFound
from gitops_tasks.log import get_logger
from gitops_tasks.settings import GitSettings
from gitops_tasks.source.auth import git_env
from gitops_tasks.source.commands import GitResult, network_error, run_git
from gitops_tasks.source.credentials import FROM_URL, RepoCredentials
from gitops_tasks.source.locking import file_lock
from gitops_tasks.source.trees import export_tree
from gitops_tasks.source.urls import mirror_name, redact, split_userinfo

CredentialLookup = Callable[[str], RepoCredentials | None]

_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
# Seven hex digits is git's own shortest default abbreviation; shorter is taken as a ref name.
_SHORT_SHA = re.compile(r"^[0-9a-f]{7,39}$")
# What git's check-ref-format refuses, plus a leading "-" (it would be read as an option).
_BAD_REVISION = re.compile(r"^-|[\s~^:?*\[\\\x00-\x1f\x7f]|\.\.|@\{|^/|/$|//|\.lock$|^\.|/\.")
_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
# Always keep fetched objects as one pack, never as loose objects: a pack appears at once when
# its index is renamed into place, so a reader (which takes no lock) that finds a commit finds
# its whole tree too, and a killed fetch leaves no commit without its tree.
_FETCH = ("-c", "fetch.unpackLimit=1", "-c", "transfer.unpackLimit=1", "fetch", "--quiet",
          "--no-auto-gc")
# Commits fetched by SHA (not on any branch or tag) are kept under here, outside --prune's reach.
_PINNED = "refs/gitops-tasks/pinned/"
_UNADVERTISED = re.compile(
    r"not our ref|couldn't find remote ref|unadvertised object|no such remote ref", re.I
)

log = get_logger(component="source")


@dataclass
class MirrorStats:
    """Counters for tests and `bench/`: what this `GitMirrors` asked of remotes."""

    ls_remotes: int = 0
    fetches: int = 0
    exports: int = 0


@dataclass(frozen=True)
class _Remote:
    url: str  # what git is given: no userinfo secrets
    shown: str  # redacted, for messages
    mirror: Path
    lock: Path
    creds: RepoCredentials | None


class GitMirrors:
    """Resolve, export and diff commits of remote repositories through local bare mirrors."""

    def __init__(
        self, settings: GitSettings, credentials: CredentialLookup | None = None
    ) -> None:
        self.settings = settings
        self._credentials = credentials
        self.stats = MirrorStats()
        self._resolved: dict[tuple[Path, str], tuple[str, float]] = {}

    # -- public API ------------------------------------------------------------------------

    def mirror_path(self, repo_url: str) -> Path:
        return self.settings.cache_dir / "mirrors" / mirror_name(split_userinfo(repo_url)[0])

    def resolve(self, repo_url: str, revision: str, *, app: str | None = None) -> str:
        """The commit SHA that `revision` (branch, tag, full or short SHA, HEAD) names now."""
        remote = self._remote(repo_url, app)
        rev = revision.strip() or "HEAD"
        if _BAD_REVISION.search(rev):
            raise RevisionNotFound(
                f"targetRevision {rev!r} is not a valid branch, tag or commit name "
                f"(repository {remote.shown})",
                app=app,
            )
        if _FULL_SHA.match(rev.lower()) or _SHORT_SHA.match(rev.lower()):
            return self._resolve_sha(remote, rev, app)
        return self._resolve_ref(remote, rev, app)

    def export(self, repo_url: str, sha: str, *, app: str | None = None) -> Path:
        """The directory holding commit `sha`'s tree, shared and read-only by convention."""
        remote = self._remote(repo_url, app)
        trees = self.settings.cache_dir / "trees" / remote.mirror.name
        if _FULL_SHA.match(sha) and (trees / sha).is_dir():
            return trees / sha  # commits are immutable: no git at all
        full = self._commit(remote, sha, app)
        self.stats.exports += 1
        return export_tree(remote.mirror, full, trees / full, settings=self.settings,
                           repo=remote.url, app=app)

    def changed_files(
        self, repo_url: str, old_sha: str, new_sha: str, *, app: str | None = None
    ) -> list[str]:
        """Paths added, changed or deleted between two commits (both sides of a rename)."""
        remote = self._remote(repo_url, app)
        old, new = self._commit(remote, old_sha, app), self._commit(remote, new_sha, app)
        result = run_git(["diff", "--name-only", "--no-renames", "--no-ext-diff",
                          "--no-textconv", "-z", old, new], cwd=remote.mirror)
        if not result.ok:
            raise RepoUnreachable(f"git diff in the mirror of {remote.shown} failed: "
                                  f"{redact(result.stderr.strip())}", app=app)
        return sorted(p for p in result.stdout.split("\0") if p)

    # -- resolution ------------------------------------------------------------------------

    def _resolve_sha(self, remote: _Remote, rev: str, app: str | None) -> str:
        rev = rev.lower()
        found = self._local_commit(remote, rev)
        if found is None:
            self._fetch(remote, app, done=lambda: self._local_commit(remote, rev) is not None)
            found = self._local_commit(remote, rev)
        if found is None and _FULL_SHA.match(rev) and self._fetch_pinned(remote, rev, app):
            found = self._local_commit(remote, rev)
        if found is not None:
            return found
        if len(rev) < 40:
            # Hex-looking but maybe a branch or tag name after all ("cafe123" is a valid name).
            try:
                return self._resolve_ref(remote, rev, app)
            except RevisionNotFound:
                pass
        raise self._not_found(remote, rev, app, "or that the commit was pushed (a short SHA "
                              "must also be unambiguous)")

    def _resolve_ref(self, remote: _Remote, rev: str, app: str | None) -> str:
        key = (remote.mirror, rev)
        cached = self._resolved.get(key)
        if cached and time.monotonic() - cached[1] < self.settings.resolve_ttl:
            return cached[0]
        refs, head_target = self._ls_remote(remote, rev, app)
        ref, listed = _pick(refs, rev)
        if ref is None or listed is None:
            raise self._not_found(remote, rev, app, "(it may have been deleted or renamed)")
        sha: str = listed
        if self._local_commit(remote, sha) is None:
            extra = () if ref == "HEAD" or ref.startswith(("refs/heads/", "refs/tags/")) \
                else (f"+{ref}:{ref}",)
            self._fetch(remote, app, extra, done=lambda: self._local_commit(remote, listed)
                        is not None)
            if self._local_commit(remote, sha) is None:
                # Pushed to again between our ls-remote and fetch: what we fetched is newer.
                local_ref = head_target if ref == "HEAD" else ref
                moved = self._local_commit(remote, local_ref) if local_ref else None
                if moved is None and not self._fetch_pinned(remote, sha, app):
                    raise self._not_found(remote, rev, app, "(it moved while we fetched it)")
                sha = moved or sha
        self._resolved[key] = (sha, time.monotonic())
        return sha

    def _commit(self, remote: _Remote, sha: str, app: str | None) -> str:
        """A full commit SHA present in the mirror (fetched if need be)."""
        sha = sha.strip().lower()
        if not (_FULL_SHA.match(sha) or _SHORT_SHA.match(sha)):
            raise RevisionNotFound(
                f"{sha!r} is not a commit SHA of {remote.shown}; resolve() the revision first",
                app=app,
            )
        return self._resolve_sha(remote, sha, app)

    def _not_found(
        self, remote: _Remote, rev: str, app: str | None, hint: str
    ) -> RevisionNotFound:
        return RevisionNotFound(
            f"revision {rev!r} not found in {remote.shown}: check that the branch, tag or commit "
            f"exists there {hint}",
            app=app,
        )

    def _local_commit(self, remote: _Remote, rev: str) -> str | None:
        """The full SHA of commit `rev` in the mirror, or None. For a SHA-looking `rev`, only an
        object whose name starts with it counts: a stale local branch of that name must not."""
        if not (remote.mirror / "HEAD").exists():
            return None
        result = run_git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                         cwd=remote.mirror)
        sha = result.stdout.strip()
        if not result.ok or not _FULL_SHA.match(sha):
            return None
        if _SHORT_SHA.match(rev) or _FULL_SHA.match(rev):
            return sha if sha.startswith(rev) else None
        return sha

    # -- remote commands -------------------------------------------------------------------

    def _remote(self, repo_url: str, app: str | None) -> _Remote:
        url, username, password = split_userinfo(repo_url)
        if not url or url.startswith("-"):
            raise InvalidApplication(
                [("spec.source.repoURL", f"{redact(repo_url)!r} is not a repository URL")],
                app=app,
            )
        creds = self._credentials(url) if self._credentials else None
        if creds is None and (username or password):
            creds = RepoCredentials(url=url, username=username, password=password,
                                    kind=FROM_URL, secret="the repoURL")
        mirror = self.mirror_path(url)
        return _Remote(url=url, shown=redact(repo_url), mirror=mirror,
                       lock=mirror.with_name(mirror.name + ".lock"), creds=creds)

    def _network(self, remote: _Remote, args: Sequence[str], cwd: Path) -> GitResult:
        with git_env(remote.url, remote.creds, timeout=self.settings.timeout,
                     cache_dir=self.settings.cache_dir) as env:
            return run_git(args, cwd=cwd, env=env, timeout=self.settings.timeout)

    def _raise(self, result: GitResult, remote: _Remote, action: str, app: str | None) -> None:
        if not result.ok:
            raise network_error(result, action=action, repo=remote.url,
                                timeout=self.settings.timeout, app=app,
                                credentials_from=remote.creds.secret if remote.creds else "")

    def _ls_remote(
        self, remote: _Remote, rev: str, app: str | None
    ) -> tuple[dict[str, str], str | None]:
        """{ref: sha} for the refs `rev` may name (annotated tags also as `ref^{}`), and the
        branch HEAD points to. One round trip."""
        patterns = ["--symref", remote.url, "HEAD"] if rev == "HEAD" \
            else [remote.url, rev, f"{rev}^{{}}"]
        self.settings.cache_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        # Run outside any repository, so no repository's config applies.
        result = self._network(remote, ["ls-remote", *patterns], self.settings.cache_dir)
        self.stats.ls_remotes += 1
        self._raise(result, remote, "ls-remote", app)
        log.debug("ls-remote", repo=remote.shown, revision=rev, app=app,
                  seconds=round(time.monotonic() - started, 3))
        refs: dict[str, str] = {}
        head_target = None
        for line in result.stdout.splitlines():
            value, _, name = line.partition("\t")
            if value.startswith("ref: ") and name == "HEAD":
                head_target = value.removeprefix("ref: ")
            elif _FULL_SHA.match(value):
                refs[name] = value
        return refs, head_target

    def _lock_timeout(self) -> float:
        # A holder may clone (one timeout), fetch a pinned SHA (another) and gc: be patient.
        return 3 * self.settings.timeout + 30

    def _fetch(
        self,
        remote: _Remote,
        app: str | None,
        extra: Sequence[str] = (),
        *,
        done: Callable[[], bool] | None = None,
    ) -> None:
        """Fetch branches and tags (pruning deleted ones) into the mirror, creating it if need
        be; skipped if `done()` says another process already fetched what we want."""
        with file_lock(remote.lock, timeout=self._lock_timeout(),
                       what=f"the mirror of {remote.shown}", app=app):
            if done is not None and done():
                return
            self._ensure_mirror(remote)
            started = time.monotonic()
            result = self._network(
                remote, [*_FETCH, "--prune", remote.url, *_REFSPECS, *extra], remote.mirror)
            self.stats.fetches += 1
            self._raise(result, remote, "fetch", app)
            log.info("fetched", repo=remote.shown, app=app,
                     seconds=round(time.monotonic() - started, 3))
            self._gc(remote)

    def _fetch_pinned(self, remote: _Remote, sha: str, app: str | None) -> bool:
        """Fetch one commit by SHA (one on no branch or tag, e.g. a pull request's); False if
        the server does not have it or will not serve unadvertised commits."""
        with file_lock(remote.lock, timeout=self._lock_timeout(),
                       what=f"the mirror of {remote.shown}", app=app):
            self._ensure_mirror(remote)
            result = self._network(
                remote, [*_FETCH, remote.url, f"+{sha}:{_PINNED}{sha}"], remote.mirror)
            self.stats.fetches += 1
        if not result.ok and _UNADVERTISED.search(result.stderr):
            return False
        self._raise(result, remote, "fetch", app)
        return True

    def _ensure_mirror(self, remote: _Remote) -> None:
        """Create the bare mirror (under the lock): built aside and renamed into place, so a
        reader never finds a half-initialised repository."""
        if (remote.mirror / "HEAD").exists():
            return
        if remote.mirror.exists():  # debris of a crash before the rename
            shutil.rmtree(remote.mirror)
        remote.mirror.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(dir=remote.mirror.parent, prefix=f".{remote.mirror.name}."))
        try:
            for args in (["init", "--bare", "--quiet", str(temp)],
                         # gc runs in the foreground, while we hold the lock.
                         ["-C", str(temp), "config", "gc.autoDetach", "false"]):
                result = run_git(args)
                if not result.ok:
                    raise OSError(f"git {args[0]} failed: {result.stderr.strip()}")
            temp.chmod(0o755)
            os.rename(temp, remote.mirror)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise

    def _gc(self, remote: _Remote) -> None:
        # Packs pile up with every fetch; `gc --auto` repacks only past git's thresholds.
        result = run_git(["gc", "--auto", "--quiet"], cwd=remote.mirror,
                         timeout=max(300.0, 10 * self.settings.timeout))
        if not result.ok:
            log.warning("git gc failed; mirror left as is", repo=remote.shown,
                        error=redact(result.stderr.strip())[-300:])


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
