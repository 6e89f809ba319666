"""Each Git provider's headers, signature and push payload.

Detection looks at the provider-specific headers first: Gitea and Gogs also send GitHub's event
and signature headers, but sign them with their own secret, so a Gitea request must never be
taken for a GitHub one. Every check of a secret is in constant time (`hmac.compare_digest`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

from ..settings import WebhookSecrets
from .events import ZERO_SHA, Event, Ignored, Ping, Push, WebhookError

GITHUB = "github"
GITLAB = "gitlab"
BITBUCKET = "bitbucket"  # Bitbucket Cloud
BITBUCKET_SERVER = "bitbucket-server"
GITEA = "gitea"
GOGS = "gogs"
AZURE_DEVOPS = "azure-devops"
PROVIDERS = (GITHUB, GITLAB, BITBUCKET, BITBUCKET_SERVER, GITEA, GOGS, AZURE_DEVOPS)

# GitHub puts at most this many commits in a push payload; a longer push lists only these.
GITHUB_MAX_COMMITS = 20

Headers = Mapping[str, str]  # lower-case names


def lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def detect(headers: Headers) -> str | None:
    """The provider that sent a request, from its headers (lower-case names), or None."""
    if "x-gitea-event" in headers:
        return GITEA
    if "x-gogs-event" in headers:
        return GOGS
    if "x-github-event" in headers:
        return GITHUB
    if "x-gitlab-event" in headers:
        return GITLAB
    if "x-vss-activityid" in headers:
        return AZURE_DEVOPS
    if "x-hook-uuid" in headers:
        return BITBUCKET
    if "x-event-key" in headers:
        return BITBUCKET_SERVER
    return None


# ------------------------------------------------------------------------------ authenticity

def _hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def _signed(header: str, prefix: str) -> Callable[[Headers, bytes, str], bool]:
    def check(headers: Headers, body: bytes, secret: str) -> bool:
        given = headers.get(header, "")
        if prefix:
            if not given.startswith(prefix):
                return False
            given = given[len(prefix):]
        return _same(given.lower(), _hmac_hex(secret, body))
    return check


def _token(header: str) -> Callable[[Headers, bytes, str], bool]:
    def check(headers: Headers, body: bytes, secret: str) -> bool:
        return _same(headers.get(header, ""), secret)
    return check


def _basic(headers: Headers, body: bytes, secret: str) -> bool:
    value = headers.get("authorization", "")
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    return _same(given, secret)


_CHECKS: dict[str, tuple[str, Callable[[Headers, bytes, str], bool]]] = {
    GITHUB: ("X-Hub-Signature-256", _signed("x-hub-signature-256", "sha256=")),
    GITLAB: ("X-Gitlab-Token", _token("x-gitlab-token")),
    BITBUCKET: ("X-Hook-UUID", _token("x-hook-uuid")),
    BITBUCKET_SERVER: ("X-Hub-Signature", _signed("x-hub-signature", "sha256=")),
    GITEA: ("X-Gitea-Signature", _signed("x-gitea-signature", "")),
    GOGS: ("X-Gogs-Signature", _signed("x-gogs-signature", "")),
    AZURE_DEVOPS: ("Authorization (basic)", _basic),
}


def secret_for(provider: str, secrets: WebhookSecrets) -> str:
    if provider == AZURE_DEVOPS:
        if not secrets.azure_devops_password:
            return ""
        return f"{secrets.azure_devops_username}:{secrets.azure_devops_password}"
    return {GITHUB: secrets.github, GITLAB: secrets.gitlab, BITBUCKET: secrets.bitbucket_uuid,
            BITBUCKET_SERVER: secrets.bitbucket_server, GITEA: secrets.gitea,
            GOGS: secrets.gogs}[provider]


def authenticate(provider: str, headers: Headers, body: bytes, secrets: WebhookSecrets, *,
                 insecure: bool = False) -> None:
    """Raises WebhookError(401) unless the request carries the provider's secret. A provider
    with no secret configured is refused too, unless the receiver runs `insecure`."""
    secret = secret_for(provider, secrets)
    header, check = _CHECKS[provider]
    if not secret:
        if insecure:
            return
        raise WebhookError(401, f"no secret is configured for {provider} webhooks: configure "
                                f"one (and the same in the {provider} hook)", provider)
    if not headers.get(header.split(" ")[0].lower()):
        raise WebhookError(401, f"{provider} webhook without {header}", provider)
    if not check(headers, body, secret):
        raise WebhookError(401, f"{provider} webhook with a wrong {header}", provider)


# ------------------------------------------------------------------------------ delivery ids

_DELIVERY_HEADERS = {
    GITHUB: "x-github-delivery", GITEA: "x-gitea-delivery", GOGS: "x-gogs-delivery",
    GITLAB: "x-gitlab-event-uuid", BITBUCKET: "x-request-uuid",
    BITBUCKET_SERVER: "x-request-id",
}


def delivery_id(provider: str, headers: Headers, payload: Any) -> str:
    """The provider's id of this delivery (the same on a redelivery), or ""."""
    header = _DELIVERY_HEADERS.get(provider)
    if header:
        return headers.get(header, "").strip()[:200]
    if provider == AZURE_DEVOPS and isinstance(payload, dict):
        return _s(payload.get("id"))[:200]
    return ""


