"""Repository credentials: read from Kubernetes Secrets and matched to a repo URL, the way Argo CD
does with its repository secrets.

The task layer lists the labelled Secrets (through the cluster layer), turns them into
`RepoCredentials` with `credentials_from_secrets`, and hands `GitMirrors` a lookup built on
`match_credentials`. Nothing here talks to the cluster or to git.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gitops_tasks.log import get_logger
from gitops_tasks.model import keys
from gitops_tasks.source.urls import normalize_repo_url, redact, transport

REPOSITORY = keys.SECRET_TYPE_REPOSITORY
REPO_CREDS = keys.SECRET_TYPE_REPO_CREDS
# Credentials that came embedded in the Application's repoURL itself.
FROM_URL = "url"

_TRUE = {"true", "yes", "1", "on"}

log = get_logger(component="source.credentials")


@dataclass(frozen=True)
class RepoCredentials:
    """Credentials for one repository (`kind="repository"`, exact URL) or for every repository
    under a URL prefix (`kind="repo-creds"`). `secret` names where they came from, for messages.
    """

    url: str
    username: str = ""
    password: str = ""
    ssh_private_key: str = ""
    insecure_ignore_host_key: bool = False
    kind: str = REPOSITORY
    secret: str = ""
    # "git", or "helm" for a Helm chart repository (an Argo CD secret with `type: helm`).
    repo_type: str = "git"
    # Argo CD's `insecureOCIForceHttp`: talk to this OCI registry over plain HTTP.
    oci_force_http: bool = False

    def __repr__(self) -> str:
        # Never the password or the key: this object ends up in logs and tracebacks.
        return (
            f"RepoCredentials(url={redact(self.url)!r}, kind={self.kind!r}, "
            f"username={self.username!r}, password={'***' if self.password else ''!r}, "
            f"ssh_private_key={'***' if self.ssh_private_key else ''!r}, "
            f"insecure_ignore_host_key={self.insecure_ignore_host_key!r}, "
            f"secret={self.secret!r}, repo_type={self.repo_type!r})"
        )

    __str__ = __repr__

    @property
    def has_secret(self) -> bool:
        """Whether these carry anything to authenticate with (a URL-only `repository` secret,
        used by Argo CD to register a public repo, does not)."""
        return bool(self.username or self.password or self.ssh_private_key)


def _secret_fields(secret: Mapping[str, Any]) -> dict[str, str]:
    """`data` (base64) overlaid with `stringData` (plain), as the API server merges them."""
    fields: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        if value is None:
            continue
        fields[key] = base64.b64decode(str(value), validate=True).decode("utf-8")
    for key, value in (secret.get("stringData") or {}).items():
        if value is not None:
            fields[key] = str(value)
    return fields


def credentials_from_secrets(secrets: Sequence[Mapping[str, Any]]) -> list[RepoCredentials]:
    """RepoCredentials from Secret dicts labelled `gitops-tasks.io/secret-type` (or Argo CD's
    `argocd.argoproj.io/secret-type`) = `repository` or `repo-creds`, with Argo CD's fields:
    url, username, password, sshPrivateKey, insecure; Helm repositories (`type: helm`) with
    url, username, password, insecureOCIForceHttp. Other types are skipped; a malformed one is
    skipped with a warning naming it, never its content.
    """
    found: list[RepoCredentials] = []
    for secret in secrets:
        metadata = secret.get("metadata") or {}
        labels = metadata.get("labels") or {}
        kind = labels.get(keys.SECRET_TYPE_LABEL) or labels.get(keys.ARGO_SECRET_TYPE_LABEL)
        if kind not in (REPOSITORY, REPO_CREDS):
            continue
        name = f"{metadata.get('namespace', '')}/{metadata.get('name', '')}".strip("/")
        try:
            fields = _secret_fields(secret)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            log.warning("repository secret has undecodable data; skipped", secret=name)
            continue
        url = fields.get("url", "").strip()
        if not url:
            log.warning("repository secret has no url; skipped", secret=name)
            continue
        repo_type = fields.get("type", "git").strip().lower() or "git"
        if repo_type not in ("git", "helm"):
            continue
        insecure = fields.get("insecure", fields.get("insecureIgnoreHostKey", ""))
        found.append(
            RepoCredentials(
                url=url,
                username=fields.get("username", ""),
                password=fields.get("password", ""),
                ssh_private_key=fields.get("sshPrivateKey", ""),
                insecure_ignore_host_key=insecure.strip().lower() in _TRUE,
                kind=kind,
                secret=name,
                repo_type=repo_type,
                oci_force_http=fields.get("insecureOCIForceHttp", "").strip().lower() in _TRUE,
            )
        )
    return found


def _under(repo: str, prefix: str) -> bool:
    # On path-segment boundaries: creds for `github.com/org` must not match `github.com/org2/x`.
    return repo == prefix or repo.startswith(prefix.rstrip("/") + "/")


def match_credentials(
    repo_url: str, creds: Sequence[RepoCredentials]
) -> RepoCredentials | None:
    """The credentials for `repo_url`, with Argo CD's precedence: a `repository` entry whose URL
    is the same repository wins; otherwise the `repo-creds` template with the longest matching
    URL prefix. A `repository` entry without any secret in it (a registered public repo)
    inherits from a matching template, as in Argo CD. Only entries for the same transport are
    considered: an https password is no use for an ssh URL of the same repository.
    """
    target = normalize_repo_url(repo_url)
    kind = transport(repo_url)
    same_transport = [c for c in creds if c.repo_type == "git" and transport(c.url) == kind]
    exact = next(
        (c for c in same_transport
         if c.kind == REPOSITORY and normalize_repo_url(c.url) == target),
        None,
    )
    if exact is not None and exact.has_secret:
        return exact
    best: RepoCredentials | None = None
    best_len = -1
    for cred in same_transport:
        if cred.kind != REPO_CREDS:
            continue
        prefix = normalize_repo_url(cred.url)
        if _under(target, prefix) and len(prefix) > best_len:
            best, best_len = cred, len(prefix)
    return best or exact


def _helm_id(url: str) -> str:
    # Argo CD stores OCI registries with or without `oci://` (`enableOCI: true` and a bare
    # host/path); both name the same registry path.
    url = url.strip()
    if url.lower().startswith("oci://"):
        url = url[len("oci://"):]
    if "://" not in url:
        url = "https://" + url
    return normalize_repo_url(url)


def match_helm_credentials(
    repo_url: str, creds: Sequence[RepoCredentials]
) -> RepoCredentials | None:
    """The Helm repository credentials for `repo_url` (an https:// repository or an oci://
    registry path, a chart source's or a Chart.yaml dependency's): the `repository` entry of the
    same URL, else the `repo-creds` entry with the longest URL prefix, as for Git."""
    target = _helm_id(repo_url)
    helm = [c for c in creds if c.repo_type == "helm"]
    exact = next((c for c in helm if c.kind == REPOSITORY and _helm_id(c.url) == target), None)
    if exact is not None and exact.has_secret:
        return exact
    best: RepoCredentials | None = None
    best_len = -1
    for cred in helm:
        prefix = _helm_id(cred.url)
        if cred.kind == REPO_CREDS and _under(target, prefix) and len(prefix) > best_len:
            best, best_len = cred, len(prefix)
    return best or exact
