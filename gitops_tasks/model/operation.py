"""Sync operations as they are stored: what was asked (`Application.operation`) and where it is
(`status.operationState`), in Argo CD's shape so its users can read ours.

Pure data and its dict form; no I/O. Read and written by `gitops_tasks.operations` (requests
and the sync step function); the CLI and the API only ever build a `SyncRequest`.

Why two places, as in Argo CD: `operation` (top level, written by whoever asks) is the queue of
one for the *next* operation; `status.operationState` (written only by the step function under
the app lock) is the operation being run or last run, with every resource's result. A request
that arrives while an operation runs is written to `operation` with a new id and starts when the
running one ends; the running one is never disturbed. Each operation has an `id` (ours; Argo CD
has none) so that a crash between "finished" and "request cleared" never runs it twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from .resources import ResourceKey
from .status import ERROR_PHASE as ERROR
from .status import FAILED_PHASE as FAILED
from .status import RUNNING, SUCCEEDED, TERMINATING, now

IN_PROGRESS = frozenset({RUNNING, TERMINATING})
COMPLETED = frozenset({SUCCEEDED, FAILED, ERROR})

# hookPhase of one resource result: the state of the operation on that object (a hook running,
# a CRD not yet established). Empty once it needs no more watching.
HOOK_RUNNING = "Running"
HOOK_SUCCEEDED = "Succeeded"
HOOK_FAILED = "Failed"
HOOK_TERMINATED = "Terminated"


# The id given to an operation written without one: this prefix and the generation.
GENERATION_ID = "gen-"


def new_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class SyncRequest:
    """One requested sync: `revision` "" means the app's targetRevision; `prune`/`force` None
    mean what the automated policy says; `resources` limits the sync to those objects."""

    revision: str = ""
    prune: bool | None = None
    dry_run: bool = False
    force: bool | None = None
    resources: tuple[ResourceKey, ...] = ()

    def merged_with(self, newer: SyncRequest) -> SyncRequest:
        """A pending request and a newer one become one: the newest revision wins, prune and
        force stay on if either asked, and a subset widens to the union (empty means all)."""
        resources: tuple[ResourceKey, ...] = ()
        if self.resources and newer.resources:
            resources = tuple(sorted(set(self.resources) | set(newer.resources)))
        return SyncRequest(
            revision=newer.revision,
            prune=_either(self.prune, newer.prune),
            dry_run=self.dry_run and newer.dry_run,
            force=_either(self.force, newer.force),
            resources=resources,
        )


def _either(a: bool | None, b: bool | None) -> bool | None:
    if a is None and b is None:
        return None
    return bool(a) or bool(b)


@dataclass(frozen=True)
class Operation:
    id: str
    sync: SyncRequest
    initiated_by: str = ""
    automated: bool = False
    requested_at: str = ""
    # Automated attempts at the same (revision, spec) in a row; the backoff before the next one
    # grows with it and a success resets it (see `operations.auto_sync_due`).
    attempt: int = 1

    @classmethod
    def new(cls, sync: SyncRequest, *, initiated_by: str = "", automated: bool = False,
            attempt: int = 1) -> Operation:
        return cls(new_id(), sync, initiated_by or ("automated" if automated else ""),
                   automated, now(), attempt)

    def to_dict(self) -> dict[str, Any]:
        sync: dict[str, Any] = {}
        if self.sync.revision:
            sync["revision"] = self.sync.revision
        if self.sync.prune is not None:
            sync["prune"] = self.sync.prune
        if self.sync.dry_run:
            sync["dryRun"] = True
        if self.sync.force is not None:
            sync["syncStrategy"] = {"hook": {"force": self.sync.force}}
        if self.sync.resources:
            sync["resources"] = [{k: v for k, v in (("group", r.group), ("kind", r.kind),
                                                    ("namespace", r.namespace),
                                                    ("name", r.name)) if v or k == "group"}
                                 for r in self.sync.resources]
        initiated: dict[str, Any] = {}
        if self.initiated_by:
            initiated["username"] = self.initiated_by
        if self.automated:
            initiated["automated"] = True
        out: dict[str, Any] = {"id": self.id, "sync": sync, "initiatedBy": initiated}
        if self.requested_at:
            out["requestedAt"] = self.requested_at
        if self.attempt != 1:
            out["attempt"] = self.attempt
        return out

    @classmethod
    def from_dict(cls, raw: Any, *, generation: int | None = None) -> Operation | None:
        """The operation from its stored form (ours or Argo CD's); None when there is none or
        it is not an object. Unknown fields are ignored. One written without an id (Argo CD's
        form, a `kubectl patch`) is named after the Application's `generation`, which every
        write of `operation` moves: stable while it is there, new for the next request."""
        if not isinstance(raw, dict) or not isinstance(raw.get("sync"), dict):
            return None
        sync = raw["sync"]
        strategy = _mapping(sync.get("syncStrategy"))
        force = None
        for kind in ("hook", "apply"):
            part = strategy.get(kind)
            if isinstance(part, dict) and "force" in part:
                force = bool(part["force"])
        resources = []
        for r in sync.get("resources") or []:
            if isinstance(r, dict) and r.get("kind") and r.get("name"):
                resources.append(ResourceKey(str(r.get("group") or ""), str(r["kind"]),
                                             str(r.get("namespace") or ""), str(r["name"])))
        initiated = _mapping(raw.get("initiatedBy"))
        prune = sync.get("prune")
        attempt = raw.get("attempt", 1)
        ident = raw.get("id") or (f"{GENERATION_ID}{generation}" if generation is not None
                                  else f"req-{raw.get('requestedAt') or 'unknown'}")
        return cls(
            id=str(ident),
            sync=SyncRequest(
                revision=str(sync.get("revision") or ""),
                prune=bool(prune) if prune is not None else None,
                dry_run=bool(sync.get("dryRun")),
                force=force,
                resources=tuple(resources),
            ),
            initiated_by=str(initiated.get("username") or ""),
            automated=bool(initiated.get("automated")),
            requested_at=str(raw.get("requestedAt") or ""),
            attempt=attempt if isinstance(attempt, int) and attempt >= 1 else 1,
        )


@dataclass
class ResourceResult:
    """What a sync did to one object in one phase (a hook may run in several phases)."""

    key: ResourceKey
    version: str
    phase: str  # the sync phase: PreSync, Sync, PostSync, SyncFail
    wave: int
    result: str  # Applied, Unchanged, Pruned, PruneSkipped, Failed, Skipped, WouldApply...
    message: str = ""
    hook: bool = False
    # The state of the operation on this object while it needs watching (a hook running, a
    # CRD not yet established): Running, then Succeeded, Failed or Terminated.
    hook_phase: str = ""
    started_at: float = 0.0  # epoch seconds the object was created/applied (hook timeouts)

    @property
    def running(self) -> bool:
        return self.hook_phase == HOOK_RUNNING

    @property
    def failed(self) -> bool:
        return self.result == "Failed" or self.hook_phase in (HOOK_FAILED, HOOK_TERMINATED)

    @property
    def ident(self) -> tuple[ResourceKey, str]:
        return self.key, self.phase

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"group": self.key.group, "version": self.version,
                               "kind": self.key.kind, "name": self.key.name}
        if self.key.namespace:
            out["namespace"] = self.key.namespace
        out.update({"syncPhase": self.phase, "wave": self.wave, "status": self.result})
        if self.message:
            out["message"] = self.message
        if self.hook:
            out["hookType"] = self.phase
        if self.hook_phase:
            out["hookPhase"] = self.hook_phase
        if self.started_at:
            out["startedAt"] = round(self.started_at, 3)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ResourceResult:
        wave = raw.get("wave", 0)
        started = raw.get("startedAt", 0.0)
        return cls(
            key=ResourceKey(str(raw.get("group") or ""), str(raw.get("kind") or ""),
                            str(raw.get("namespace") or ""), str(raw.get("name") or "")),
            version=str(raw.get("version") or ""),
            phase=str(raw.get("syncPhase") or "Sync"),
            wave=wave if isinstance(wave, int) else 0,
            result=str(raw.get("status") or ""),
            message=str(raw.get("message") or ""),
            hook=bool(raw.get("hookType")),
            hook_phase=str(raw.get("hookPhase") or ""),
            started_at=float(started) if isinstance(started, int | float) else 0.0,
        )


@dataclass
class OperationState:
    """`status.operationState`: the operation being run (or last run) and how far it got."""

    operation: Operation
    phase: str = RUNNING
    message: str = ""
    started_at: str = field(default_factory=now)
    finished_at: str = ""
    retry_count: int = 0
    revision: str = ""  # the commit the operation syncs, pinned at its first step
    results: list[ResourceResult] = field(default_factory=list)
    # (sync phase, wave) the operation is at, for people and progress displays.
    wave: tuple[str, int] | None = None
    # Epoch seconds before which no step may run (a retry's backoff, a wave delay).
    not_before: float = 0.0
    # Consecutive steps that hit a transient error (API 5xx, unreachable Git).
    transient_errors: int = 0
    steps: int = 0
    spec_hash: str = ""  # the Application spec the operation started from
    # Conditions the operation raised (e.g. a refused prune), kept until the next operation.
    conditions: list[tuple[str, str]] = field(default_factory=list)

    @property
    def in_progress(self) -> bool:
        return self.phase in IN_PROGRESS

    @property
    def completed(self) -> bool:
        return self.phase in COMPLETED

    @property
    def succeeded(self) -> bool:
        return self.phase == SUCCEEDED

    @property
    def attempt_token(self) -> str:
        """Unique per (operation, retry attempt): names generateName hooks and marks every
        hook object, so a redelivered step finds the Job it created instead of a second one."""
        return f"{self.operation.id[:8]}-{self.retry_count}"

    def result(self, key: ResourceKey, phase: str) -> ResourceResult | None:
        for r in self.results:
            if r.key == key and r.phase == phase:
                return r
        return None

    def record(self, result: ResourceResult) -> None:
        """Add or replace the result for (key, phase)."""
        for i, r in enumerate(self.results):
            if r.ident == result.ident:
                self.results[i] = result
                return
        self.results.append(result)

    def restart(self, message: str, not_before: float) -> OperationState:
        """The next retry attempt: same operation, results cleared."""
        return replace(self, phase=RUNNING, message=message, retry_count=self.retry_count + 1,
                       results=[], wave=None, not_before=not_before, transient_errors=0,
                       conditions=[])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "operation": self.operation.to_dict(),
            "phase": self.phase,
            "message": self.message,
            "startedAt": self.started_at,
            "retryCount": self.retry_count,
            "syncResult": {"revision": self.revision,
                           "resources": [r.to_dict() for r in self.results]},
        }
        if self.finished_at:
            out["finishedAt"] = self.finished_at
        if self.wave is not None:
            out["currentWave"] = {"phase": self.wave[0], "wave": self.wave[1]}
        if self.not_before:
            out["notBefore"] = round(self.not_before, 3)
        if self.transient_errors:
            out["transientErrors"] = self.transient_errors
        if self.steps:
            out["steps"] = self.steps
        if self.spec_hash:
            out["specHash"] = self.spec_hash
        if self.conditions:
            out["conditions"] = [{"type": t, "message": m} for t, m in self.conditions]
        return out

    @classmethod
    def from_dict(cls, raw: Any) -> OperationState | None:
        if not isinstance(raw, dict):
            return None
        operation = Operation.from_dict(raw.get("operation"))
        if operation is None:
            return None
        result = _mapping(raw.get("syncResult"))
        wave = raw.get("currentWave")
        conditions = [(str(c.get("type")), str(c.get("message") or ""))
                      for c in raw.get("conditions") or [] if isinstance(c, dict)]
        return cls(
            operation=operation,
            phase=str(raw.get("phase") or RUNNING),
            message=str(raw.get("message") or ""),
            started_at=str(raw.get("startedAt") or now()),
            finished_at=str(raw.get("finishedAt") or ""),
            retry_count=_int(raw.get("retryCount")),
            revision=str(result.get("revision") or ""),
            results=[ResourceResult.from_dict(r) for r in result.get("resources") or []
                     if isinstance(r, dict)],
            wave=((str(wave.get("phase")), _int(wave.get("wave")))
                  if isinstance(wave, dict) else None),
            not_before=float(raw.get("notBefore") or 0.0),
            transient_errors=_int(raw.get("transientErrors")),
            steps=_int(raw.get("steps")),
            spec_hash=str(raw.get("specHash") or ""),
            conditions=conditions,
        )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