# ------------------------------------------------------------------------------ payloads

def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _urls(*values: Any) -> tuple[str, ...]:
    seen: list[str] = []
    for v in values:
        if isinstance(v, str) and v.strip() and v.strip() not in seen:
            seen.append(v.strip())
    return tuple(seen)


def _files(commits: list[Any]) -> frozenset[str]:
    out: set[str] = set()
    for commit in commits:
        for field in ("added", "removed", "modified"):
            out.update(f for f in _l(_d(commit).get(field)) if isinstance(f, str))
    return frozenset(f.lstrip("/") for f in out)


def _commit_lists(commits: list[Any], total: Any, before: str, after: str, *,
                  cap: int | None = None, forced: bool = False) -> frozenset[str] | None:
    """The changed files from a payload's per-commit lists, or None when those cannot be
    trusted to be complete: no commits listed (a rewind, a ref moved to an existing commit),
    fewer listed than pushed, a capped list, a force push (the files of the dropped commits
    changed too, and no list names them)."""
    if forced or not commits or not before or before == ZERO_SHA or after == ZERO_SHA:
        return None
    if isinstance(total, int) and total > len(commits):
        return None
    if cap is not None and len(commits) >= cap:
        return None
    if any(not isinstance(c, dict) or not any(k in c for k in ("added", "removed", "modified"))
           for c in commits):
        return None
    return _files(commits)


def _branch_of(ref: str) -> str:
    return ref.removeprefix("refs/heads/")


def _github_like(provider: str, payload: dict[str, Any], cap: int | None) -> Push:
    repo = _d(payload.get("repository"))
    before, after = _s(payload.get("before")), _s(payload.get("after"))
    ref = _s(payload.get("ref"))
    if not ref or not after:
        raise WebhookError(400, f"{provider} push without ref or after", provider)
    total = payload.get("total_commits", payload.get("total_commits_count"))
    return Push(
        provider=provider,
        repo_urls=_urls(repo.get("html_url"), repo.get("clone_url"), repo.get("ssh_url"),
                        repo.get("git_url"), repo.get("url")),
        ref=ref, before=before, after=after,
        default_branch=_s(repo.get("default_branch")),
        changed=_commit_lists(_l(payload.get("commits")), total, before, after, cap=cap,
                              forced=payload.get("forced") is True))


def _github(headers: Headers, payload: dict[str, Any]) -> list[Event]:
    event = headers.get("x-github-event", "")
    if event == "ping":
        return [Ping(GITHUB)]
    if event != "push":
        return [Ignored(GITHUB, event)]
    return [_github_like(GITHUB, payload, GITHUB_MAX_COMMITS)]


def _gitea(provider: str, header: str) -> Callable[[Headers, dict[str, Any]], list[Event]]:
    def parse(headers: Headers, payload: dict[str, Any]) -> list[Event]:
        event = headers.get(header, "")
        if event != "push":
            return [Ignored(provider, event)]
        return [_github_like(provider, payload, None)]
    return parse


def _gitlab(headers: Headers, payload: dict[str, Any]) -> list[Event]:
    event = headers.get("x-gitlab-event", "")
    kind = _s(payload.get("object_kind") or payload.get("event_name"))
    if kind not in ("push", "tag_push"):
        return [Ignored(GITLAB, event or kind)]
    project = _d(payload.get("project"))
    repo = _d(payload.get("repository"))
    before, after = _s(payload.get("before")), _s(payload.get("after"))
    ref = _s(payload.get("ref"))
    if not ref or not after:
        raise WebhookError(400, "gitlab push without ref or after", GITLAB)
    return [Push(
        provider=GITLAB,
        repo_urls=_urls(project.get("git_http_url"), project.get("git_ssh_url"),
                        project.get("web_url"), project.get("http_url"),
                        project.get("ssh_url"), repo.get("git_http_url"),
                        repo.get("git_ssh_url"), repo.get("homepage"), repo.get("url")),
        ref=ref, before=before, after=after,
        default_branch=_s(project.get("default_branch")),
        changed=_commit_lists(_l(payload.get("commits")), payload.get("total_commits_count"),
                              before, after))]


def _ref_of(kind: str, name: str) -> str:
    return f"refs/tags/{name}" if kind.lower() == "tag" else f"refs/heads/{name}"


