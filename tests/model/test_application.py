"""The Application model: Argo CD manifests parse; invalid specs give one message per problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_tasks.errors import InvalidApplication
from gitops_tasks.model import keys, parse_application

ROOT = Path(__file__).resolve().parents[2]

ARGO_APP = """
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: guestbook
  namespace: argocd
  finalizers:
    - resources-finalizer.argocd.argoproj.io
  labels:
    name: guestbook
spec:
  project: default
  source:
    repoURL: https://github.com/argoproj/argocd-example-apps.git
    targetRevision: HEAD
    path: guestbook
    helm:
      valueFiles:
        - values-prod.yaml
      parameters:
        - name: "service.type"
          value: LoadBalancer
        - name: image.tag
          value: "1.0"
          forceString: true
      values: |
        ingress:
          enabled: true
      releaseName: guestbook
      skipCrds: false
  destination:
    server: https://kubernetes.default.svc
    namespace: guestbook
  info:
    - name: 'Example:'
      value: 'https://example.com'
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
      allowEmpty: false
    syncOptions:
      - Validate=false
      - CreateNamespace=true
      - PrunePropagationPolicy=foreground
      - PruneLast=true
    retry:
      limit: 5
      backoff:
        duration: 5s
        factor: 2
        maxDuration: 3m
  ignoreDifferences:
    - group: apps
      kind: Deployment
      jsonPointers:
        - /spec/replicas
    - kind: ConfigMap
      jqPathExpressions:
        - .data["config.yaml"].auth
      managedFieldsManagers:
        - kube-controller-manager
  revisionHistoryLimit: 10
