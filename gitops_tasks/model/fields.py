"""Every field and sync option of Argo CD's Application, and what gitops-tasks does with each.

Read by `application.parse_application`, which rejects any key not listed here the way the API
server's strict field validation does, and rejects the listed Argo CD fields gitops-tasks does
not implement with a reason: a field that is accepted must do what Argo CD documents, so a
manifest never looks like it asks for something that silently does not happen.

Each table maps a field name to None (implemented, or harmless on purpose) or to the message a
manifest that sets it gets. The field list follows Argo CD's `ApplicationSpec` types and
`docs/operator-manual/application.yaml`; `dependsOn` is ours.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Final

NOT_SUPPORTED: Final = "not supported by gitops-tasks"

Fields = Mapping[str, str | None]

# Top level: status and operation are written by controllers; the parser reads neither (the
# operation has its own parser in `operation.py`).
TOP: Final[Fields] = {"apiVersion": None, "kind": None, "metadata": None, "spec": None,
                      "status": None, "operation": None}

# Kubernetes ObjectMeta: all of it is the API server's, none of it is a typo of ours.
METADATA: Final[Fields] = dict.fromkeys((
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields"))

SPEC: Final[Fields] = {
    "project": None, "source": None, "sources": None, "destination": None, "syncPolicy": None,
    "ignoreDifferences": None, "revisionHistoryLimit": None, "dependsOn": None,
    # Shown by Argo CD's UI only; it changes nothing there either.
    "info": None,
    "sourceHydrator": f"{NOT_SUPPORTED}: render in CI and point source at the result",
}

INFO_ITEM: Final[Fields] = {"name": None, "value": None}

SOURCE: Final[Fields] = {
    "repoURL": None, "targetRevision": None, "path": None, "directory": None, "helm": None,
    "kustomize": None, "plugin": None,
    # A label for the source in Argo CD's CLI and UI; it does not change what is rendered.
    "name": None,
    # A chart in a Helm repository (https:// with index.yaml, or oci://); see `_source`.
    "chart": None,
    "ref": f"{NOT_SUPPORTED}: a ref names a source for other sources of a multi-source "
           "Application; use one source",
}

DIRECTORY: Final[Fields] = {"recurse": None, "include": None, "exclude": None,
                            "jsonnet": None}
JSONNET: Final[Fields] = {"extVars": None, "tlas": None, "libs": None}
JSONNET_VAR: Final[Fields] = {"name": None, "value": None, "code": None}

HELM: Final[Fields] = {
    "valueFiles": None, "values": None, "valuesObject": None, "parameters": None,
    "releaseName": None, "skipCrds": None, "ignoreMissingValueFiles": None,
    "fileParameters": f"{NOT_SUPPORTED}: put the file's content in values or a value file",
    "passCredentials": f"{NOT_SUPPORTED}: Helm repository credentials are sent to the "
                       "repository's own host only",
    "version": f"{NOT_SUPPORTED}: charts are always rendered with Helm 3",
    "namespace": f"{NOT_SUPPORTED}: the release namespace is destination.namespace",
    "kubeVersion": NOT_SUPPORTED,
    "apiVersions": NOT_SUPPORTED,
    "skipSchemaValidation": NOT_SUPPORTED,
    "skipTests": NOT_SUPPORTED,
}
HELM_PARAMETER: Final[Fields] = {"name": None, "value": None, "forceString": None}

KUSTOMIZE: Final[Fields] = {
    "namePrefix": None, "nameSuffix": None, "images": None, "commonLabels": None,
    "commonAnnotations": None, "namespace": None,
    "version": f"{NOT_SUPPORTED}: one kustomize binary renders every app",
    **dict.fromkeys((
        "replicas", "patches", "components", "forceCommonLabels", "forceCommonAnnotations",
        "commonAnnotationsEnvsubst", "labelWithoutSelector", "labelIncludeTemplates",
        "kubeVersion", "apiVersions", "ignoreMissingComponents"),
        f"{NOT_SUPPORTED}: put it in the kustomization.yaml in Git"),
}

PLUGIN: Final[Fields] = {
    "name": None, "env": None,
    "parameters": f"{NOT_SUPPORTED}: pass values to the plugin with env",
}
PLUGIN_ENV: Final[Fields] = {"name": None, "value": None}

DESTINATION: Final[Fields] = {"server": None, "name": None, "namespace": None}

SYNC_POLICY: Final[Fields] = {
    "automated": None, "syncOptions": None, "retry": None,
    "managedNamespaceMetadata": f"{NOT_SUPPORTED}: put a Namespace manifest with its labels "
                                "and annotations in Git",
}
AUTOMATED: Final[Fields] = {"prune": None, "selfHeal": None, "allowEmpty": None,
                            "enabled": None}
RETRY: Final[Fields] = {
    "limit": None, "backoff": None,
    "refresh": f"{NOT_SUPPORTED}: a retry always uses the revision it started with",
}
BACKOFF: Final[Fields] = {"duration": None, "factor": None, "maxDuration": None}

IGNORE_DIFFERENCE: Final[Fields] = {
    "group": None, "kind": None, "name": None, "namespace": None, "jsonPointers": None,
    "jqPathExpressions": None, "managedFieldsManagers": None}

# ------------------------------------------------------------------------- sync options

BOOLEAN: Final = ("true", "false")
PROPAGATION_POLICIES: Final = ("foreground", "background", "orphan")

# Application-level sync options (`spec.syncPolicy.syncOptions`): name -> accepted values
# (lower-case). Names match without regard to case, as `sync.options.app_options` reads them.
APP_SYNC_OPTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "Validate": BOOLEAN,
    "CreateNamespace": BOOLEAN,
    "PruneLast": BOOLEAN,
    "ApplyOutOfSyncOnly": BOOLEAN,
    "Replace": BOOLEAN,
    "PrunePropagationPolicy": PROPAGATION_POLICIES,
    "FailOnSharedResource": BOOLEAN,
    # A kind the cluster does not serve yet is no comparison error: the sync applies it.
    "SkipDryRunOnMissingResource": BOOLEAN,
    # The engine always applies server side: only the value that says so is honest.
    "ServerSideApply": ("true",),
    # ignoreDifferences shapes the comparison only, which is Argo CD's default (false).
    "RespectIgnoreDifferences": ("false",),
}

# Why a value outside APP_SYNC_OPTIONS, or an Argo CD option missing from it, is refused.
SYNC_OPTION_REFUSALS: Final[Mapping[str, str]] = {
    "ServerSideApply": f"ServerSideApply=false is {NOT_SUPPORTED}: it always applies server "
                       "side (client-side apply is not implemented)",
    "RespectIgnoreDifferences": f"RespectIgnoreDifferences=true is {NOT_SUPPORTED}: "
                                "ignoreDifferences only affects the comparison, and a sync "
                                "applies the whole manifest from Git",
    "ClientSideApplyMigration": f"ClientSideApplyMigration is {NOT_SUPPORTED}: it never "
                                "applies client side, so there is nothing to migrate",
    **{name: f"{name} is a per-resource option: set it in the resource's "
                 "argocd.argoproj.io/sync-options annotation"
       for name in ("Prune", "Delete", "Force")},
}


def unknown(name: str, known: Collection[str]) -> str:
    """The message for a name that is not in `known`, naming the closest known name."""
    close = closest(name, known)
    return f"unknown field; did you mean {close}?" if close else "unknown field"


def closest(name: str, known: Collection[str]) -> str | None:
    """The known name nearest to `name`, compared without case (`selfheal` is `selfHeal`)."""
    by_lower = {k.lower(): k for k in known}
    match = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None
