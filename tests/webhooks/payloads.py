"""Push deliveries in each provider's real format (headers and body, trimmed of fields nobody
reads but keeping every one the receiver does, with the providers' own nesting and names), and
the signing each provider does. Used by the unit tests, the end-to-end tests, the fuzz run and
the benchmark."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

ZERO = "0" * 40


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    provider: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def _sig(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _commit(sha: str, files: list[str], *, author: str = "dev") -> dict[str, Any]:
    return {"id": sha, "message": "change", "timestamp": "2026-12-01T10:00:00+00:00",
            "url": f"https://example.invalid/commit/{sha}",
            "author": {"name": author, "email": f"{author}@example.com"},
            "added": [f for f in files if f.endswith(".new.yaml")],
            "removed": [],
            "modified": [f for f in files if not f.endswith(".new.yaml")]}


def github(*, org: str, repo: str, ref: str, before: str, after: str,
           files: list[str] | None, secret: str | None, host: str = "github.com",
           commits: int = 1, forced: bool = False, event: str = "push",
           delivery: str | None = None) -> Delivery:
    listed = [] if files is None else [_commit(after, files)] * max(commits, 1)
    payload = {
        "ref": ref, "before": before, "after": after,
        "created": before == ZERO, "deleted": after == ZERO, "forced": forced,
        "base_ref": None, "compare": f"https://{host}/{org}/{repo}/compare/{before[:12]}...",
        "commits": listed, "head_commit": listed[0] if listed else None,
        "repository": {
            "id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": repo,
            "full_name": f"{org}/{repo}", "private": False,
            "owner": {"name": org, "login": org},
            "html_url": f"https://{host}/{org}/{repo}",
            "url": f"https://{host}/{org}/{repo}",
            "git_url": f"git://{host}/{org}/{repo}.git",
            "ssh_url": f"git@{host}:{org}/{repo}.git",
            "clone_url": f"https://{host}/{org}/{repo}.git",
            "default_branch": "main", "master_branch": "main",
        },
        "pusher": {"name": "dev", "email": "dev@example.com"},
        "sender": {"login": "dev", "id": 1},
    }
    if event == "ping":
        payload = {"zen": "Keep it logically awesome.", "hook_id": 1,
                   "hook": {"type": "Repository", "events": ["push"]},
                   "repository": payload["repository"]}
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/abc",
               "X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
               "X-GitHub-Hook-ID": "1"}
    if secret is not None:
        headers["X-Hub-Signature"] = "sha1=" + hmac.new(secret.encode(), body,
                                                        hashlib.sha1).hexdigest()
        headers["X-Hub-Signature-256"] = "sha256=" + _sig(secret, body)
    return Delivery(headers, body, "github")


def gitea(*, org: str, repo: str, ref: str, before: str, after: str,
          files: list[str] | None, secret: str | None, host: str = "gitea.example.com",
          gogs: bool = False, delivery: str | None = None) -> Delivery:
    listed = [] if files is None else [_commit(after, files)]
    payload = {
        "ref": ref, "before": before, "after": after,
        "compare_url": f"https://{host}/{org}/{repo}/compare/{before}...{after}",
        "commits": listed, "total_commits": len(listed), "head_commit": listed[0] if listed
        else None,
        "repository": {"id": 1, "name": repo, "full_name": f"{org}/{repo}",
                       "html_url": f"https://{host}/{org}/{repo}",
                       "ssh_url": f"git@{host}:{org}/{repo}.git",
                       "clone_url": f"https://{host}/{org}/{repo}.git",
                       "default_branch": "main", "owner": {"login": org}},
        "pusher": {"login": "dev"}, "sender": {"login": "dev"},
    }
    body = json.dumps(payload).encode()
    delivery = delivery or str(uuid.uuid4())
    name = "Gogs" if gogs else "Gitea"
    headers = {"Content-Type": "application/json", f"X-{name}-Event": "push",
               f"X-{name}-Delivery": delivery,
               # Both also send GitHub's headers, signed with their own secret.
               "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery}
    if secret is not None:
        headers[f"X-{name}-Signature"] = _sig(secret, body)
        headers["X-Hub-Signature-256"] = "sha256=" + _sig(secret, body)
    return Delivery(headers, body, "gogs" if gogs else "gitea")


def gitlab(*, group: str, project: str, ref: str, before: str, after: str,
           files: list[str] | None, secret: str | None, host: str = "gitlab.com",
           total: int | None = None, delivery: str | None = None) -> Delivery:
    listed = [] if files is None else [_commit(after, files)]
    payload = {
        "object_kind": "tag_push" if ref.startswith("refs/tags/") else "push",
        "event_name": "push", "before": before, "after": after, "ref": ref,
        "ref_protected": True, "checkout_sha": after, "user_id": 4, "user_name": "Dev",
        "user_username": "dev", "project_id": 15,
        "project": {"id": 15, "name": project, "web_url": f"https://{host}/{group}/{project}",
                    "git_ssh_url": f"git@{host}:{group}/{project}.git",
                    "git_http_url": f"https://{host}/{group}/{project}.git",
                    "namespace": group, "path_with_namespace": f"{group}/{project}",
                    "default_branch": "main",
                    "homepage": f"https://{host}/{group}/{project}",
                    "url": f"git@{host}:{group}/{project}.git",
                    "ssh_url": f"git@{host}:{group}/{project}.git",
                    "http_url": f"https://{host}/{group}/{project}.git"},
        "commits": listed,
        "total_commits_count": len(listed) if total is None else total,
        "repository": {"name": project, "url": f"git@{host}:{group}/{project}.git",
                       "homepage": f"https://{host}/{group}/{project}",
                       "git_http_url": f"https://{host}/{group}/{project}.git",
                       "git_ssh_url": f"git@{host}:{group}/{project}.git"},
    }
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json",
               "X-Gitlab-Event": "Tag Push Hook" if ref.startswith("refs/tags/")
               else "Push Hook",
               "X-Gitlab-Event-UUID": delivery or str(uuid.uuid4()),
               "X-Gitlab-Instance": f"https://{host}", "User-Agent": "GitLab/17.0.0"}
    if secret is not None:
        headers["X-Gitlab-Token"] = secret
    return Delivery(headers, body, "gitlab")


def bitbucket(*, workspace: str, repo: str, branch: str, before: str, after: str,
              hook_uuid: str | None, delivery: str | None = None) -> Delivery:
    full = f"{workspace}/{repo}"
    payload = {
        "actor": {"display_name": "Dev", "type": "user"},
        "repository": {"type": "repository", "full_name": full, "name": repo, "scm": "git",
                       "uuid": "{" + str(uuid.uuid4()) + "}", "is_private": True,
                       "links": {"html": {"href": f"https://bitbucket.org/{full}"},
                                 "self": {"href": f"https://api.bitbucket.org/2.0/"
                                                  f"repositories/{full}"}},
                       "mainbranch": {"type": "branch", "name": "main"}},
        "push": {"changes": [{
            "new": {"type": "branch", "name": branch,
                    "target": {"type": "commit", "hash": after}} if after != ZERO else None,
            "old": {"type": "branch", "name": branch,
                    "target": {"type": "commit", "hash": before}} if before != ZERO else None,
            "created": before == ZERO, "forced": False, "closed": after == ZERO,
            "commits": [{"hash": after, "type": "commit", "message": "change"}],
            "truncated": False}]},
    }
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Event-Key": "repo:push",
               "X-Request-UUID": delivery or str(uuid.uuid4()),
               "X-Attempt-Number": "1", "User-Agent": "Bitbucket-Webhooks/2.0"}
    if hook_uuid is not None:
        headers["X-Hook-UUID"] = hook_uuid
    return Delivery(headers, body, "bitbucket")


def bitbucket_server(*, project: str, repo: str, ref: str, before: str, after: str,
                     secret: str | None, host: str = "bitbucket.example.com",
                     event: str = "repo:refs_changed", delivery: str | None = None,
                     clone_urls: list[str] | None = None) -> Delivery:
    clone = [{"href": u, "name": "ssh" if u.startswith("ssh") else "http"}
             for u in clone_urls or []] or [
        {"href": f"ssh://git@{host}:7999/{project.lower()}/{repo}.git", "name": "ssh"},
        {"href": f"https://{host}/scm/{project.lower()}/{repo}.git", "name": "http"}]
    payload: dict[str, Any] = {
        "eventKey": event, "date": "2026-12-01T10:00:00+0000",
        "actor": {"name": "dev", "displayName": "Dev"},
        "repository": {"slug": repo, "id": 84, "name": repo, "scmId": "git",
                       "project": {"key": project, "id": 84, "name": project},
                       "links": {"clone": clone,
                                 "self": [{"href": f"https://{host}/projects/{project}/"
                                                   f"repos/{repo}/browse"}]}},
        "changes": [{"ref": {"id": ref, "displayId": ref.rpartition("/")[2],
                             "type": "TAG" if ref.startswith("refs/tags/") else "BRANCH"},
                     "refId": ref, "fromHash": before, "toHash": after,
                     "type": "ADD" if before == ZERO else "UPDATE"}],
    }
    if event == "diagnostics:ping":
        payload = {"test": True}
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "X-Event-Key": event,
               "X-Request-Id": delivery or str(uuid.uuid4())}
    if secret is not None:
        headers["X-Hub-Signature"] = "sha256=" + _sig(secret, body)
    return Delivery(headers, body, "bitbucket-server")


def azure_devops(*, org: str, project: str, repo: str, ref: str, before: str, after: str,
                 username: str | None, password: str | None,
                 delivery: str | None = None, remote_url: str | None = None) -> Delivery:
    payload = {
        "subscriptionId": str(uuid.uuid4()), "notificationId": 3,
        "id": delivery or str(uuid.uuid4()), "eventType": "git.push",
        "publisherId": "tfs",
        "message": {"text": "Dev pushed updates to main"},
        "resource": {
            "commits": [{"commitId": after, "comment": "change"}],
            "refUpdates": [{"name": ref, "oldObjectId": before, "newObjectId": after}],
            "repository": {
                "id": str(uuid.uuid4()), "name": repo,
                "url": f"https://dev.azure.com/{org}/_apis/git/repositories/{repo}",
                "project": {"name": project},
                "defaultBranch": "refs/heads/main",
                "remoteUrl": remote_url or
                f"https://{org}@dev.azure.com/{org}/{project}/_git/{repo}",
                "sshUrl": f"git@ssh.dev.azure.com:v3/{org}/{project}/{repo}",
                "webUrl": f"https://dev.azure.com/{org}/{project}/_git/{repo}"},
            "pushedBy": {"displayName": "Dev"}, "pushId": 14,
        },
        "resourceVersion": "1.0",
    }
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json; charset=utf-8",
               "X-Vss-ActivityId": str(uuid.uuid4()),
               "X-Vss-SubscriptionId": str(payload["subscriptionId"])}
    if username is not None and password is not None:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    return Delivery(headers, body, "azure-devops")
