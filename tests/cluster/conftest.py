"""Fixtures for the cluster layer: a Cluster on the shared kubesim, CRDs in a unique group per
test (the shared server's discovery is seen by every test), and private kubesim servers for
fault injection, which would otherwise break the other tests running against the shared one."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from gitops_tasks.cluster import Cluster
from kubesim.server import KubeSim

CRD_API = "apiextensions.k8s.io/v1"


def crd_manifest(group: str, kind: str, *, status: bool = True,
                 schema: dict[str, Any] | None = None) -> dict[str, Any]:
    plural = kind.lower() + "s"
    version: dict[str, Any] = {
        "name": "v1", "served": True, "storage": True,
        "schema": {"openAPIV3Schema": schema or {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    }
    if status:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": CRD_API,
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                      "listKind": f"{kind}List"},
            "versions": [version],
        },
    }


@pytest.fixture
def cluster(api_client: Any) -> Cluster:
    # No rate limit: these tests measure behaviour, not throttling (test_throttling does).
    return Cluster(api_client, name="kubesim", qps=0)


@pytest.fixture
def group() -> str:
    return f"t{uuid.uuid4().hex[:8]}.example.com"


@pytest.fixture
def make_crd(cluster: Cluster) -> Iterator[Callable[..., dict[str, Any]]]:
    """Create a CRD (via the product code: it is just an apply); deleted after the test."""
    created: list[str] = []

    def make(group: str, kind: str, **kwargs: Any) -> dict[str, Any]:
        crd = cluster.apply(crd_manifest(group, kind, **kwargs))
        created.append(crd["metadata"]["name"])
        return crd

    yield make
    for name in created:
        cluster.delete(CRD_API, "CustomResourceDefinition", name, propagation="Background")


@pytest.fixture
def private_sim() -> Iterator[KubeSim]:
    with KubeSim(simulate=False) as sim:
        yield sim


def client_for(url: str) -> Any:
    cfg = client.Configuration()
    cfg.host = url
    return client.ApiClient(cfg)
