"""Requesting sync operations and keeping their state: the Application is the source of truth.

Called by producers (the CLI, the refresh's automated policy, later the API) to *request* a
sync or a termination, and by the step function (`syncing`) to load and save the operation it
runs. A request is written on the Application (`operation`) before anything is enqueued, so a
lost queue loses nothing: the sweep finds it there.

- `request_sync` merges into a request that has not started yet (the newest revision wins) and
  queues a new one behind an operation that is running, never disturbing it;
- `StateStore` is where one operation's state lives: the Application's status (`ClusterState`,
  every write fenced and guarded by resourceVersion) or memory, for an app given as a file to
  the in-process CLI (`MemoryState`);
- `auto_sync_due` is the automated policy's decision, with Argo CD's documented semantics and
  without its traps: one automated attempt per (revision, spec); with selfHeal, drift and
  failures are retried with a backoff that resets after a success, never stuck for good.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from .appstore import AppNotFound, AppStore
from .cluster import ApiConflict
from .errors import GitOpsError
from .log import get_logger
from .model import Application
from .model import status as st
from .model.application import DEFAULT_HISTORY_LIMIT
from .model.operation import GENERATION_ID, Operation, OperationState, SyncRequest
from .retries import exponential
from .settings import ReconcileSettings

Fence = Callable[[], None]
# The refresh's part of a status, rebuilt from the status as it is when written.
Refresh = Callable[[dict[str, Any]], dict[str, Any]]

_log = get_logger(component="operations")


class OperationInProgress(GitOpsError):
    """A request that cannot be merged with the operation already requested or running (a
    dry run against a real sync, or the other way round)."""


def _no_fence() -> None:
    return None


def spec_hash(app: Application) -> str:
    """A hash of everything in the Application that shapes a sync (not its name or version)."""
    doc = asdict(app)
    for volatile in ("uid", "resource_version"):
        doc.pop(volatile, None)
    payload = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def requested(obj: dict[str, Any]) -> Operation | None:
    """The operation written on the Application (`operation`), started or not."""
    generation = (obj.get("metadata") or {}).get("generation")
    return Operation.from_dict(obj.get("operation"),
                               generation=generation if isinstance(generation, int) else 0)


def pending_request(obj: dict[str, Any]) -> Operation | None:
    """The requested operation that has not started yet, if any."""
    request = requested(obj)
    if request is None:
        return None
    state = OperationState.from_dict((obj.get("status") or {}).get("operationState"))
    if state is not None and state.operation.id == request.id:
        return None  # it is the one running, or it finished and is about to be cleared
    return request


def current_state(obj: dict[str, Any]) -> OperationState | None:
    return OperationState.from_dict((obj.get("status") or {}).get("operationState"))


# ------------------------------------------------------------------------------ requests

def request_sync(apps: AppStore, name: str, request: SyncRequest, *, initiated_by: str,
                 automated: bool = False, attempt: int = 1, fence: Fence = _no_fence,
                 obj: dict[str, Any] | None = None) -> Operation:
    """Write a sync request on the Application; returns the operation that will serve it
    (a pending one it was merged into keeps its id). `obj`: the Application as just read, to
    save a GET. Raises AppNotFound, OperationInProgress."""
    given = obj
    decided: tuple[str | None, str | None] | None = None
    for _ in range(10):
        obj, given = (given if given is not None else apps.get(name)), None
        if obj is None:
            raise AppNotFound(f"Application {name} is not in namespace {apps.namespace}",
                              app=name)
        pending = pending_request(obj)
        state = current_state(obj)
        running = state is not None and state.in_progress
        seen = (pending.id if pending else None, state.operation.id if state else None)
        if decided is None:
            decided = seen
        elif automated and seen != decided:
            # The automated policy decided on what the caller read. Two refreshes of one app
            # may overlap and both find no attempt yet: the one that writes second finds the
            # first's operation here (requested, running or even finished) and stands down.
            newer = pending or (state.operation if state else None)
            assert newer is not None
            _log.info("automated sync already requested", app=name, operation=newer.id,
                      revision=request.revision)
            return newer
        if pending is not None:
            if pending.sync.dry_run != request.dry_run:
                raise OperationInProgress(
                    f"a {'dry-run ' if pending.sync.dry_run else ''}sync is already requested; "
                    "wait for it to start, or terminate it", app=name)
            operation = Operation(pending.id, pending.sync.merged_with(request),
                                  initiated_by or pending.initiated_by,
                                  pending.automated and automated, st.now(),
                                  max(pending.attempt, attempt))
        else:
            if request.dry_run and running:
                raise OperationInProgress("an operation is running; a dry run would have to "
                                          "wait for it: try again when it ends", app=name)
            operation = Operation.new(request, initiated_by=initiated_by, automated=automated,
                                      attempt=attempt)
        patch = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                 "operation": operation.to_dict()}
        try:
            apps.patch(name, patch, fence=fence)
        except ApiConflict:
            # Someone wrote the Application meanwhile; back off a little at random so two
            # requesters racing each other do not collide again on every try.
            time.sleep(random.uniform(0.005, 0.05))
            continue
        _log.info("sync requested", app=name, operation=operation.id,
                  revision=operation.sync.revision or "(target)", merged=pending is not None,
                  behind_running=running and pending is None, initiated_by=initiated_by)
        return operation
    raise OperationInProgress("the Application kept changing while the request was written; "
                              "try again", app=name)


def request_terminate(apps: AppStore, name: str, *, fence: Fence = _no_fence) -> bool:
    """Ask the running operation to stop (Argo CD: phase Terminating); the next step stops
    its hooks and fails it. A request not started yet is simply withdrawn. False when there was
    nothing to terminate."""
    obj = apps.get(name)
    if obj is None:
        raise AppNotFound(f"Application {name} is not in namespace {apps.namespace}", app=name)
    pending = pending_request(obj)
    if pending is not None:
        if pending.id.startswith(GENERATION_ID):  # written without an id, not started
            apps.remove_if(name, "/metadata/generation",
                           int(pending.id.removeprefix(GENERATION_ID)), remove="/operation",
                           fence=fence)
        else:
            apps.remove_if(name, "/operation/id", pending.id, remove="/operation", fence=fence)
    done = pending is not None

    def terminate(status: dict[str, Any], _: dict[str, Any]) -> dict[str, Any] | None:
        state = OperationState.from_dict(status.get("operationState"))
        if state is None or state.phase != st.RUNNING:
            return None
        status["operationState"]["phase"] = st.TERMINATING
        return status

    before = current_state(obj)
    if before is not None and before.phase == st.RUNNING:
        apps.update_status(name, terminate, fence=fence)
        done = True
    return done


# ------------------------------------------------------------------------------ state stores

class StateStore(Protocol):
    """Where one app's operation state is read and written."""

    def load(self) -> tuple[dict[str, Any], Operation | None]:
        """(the current status, the requested operation not yet started)."""
        ...

    def save(self, state: OperationState, history: dict[str, Any] | None = None,
             refresh: Refresh | None = None) -> None:
        """Write `state` as status.operationState (and append a history entry); `refresh`
        also rewrites the refresh's part of the status (a sync's last step knows it)."""
        ...

    def claim_request(self, request: Operation) -> None:
        """The step starts `request`: make its identity permanent (see `requested`)."""
        ...

    def clear_request(self, operation_id: str) -> None:
        """Forget the request once its operation has finished (only if it is still that one)."""
        ...

    def pending(self) -> bool:
        """Whether another request waits (as of the last load or write)."""
        ...


