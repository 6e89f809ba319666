"""Typed errors of gitops-tasks. Every layer raises these; the task layer decides from the type
whether to retry (TransientError) or to record a condition and stop (PermanentError).

Each error names the application it concerns (when known) and says what to do about it.
"""

from __future__ import annotations


class GitOpsError(Exception):
    """Base of every error gitops-tasks raises on purpose."""

    def __init__(self, message: str, *, app: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.app = app

    def __str__(self) -> str:
        return f"{self.app}: {self.message}" if self.app else self.message

    def for_app(self, app: str) -> GitOpsError:
        """Attach the application name once it is known higher up the stack."""
        if self.app is None:
            self.app = app
        return self


class PermanentError(GitOpsError):
    """Retrying will not help until someone changes Git, the Application or the cluster."""


class TransientError(GitOpsError):
    """Worth retrying later (network, API server overload, lock contention)."""

    def __init__(
        self, message: str, *, app: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, app=app)
        self.retry_after = retry_after


class InvalidApplication(PermanentError):
    """The Application spec is invalid; `problems` holds one (field path, message) per problem."""

    def __init__(self, problems: list[tuple[str, str]], *, app: str | None = None) -> None:
        self.problems = problems
        lines = "; ".join(f"{path}: {msg}" for path, msg in problems)
        super().__init__(f"invalid Application: {lines}", app=app)


class SourceError(GitOpsError):
    """Something about the Git source."""


class RepoUnreachable(SourceError, TransientError):
    """The remote did not answer (network, DNS, auth server down)."""


class RevisionNotFound(SourceError, PermanentError):
    """The targetRevision names no branch, tag or commit of the repository."""


class UnsafePath(SourceError, PermanentError):
    """The app path or a symlink in it leaves the repository tree."""


class SourceTooLarge(SourceError, PermanentError):
    """A file or the repository is over the configured size limit."""


class AuthenticationFailed(SourceError, PermanentError):
    """The remote refused the credentials (or had none for a private repository)."""


class AppPathNotFound(SourceError, PermanentError):
    """The app's path does not exist in the commit's tree."""


class MirrorBusy(SourceError, TransientError):
    """Another process held a repository's mirror lock for too long; try again later."""


class RenderError(PermanentError):
    """Manifests could not be produced from the source tree; names the file (and line)."""

    def __init__(
        self,
        message: str,
        *,
        app: str | None = None,
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        self.file = file
        self.line = line
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        super().__init__(f"{where}{message}", app=app)


class ToolTimeout(RenderError):
    """A rendering tool (kustomize, helm, a plugin) ran past its timeout and was killed."""
