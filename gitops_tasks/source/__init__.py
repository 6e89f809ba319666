"""Git sources: bare mirrors shared by a host's workers, revision resolution, exported commit
trees, repository credentials, and the safety of app paths. The only importer of GitPython.

Called by the engine's refresh and sync steps, the render layer (`resolve_app_path`), the task
layer (credentials from Secrets) and the webhook receiver (`normalize_repo_url`).
"""

from __future__ import annotations

from gitops_tasks.source.credentials import (
    RepoCredentials,
    credentials_from_secrets,
    match_credentials,
    match_helm_credentials,
)
from gitops_tasks.source.fetching import MirrorStats
from gitops_tasks.source.mirror import GitMirrors
from gitops_tasks.source.safety import resolve_app_path
from gitops_tasks.source.urls import normalize_repo_url, redact

__all__ = [
    "GitMirrors",
    "MirrorStats",
    "RepoCredentials",
    "credentials_from_secrets",
    "match_credentials",
    "match_helm_credentials",
    "normalize_repo_url",
    "redact",
    "resolve_app_path",
]
