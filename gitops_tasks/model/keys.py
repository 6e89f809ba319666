"""Every annotation and label key gitops-tasks reads or writes, defined once."""

from __future__ import annotations

import hashlib

GROUP = "gitops-tasks.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
# An Argo CD manifest is read as it is; the controller stores Applications under ours.
ARGO_API_VERSION = "argoproj.io/v1alpha1"
API_VERSIONS = (API_VERSION, ARGO_API_VERSION)
KIND = "Application"
PLURAL = "applications"
DEFAULT_CONTROL_NAMESPACE = "gitops-tasks"

# On every object an app applies: the annotation is authoritative (it carries the full identity
# and survives any length); the label exists so objects can be listed by selector.
TRACKING_ANNOTATION = f"{GROUP}/tracking-id"
APP_LABEL = f"{GROUP}/app"

# Sync ordering and per-object options (Argo CD's keys are honoured too).
SYNC_WAVE = f"{GROUP}/sync-wave"
ARGO_SYNC_WAVE = "argocd.argoproj.io/sync-wave"
HOOK = f"{GROUP}/hook"
ARGO_HOOK = "argocd.argoproj.io/hook"
HOOK_DELETE_POLICY = f"{GROUP}/hook-delete-policy"
ARGO_HOOK_DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy"
SYNC_OPTIONS = f"{GROUP}/sync-options"
ARGO_SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
COMPARE_OPTIONS = f"{GROUP}/compare-options"
# On an Application: delete its resources before the Application itself goes (Argo CD's
# finalizer is honoured too); `/background` and `/foreground` choose the propagation policy.
RESOURCES_FINALIZER = f"resources-finalizer.{GROUP}"
ARGO_RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
# Ask for a refresh now: `normal` or `hard` (no caches); removed once the refresh ran.
REFRESH_ANNOTATION = f"{GROUP}/refresh"
ARGO_REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
# On a Pod: judge it by readiness, as a long-running pod, whatever its restartPolicy (pods that an
# operator runs with OnFailure/Never would otherwise stay Progressing while they run).
ARGO_IGNORE_RESTART_POLICY = "argocd.argoproj.io/ignore-restart-policy"

# On every hook object the sync creates: the operation attempt that created it, so a step that
# runs again after a crash adopts its own Job instead of creating a second one.
HOOK_OPERATION = f"{GROUP}/operation"

# Helm's hook annotations, mapped onto sync phases like Argo CD does.
HELM_HOOK = "helm.sh/hook"
HELM_HOOK_WEIGHT = "helm.sh/hook-weight"
HELM_HOOK_DELETE_POLICY = "helm.sh/hook-delete-policy"

# Written by `kubectl apply` (client-side); never part of a comparison.
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"

# Repository and cluster credential Secrets, as Argo CD's `argocd.argoproj.io/secret-type`.
SECRET_TYPE_LABEL = f"{GROUP}/secret-type"
ARGO_SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"
SECRET_TYPE_REPOSITORY = "repository"
SECRET_TYPE_REPO_CREDS = "repo-creds"
SECRET_TYPE_CLUSTER = "cluster"

_MAX_LABEL = 63


def app_label_value(app_name: str) -> str:
    """A valid label value for an app name; long names are cut and suffixed with a hash."""
    if len(app_name) <= _MAX_LABEL:
        return app_name
    digest = hashlib.sha256(app_name.encode()).hexdigest()[:8]
    return f"{app_name[: _MAX_LABEL - 9].rstrip('-_.')}-{digest}"


def tracking_id(app_name: str, group: str, kind: str, namespace: str, name: str) -> str:
    """`<app>:<group>/<kind>:<namespace>/<name>`, as Argo CD's annotation tracking, so a copied
    object (same annotation, other name or kind) is not mistaken for the app's own."""
    return f"{app_name}:{group}/{kind}:{namespace}/{name}"


def parse_tracking_id(value: str) -> tuple[str, str, str, str, str] | None:
    """(app, group, kind, namespace, name) from a tracking annotation, None if malformed."""
    try:
        app, gk, nn = value.rsplit(":", 2)
        group, kind = gk.split("/", 1)
        namespace, name = nn.split("/", 1)
    except ValueError:
        return None
    if not app or not kind or not name:
        return None
    return app, group, kind, namespace, name
