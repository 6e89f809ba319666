"""Health of a StatefulSet.

Registered in `gitops_tasks.health`. gitops-engine's rules (kubectl's `rollout status`), in its
order:

1. status.observedGeneration missing or behind metadata.generation: Progressing.
2. Fewer ready pods than spec.replicas: Progressing.
3. RollingUpdate with a rollingUpdate block: Progressing while fewer pods are updated than
   replicas minus the partition, else Healthy. The API server always writes the block (with
   partition 0), so this is the rule for nearly every live StatefulSet, and its messages speak of
   a "partitioned roll out" even for partition 0, as Argo CD's do.
4. OnDelete: Healthy (pods are replaced only when someone deletes them).
5. Otherwise updateRevision behind currentRevision: Progressing, else Healthy.

A StatefulSet has no failure signal of its own, so it is never Degraded: broken pods keep it
Progressing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields
from .status import Health, HealthStatus


def check(obj: Mapping[str, Any]) -> Health:
    observed = fields.integer(obj, "status", "observedGeneration")
    if observed == 0 or observed < fields.integer(obj, "metadata", "generation"):
        return Health(
            HealthStatus.PROGRESSING, "Waiting for statefulset spec update to be observed..."
        )

    # As gitops-engine, spec.replicas only counts when it is there (a live object has it).
    has_replicas = fields.mapping(obj, "spec").get("replicas") is not None
    desired = fields.integer(obj, "spec", "replicas")
    ready = fields.integer(obj, "status", "readyReplicas")
    if has_replicas and ready < desired:
        return Health(
            HealthStatus.PROGRESSING, f"Waiting for {desired - ready} pods to be ready..."
        )

    strategy = fields.mapping(obj, "spec", "updateStrategy")
    kind = fields.string(strategy, "type")
    updated = fields.integer(obj, "status", "updatedReplicas")
    rolling = strategy.get("rollingUpdate")
    if kind == "RollingUpdate" and rolling is not None:
        rolling = fields.mapping(strategy, "rollingUpdate")
        if has_replicas and rolling.get("partition") is not None:
            target = desired - fields.integer(rolling, "partition")
            if updated < target:
                return Health(
                    HealthStatus.PROGRESSING,
                    f"Waiting for partitioned roll out to finish: {updated} out of {target} "
                    "new pods have been updated...",
                )
        return Health(
            HealthStatus.HEALTHY,
            f"partitioned roll out complete: {updated} new pods have been updated...",
        )
    if kind == "OnDelete":
        return Health(HealthStatus.HEALTHY, f"statefulset has {ready} ready pods")

    revision = fields.string(obj, "status", "updateRevision")
    current = fields.string(obj, "status", "currentRevision")
    if revision != current:
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for statefulset rolling update to complete {updated} pods at revision "
            f"{revision}...",
        )
    current_replicas = fields.integer(obj, "status", "currentReplicas")
    return Health(
        HealthStatus.HEALTHY,
        f"statefulset rolling update complete {current_replicas} pods at revision {current}...",
    )
