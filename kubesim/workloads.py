"""Simulated status for workload objects: what the controllers of a real cluster would write.

A real cluster fills in `.status` from kube-controller-manager (Deployment, StatefulSet, DaemonSet,
ReplicaSet, Job, PersistentVolumeClaim binding), the kubelet (Pod) and a load-balancer controller
(Service type LoadBalancer). kubesim runs none of those. Instead its API server calls `simulate`
for every stored object whose (group, kind) is in `SIMULATED_KINDS`, on a timer and after each
write, and stores the status it returns. This is what lets a GitOps controller's health checks
(Argo CD style: rollout complete, Job complete or failed, Pod phase, PVC Bound, LoadBalancer
ingress) be tested against kubesim.

One controller makes objects rather than status: kube-controller-manager's serviceaccounts
controller gives every active namespace a `default` ServiceAccount, and makes it again when it is
deleted. `default_service_account` says what it would create; the API server creates it on a
timer, shortly after the namespace appears, under the same switch as the status simulation.

`simulate` is pure: the status it returns depends only on the object (including its current
status), the seconds since the object's current generation was written, the settings and the
`now` timestamp, which it uses as given for every timestamp it sets. Timestamps already in the
status are kept while what they describe is unchanged, so a settled object gives `(None, None)`
however often it is simulated.

Timeline. Right after a change an object is "in progress": the rollout is observed but no new pod
is ready, a Job is active, a Pod is Pending, a PVC is Pending, a LoadBalancer Service has no
ingress. A new pod template rolls out as in a real cluster: a Deployment's new ReplicaSet has as
many (unready) pods as maxSurge allows beside the old ones that maxUnavailable keeps available,
so `updatedReplicas` is below, and `replicas` may be above, `spec.replicas`; a StatefulSet has no
pod at its `updateRevision` yet; a DaemonSet's replaced pod is not available yet. Once
`SimSettings.ready_delay` seconds have passed since the change, it has settled: rollouts are
available, Jobs have completed, Pods run (or succeed), PVCs are Bound and LoadBalancer Services
have an ingress IP from `SimSettings.lb_ip_prefix`. A PersistentVolume is Available at once, as
kube-controller-manager's PV controller makes a new volume. Claims bind without one: no PV is
provisioned or matched, so a claim's `spec.volumeName` stays unset and a PV never turns Bound.

Fail marker: the documented way to make something fail. Put `SimSettings.fail_marker`
(default "kubesim-fail") anywhere in the `image` of a container or init container, e.g.
`image: registry.example/app:kubesim-fail`. After `ready_delay`:

- Deployment: Progressing is False with reason ProgressDeadlineExceeded, and the new pods never
  become available (a first rollout has availableReplicas 0 and Available False with reason
  MinimumReplicasUnavailable; during a rolling update the old pods stay available, as in a real
  cluster).
- StatefulSet, DaemonSet, ReplicaSet: the new pods never become ready, so the rollout stays
  unfinished for good.
- Job: Failed (and FailureTarget) True with reason BackoffLimitExceeded and
  failed = backoffLimit + 1.
- Pod: the marked containers crash: with restartPolicy Never the Pod is Failed; otherwise it
  stays Running, not Ready, with its marked containers waiting in CrashLoopBackOff and a
  restartCount that grows on the kubelet's back-off schedule (10s doubling to 5m).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SIMULATED_KINDS",
    "SimSettings",
    "default_service_account",
    "group_kind",
    "has_fail_marker",
    "simulate",
    "template_hash",
]

Status = dict[str, Any]
Result = tuple[Status | None, float | None]

SIMULATED_KINDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("apps", "ReplicaSet"),
        ("batch", "Job"),
        ("", "Pod"),
        ("", "PersistentVolumeClaim"),
        ("", "PersistentVolume"),
        ("", "Service"),
    }
)


@dataclass(frozen=True)
class SimSettings:
    """How the simulated controllers behave."""

    # Seconds after a change (new generation, or creation for kinds without one) until the
    # rollout is available, the Job completes, the Pod runs, the PVC binds, the LB gets an IP.
    ready_delay: float = 0.5
    # An image containing this string makes the rollout, Job or Pod fail (see module docstring).
    fail_marker: str = "kubesim-fail"
    # LoadBalancer ingress IPs are this prefix plus 1..254.
    lb_ip_prefix: str = "172.18.255."


# The single simulated node, as in a one-node kind cluster.
_HOST_IP = "172.18.0.2"
# Kubelet container restart back-off: 10s, doubling, capped at 5 minutes.
_BACKOFF_BASE = 10.0
_BACKOFF_CAP = 300.0
# Keys holding timestamps; see `_keep_times`.
_TIME_KEYS = frozenset(
    {
        "lastTransitionTime",
        "lastUpdateTime",
        "lastProbeTime",
        "startTime",
        "completionTime",
        "startedAt",
        "finishedAt",
    }
)
# k8s.io/apimachinery/pkg/util/rand.SafeEncodeString alphabet (no vowels, no confusables).
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# The ReplicaSet a Deployment's Progressing condition message names.
_RS_MESSAGE = re.compile(r'ReplicaSet "([^"]+)"')


# --------------------------------------------------------------------------- public helpers


def group_kind(obj: Mapping[str, Any]) -> tuple[str, str]:
    """The (group, kind) of an object: `apps/v1` -> "apps", `v1` -> "" (the core group)."""
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    group = api_version.rpartition("/")[0] if isinstance(api_version, str) else ""
    return group, kind if isinstance(kind, str) else ""


def template_hash(template: Any) -> str:
    """A stable short hash of a pod template, formatted like a real pod-template-hash.

    FNV-1a (32 bit) over the template as canonical JSON, then encoded as the controllers do
    (`rand.SafeEncodeString` of the decimal hash), giving e.g. "7c5ddbdf54". The value differs
    from a real cluster's, which hashes the Go struct, but is equally stable.
    """
    data = json.dumps(template, sort_keys=True, separators=(",", ":"), default=str)
    h = 0x811C9DC5
    for byte in data.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in str(h).encode())


def has_fail_marker(pod_spec: Any, marker: str) -> bool:
    """Whether any container or init container image of a pod spec contains `marker`."""
    if not marker:
        return False
    return any(marker in _image(c) for c in _containers(pod_spec, "containers", "initContainers"))


def simulate(
    obj: Mapping[str, Any], *, since_change: float, settings: SimSettings, now: str
) -> Result:
    """Compute the status the real controllers would give `obj` by now.

    obj: the stored object; its group and kind come from apiVersion and kind.
    since_change: seconds since the object's current generation was written (its creation for
        kinds without a generation).
    settings: timing and fail-marker settings.
    now: the current time as an RFC 3339 string, used verbatim for any timestamp set.

    Returns (new_status, next_check_in): new_status is the whole new `.status`, or None when it
    equals the current one; next_check_in is the number of seconds after which calling again
    may give a different status, or None when nothing more will happen without a write.
    """
    handler = _HANDLERS.get(group_kind(obj))
    if handler is None:
        return None, None
    current = obj.get("status")
    prev: Mapping[str, Any] = current if isinstance(current, Mapping) else {}
    status, next_check_in = handler(_Ctx(obj, prev, max(since_change, 0.0), settings, now))
    if status == (current if current is not None else {}):
        return None, next_check_in
    return status, next_check_in


DEFAULT_SERVICE_ACCOUNT = "default"


def default_service_account(namespace: Mapping[str, Any]) -> Status | None:
    """The ServiceAccount the serviceaccounts controller creates in `namespace` (a Namespace
    object), or None when it creates none: a terminating namespace gets no new objects."""
    meta = _map(namespace.get("metadata"))
    name = meta.get("name")
    if not isinstance(name, str) or not name or meta.get("deletionTimestamp"):
        return None
    if _map(namespace.get("status")).get("phase") == "Terminating":
        return None
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": name}}


# --------------------------------------------------------------------------- plumbing


@dataclass(frozen=True)
class _Ctx:
    obj: Mapping[str, Any]
    prev: Mapping[str, Any]
    since_change: float
    settings: SimSettings
    now: str

    @property
    def settled(self) -> bool:
        """Whether ready_delay has passed since the change."""
        return self.since_change >= self.settings.ready_delay

    @property
    def wait(self) -> float:
        """Seconds until settled."""
        return max(self.settings.ready_delay - self.since_change, 0.0)

    @property
    def meta(self) -> Mapping[str, Any]:
        return _map(self.obj.get("metadata"))

    @property
    def spec(self) -> Mapping[str, Any]:
        return _map(self.obj.get("spec"))

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or "")

    @property
    def namespace(self) -> str:
        return str(self.meta.get("namespace") or "")

    @property
    def generation(self) -> int | None:
        gen = self.meta.get("generation")
        return gen if isinstance(gen, int) and not isinstance(gen, bool) else None

    @property
    def template(self) -> Mapping[str, Any]:
        return _map(self.spec.get("template"))

    @property
    def pod_spec(self) -> Mapping[str, Any]:
        return _map(self.template.get("spec"))

    def failing(self, pod_spec: Mapping[str, Any] | None = None) -> bool:
        spec = self.pod_spec if pod_spec is None else pod_spec
        return has_fail_marker(spec, self.settings.fail_marker)

    def fresh_status(self) -> Status:
        """A copy of the current status to build the new one on (keeps fields we don't manage)."""
        return copy.deepcopy(dict(self.prev))

    def observe(self, status: Status) -> None:
        _put(status, "observedGeneration", self.generation)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return value


def _replicas(spec: Mapping[str, Any]) -> int:
    return max(_int(spec.get("replicas"), 1), 0)


def _containers(pod_spec: Any, *fields: str) -> list[Mapping[str, Any]]:
    spec = _map(pod_spec)
    out: list[Mapping[str, Any]] = []
    for field in fields:
        items = spec.get(field)
        if isinstance(items, list):
            out.extend(c for c in items if isinstance(c, Mapping))
    return out


def _image(container: Mapping[str, Any]) -> str:
    image = container.get("image")
    return image if isinstance(image, str) else ""


def _put(status: Status, key: str, value: Any, *, omitempty: bool = True) -> None:
    """Set a status field, dropping it when empty as the API's `omitempty` JSON tags do."""
    if value is None or (omitempty and value in (0, "", [], {}) and not isinstance(value, bool)):
        status.pop(key, None)
    else:
        status[key] = value


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("/".join(parts).encode()).digest()


def _resolve_int_or_percent(value: Any, total: int, *, round_up: bool, default: str) -> int:
    if value is None:
        value = default
    if isinstance(value, int) and not isinstance(value, bool):
        return max(value, 0)
    text = str(value).strip()
    if text.endswith("%"):
        try:
            percent = int(text[:-1])
        except ValueError:
            return 0
        scaled = percent * total
        return max(-(-scaled // 100) if round_up else scaled // 100, 0)
    try:
        return max(int(text), 0)
    except ValueError:
        return 0


def _strip_times(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: None if k in _TIME_KEYS else _strip_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_times(v) for v in value]
    return value


def _keep_times(new: Any, prev: Any) -> Any:
    """`prev` when it says the same as `new` apart from timestamps, else `new`.

    Keeps e.g. a container's `startedAt` from the moment it was first reported.
    """
    if prev is not None and _strip_times(new) == _strip_times(prev):
        return copy.deepcopy(prev)
    return new


# --------------------------------------------------------------------------- conditions


def _condition(
    prev_conditions: Any,
    ctype: str,
    status: str,
    reason: str,
    message: str,
    now: str,
    *,
    update_key: str | None = None,
    null_probe: bool = False,
) -> Status:
    """A condition; lastTransitionTime kept while its status is unchanged.

    update_key names a second timestamp (lastUpdateTime for Deployments, lastProbeTime for Jobs)
    kept while status, reason and message are all unchanged. null_probe gives the
    `lastProbeTime: null` that Pod conditions carry.
    """
    prev = next(
        (c for c in prev_conditions or [] if isinstance(c, Mapping) and c.get("type") == ctype),
        None,
    )
    same_status = prev is not None and prev.get("status") == status
    same_all = (
        same_status
        and prev is not None
        and (prev.get("reason") or "") == reason
        and (prev.get("message") or "") == message
    )
    cond: Status = {"type": ctype, "status": status}
    if null_probe:
        cond["lastProbeTime"] = None
    if update_key is not None:
        cond[update_key] = prev.get(update_key, now) if same_all and prev is not None else now
    cond["lastTransitionTime"] = (
        prev.get("lastTransitionTime", now) if same_status and prev is not None else now
    )
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _merge_conditions(
    prev_conditions: Any, new: Iterable[Status], drop: Iterable[str] = ()
) -> list[Status]:
    """Replace conditions by type in place, append new types, drop types in `drop` not in `new`."""
    by_type = {c["type"]: c for c in new}
    dropped = set(drop)
    out: list[Status] = []
    for cond in prev_conditions or []:
        if not isinstance(cond, Mapping):
            continue
        ctype = cond.get("type")
        if ctype in by_type:
            out.append(by_type.pop(ctype))
        elif ctype not in dropped:
            out.append(copy.deepcopy(dict(cond)))
    out.extend(by_type.values())
    return out


def _set_conditions(status: Status, conditions: list[Status]) -> None:
    _put(status, "conditions", conditions)


# --------------------------------------------------------------------------- apps


def _max_unavailable(spec: Mapping[str, Any], replicas: int) -> int:
    """Pods a Deployment may have unavailable (deploymentutil.MaxUnavailable)."""
    strategy = _map(spec.get("strategy"))
    if (strategy.get("type") or "RollingUpdate") != "RollingUpdate" or replicas == 0:
        return 0
    rolling = _map(strategy.get("rollingUpdate"))
    surge = _resolve_int_or_percent(rolling.get("maxSurge"), replicas, round_up=True, default="25%")
    unavailable = _resolve_int_or_percent(
        rolling.get("maxUnavailable"), replicas, round_up=False, default="25%"
    )
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return min(unavailable, replicas)


def _max_surge(spec: Mapping[str, Any], replicas: int) -> int:
    """Pods a Deployment may run above its replicas during a rollout (deploymentutil.MaxSurge)."""
    strategy = _map(spec.get("strategy"))
    if (strategy.get("type") or "RollingUpdate") != "RollingUpdate" or replicas == 0:
        return 0
    rolling = _map(strategy.get("rollingUpdate"))
    return _resolve_int_or_percent(rolling.get("maxSurge"), replicas, round_up=True, default="25%")


def _progressing_replicaset(prev_conditions: Any) -> str | None:
    """The ReplicaSet named by a Deployment's Progressing condition: the one it last rolled out."""
    for cond in prev_conditions or []:
        if isinstance(cond, Mapping) and cond.get("type") == "Progressing":
            match = _RS_MESSAGE.match(str(cond.get("message") or ""))
            return match.group(1) if match else None
    return None


def _deployment(c: _Ctx) -> Result:
    spec = c.spec
    replicas = _replicas(spec)
    rs_name = f"{c.name}-{template_hash(c.template)}"
    recreate = (_map(spec.get("strategy")).get("type") or "RollingUpdate") == "Recreate"
    prev_conditions = c.prev.get("conditions")
    carried = min(_int(c.prev.get("availableReplicas"), 0), replicas)
    # The available pods run the current template when the last status described this
    # template's ReplicaSet and no other pods (a settled or first rollout, then a scale or
    # another change that keeps the template). Otherwise they are old pods that a rollout
    # replaces: a template change started it, or it is under way (new pods are never
    # available before it settles).
    only_new_rs = _int(c.prev.get("updatedReplicas"), 0) >= _int(c.prev.get("replicas"), 0)
    same_template = only_new_rs and _progressing_replicaset(prev_conditions) == rs_name
    if same_template:
        new_available, old_available = carried, 0
    elif recreate:
        new_available = old_available = 0  # Recreate kills the old pods first
    else:
        # A rolling update scales the old ReplicaSet down by maxUnavailable at once and keeps
        # the rest until new pods are available; the new one gets what maxSurge leaves room for.
        new_available = 0
        old_available = min(carried, max(replicas - _max_unavailable(spec, replicas), 0))
    next_check: float | None = None

    if spec.get("paused"):
        available, total = carried, replicas
        updated = min(_int(c.prev.get("updatedReplicas"), 0), replicas)
        progressing = ("Unknown", "DeploymentPaused", "Deployment is paused")
    elif replicas == 0 or (c.settled and not c.failing()):
        available = updated = total = replicas
        progressing = (
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{rs_name}" has successfully progressed.',
        )
    else:
        # In progress, or stuck for good: the new ReplicaSet's pods are not (all) ready, while
        # old pods still serve. status.replicas counts both, so it may exceed spec.replicas.
        updated = min(replicas, replicas + _max_surge(spec, replicas) - old_available)
        total = old_available + updated
        available = old_available + new_available
        if not c.settled:
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
            next_check = c.wait
        else:  # failing
            progressing = (
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
            )

    status = c.fresh_status()
    c.observe(status)
    _put(status, "replicas", total)
    _put(status, "updatedReplicas", updated)
    _put(status, "readyReplicas", available)
    _put(status, "availableReplicas", available)
    _put(status, "unavailableReplicas", max(total - available, 0))
    if available >= replicas - _max_unavailable(spec, replicas):
        avail_cond = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    else:
        avail_cond = (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    conditions = [
        _condition(prev_conditions, "Available", *avail_cond, c.now, update_key="lastUpdateTime"),
        _condition(
            prev_conditions, "Progressing", *progressing, c.now, update_key="lastUpdateTime"
        ),
    ]
    _set_conditions(status, _merge_conditions(prev_conditions, conditions))
    return status, next_check


def _statefulset(c: _Ctx) -> Result:
    spec = c.spec
    replicas = _replicas(spec)
    revision = f"{c.name}-{template_hash(c.template)}"
    prev_current = c.prev.get("currentRevision")
    current_revision = prev_current if isinstance(prev_current, str) and prev_current else revision
    carried_ready = min(_int(c.prev.get("readyReplicas"), 0), replicas)
    strategy = _map(spec.get("updateStrategy"))
    partition = 0
    if (strategy.get("type") or "RollingUpdate") == "RollingUpdate":
        partition = _int(_map(strategy.get("rollingUpdate")).get("partition"), 0)
        partition = min(max(partition, 0), replicas)
    failing = c.failing()
    next_check: float | None = None

    if current_revision == revision:
        # First rollout, or a change that keeps the template (e.g. a scale).
        current = updated = replicas
        if not c.settled:
            ready = carried_ready
            next_check = c.wait
        else:
            ready = carried_ready if failing else replicas
    else:
        # Rolling update: pods from ordinal replicas-1 down to the partition get the new revision.
        to_update = replicas - partition
        if not c.settled:
            updated, ready = 0, carried_ready
            next_check = c.wait
        elif failing:
            # The first replaced pod (highest ordinal) crash-loops; the rollout stops there.
            updated = min(1, to_update)
            ready = min(carried_ready, replicas - updated)
        else:
            updated, ready = to_update, replicas
        current = replicas - updated
        if updated == replicas:
            current_revision, current = revision, replicas

    status = c.fresh_status()
    c.observe(status)
    _put(status, "replicas", replicas, omitempty=False)
    _put(status, "readyReplicas", ready)
    _put(status, "currentReplicas", current)
    _put(status, "updatedReplicas", updated)
    _put(status, "availableReplicas", ready, omitempty=False)
    _put(status, "currentRevision", current_revision)
    _put(status, "updateRevision", revision)
    status.setdefault("collisionCount", 0)
    return status, next_check


def _daemonset(c: _Ctx) -> Result:
    # One simulated node, which every DaemonSet's pod is scheduled to.
    next_check: float | None = None
    if not c.settled:
        ready = 0
        next_check = c.wait
    else:
        ready = 0 if c.failing() else 1
    status = c.fresh_status()
    _put(status, "currentNumberScheduled", 1, omitempty=False)
    _put(status, "numberMisscheduled", 0, omitempty=False)
    _put(status, "desiredNumberScheduled", 1, omitempty=False)
    _put(status, "numberReady", ready, omitempty=False)
    c.observe(status)
    _put(status, "updatedNumberScheduled", 1)
    _put(status, "numberAvailable", ready)
    _put(status, "numberUnavailable", 1 - ready)
    return status, next_check


def _replicaset(c: _Ctx) -> Result:
    replicas = _replicas(c.spec)
    # A ReplicaSet does not replace pods when its template changes; only new pods use it.
    carried = min(_int(c.prev.get("readyReplicas"), 0), replicas)
    next_check: float | None = None
    if not c.settled:
        ready = carried
        next_check = c.wait if carried < replicas else None
    else:
        ready = carried if c.failing() else replicas
    status = c.fresh_status()
    _put(status, "replicas", replicas, omitempty=False)
    _put(status, "fullyLabeledReplicas", replicas)
    _put(status, "readyReplicas", ready)
    _put(status, "availableReplicas", ready)
    c.observe(status)
    return status, next_check


# --------------------------------------------------------------------------- batch


def _job(c: _Ctx) -> Result:
    prev_conditions = c.prev.get("conditions")
    for prev_cond in prev_conditions or []:
        if (
            isinstance(prev_cond, Mapping)
            and prev_cond.get("type") in ("Complete", "Failed")
            and prev_cond.get("status") == "True"
        ):
            return copy.deepcopy(dict(c.prev)), None  # finished Jobs never change again

    spec = c.spec
    parallelism = max(_int(spec.get("parallelism"), 1), 0)
    completions_spec = spec.get("completions")
    completions = _int(completions_spec, parallelism) if completions_spec is not None else None
    backoff_limit = max(_int(spec.get("backoffLimit"), 6), 0)
    deadline = spec.get("activeDeadlineSeconds")
    deadline_s = float(deadline) if isinstance(deadline, int | float) else None

    status = c.fresh_status()
    status.setdefault("uncountedTerminatedPods", {})
    status.setdefault("ready", 0)
    status.setdefault("terminating", 0)
    conditions: list[Status] = []

    def cond(ctype: str, st: str, reason: str, message: str) -> None:
        conditions.append(
            _condition(
                prev_conditions, ctype, st, reason, message, c.now, update_key="lastProbeTime"
            )
        )

    has_suspended = any(
        isinstance(x, Mapping) and x.get("type") == "Suspended" for x in prev_conditions or []
    )
    next_check: float | None = None
    if spec.get("suspend"):
        cond("Suspended", "True", "JobSuspended", "Job suspended")
        _put(status, "active", 0)
        _put(status, "startTime", None)
    else:
        if has_suspended:
            cond("Suspended", "False", "JobResumed", "Job resumed")
        _put(status, "startTime", c.prev.get("startTime") or c.now)
        finish_at = c.settings.ready_delay
        if deadline_s is not None and deadline_s < finish_at:
            if c.since_change >= deadline_s:
                _put(status, "active", 0)
                _put(status, "failed", _int(status.get("failed"), 0) + parallelism)
                for ctype in ("FailureTarget", "Failed"):
                    cond(
                        ctype,
                        "True",
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline",
                    )
            else:
                _put(status, "active", parallelism)
                next_check = deadline_s - c.since_change
        elif parallelism == 0:
            _put(status, "active", 0)  # nothing may run: the Job waits
        elif not c.settled:
            target = completions if completions is not None else parallelism
            _put(status, "active", min(parallelism, max(target, 0)))
            next_check = c.wait
        elif c.failing():
            _put(status, "active", 0)
            _put(status, "failed", backoff_limit + 1)
            for ctype in ("FailureTarget", "Failed"):
                cond(
                    ctype,
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                )
        else:
            _put(status, "active", 0)
            _put(status, "succeeded", completions if completions is not None else parallelism)
            _put(status, "completionTime", c.now)
            for ctype in ("SuccessCriteriaMet", "Complete"):
                cond(
                    ctype,
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                )
    _set_conditions(status, _merge_conditions(prev_conditions, conditions))
    return status, next_check


# --------------------------------------------------------------------------- core: Pod


def _duration(seconds: float) -> str:
    """Go's time.Duration formatting for whole seconds: 10s, 1m20s, 5m0s."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _crash_loop(elapsed: float) -> tuple[int, float, float]:
    """Kubelet restarts of a container that crashes at once, `elapsed` seconds after it first did.

    Returns (restartCount, current back-off, seconds until the next restart).
    """
    count, backoff, next_at = 1, _BACKOFF_BASE, _BACKOFF_BASE
    while elapsed >= next_at and backoff < _BACKOFF_CAP:
        count += 1
        backoff = min(backoff * 2, _BACKOFF_CAP)
        next_at += backoff
    if elapsed >= next_at:
        extra = int((elapsed - next_at) // _BACKOFF_CAP) + 1
        count += extra
        next_at += extra * _BACKOFF_CAP
    return count, backoff, next_at - elapsed


def _image_id(image: str) -> str:
    """What containerd reports as imageID: the fully qualified repository plus a digest."""
    repo = image.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo[: len(repo) - len(last)] + last.split(":", 1)[0]
    first = repo.split("/", 1)[0]
    if "/" not in repo:
        repo = f"docker.io/library/{repo}"
    elif not ("." in first or ":" in first or first == "localhost"):
        repo = f"docker.io/{repo}"
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


class _PodSim:
    """Builds a Pod's status; one instance per simulate call."""

    def __init__(self, c: _Ctx) -> None:
        self.c = c
        self.spec = c.spec
        self.uid = str(c.meta.get("uid") or "")
        self.containers = _containers(self.spec, "containers")
        self.init_containers = _containers(self.spec, "initContainers")
        self.policy = str(self.spec.get("restartPolicy") or "Always")
        marker = c.settings.fail_marker
        self.failing = {
            str(x.get("name")) for x in self.containers if marker and marker in _image(x)
        }
        self.init_failing = [
            str(x.get("name")) for x in self.init_containers if marker and marker in _image(x)
        ]
        owners = c.meta.get("ownerReferences")
        self.job_owned = any(
            isinstance(o, Mapping) and o.get("kind") == "Job" for o in owners or []
        )
        self.prev_conditions = c.prev.get("conditions")

    def container_id(self, name: str, restarts: int) -> str:
        raw = _digest(self.c.namespace, self.c.name, self.uid, name, str(restarts))
        return "containerd://" + raw.hex()

    def container_status(
        self,
        container: Mapping[str, Any],
        state: Status,
        *,
        ready: bool,
        restarts: int = 0,
        last_state: Status | None = None,
        created: bool = True,
    ) -> Status:
        name = str(container.get("name") or "")
        image = _image(container)
        out: Status = {"name": name, "image": image, "imageID": ""}
        if created:
            out["imageID"] = _image_id(image)
            out["containerID"] = self.container_id(name, restarts)
        out.update(
            {
                "ready": ready,
                "restartCount": restarts,
                "started": "running" in state,
                "state": state,
                "lastState": last_state or {},
            }
        )
        return out

    def crashing_status(self, container: Mapping[str, Any]) -> tuple[Status, float]:
        name = str(container.get("name") or "")
        restarts, backoff, next_in = _crash_loop(self.c.since_change - self.c.settings.ready_delay)
        message = (
            f"back-off {_duration(backoff)} restarting failed container={name} "
            f"pod={self.c.name}_{self.c.namespace}({self.uid})"
        )
        terminated = {
            "exitCode": 1,
            "reason": "Error",
            "startedAt": self.c.now,
            "finishedAt": self.c.now,
            "containerID": self.container_id(name, restarts - 1),
        }
        state = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
        status = self.container_status(
            container, state, ready=False, restarts=restarts, last_state={"terminated": terminated}
        )
        status["containerID"] = terminated["containerID"]
        return status, next_in

    def terminated(self, container: Mapping[str, Any], *, ok: bool) -> Status:
        name = str(container.get("name") or "")
        state = {
            "terminated": {
                "exitCode": 0 if ok else 1,
                "reason": "Completed" if ok else "Error",
                "startedAt": self.c.now,
                "finishedAt": self.c.now,
                "containerID": self.container_id(name, 0),
            }
        }
        return self.container_status(container, state, ready=False)

    def running(self, container: Mapping[str, Any]) -> Status:
        return self.container_status(container, {"running": {"startedAt": self.c.now}}, ready=True)

    def waiting(self, container: Mapping[str, Any], reason: str) -> Status:
        return self.container_status(
            container, {"waiting": {"reason": reason}}, ready=False, created=False
        )

    def cond(self, ctype: str, ok: bool, reason: str = "", message: str = "") -> Status:
        return _condition(
            self.prev_conditions,
            ctype,
            "True" if ok else "False",
            reason,
            message,
            self.c.now,
            null_probe=True,
        )

    def build(self) -> Result:
        c = self.c
        phase = c.prev.get("phase")
        if phase in ("Succeeded", "Failed"):
            return copy.deepcopy(dict(c.prev)), None  # terminal phases are final

        names = [str(x.get("name") or "") for x in self.containers]
        init_names = [str(x.get("name") or "") for x in self.init_containers]
        next_check: float | None = None
        init_statuses: list[Status] = []
        statuses: list[Status]
        sandbox = initialized = False
        unready: list[str] = names
        end_reason = ""  # PodCompleted / PodFailed once all containers have terminated

        if not c.settled:
            phase = "Pending"
            if self.init_containers:
                init_statuses = [self.waiting(x, "PodInitializing") for x in self.init_containers]
                statuses = [self.waiting(x, "PodInitializing") for x in self.containers]
            else:
                initialized = True
                statuses = [self.waiting(x, "ContainerCreating") for x in self.containers]
            next_check = c.wait
        elif self.init_failing:
            sandbox = True
            bad = self.init_failing[0]
            statuses = [self.waiting(x, "PodInitializing") for x in self.containers]
            for x in self.init_containers:
                name = str(x.get("name") or "")
                if name == bad and self.policy != "Never":
                    status, next_check = self.crashing_status(x)
                    init_statuses.append(status)
                elif name == bad:
                    init_statuses.append(self.terminated(x, ok=False))
                elif init_names.index(name) < init_names.index(bad):
                    init_statuses.append(self.terminated(x, ok=True) | {"ready": True})
                else:
                    init_statuses.append(self.waiting(x, "PodInitializing"))
            phase = "Failed" if self.policy == "Never" else "Pending"
            if phase == "Failed":
                sandbox, end_reason = False, "PodFailed"
        else:
            sandbox = initialized = True
            init_statuses = [
                self.terminated(x, ok=True) | {"ready": True} for x in self.init_containers
            ]
            if self.failing and self.policy == "Never":
                phase, sandbox, end_reason = "Failed", False, "PodFailed"
                statuses = [
                    self.terminated(x, ok=str(x.get("name")) not in self.failing)
                    for x in self.containers
                ]
            elif self.failing:
                phase = "Running"
                statuses = []
                for x in self.containers:
                    if str(x.get("name")) in self.failing:
                        status, next_check = self.crashing_status(x)
                        statuses.append(status)
                    else:
                        statuses.append(self.running(x))
                unready = [n for n in names if n in self.failing]
            elif self.job_owned or self.policy == "Never":
                phase, sandbox, end_reason = "Succeeded", False, "PodCompleted"
                statuses = [self.terminated(x, ok=True) for x in self.containers]
            else:
                phase = "Running"
                statuses = [self.running(x) for x in self.containers]
                unready = []

        prev_statuses = {
            s.get("name"): s
            for s in [
                *(c.prev.get("containerStatuses") or []),
                *(c.prev.get("initContainerStatuses") or []),
            ]
            if isinstance(s, Mapping)
        }
        statuses = [_keep_times(s, prev_statuses.get(s["name"])) for s in statuses]
        init_statuses = [_keep_times(s, prev_statuses.get(s["name"])) for s in init_statuses]

        if end_reason:
            ready_conds = [
                self.cond("Ready", False, end_reason),
                self.cond("ContainersReady", False, end_reason),
            ]
        elif unready:
            message = f"containers with unready status: [{' '.join(unready)}]"
            ready_conds = [
                self.cond("Ready", False, "ContainersNotReady", message),
                self.cond("ContainersReady", False, "ContainersNotReady", message),
            ]
        else:
            ready_conds = [self.cond("Ready", True), self.cond("ContainersReady", True)]
        if initialized or end_reason == "PodCompleted":
            init_cond = self.cond("Initialized", True)
        else:
            pending = self.init_failing[:1] or init_names
            init_cond = self.cond(
                "Initialized",
                False,
                "ContainersNotInitialized",
                f"containers with incomplete status: [{' '.join(pending)}]",
            )
        conditions = [
            self.cond("PodReadyToStartContainers", sandbox),
            init_cond,
            *ready_conds,
            self.cond("PodScheduled", True),
        ]

        status = c.fresh_status()
        status["phase"] = phase
        _set_conditions(status, _merge_conditions(self.prev_conditions, conditions))
        status["hostIP"] = _HOST_IP
        status["hostIPs"] = [{"ip": _HOST_IP}]
        if c.settled:
            ip = self.pod_ip()
            status["podIP"] = ip
            status["podIPs"] = [{"ip": ip}]
        status["startTime"] = c.prev.get("startTime") or c.now
        _put(status, "initContainerStatuses", init_statuses)
        _put(status, "containerStatuses", statuses)
        return status, next_check

    def pod_ip(self) -> str:
        raw = _digest(self.c.namespace, self.c.name)
        return f"10.244.{raw[0]}.{raw[1] % 254 + 1}"


def _pod(c: _Ctx) -> Result:
    return _PodSim(c).build()


# --------------------------------------------------------------------------- core: others


def _pvc(c: _Ctx) -> Result:
    status = c.fresh_status()
    if c.prev.get("phase") == "Bound" or c.settled:
        status["phase"] = "Bound"
        access_modes = c.spec.get("accessModes")
        _put(status, "accessModes", copy.deepcopy(access_modes) if access_modes else None)
        storage = _map(_map(c.spec.get("resources")).get("requests")).get("storage")
        if storage is not None:
            status["capacity"] = {"storage": storage}
        return status, None
    status["phase"] = "Pending"
    return status, c.wait


def _pv(c: _Ctx) -> Result:
    status = c.fresh_status()
    if c.prev.get("phase") in (None, "", "Pending"):
        status["phase"] = "Available"
        # The status strategy stamps every phase change.
        status["lastPhaseTransitionTime"] = c.now
    return status, None


def _service(c: _Ctx) -> Result:
    load_balancer = _map(c.prev.get("loadBalancer"))
    if c.spec.get("type") != "LoadBalancer":
        if not load_balancer.get("ingress"):
            return copy.deepcopy(dict(c.prev)), None
        status = c.fresh_status()
        status["loadBalancer"] = {}
        return status, None
    if not c.settled:
        return copy.deepcopy(dict(c.prev)), c.wait
    requested = c.spec.get("loadBalancerIP")  # deprecated, but still honoured by most LBs
    if isinstance(requested, str) and requested:
        ip = requested
    else:
        n = int.from_bytes(_digest(c.namespace, c.name)[:4], "big") % 254 + 1
        ip = f"{c.settings.lb_ip_prefix}{n}"
    status = c.fresh_status()
    status["loadBalancer"] = {"ingress": [{"ip": ip, "ipMode": "VIP"}]}
    return status, None


_HANDLERS: dict[tuple[str, str], Callable[[_Ctx], Result]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("batch", "Job"): _job,
    ("", "Pod"): _pod,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "PersistentVolume"): _pv,
    ("", "Service"): _service,
}
assert frozenset(_HANDLERS) == SIMULATED_KINDS