"""


def ours(text: str) -> dict[str, Any]:
    obj = yaml.safe_load(text)
    obj["apiVersion"] = keys.API_VERSION
    return obj  # type: ignore[no-any-return]


def test_argo_cd_application_with_only_api_version_changed_parses() -> None:
    app = parse_application(ours(ARGO_APP))
    assert app.name == "guestbook" and app.namespace == "argocd"
    src = app.source
    assert src.repo_url == "https://github.com/argoproj/argocd-example-apps.git"
    assert src.target_revision == "HEAD" and src.path == "guestbook"
    assert src.helm is not None
    assert src.helm.value_files == ("values-prod.yaml",)
    assert [(p.name, p.value, p.force_string) for p in src.helm.parameters] == [
        ("service.type", "LoadBalancer", False), ("image.tag", "1.0", True)]
    assert "ingress" in src.helm.values and src.helm.release_name == "guestbook"
    assert app.destination.server == "https://kubernetes.default.svc"
    assert app.destination.namespace == "guestbook"
    sp = app.sync_policy
    assert sp.automated is not None and sp.automated.prune and sp.automated.self_heal
    assert sp.enabled("CreateNamespace") and sp.enabled("PruneLast")
    assert sp.option("PrunePropagationPolicy") == "foreground"
    assert sp.retry is not None and sp.retry.limit == 5
    assert sp.retry.backoff.duration_seconds == 5 and sp.retry.backoff.max_duration_seconds == 180
    assert app.ignore_differences[0].json_pointers == ("/spec/replicas",)
    assert app.ignore_differences[1].managed_fields_managers == ("kube-controller-manager",)
    assert app.revision_history_limit == 10


def test_minimal_application_defaults() -> None:
    app = parse_application({
        "apiVersion": keys.API_VERSION, "kind": "Application", "metadata": {"name": "a"},
        "spec": {"source": {"repoURL": "file:///repo"},
                 "destination": {"name": "in-cluster"}}})
    assert app.source.target_revision == "HEAD" and app.source.path == "."
    assert app.namespace == keys.DEFAULT_CONTROL_NAMESPACE
    assert app.sync_policy.automated is None and not app.automated
    assert app.project == "default" and app.revision_history_limit == 10


def test_values_object_and_values_as_object() -> None:
    base = ours(ARGO_APP)
    base["spec"]["source"]["helm"] = {"valuesObject": {"a": {"b": 1}}}
    assert "b: 1" in (parse_application(base).source.helm or pytest.fail()).values
    base["spec"]["source"]["helm"] = {"values": {"x": 2}}
    assert "x: 2" in (parse_application(base).source.helm or pytest.fail()).values


def test_every_problem_is_reported_with_its_path() -> None:
    bad = ours(ARGO_APP)
    spec = bad["spec"]
    del spec["source"]["repoURL"]
    spec["source"]["path"] = "../outside"
    spec["source"]["kustomize"] = {"images": "not-a-list"}
    spec["destination"] = {"namespace": "x"}
    spec["syncPolicy"]["automated"]["prune"] = "yes"
    spec["syncPolicy"]["syncOptions"].append("NoEquals")
    spec["syncPolicy"]["retry"]["backoff"]["duration"] = "soon"
    spec["ignoreDifferences"][0]["jsonPointers"] = ["spec/replicas"]
    spec["revisionHistoryLimit"] = -1
    spec["dependsOn"] = ["guestbook"]
    with pytest.raises(InvalidApplication) as info:
        parse_application(bad)
    paths = [p for p, _ in info.value.problems]
    assert paths == [
        "spec.source.repoURL",
        "spec.source.path",
        "spec.source",
        "spec.source.kustomize.images",
        "spec.destination",
        "spec.syncPolicy.automated.prune",
        "spec.syncPolicy.syncOptions[4]",
        "spec.syncPolicy.retry.backoff.duration",
        "spec.ignoreDifferences[0].jsonPointers[0]",
        "spec.revisionHistoryLimit",
        "spec.dependsOn",
    ]
    assert info.value.app == "guestbook"
    text = str(info.value)
    assert "guestbook: invalid Application" in text and "only one of" in text


@pytest.mark.parametrize("obj, path", [
    ("not a dict", ""),
    ({"apiVersion": "v1", "kind": "Application", "metadata": {"name": "x"},
      "spec": {"source": {"repoURL": "r"}, "destination": {"server": "s"}}}, "apiVersion"),
    ({"apiVersion": keys.API_VERSION, "kind": "Application", "metadata": {},
      "spec": {"source": {"repoURL": "r"}, "destination": {"server": "s"}}}, "metadata.name"),
    ({"apiVersion": keys.API_VERSION, "kind": "Application", "metadata": {"name": "x"}},
     "spec"),
    ({"apiVersion": keys.API_VERSION, "kind": "Application", "metadata": {"name": "x"},
      "spec": {"source": {"repoURL": "r", "chart": "nginx", "targetRevision": "1.0.0"},
               "destination": {"server": "s"}}}, "spec.source.repoURL"),
])
def test_invalid_shapes(obj: Any, path: str) -> None:
    with pytest.raises(InvalidApplication) as info:
        parse_application(obj)
    assert info.value.problems[0][0] == path


def test_options_hash_ignores_revision_only() -> None:
    a = parse_application(ours(ARGO_APP)).source
    b = parse_application({**ours(ARGO_APP), "spec": {**ours(ARGO_APP)["spec"], "source": {
        **ours(ARGO_APP)["spec"]["source"], "targetRevision": "v2"}}}).source
    assert a.options_hash() == b.options_hash()
    assert a.options_hash("app1") != a.options_hash("app2")


def test_the_packaged_crd_is_the_one_deploy_installs() -> None:
    from gitops_tasks.model import CRD_FILE

    assert CRD_FILE.read_bytes() == (ROOT / "deploy/crds/application.yaml").read_bytes()


def test_crd_schema_accepts_argo_example(kubesim: Any, namespace: str) -> None:
    """The CRD in deploy/ loads into an API server and accepts the Argo CD example as is."""
    from tests.kubesim.http import call

    crd = yaml.safe_load((ROOT / "deploy/crds/application.yaml").read_text())
    r = call(kubesim.url, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert r.status in (201, 409), r.body
    obj = ours(ARGO_APP)
    obj["metadata"]["namespace"] = namespace
    r = call(kubesim.url, "POST", f"/apis/gitops-tasks.io/v1alpha1/namespaces/{namespace}/"
                                  "applications", obj)
    assert r.status == 201, r.body
    stored = r.body
    assert stored["spec"]["source"]["helm"]["parameters"][1]["forceString"] is True
    stored["metadata"].pop("managedFields", None)
    assert parse_application(stored).source.helm is not None
    table = call(kubesim.url, "GET", f"/apis/gitops-tasks.io/v1alpha1/namespaces/{namespace}/"
                                     "applications",
                 accept="application/json;as=Table;v=v1;g=meta.k8s.io").body
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Sync Status", "Health Status", "Revision", "Age"]


# ------------------------------------------------------------------ strict fields (issue 8)

def problems_of(obj: Any) -> dict[str, str]:
    with pytest.raises(InvalidApplication) as info:
        parse_application(obj)
    return dict(info.value.problems)


def test_argo_cd_api_version_is_accepted_as_it_is() -> None:
    app = parse_application(yaml.safe_load(ARGO_APP))
    assert app.name == "guestbook" and app.source.path == "guestbook"


def test_unknown_fields_are_errors_naming_the_closest_known_field() -> None:
    bad = ours(ARGO_APP)
    spec = bad["spec"]
    spec["source"]["targetRevison"] = spec["source"].pop("targetRevision")
    spec["source"]["helm"]["valueFile"] = spec["source"]["helm"].pop("valueFiles")
    spec["syncPolicy"]["automated"]["selfheal"] = spec["syncPolicy"]["automated"].pop("selfHeal")
    spec["syncPolicy"]["retry"]["backoff"]["maxDurations"] = "1m"
    spec["ignoreDifferences"][0]["jsonPointer"] = ["/spec/replicas"]
    spec["destination"]["namspace"] = "x"
    spec["revisionHistory"] = 3
    bad["metadata"]["lables"] = {"a": "b"}
    bad["specs"] = {}
    problems = problems_of(bad)
    assert problems == {
        "specs": "unknown field; did you mean spec?",
        "metadata.lables": "unknown field; did you mean labels?",
        "spec.revisionHistory": "unknown field; did you mean revisionHistoryLimit?",
        "spec.source.targetRevison": "unknown field; did you mean targetRevision?",
        "spec.source.helm.valueFile": "unknown field; did you mean valueFiles?",
        "spec.destination.namspace": "unknown field; did you mean namespace?",
        "spec.syncPolicy.automated.selfheal": "unknown field; did you mean selfHeal?",
        "spec.syncPolicy.retry.backoff.maxDurations": "unknown field; did you mean maxDuration?",
        "spec.ignoreDifferences[0].jsonPointer": "unknown field; did you mean jsonPointers?",
    }


def test_status_and_operation_are_not_part_of_the_check() -> None:
    obj = ours(ARGO_APP)
    obj["status"] = {"sync": {"status": "Synced"}, "anything": 1}
    obj["operation"] = {"sync": {"revision": "HEAD"}}
    obj["metadata"].update(uid="u", resourceVersion="1", generation=2, managedFields=[],
                           creationTimestamp="2026-01-01T00:00:00Z", annotations={})
    assert parse_application(obj).uid == "u"


@pytest.mark.parametrize("option, message", [
    ("CreateNamespce=true", "unknown sync option CreateNamespce; did you mean CreateNamespace?"),
    ("prunelast=true", None),
    ("CreateNamespace=yes", "CreateNamespace must be true or false, not 'yes'"),
    ("PrunePropagationPolicy=sideways",
     "PrunePropagationPolicy must be foreground or background or orphan, not 'sideways'"),
    ("Prune=false", "Prune is a per-resource option"),
    ("FailOnSharedResource=true", None),
    ("ServerSideApply=true", None),
    ("ServerSideApply=false", "ServerSideApply=false is not supported by gitops-tasks"),
    ("RespectIgnoreDifferences=false", None),
    ("RespectIgnoreDifferences=true",
     "RespectIgnoreDifferences=true is not supported by gitops-tasks"),
    ("SkipDryRunOnMissingResource=true", None),
    ("SkipDryRunOnMissingResource=maybe",
     "SkipDryRunOnMissingResource must be true or false, not 'maybe'"),
])
def test_sync_options_are_checked(option: str, message: str | None) -> None:
    obj = ours(ARGO_APP)
    obj["spec"]["syncPolicy"]["syncOptions"] = [option]
    if message is None:
        assert parse_application(obj).sync_policy.sync_options
        return
    problem = problems_of(obj)["spec.syncPolicy.syncOptions[0]"]
    assert problem.startswith(message), problem


@pytest.mark.parametrize("where, field, value", [
    ("spec", "sourceHydrator", {"drySource": {}}),
    ("spec.source", "ref", "values"),
    ("spec.source.helm", "fileParameters", [{"name": "a", "path": "b"}]),
    ("spec.source.helm", "version", "v3"),
    ("spec.source.helm", "namespace", "other"),
    ("spec.source.helm", "passCredentials", True),
    ("spec.source.helm", "kubeVersion", "1.30"),
    ("spec.syncPolicy", "managedNamespaceMetadata", {"labels": {"a": "b"}}),
    ("spec.syncPolicy.retry", "refresh", True),
])
def test_argo_cd_fields_gitops_tasks_does_not_implement_are_refused(
        where: str, field: str, value: Any) -> None:
    obj = ours(ARGO_APP)
    node = obj
    for part in where.split("."):
        node = node[part]
    node[field] = value
    message = problems_of(obj)[f"{where}.{field}"]
    assert message.startswith("not supported by gitops-tasks"), message


@pytest.mark.parametrize("section, field", [
    ("kustomize", "patches"), ("kustomize", "replicas"), ("plugin", "parameters")])
def test_kustomize_and_plugin_fields_not_implemented_are_refused(section: str,
                                                                 field: str) -> None:
    obj = ours(ARGO_APP)
    del obj["spec"]["source"]["helm"]
    obj["spec"]["source"][section] = {field: []}
    message = problems_of(obj)[f"spec.source.{section}.{field}"]
    assert message.startswith("not supported by gitops-tasks"), message


def test_multi_source_is_refused_plainly_and_one_entry_is_source() -> None:
    obj = ours(ARGO_APP)
    source = obj["spec"].pop("source")
    obj["spec"]["sources"] = [source, {"repoURL": "https://example.com/values.git",
                                       "ref": "values"}]
    assert problems_of(obj) == {"spec.sources": "multi-source Applications are not supported "
                                                "by gitops-tasks (2 sources): use source"}
    obj["spec"]["sources"] = [dict(source, targetRevison="v1")]
    assert problems_of(obj) == {
        "spec.sources[0].targetRevison": "unknown field; did you mean targetRevision?"}
    obj["spec"]["sources"] = [source]
    assert parse_application(obj).source.path == "guestbook"
    obj["spec"]["source"] = source
    assert "spec.sources" in problems_of(obj)


def test_a_typo_stored_in_the_cluster_reaches_the_parser(kubesim: Any, namespace: str) -> None:
    """The CRD keeps unknown spec fields, so the controller sees a typo and reports it (as an
    InvalidSpecError condition) instead of the API server dropping it without a word."""
    from tests.kubesim.http import call

    crd = yaml.safe_load((ROOT / "deploy/crds/application.yaml").read_text())
    r = call(kubesim.url, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert r.status in (201, 409), r.body
    if r.status == 409:
        name = crd["metadata"]["name"]
        current = call(kubesim.url, "GET",
                       f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").body
        crd["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        r = call(kubesim.url, "PUT",
                 f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}", crd)
        assert r.status == 200, r.body
    obj = ours(ARGO_APP)
    obj["metadata"]["name"] = "typo"
    obj["metadata"]["namespace"] = namespace
    obj["spec"]["source"]["targetRevison"] = obj["spec"]["source"].pop("targetRevision")
    obj["spec"]["syncPolicy"]["automated"]["selfheal"] = True
    r = call(kubesim.url, "POST", f"/apis/gitops-tasks.io/v1alpha1/namespaces/{namespace}/"
                                  "applications", obj)
    assert r.status == 201, r.body
    problems = problems_of(r.body)
    assert problems["spec.source.targetRevison"] == "unknown field; did you mean targetRevision?"
    assert "spec.syncPolicy.automated.selfheal" in problems


def chart_app(**source: Any) -> dict[str, Any]:
    return {"apiVersion": keys.API_VERSION, "kind": "Application", "metadata": {"name": "x"},
            "spec": {"source": source, "destination": {"server": "s", "namespace": "n"}}}


@pytest.mark.parametrize("repo", ["https://charts.example.com/stable",
                                  "oci://registry.example.com/charts"])
def test_chart_from_a_helm_repository(repo: str) -> None:
    app = parse_application(chart_app(repoURL=repo, chart="nginx", targetRevision="1.2.*",
                                      helm={"releaseName": "web",
                                            "valueFiles": ["values-prod.yaml"]}))
    assert app.source.chart == "nginx" and app.source.is_helm_repository
    assert app.source.target_revision == "1.2.*"
    assert app.source.helm is not None and app.source.helm.release_name == "web"
    # Without a helm section it is still rendered by Helm, with the defaults.
    plain = parse_application(chart_app(repoURL=repo, chart="nginx", targetRevision="*"))
    assert plain.source.helm is not None and plain.source.path == "."


@pytest.mark.parametrize("source, where, message", [
    ({"repoURL": "https://github.com/org/repo.git", "chart": "nginx",
      "targetRevision": "1.0.0"}, "spec.source.repoURL", "not a Git repository"),
    ({"repoURL": "git@github.com:org/repo", "chart": "nginx", "targetRevision": "1.0.0"},
     "spec.source.repoURL", "must be a Helm repository"),
    ({"repoURL": "https://charts.example.com", "chart": "nginx"},
     "spec.source.targetRevision", "required with chart"),
    ({"repoURL": "https://charts.example.com", "chart": "nginx", "targetRevision": "1.x.y.z"},
     "spec.source.targetRevision", "is not a version constraint"),
    ({"repoURL": "https://charts.example.com", "chart": "nginx", "targetRevision": "1.0.0",
      "path": "charts/nginx"}, "spec.source.path", "has no meaning with chart"),
    ({"repoURL": "https://charts.example.com", "chart": "nginx", "targetRevision": "1.0.0",
      "kustomize": {}}, "spec.source.kustomize", "has no meaning with chart"),
    ({"repoURL": "https://charts.example.com", "chart": "a/b", "targetRevision": "1.0.0"},
     "spec.source.chart", "must be a chart name"),
])
def test_chart_source_problems(source: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(InvalidApplication) as info:
        parse_application(chart_app(**source))
    found = dict(info.value.problems)
    assert message in found[where], found
