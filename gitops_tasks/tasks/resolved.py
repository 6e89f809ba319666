"""Commits the sweep resolved, shared with the refreshes it queues: one ls-remote per repo per
sweep, not one per app. Entries live a short while; a refresh that finds none resolves the
revision itself, and a webhook that knows the pushed commit will overwrite them."""

from __future__ import annotations

import hashlib

import redis

from ..log import get_logger
from ..source import normalize_repo_url
from .context import runtime

RESOLVED_KEY = "gitops:resolved:{repo}:{revision}"
# A webhook saw a push to (repo, revision) lately (the value: the commit it named). While it
# lives, refreshes ignore the shared resolutions and ask the remote themselves: a sweep that
# listed the refs just before the push may publish the previous commit after the webhook came,
# and the refresh the push queued would sync that. Nor is the pushed commit itself used:
# providers deliver concurrently and out of order, so the last delivery to arrive may name an
# older commit than one before it; the remote's ref is the newest.
PUSHED_KEY = "gitops:pushed:{repo}:{revision}"
PUSHED_TTL_SECONDS = 60
# What a sweep resolved serves the refreshes it queues; what a refresh resolved serves the
# other refreshes of that repo for a few seconds (a burst of new apps, a cold start).
TTL_SECONDS = 60
REFRESH_TTL_SECONDS = 10

_log = get_logger(component="resolved")


def _key(repo_url: str, revision: str, template: str = RESOLVED_KEY) -> str:
    repo = hashlib.sha256(normalize_repo_url(repo_url).encode()).hexdigest()[:16]
    return template.format(repo=repo, revision=revision)


def publish(shas: dict[tuple[str, str], str], ttl: int = TTL_SECONDS) -> None:
    """{(repo URL, targetRevision): commit} for the next `ttl` seconds."""
    client = runtime().redis
    if client is None or not shas:
        return
    try:
        pipe = client.pipeline(transaction=False)
        for (repo, revision), sha in shas.items():
            pipe.set(_key(repo, revision), sha, ex=ttl)
        pipe.execute()
    except redis.RedisError as exc:
        _log.warning("could not share resolved revisions", error=str(exc))


def publish_pushed(shas: dict[tuple[str, str], str], ttl: int = PUSHED_TTL_SECONDS) -> None:
    """{(repo URL, targetRevision): commit} a webhook reported pushed (see PUSHED_KEY). Raises
    RedisError: the receiver must not acknowledge a push it could not record."""
    client = runtime().redis
    if client is None or not shas:
        return
    pipe = client.pipeline(transaction=False)
    for (repo, revision), sha in shas.items():
        pipe.set(_key(repo, revision, PUSHED_KEY), sha, ex=ttl)
    pipe.execute()


def resolved_sha(repo_url: str, revision: str) -> str | None:
    client = runtime().redis
    if client is None:
        return None
    try:
        pushed, resolved = client.mget([_key(repo_url, revision, PUSHED_KEY),
                                        _key(repo_url, revision)])
    except redis.RedisError:
        return None
    if pushed is not None or resolved is None:
        return None
    return resolved.decode() if isinstance(resolved, bytes) else str(resolved)
