"""The operation model: `operation` and `status.operationState` in their stored (Argo CD) shape,
request merging, attempt tokens and restarts. Pure data, no cluster."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gitops_tasks.model import operation as op
from gitops_tasks.model import status as st
from gitops_tasks.model.operation import Operation, OperationState, ResourceResult, SyncRequest
from gitops_tasks.model.resources import ResourceKey

CM = ResourceKey("", "ConfigMap", "shop", "cfg")
DEPLOY = ResourceKey("apps", "Deployment", "shop", "web")
CRD = ResourceKey("apiextensions.k8s.io", "CustomResourceDefinition", "", "widgets.example.com")
JOB = ResourceKey("batch", "Job", "shop", "migrate")


def full_operation() -> Operation:
    return Operation(
        id="0123456789ab",
        sync=SyncRequest(revision="abc123", prune=True, dry_run=True, force=False,
                         resources=(CRD, CM)),
        initiated_by="alice", automated=True, requested_at="2026-01-02T03:04:05Z", attempt=3)


def full_state() -> OperationState:
    return OperationState(
        operation=full_operation(),
        phase=st.FAILED_PHASE,
        message="1 resource(s) failed",
        started_at="2026-01-02T03:04:06Z",
        finished_at="2026-01-02T03:05:00Z",
        retry_count=2,
        revision="abc123def456",
        results=[
            ResourceResult(JOB, "v1", "PreSync", -1, st.APPLIED, "hook completed", hook=True,
                           hook_phase=op.HOOK_SUCCEEDED, started_at=1767323046.125),
            ResourceResult(CRD, "v1", "Sync", 0, st.APPLIED, "waiting for the CRD",
                           hook_phase=op.HOOK_RUNNING, started_at=1767323047.5),
            ResourceResult(CM, "v1", "Sync", 0, st.FAILED, "denied"),
            ResourceResult(JOB, "v1", "SyncFail", 2, st.APPLIED, hook=True,
                           hook_phase=op.HOOK_TERMINATED),
        ],
        wave=("Sync", 3),
        not_before=1767323100.25,
        transient_errors=4,
        steps=7,
        spec_hash="feedfacecafebeef",
        conditions=[(st.PRUNE_REFUSED, "nothing was pruned"), ("Other", "")],
    )


# ------------------------------------------------------------------------------ round trips

def test_operation_round_trip_keeps_every_field() -> None:
    operation = full_operation()
    stored = json.loads(json.dumps(operation.to_dict()))
    assert Operation.from_dict(stored) == operation


def test_operation_stored_shape() -> None:
    d = full_operation().to_dict()
    assert d == {
        "id": "0123456789ab",
        "sync": {"revision": "abc123", "prune": True, "dryRun": True,
                 "syncStrategy": {"hook": {"force": False}},
                 "resources": [{"group": "apiextensions.k8s.io",
                                "kind": "CustomResourceDefinition",
                                "name": "widgets.example.com"},
                               {"group": "", "kind": "ConfigMap", "namespace": "shop",
                                "name": "cfg"}]},
        "initiatedBy": {"username": "alice", "automated": True},
        "requestedAt": "2026-01-02T03:04:05Z",
        "attempt": 3,
    }


def test_minimal_operation_round_trip_and_defaults() -> None:
    operation = Operation("id1", SyncRequest(), initiated_by="bob")
    d = operation.to_dict()
    assert d == {"id": "id1", "sync": {}, "initiatedBy": {"username": "bob"}}
    back = Operation.from_dict(d)
    assert back == operation
    assert back is not None and back.sync.prune is None and back.sync.force is None
    assert back.attempt == 1 and not back.automated


def test_operation_dict_form_is_stable() -> None:
    # Even an operation nobody is named for comes back to the same stored form.
    first = Operation.new(SyncRequest(revision="r"))
    again = Operation.from_dict(first.to_dict())
    assert again is not None and again.to_dict() == first.to_dict()
    assert again.id == first.id


def test_operation_without_initiator_round_trips() -> None:
    operation = Operation("id2", SyncRequest(revision="r"))
    back = Operation.from_dict(operation.to_dict())
    assert back is not None and back.initiated_by == ""
    assert back == operation


def test_operation_new_is_unique_and_automated_is_named() -> None:
    a = Operation.new(SyncRequest())
    b = Operation.new(SyncRequest())
    assert a.id != b.id and len(a.id) == 12
    assert a.requested_at.endswith("Z")
    auto = Operation.new(SyncRequest(), automated=True)
    assert auto.initiated_by == "automated" and auto.automated
    assert Operation.new(SyncRequest(), initiated_by="carol", automated=True).initiated_by \
        == "carol"


def test_state_round_trip_keeps_every_field() -> None:
    state = full_state()
    stored = json.loads(json.dumps(state.to_dict()))
    back = OperationState.from_dict(stored)
    assert back == state
    assert back is not None and back.to_dict() == state.to_dict()


def test_state_stored_shape() -> None:
    d = full_state().to_dict()
    assert d["phase"] == "Failed" and d["retryCount"] == 2
    assert d["currentWave"] == {"phase": "Sync", "wave": 3}
    assert d["notBefore"] == 1767323100.25
    assert d["transientErrors"] == 4 and d["steps"] == 7 and d["specHash"] == "feedfacecafebeef"
    assert d["conditions"] == [{"type": "PruneRefused", "message": "nothing was pruned"},
                               {"type": "Other", "message": ""}]
    assert d["syncResult"]["revision"] == "abc123def456"
    first, crd, cm, fail_hook = d["syncResult"]["resources"]
    assert first == {"group": "batch", "version": "v1", "kind": "Job", "name": "migrate",
                     "namespace": "shop", "syncPhase": "PreSync", "wave": -1,
                     "status": "Applied", "message": "hook completed", "hookType": "PreSync",
                     "hookPhase": "Succeeded", "startedAt": 1767323046.125}
    assert "namespace" not in crd and crd["hookPhase"] == "Running" and "hookType" not in crd
    assert cm == {"group": "", "version": "v1", "kind": "ConfigMap", "name": "cfg",
                  "namespace": "shop", "syncPhase": "Sync", "wave": 0, "status": "Failed",
                  "message": "denied"}
    assert fail_hook["hookType"] == "SyncFail" and fail_hook["hookPhase"] == "Terminated"


def test_fresh_state_omits_optional_fields() -> None:
    state = OperationState(Operation("x", SyncRequest(), "dave"),
                           started_at="2026-01-01T00:00:00Z")
    d = state.to_dict()
    for absent in ("finishedAt", "currentWave", "notBefore", "transientErrors", "steps",
                   "specHash", "conditions"):
        assert absent not in d
    back = OperationState.from_dict(d)
    assert back == state
    assert back is not None and back.wave is None and back.not_before == 0.0


@pytest.mark.parametrize("raw", [None, "x", [], {}, {"operation": None},
                                 {"operation": {"id": "x"}}, {"operation": {"sync": "no"}}])
def test_state_without_an_operation_is_none(raw: Any) -> None:
    assert OperationState.from_dict(raw) is None


def test_state_tolerates_junk_fields() -> None:
    raw = {"operation": {"id": "x", "sync": {}}, "retryCount": "3", "steps": True,
           "currentWave": "Sync", "syncResult": {"resources": ["junk", {"kind": "ConfigMap",
                                                                        "wave": "1"}]},
           "conditions": ["junk", {"type": "T"}]}
    state = OperationState.from_dict(raw)
    assert state is not None
    assert state.retry_count == 0 and state.steps == 0 and state.wave is None
    assert state.phase == st.RUNNING
    (result,) = state.results
    assert result.key.kind == "ConfigMap" and result.wave == 0 and result.phase == "Sync"
    assert state.conditions == [("T", "")]


def test_phase_properties() -> None:
    state = full_state()
    for phase, in_progress, completed in ((st.RUNNING, True, False),
                                          (st.TERMINATING, True, False),
                                          (st.SUCCEEDED, False, True),
                                          (st.FAILED_PHASE, False, True),
                                          (st.ERROR_PHASE, False, True)):
        state.phase = phase
        assert (state.in_progress, state.completed) == (in_progress, completed), phase
        assert state.succeeded == (phase == st.SUCCEEDED)


def test_result_lookup_and_record_replace_by_key_and_phase() -> None:
    state = full_state()
    assert state.result(JOB, "PreSync") is state.results[0]
    assert state.result(JOB, "PostSync") is None
    replaced = ResourceResult(JOB, "v1", "PreSync", -1, st.FAILED, "hook failed", hook=True,
                              hook_phase=op.HOOK_FAILED)
    state.record(replaced)
    assert len(state.results) == 4 and state.results[0] is replaced
    state.record(ResourceResult(DEPLOY, "v1", "Sync", 0, st.APPLIED))
    assert len(state.results) == 5 and state.results[-1].key == DEPLOY


def test_result_running_and_failed() -> None:
    r = ResourceResult(JOB, "v1", "PreSync", 0, st.APPLIED, hook=True)
    assert not r.running and not r.failed
    r.hook_phase = op.HOOK_RUNNING
    assert r.running and not r.failed
    for phase in (op.HOOK_FAILED, op.HOOK_TERMINATED):
        r.hook_phase = phase
        assert r.failed and not r.running
    assert ResourceResult(CM, "v1", "Sync", 0, st.FAILED).failed
    assert r.ident == (JOB, "PreSync")


# ------------------------------------------------------------------------------ Argo CD's form

ARGO_OPERATION: dict[str, Any] = {
    "initiatedBy": {"automated": True},
    "retry": {"limit": 5},
    "info": [{"name": "Reason", "value": "ApplicationSet RollingSync triggered a sync"}],
    "sync": {
        "revision": "0a1b2c3d4e5f",
        "prune": True,
        "syncOptions": ["ServerSideApply=true"],
        "syncStrategy": {"apply": {"force": True}},
        "resources": [
            {"group": "apps", "kind": "Deployment", "name": "web", "namespace": "shop"},
            {"kind": "ConfigMap", "name": "cfg", "namespace": "shop"},
            {"group": "", "kind": "Namespace", "name": "shop"},
            {"kind": "NoName"},
            "junk",
        ],
    },
}


def test_argo_cd_written_operation_parses() -> None:
    parsed = Operation.from_dict(ARGO_OPERATION)
    assert parsed is not None
    assert parsed.sync == SyncRequest(
        revision="0a1b2c3d4e5f", prune=True, dry_run=False, force=True,
        resources=(DEPLOY, CM, ResourceKey("", "Namespace", "", "shop")))
    assert parsed.automated is True
    assert parsed.initiated_by == ""
    assert parsed.attempt == 1 and parsed.requested_at == ""
    # No id: one is derived, the same every time the same object is read.
    assert parsed.id
    again = Operation.from_dict(json.loads(json.dumps(ARGO_OPERATION)))
    assert again is not None and again.id == parsed.id


def test_argo_cd_hook_strategy_and_username() -> None:
    parsed = Operation.from_dict({"initiatedBy": {"username": "admin"},
                                  "sync": {"syncStrategy": {"hook": {"force": False}},
                                           "dryRun": True}})
    assert parsed is not None
    assert parsed.initiated_by == "admin" and not parsed.automated
    assert parsed.sync.force is False and parsed.sync.dry_run is True
    assert parsed.sync.prune is None and parsed.sync.revision == ""
    # A strategy without force says nothing about force.
    plain = Operation.from_dict({"sync": {"syncStrategy": {"apply": {}}}})
    assert plain is not None and plain.sync.force is None


def test_argo_cd_requested_at_gives_the_id() -> None:
    a = Operation.from_dict({"sync": {}, "requestedAt": "2026-01-01T00:00:00Z"})
    b = Operation.from_dict({"sync": {}, "requestedAt": "2026-01-01T00:00:01Z"})
    assert a is not None and b is not None and a.id != b.id


@pytest.mark.parametrize("attempt", [0, -2, "3", 1.5, None, True])
def test_invalid_attempt_is_one(attempt: Any) -> None:
    parsed = Operation.from_dict({"id": "x", "sync": {}, "attempt": attempt})
    assert parsed is not None and parsed.attempt == 1


@pytest.mark.parametrize("raw", [None, [], "x", {}, {"sync": None}, {"sync": []}])
def test_not_an_operation(raw: Any) -> None:
    assert Operation.from_dict(raw) is None


# ------------------------------------------------------------------------------ merging

def test_merge_newest_revision_wins() -> None:
    assert SyncRequest(revision="old").merged_with(SyncRequest(revision="new")).revision == "new"
    # "" (the target revision) is a revision like any other: the newest request says so.
    assert SyncRequest(revision="old").merged_with(SyncRequest()).revision == ""


@pytest.mark.parametrize(("older", "newer", "expected"), [
    (None, None, None),
    (None, False, False),
    (False, None, False),
    (False, False, False),
    (True, None, True),
    (None, True, True),
    (True, False, True),
    (False, True, True),
])
def test_merge_prune_and_force_or(older: bool | None, newer: bool | None,
                                  expected: bool | None) -> None:
    merged = SyncRequest(prune=older, force=older).merged_with(
        SyncRequest(prune=newer, force=newer))
    assert merged.prune is expected and merged.force is expected


def test_merge_resources_union_and_empty_means_all() -> None:
    a = SyncRequest(resources=(DEPLOY, CM))
    b = SyncRequest(resources=(CM, CRD))
    merged = a.merged_with(b)
    assert set(merged.resources) == {DEPLOY, CM, CRD} and len(merged.resources) == 3
    assert merged.resources == tuple(sorted(merged.resources))
    assert a.merged_with(SyncRequest()).resources == ()
    assert SyncRequest().merged_with(b).resources == ()
    assert SyncRequest().merged_with(SyncRequest()).resources == ()


def test_merge_dry_run_only_when_both() -> None:
    assert SyncRequest(dry_run=True).merged_with(SyncRequest(dry_run=True)).dry_run
    assert not SyncRequest(dry_run=True).merged_with(SyncRequest()).dry_run
    assert not SyncRequest().merged_with(SyncRequest(dry_run=True)).dry_run


# ------------------------------------------------------------------------------ retries

def test_attempt_token_is_per_operation_and_retry() -> None:
    state = full_state()
    assert state.attempt_token == "01234567-2"
    state.retry_count = 3
    assert state.attempt_token == "01234567-3"
    other = OperationState(Operation("fedcba987654", SyncRequest()), retry_count=3)
    assert other.attempt_token != state.attempt_token


def test_restart_clears_results_and_counts_the_retry() -> None:
    state = full_state()
    state.phase = st.RUNNING
    state.finished_at = ""
    token = state.attempt_token
    restarted = state.restart("retrying in 5s", 1767323200.0)
    assert restarted.retry_count == 3
    assert restarted.attempt_token != token
    assert restarted.phase == st.RUNNING and restarted.message == "retrying in 5s"
    assert restarted.results == [] and restarted.wave is None
    assert restarted.not_before == 1767323200.0
    assert restarted.transient_errors == 0 and restarted.conditions == []
    # Same operation, revision and spec; when it started stays.
    assert restarted.operation == state.operation
    assert restarted.revision == state.revision and restarted.spec_hash == state.spec_hash
    assert restarted.started_at == state.started_at
    # The original is untouched (the results of the failed attempt are still there).
    assert len(state.results) == 4 and state.retry_count == 2
    restarted.record(ResourceResult(CM, "v1", "Sync", 0, st.APPLIED))
    assert len(state.results) == 4


def test_restart_from_a_failed_state_is_running_again() -> None:
    restarted = full_state().restart("again", 0.0)
    assert restarted.in_progress and not restarted.completed
