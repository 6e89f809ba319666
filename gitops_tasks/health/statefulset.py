"""Health of a StatefulSet.

Registered in `gitops_tasks.health`. Follows kubectl's `rollout status` as gitops-engine does:
the spec must be observed, every desired pod ready, and the pods the update strategy is allowed
to replace (all of them, or those at or above the partition ordinal) on the new revision. A
StatefulSet has no failure signal of its own, so it is never Degraded: broken pods keep it
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

    desired = fields.integer(obj, "spec", "replicas", default=1)
    ready = fields.integer(obj, "status", "readyReplicas")
    if ready < desired:
        return Health(
            HealthStatus.PROGRESSING, f"Waiting for {desired - ready} pods to be ready..."
        )

    strategy = fields.string(obj, "spec", "updateStrategy", "type", default="RollingUpdate")
    if strategy == "OnDelete":
        # Pods are only replaced when someone deletes them, so old revisions are expected and
        # are not a rollout in progress.
        return Health(HealthStatus.HEALTHY, f"statefulset has {ready} ready pods")

    # The API server defaults rollingUpdate.partition to 0: every pod is to be updated.
    partition = fields.integer(obj, "spec", "updateStrategy", "rollingUpdate", "partition")
    target = max(desired - partition, 0)
    updated = fields.integer(obj, "status", "updatedReplicas")
    revision = fields.string(obj, "status", "updateRevision")
    if partition > 0:
        if updated < target:
            return Health(
                HealthStatus.PROGRESSING,
                f"Waiting for partitioned roll out to finish: {updated} out of {target} new pods "
                "have been updated...",
            )
        return Health(
            HealthStatus.HEALTHY,
            f"partitioned roll out complete: {updated} new pods have been updated...",
        )
    if updated < target:
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for statefulset rolling update to complete {updated} pods at revision "
            f"{revision}...",
        )
    return Health(
        HealthStatus.HEALTHY,
        f"statefulset rolling update complete {updated} pods at revision {revision}...",
    )
