"""Running git through GitPython, and turning a failed network command into a typed error.

Called by `mirror.GitMirrors` and `trees`. Every command gets a hard timeout when it talks to a
remote (GitPython kills it and its children, e.g. `git-remote-http` or `ssh`), so a remote that
accepts connections and never answers cannot hang a worker.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from git.cmd import Git

from gitops_tasks import metrics
from gitops_tasks.errors import (
    AuthenticationFailed,
    RepoNotTrusted,
    RepoUnreachable,
    SourceError,
)
from gitops_tasks.source.urls import redact

# Exit status GitPython reports when its watchdog killed the command (SIGKILL).
_KILLED = -9

_AUTH_REFUSED = re.compile(
    r"Authentication failed|could not read (Username|Password)|terminal prompts disabled"
    r"|returned error: 40[13]|HTTP 40[13]|Permission denied \(|Host key verification failed"
    r"|Invalid username or password",
    re.I,
)
_NO_SUCH_REPO = re.compile(
    r"Repository not found|repository '[^']*' not found|does not appear to be a git repository"
    r"|not exported|returned error: 404|HTTP 404|No such file or directory|not a git repository",
    re.I,
)


@dataclass(frozen=True)
class GitResult:
    status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.status == 0


def run_git(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> GitResult:
    """`git args...`; never raises for a non-zero exit (callers classify)."""
    status, stdout, stderr = Git(str(cwd) if cwd else None).execute(
        ["git", *args],
        with_extended_output=True,
        with_exceptions=False,
        kill_after_timeout=timeout,
        env=dict(env) if env else None,
        strip_newline_in_stdout=False,
    )
    result = GitResult(int(status or 0), stdout, stderr)
    metrics.git_command(args, result.ok)
    return result


def run_git_input(args: Sequence[str], stdin: bytes, *, cwd: Path,
                  timeout: float | None = None) -> tuple[int, bytes]:
    """`git args...` fed `stdin`, for batch commands (`cat-file --batch`): (exit, stdout)."""
    try:
        done = subprocess.run(["git", *args], input=stdin, cwd=cwd, capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        metrics.git_command(args, False)
        return 124, b""
    metrics.git_command(args, done.returncode == 0)
    return done.returncode, done.stdout


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-count:])[-600:]


def network_error(
    result: GitResult,
    *,
    action: str,
    repo: str,
    timeout: float,
    app: str | None,
    credentials_from: str = "",
) -> SourceError:
    """The typed error for a failed `ls-remote` or `fetch` of `repo`, with an actionable,
    redacted message: auth problems are permanent, network problems transient."""
    where = redact(repo)
    detail = redact(_last_lines(result.stderr))
    if result.status == _KILLED or result.stderr.startswith("Timeout:"):
        return RepoUnreachable(
            f"git {action} of {where} did not finish within {timeout:g}s; the remote accepts "
            "connections but does not answer: check the server, or raise "
            "GITOPS_TASKS_GIT_TIMEOUT for a very large repository",
            app=app,
        )
    using = f"the credentials from {credentials_from}" if credentials_from else "no credentials"
    if _AUTH_REFUSED.search(result.stderr):
        return AuthenticationFailed(
            f"{where} refused access to git {action} (using {using}): check that a repository "
            f"secret matches this URL and holds a valid username/password or SSH key ({detail})",
            app=app,
        )
    if "detected dubious ownership" in result.stderr:
        return RepoNotTrusted(
            f"git refuses to read {where}: the repository is owned by another user than the "
            "one running gitops-tasks (git's safe.directory check); run the workers as its "
            "owner, or add its path to git's safe.directory",
            app=app,
        )
    if _NO_SUCH_REPO.search(result.stderr):
        return AuthenticationFailed(
            f"{where} has no such repository or hides it from us (using {using}): check the "
            f"repoURL, and the credentials if the repository is private ({detail})",
            app=app,
        )
    return RepoUnreachable(
        f"git {action} of {where} failed: {detail or f'exit status {result.status}'}; "
        "will retry",
        app=app,
    )
