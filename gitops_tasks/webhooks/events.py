"""What a webhook delivery says, once parsed."""

from __future__ import annotations

from dataclasses import dataclass

ZERO_SHA = "0" * 40


class WebhookError(Exception):
    """A request the receiver refuses: `status` is the HTTP answer (400, 401), `message` says
    why in words the sender's admin can act on (never a secret)."""

    def __init__(self, status: int, message: str, provider: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.provider = provider


@dataclass(frozen=True)
class Push:
    """One ref moved in one repository."""
    provider: str
    repo_urls: tuple[str, ...]  # every URL the payload gives for the repository
    ref: str                    # refs/heads/main, refs/tags/v1.2
    before: str                 # ZERO_SHA (or "") when the ref was created
    after: str                  # ZERO_SHA when the ref was deleted
    default_branch: str = ""    # "" when the payload does not say
    # The files the push changed, or None when the payload cannot tell (no lists, a truncated
    # commit list, a force push): then Git says, from before..after.
    changed: frozenset[str] | None = None

    @property
    def created(self) -> bool:
        return not self.before or self.before == ZERO_SHA

    @property
    def deleted(self) -> bool:
        return not self.after or self.after == ZERO_SHA


@dataclass(frozen=True)
class Ping:
    provider: str


@dataclass(frozen=True)
class Ignored:
    provider: str
    event: str


Event = Push | Ping | Ignored
