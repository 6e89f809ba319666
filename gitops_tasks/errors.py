"""Typed errors of gitops-tasks. Every layer raises these; the task layer decides from the type
whether to retry (TransientError) or to record a condition and stop (PermanentError).

Each error names the application it concerns (when known) and says what to do about it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # model imports this module: a runtime import would be circular
    from .model.resources import ResourceKey


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


class RepoNotTrusted(SourceError, PermanentError):
    """git refuses a local repository owned by another user (its safe.directory check)."""


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


class DependencyUnreachable(RenderError, TransientError):
    """A render needs a chart from a Helm repository that did not answer (network, 5xx): a
    RenderError worth retrying, unlike one that Git must fix."""


class ToolTimeout(RenderError):
    """A rendering tool (kustomize, helm, a plugin) ran past its timeout and was killed."""


# ----------------------------------------------------------------------------- cluster API
# Raised by `gitops_tasks.cluster` only; defined here so the engine layers (diff, health, sync)
# can catch them without importing the cluster package (and with it the kubernetes client).


class ApiError(GitOpsError):
    """A request to a Kubernetes API server failed.

    `resource` names the object concerned (None for discovery and transport failures),
    `status` is the HTTP status (0 when no response came), `reason` the Status reason
    (`Invalid`, `Forbidden`, ...) and `cluster` the destination's name.
    """

    def __init__(
        self,
        message: str,
        *,
        resource: ResourceKey | None = None,
        status: int = 0,
        reason: str = "",
        cluster: str = "",
        app: str | None = None,
        **kwargs: Any,
    ) -> None:
        # Cooperative: the next class in the MRO is TransientError or PermanentError.
        super().__init__(message, app=app, **kwargs)
        self.resource = resource
        self.status = status
        self.reason = reason
        self.cluster = cluster


class ApiTransient(ApiError, TransientError):
    """5xx, 429, timeouts, refused or reset connections: retry later (`retry_after` when the
    server said how long to wait)."""


class ApiPermanent(ApiError, PermanentError):
    """The server refused the request for a reason retrying will not fix."""


class ApiInvalid(ApiPermanent):
    """422: the object fails validation; `causes` holds (field, message) pairs."""

    def __init__(self, message: str, *, causes: list[tuple[str, str]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.causes = causes or []


class ApiForbidden(ApiPermanent):
    """403: RBAC denies the request, or the namespace is being deleted (NamespaceTerminating)."""


class ApiUnauthorized(ApiForbidden):
    """401: the cluster rejected the credentials themselves."""


class ApiNotFound(ApiPermanent):
    """404 on a write: the namespace or the object to change does not exist."""


class UnknownKind(ApiPermanent):
    """The server serves no such apiVersion/kind, even after a discovery refresh."""


class ApiConflict(ApiPermanent):
    """409. For a server-side apply `fields` lists the (manager, field path) pairs another
    field manager owns (apply with force to take them over); for a create the object already
    exists (`reason == "AlreadyExists"`); otherwise a write raced another (`reason ==
    "Conflict"`, no fields)."""

    def __init__(self, message: str, *, fields: list[tuple[str, str]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.fields = fields or []


class ApiBadRequest(ApiPermanent):
    """400 (and 405/406/415): the request itself is malformed, usually a bug on our side or a
    manifest the server cannot decode."""


# ----------------------------------------------------------------------------- app lock
# Raised by `gitops_tasks.locks`.


class LockLost(GitOpsError):
    """This worker no longer holds the app lock: its TTL ran out (the process was paused, or
    renewals failed), another worker took it, or Redis cannot confirm it. The step stops before
    its next write; the caller does not retry it as such, since whoever holds the lock now (or
    the next sweep) carries the operation on. `reason` says which of these happened."""

    def __init__(self, app: str, *, reason: str = "") -> None:
        message = ("the app lock expired or was taken by another worker; "
                   "stopping before the next write")
        super().__init__(f"{message} ({reason})" if reason else message, app=app)
        self.reason = reason


class LockBusy(TransientError):
    """The app lock cannot be taken now: another worker holds it, or Redis did not answer.
    Retrying later is control flow (re-enqueue with a countdown), not a failure to log as one."""

    def __init__(
        self,
        app: str,
        *,
        reason: str = "another worker holds the app lock",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{reason}; try again later", app=app, retry_after=retry_after)
        self.reason = reason
