"""One repository's bare mirror and the git commands that fill it: `ls-remote`, `fetch`.

Called by `mirror.GitMirrors`, which decides what to ask; this module knows how. Network
commands run with a hard timeout and the environment from `auth` (credentials never in argv or
on disk beyond the command's life). Creating and fetching into a mirror happen under its flock,
so the worker processes of a host never write one mirror at once; reading takes no lock.
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

from gitops_tasks.log import get_logger
from gitops_tasks.settings import GitSettings
from gitops_tasks.source.auth import git_env
from gitops_tasks.source.commands import GitResult, network_error, run_git
from gitops_tasks.source.credentials import RepoCredentials
from gitops_tasks.source.locking import file_lock
from gitops_tasks.source.urls import redact

FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
# Seven hex digits is git's own shortest default abbreviation; shorter is taken as a ref name.
SHORT_SHA = re.compile(r"^[0-9a-f]{7,39}$")

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
    """Counters for tests and `bench/`: what one `GitMirrors` asked of remotes."""

    ls_remotes: int = 0
    fetches: int = 0
    exports: int = 0
    evicted_trees: int = 0


@dataclass(frozen=True)
class Mirror:
    """The bare mirror of one repository, and how to reach the repository."""

    url: str  # what git is given: no userinfo secrets
    shown: str  # redacted, for messages
    path: Path
    creds: RepoCredentials | None
    settings: GitSettings
    stats: MirrorStats

    @property
    def lock(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def local_commit(self, rev: str) -> str | None:
        """The full SHA of commit `rev` in the mirror, or None. For a SHA-looking `rev`, only an
        object whose name starts with it counts: a stale local branch of that name must not."""
        if not (self.path / "HEAD").exists():
            return None
        result = run_git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                         cwd=self.path)
        sha = result.stdout.strip()
        if not result.ok or not FULL_SHA.match(sha):
            return None
        if SHORT_SHA.match(rev) or FULL_SHA.match(rev):
            return sha if sha.startswith(rev) else None
        return sha

    def ls_remote(self, rev: str, app: str | None) -> tuple[dict[str, str], str | None]:
        """{ref: sha} for the refs `rev` may name (annotated tags also as `ref^{}`, peeled),
        and the branch HEAD points to. One round trip."""
        return self.ls_remote_many([rev], app)

    def ls_remote_many(self, revs: Sequence[str], app: str | None
                       ) -> tuple[dict[str, str], str | None]:
        """As `ls_remote` for several revisions at once: still one round trip."""
        patterns = ["--symref", self.url] if "HEAD" in revs else [self.url]
        for rev in dict.fromkeys(revs):
            patterns += ["HEAD"] if rev == "HEAD" else [rev, f"{rev}^{{}}"]
        rev = ",".join(revs)
        self.settings.cache_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        # Run outside any repository, so no repository's config applies.
        result = self._network(["ls-remote", *patterns], self.settings.cache_dir)
        self.stats.ls_remotes += 1
        self._raise_for(result, "ls-remote", app)
        log.debug("ls-remote", repo=self.shown, revision=rev, app=app,
                  seconds=round(time.monotonic() - started, 3))
        refs: dict[str, str] = {}
        head_target = None
        for line in result.stdout.splitlines():
            value, _, name = line.partition("\t")
            if value.startswith("ref: ") and name == "HEAD":
                head_target = value.removeprefix("ref: ")
            elif FULL_SHA.match(value):
                refs[name] = value
        return refs, head_target

    def fetch(self, app: str | None, extra: Sequence[str] = (), *,
              done: Callable[[], bool] | None = None) -> None:
        """Fetch branches and tags (pruning deleted ones), creating the mirror if need be;
        skipped if `done()` says, once we hold the lock, that another process fetched it."""
        with file_lock(self.lock, timeout=self._lock_timeout(),
                       what=f"the mirror of {self.shown}", app=app):
            if done is not None and done():
                return
            self._ensure()
            started = time.monotonic()
            result = self._network([*_FETCH, "--prune", self.url, *_REFSPECS, *extra],
                                   self.path)
            self.stats.fetches += 1
            self._raise_for(result, "fetch", app)
            log.info("fetched", repo=self.shown, app=app,
                     seconds=round(time.monotonic() - started, 3))
            self._gc()

    def fetch_pinned(self, sha: str, app: str | None) -> bool:
        """Fetch one commit by SHA (one on no branch or tag, e.g. a pull request's); False if
        the server does not have it or will not serve unadvertised commits."""
        with file_lock(self.lock, timeout=self._lock_timeout(),
                       what=f"the mirror of {self.shown}", app=app):
            self._ensure()
            result = self._network([*_FETCH, self.url, f"+{sha}:{_PINNED}{sha}"], self.path)
            self.stats.fetches += 1
        if not result.ok and _UNADVERTISED.search(result.stderr):
            return False
        self._raise_for(result, "fetch", app)
        return True

    def _network(self, args: Sequence[str], cwd: Path) -> GitResult:
        with git_env(self.url, self.creds, timeout=self.settings.timeout,
                     cache_dir=self.settings.cache_dir) as env:
            return run_git(args, cwd=cwd, env=env, timeout=self.settings.timeout)

    def _raise_for(self, result: GitResult, action: str, app: str | None) -> None:
        if not result.ok:
            raise network_error(result, action=action, repo=self.url,
                                timeout=self.settings.timeout, app=app,
                                credentials_from=self.creds.secret if self.creds else "")

    def _lock_timeout(self) -> float:
        # A holder may clone (one timeout), fetch a pinned SHA (another) and gc: be patient.
        return 3 * self.settings.timeout + 30

    def _ensure(self) -> None:
        """Create the bare mirror (under the lock): built aside and renamed into place, so a
        reader never finds a half-initialised repository."""
        if (self.path / "HEAD").exists():
            return
        if self.path.exists():  # debris of a crash before the rename
            shutil.rmtree(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}."))
        try:
            for args in (["init", "--bare", "--quiet", str(temp)],
                         # gc runs in the foreground, while we hold the lock.
                         ["-C", str(temp), "config", "gc.autoDetach", "false"]):
                result = run_git(args)
                if not result.ok:
                    raise OSError(f"git {args[0]} failed: {result.stderr.strip()}")
            temp.chmod(0o755)
            os.rename(temp, self.path)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise

    def _gc(self) -> None:
        # Packs pile up with every fetch; `gc --auto` repacks only past git's thresholds.
        result = run_git(["gc", "--auto", "--quiet"], cwd=self.path,
                         timeout=max(300.0, 10 * self.settings.timeout))
        if not result.ok:
            log.warning("git gc failed; mirror left as is", repo=self.shown,
                        error=redact(result.stderr.strip())[-300:])