def _with_state(status: dict[str, Any], state: OperationState, history: dict[str, Any] | None,
                limit: int, refresh: Refresh | None = None) -> dict[str, Any]:
    status["operationState"] = state.to_dict()
    if history is not None:
        entries = list(status.get("history") or [])
        entry = dict(history, id=st.next_history_id(entries))
        status["history"] = st.append_history(entries, entry, limit)
    # Last: the refresh's part derives conditions from the operation state just set.
    return refresh(status) if refresh is not None else status


class ClusterState:
    """The operation state of an Application in the control namespace. It keeps the object as
    last read or written, so a step reads the Application once and each write builds on the
    previous one's answer (a conflict reads it again)."""

    def __init__(self, apps: AppStore, app: Application | str, fence: Fence = _no_fence, *,
                 obj: dict[str, Any] | None = None) -> None:
        self.apps = apps
        # The name (an Application whose spec does not parse has only that) and the history
        # limit are all this needs of the app.
        self.name = app if isinstance(app, str) else app.name
        self.history_limit = (DEFAULT_HISTORY_LIMIT if isinstance(app, str)
                              else app.revision_history_limit)
        self.fence = fence
        self._obj = obj  # the Application as last read or written; None: read it
        # Whether `_obj` may serve the next load: true for the object a caller just read,
        # false for what an earlier step wrote (others may have written since).
        self._fresh = obj is not None

    def _current(self) -> dict[str, Any]:
        if self._obj is None:
            self._obj = self.apps.get(self.name)
            if self._obj is None:
                raise AppNotFound(f"Application {self.name} is not in namespace "
                                  f"{self.apps.namespace} (deleted?)", app=self.name)
        return self._obj

    def load(self) -> tuple[dict[str, Any], Operation | None]:
        if not self._fresh:
            self._obj = None
        self._fresh = False
        obj = self._current()
        return dict(obj.get("status") or {}), pending_request(obj)

    def save(self, state: OperationState, history: dict[str, Any] | None = None,
             refresh: Refresh | None = None) -> None:
        limit = self.history_limit

        def change(status: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any] | None:
            theirs = OperationState.from_dict(status.get("operationState"))
            if theirs is not None and theirs.operation.id != state.operation.id and \
                    theirs.in_progress:
                # Someone started another operation meanwhile: never overwrite it.
                raise OperationInProgress(f"operation {theirs.operation.id} is running; "
                                          f"{state.operation.id} stops", app=self.name)
            if theirs is not None and theirs.phase == st.TERMINATING and \
                    theirs.operation.id == state.operation.id and state.phase == st.RUNNING:
                state.phase = st.TERMINATING  # a terminate request landed during this step
            return _with_state(status, state, history, limit, refresh)

        self._obj = self.apps.update_status(self.name, change, fence=self.fence,
                                            current=self._obj)

    def claim_request(self, request: Operation) -> None:
        if not request.id.startswith(GENERATION_ID):
            return
        # Written without an id: give it the one it is known by now, so that an edit of the
        # spec (which moves the generation) does not make it look like a new request.
        obj = self._current()
        self._obj = self.apps.patch(self.name, {
            "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
            "operation": {"id": request.id}}, fence=self.fence)

    def clear_request(self, operation_id: str) -> None:
        request = requested(self._current())
        if request is None or request.id != operation_id:
            return  # no request, or a newer one: keep it
        cleared = self.apps.remove_if(self.name, "/operation/id", operation_id,
                                      remove="/operation", fence=self.fence)
        self._obj = cleared  # None (a newer request came): read again when asked

    def pending(self) -> bool:
        return pending_request(self._current()) is not None