def _bitbucket(headers: Headers, payload: dict[str, Any]) -> list[Event]:
    event = headers.get("x-event-key", "")
    if event != "repo:push":
        return [Ignored(BITBUCKET, event)]
    repo = _d(payload.get("repository"))
    full_name = _s(repo.get("full_name"))
    links = _d(repo.get("links"))
    urls = _urls(_d(links.get("html")).get("href"),
                 *(_d(c).get("href") for c in _l(links.get("clone"))),
                 f"https://bitbucket.org/{full_name}" if full_name else None,
                 f"git@bitbucket.org:{full_name}.git" if full_name else None)
    default = _s(_d(repo.get("mainbranch")).get("name"))
    pushes: list[Event] = []
    for change in _l(_d(payload.get("push")).get("changes")):
        change = _d(change)
        new, old = _d(change.get("new")), _d(change.get("old"))
        ref_side = new or old
        name = _s(ref_side.get("name"))
        if not name:
            continue
        pushes.append(Push(
            provider=BITBUCKET, repo_urls=urls, ref=_ref_of(_s(ref_side.get("type")), name),
            before=_s(_d(old.get("target")).get("hash")) or ZERO_SHA,
            after=_s(_d(new.get("target")).get("hash")) or ZERO_SHA,
            default_branch=default, changed=None))  # Bitbucket lists no files
    if not pushes:
        raise WebhookError(400, "bitbucket push without changes", BITBUCKET)
    return pushes


def _bitbucket_server(headers: Headers, payload: dict[str, Any]) -> list[Event]:
    event = headers.get("x-event-key", "")
    if event == "diagnostics:ping":
        return [Ping(BITBUCKET_SERVER)]
    if event not in ("repo:refs_changed", "repo:push"):
        return [Ignored(BITBUCKET_SERVER, event)]
    repo = _d(payload.get("repository"))
    links = _d(repo.get("links"))
    urls = _urls(*(_d(c).get("href") for c in _l(links.get("clone"))),
                 *(_d(c).get("href") for c in _l(links.get("self"))))
    pushes: list[Event] = []
    for change in _l(payload.get("changes")):
        change = _d(change)
        ref = _d(change.get("ref"))
        ref_id = _s(ref.get("id")) or _s(change.get("refId"))
        if not ref_id:
            continue
        pushes.append(Push(
            provider=BITBUCKET_SERVER, repo_urls=urls, ref=ref_id,
            before=_s(change.get("fromHash")) or ZERO_SHA,
            after=_s(change.get("toHash")) or ZERO_SHA, changed=None))
    if not pushes:
        raise WebhookError(400, "bitbucket server push without changes", BITBUCKET_SERVER)
    return pushes


def _azure(headers: Headers, payload: dict[str, Any]) -> list[Event]:
    event = _s(payload.get("eventType"))
    if event != "git.push":
        return [Ignored(AZURE_DEVOPS, event)]
    resource = _d(payload.get("resource"))
    repo = _d(resource.get("repository"))
    urls = _urls(repo.get("remoteUrl"), repo.get("sshUrl"), repo.get("webUrl"))
    default = _branch_of(_s(repo.get("defaultBranch")))
    pushes: list[Event] = []
    for update in _l(resource.get("refUpdates")):
        update = _d(update)
        ref = _s(update.get("name"))
        if not ref:
            continue
        pushes.append(Push(
            provider=AZURE_DEVOPS, repo_urls=urls, ref=ref,
            before=_s(update.get("oldObjectId")) or ZERO_SHA,
            after=_s(update.get("newObjectId")) or ZERO_SHA,
            default_branch=default, changed=None))
    if not pushes:
        raise WebhookError(400, "azure devops push without refUpdates", AZURE_DEVOPS)
    return pushes


_PARSERS: dict[str, Callable[[Headers, dict[str, Any]], list[Event]]] = {
    GITHUB: _github, GITLAB: _gitlab, BITBUCKET: _bitbucket,
    BITBUCKET_SERVER: _bitbucket_server, GITEA: _gitea(GITEA, "x-gitea-event"),
    GOGS: _gitea(GOGS, "x-gogs-event"), AZURE_DEVOPS: _azure,
}


def load(provider: str, body: bytes) -> Any:
    """The JSON body. GitHub may send it form-encoded (`payload=`); we ask for JSON."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookError(400, f"{provider} webhook body is not JSON: {exc}", provider) \
            from exc


def parse(provider: str, headers: Headers, payload: Any) -> list[Event]:
    """The events of an authenticated request's decoded JSON body."""
    if not isinstance(payload, dict):
        raise WebhookError(400, f"{provider} webhook body is not a JSON object", provider)
    return _PARSERS[provider](headers, payload)
