"""Health states and the result of a health check.

Imported by every check module and re-exported by `gitops_tasks.health`; the sync and status
layers compare and aggregate these values, they never parse strings themselves.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class HealthStatus(enum.Enum):
    """A resource's or an app's health, declared from best to worst.

    The declaration order is the badness order Argo CD uses (gitops-engine's `healthOrder`):
    Healthy < Suspended < Progressing < Missing < Degraded < Unknown. Unknown is the worst
    because a check that could not decide must never hide a real failure behind a better state.
    Comparisons (`<`, `max`, `sorted`) follow that order.
    """

    HEALTHY = "Healthy"
    SUSPENDED = "Suspended"
    PROGRESSING = "Progressing"
    MISSING = "Missing"
    DEGRADED = "Degraded"
    UNKNOWN = "Unknown"

    @property
    def rank(self) -> int:
        """0 for Healthy up to 5 for Unknown; a higher rank is worse."""
        return _RANK[self]

    def is_worse_than(self, other: HealthStatus) -> bool:
        return self.rank > other.rank

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, HealthStatus):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, HealthStatus):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, HealthStatus):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, HealthStatus):
            return NotImplemented
        return self.rank >= other.rank


_RANK: dict[HealthStatus, int] = {status: i for i, status in enumerate(HealthStatus)}


@dataclass(frozen=True)
class Health:
    """What a check concluded, with a human-readable reason (may be empty when Healthy)."""

    status: HealthStatus
    message: str = ""