class MemoryState:
    """Operation state for an app that is not in the cluster (the CLI's `-f` file mode)."""

    def __init__(self, app: Application, status: dict[str, Any] | None = None) -> None:
        self.app = app
        self.status: dict[str, Any] = copy.deepcopy(status or {})

    def load(self) -> tuple[dict[str, Any], Operation | None]:
        return copy.deepcopy(self.status), None

    def save(self, state: OperationState, history: dict[str, Any] | None = None,
             refresh: Refresh | None = None) -> None:
        self.status = _with_state(self.status, state, history, self.app.revision_history_limit,
                                  refresh)

    def claim_request(self, request: Operation) -> None:
        return None

    def clear_request(self, operation_id: str) -> None:
        return None

    def pending(self) -> bool:
        return False


# ------------------------------------------------------------------------------ automated sync

@dataclass(frozen=True)
class AutoSync:
    due: bool
    reason: str
    attempt: int = 1
    retry_at: float | None = None  # epoch seconds: refresh again then (a backoff is running)


def _epoch(timestamp: str) -> float:
    try:
        return datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def auto_sync_due(app: Application, sync_status: str, revision: str, obj: dict[str, Any],
                  settings: ReconcileSettings, now: float | None = None) -> AutoSync:
    """Whether the automated policy asks for a sync now, given the comparison's result
    (`sync_status`, `revision`) and the Application as stored (`obj`: status and request)."""
    policy = app.sync_policy.automated
    if policy is None:
        return AutoSync(False, "automated sync is off")
    if sync_status != "OutOfSync":
        return AutoSync(False, f"the app is {sync_status}")
    now = time.time() if now is None else now
    pending = pending_request(obj)
    if pending is not None:
        if pending.sync.revision == revision:
            return AutoSync(False, "a sync of this revision is already requested")
        return AutoSync(True, "Git moved while a sync was waiting to start")
    state = current_state(obj)
    if state is not None and state.in_progress:
        if state.revision in ("", revision):
            return AutoSync(False, "a sync of this revision is running")
        return AutoSync(True, "Git moved while a sync was running: queued behind it")
    if state is None or state.operation.sync.dry_run:
        return AutoSync(True, "no sync attempted yet")
    if state.revision != revision:
        return AutoSync(True, f"new revision {revision[:12]}")
    if state.spec_hash and state.spec_hash != spec_hash(app):
        return AutoSync(True, "the Application spec changed")
    if not policy.self_heal:
        if state.succeeded:
            return AutoSync(False, "drift at the synced revision; selfHeal is off")
        return AutoSync(False, f"the automated sync of {revision[:12]} {state.phase.lower()}; "
                               "fix Git or the Application, or sync by hand (selfHeal is off)")
    finished = _epoch(state.finished_at)
    if state.succeeded or not state.operation.automated:
        attempt, wait = 1, settings.self_heal_backoff
    else:
        attempt = state.operation.attempt + 1
        wait = exponential(attempt - 1, settings.self_heal_backoff, 2.0,
                           settings.self_heal_backoff_max)
    if now >= finished + wait:
        what = "drift" if state.succeeded else f"retry #{attempt - 1} after a failed sync"
        return AutoSync(True, f"self-heal: {what}", attempt)
    return AutoSync(False, f"self-heal backoff: next attempt in {finished + wait - now:.0f}s",
                    attempt, finished + wait)
