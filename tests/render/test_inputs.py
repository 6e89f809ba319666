"""What a render reads, from the files of a commit (pure: a dict stands in for Git)."""

from __future__ import annotations

from typing import Any

from gitops_tasks.model import parse_application
from gitops_tasks.render.inputs import input_paths, kind_of


def source(path: str, **extra: Any) -> Any:
    spec = {"repoURL": "https://h/r", "path": path, "targetRevision": "main", **extra}
    return parse_application({
        "apiVersion": "gitops-tasks.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "a"},
        "spec": {"source": spec, "destination": {"server": "https://kubernetes.default.svc",
                                                 "namespace": "x"}}}).source


def reader(files: dict[str, str]) -> Any:
    def read(paths: list[str]) -> dict[str, bytes | None]:
        return {p: files[p].encode() if p in files else None for p in paths}
    return read


def test_kustomize_follows_bases_components_patches_and_generators() -> None:
    files = {
        "apps/web/overlays/prod/kustomization.yaml": """
resources: [../../base, ../../../../shared/ns.yaml, deploy.yaml]
components: [/components/tls]
patches:
  - path: ../../../../patches/replicas.yaml
  - patch: |-
      - op: replace
        path: /spec/replicas
        value: 3
patchesStrategicMerge: [local-patch.yaml]
configMapGenerator:
  - name: cfg
    files: [app.properties=../../../../config/app.properties]
    envs: [env.txt]
""",
        "apps/web/base/kustomization.yaml": "resources: [deploy.yaml]\n",
        "components/tls/kustomization.yaml": "kind: Component\nresources: [cert.yaml]\n",
    }
    read = reader(files)
    src = source("apps/web/overlays/prod")
    assert kind_of(src, read) == "kustomize"
    assert input_paths(src, "kustomize", read) == sorted([
        "apps/web/overlays/prod", "apps/web/base", "shared/ns.yaml", "components/tls",
        "patches/replicas.yaml", "config/app.properties"])


def test_unknowable_inputs_key_by_the_commit() -> None:
    remote = reader({"k/kustomization.yaml":
                     "resources: [github.com/org/repo//base?ref=v1]\n"})
    assert input_paths(source("k"), "kustomize", remote) is None
    https = reader({"k/kustomization.yaml": "resources: [https://example.com/x.yaml]\n"})
    assert input_paths(source("k"), "kustomize", https) is None
    escaping = reader({"k/kustomization.yaml": "resources: [../../../../etc]\n"})
    assert input_paths(source("k"), "kustomize", escaping) is None
    charts = reader({"k/kustomization.yaml": "helmCharts: [{name: x, repo: https://c}]\n"})
    assert input_paths(source("k"), "kustomize", charts) is None
    assert input_paths(source("p", plugin={"name": "cmp"}), "plugin", reader({})) is None
    helm_var = source("c", helm={"valueFiles": ["values-$ARGOCD_APP_NAME.yaml"]})
    assert input_paths(helm_var, "helm", reader({})) is None


def test_helm_value_files_and_file_dependencies() -> None:
    files = {"charts/web/Chart.yaml": """
apiVersion: v2
name: web
version: 1.0.0
dependencies:
  - {name: lib, version: 1.0.0, repository: "file://../lib"}
  - {name: redis, version: 17.0.0, repository: "https://charts.bitnami.com/bitnami"}
"""}
    src = source("charts/web", helm={"valueFiles": ["values.yaml", "../../envs/prod.yaml",
                                                    "/global/values.yaml"]})
    assert kind_of(src, reader(files)) == "helm"
    assert input_paths(src, "helm", reader(files)) == sorted([
        "charts/web", "charts/lib", "envs/prod.yaml", "global/values.yaml"])


def test_directories_read_their_path_and_jsonnet_libs() -> None:
    plain = source("apps/web")
    assert kind_of(plain, reader({})) == "directory"
    assert input_paths(plain, "directory", reader({})) == ["apps/web"]
    jsonnet = source("apps/web", directory={"jsonnet": {"libs": ["vendor", "/lib/k"]}})
    assert input_paths(jsonnet, "directory", reader({})) == ["apps/web", "lib/k", "vendor"]
    assert input_paths(source("."), "directory", reader({})) == [""]
