"""Destinations: Application destinations resolved by name or server to the default client,
kubeconfig contexts and cluster Secrets, each a real (private) kubesim server."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_tasks.cluster import IN_CLUSTER_SERVER, Cluster, Destinations
from gitops_tasks.errors import PermanentError
from gitops_tasks.model.application import Destination
from kubesim.server import KubeSim


@pytest.fixture
def two_sims() -> Iterator[tuple[KubeSim, KubeSim]]:
    with KubeSim(simulate=False) as a, KubeSim(simulate=False) as b:
        yield a, b


def write_kubeconfig(path: Path, servers: dict[str, str]) -> str:
    doc = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": f"c-{n}", "cluster": {"server": s}} for n, s in servers.items()],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": n, "context": {"cluster": f"c-{n}", "user": "u"}}
                     for n in servers],
        "current-context": next(iter(servers)),
    }
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}}


def cluster_secret(namespace: str, name: str, label: str, data: dict[str, str]
                   ) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {label: "cluster"}},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def test_kubeconfig_contexts(api_client: Any, two_sims: tuple[KubeSim, KubeSim],
                             tmp_path: Path) -> None:
    a, b = two_sims
    path = write_kubeconfig(tmp_path / "config", {"alpha": a.url, "beta": b.url})
    dests = Destinations(None, kubeconfig=path)
    alpha = dests.resolve(Destination(name="alpha"))
    assert (alpha.name, alpha.server) == ("alpha", a.url)
    assert dests.resolve(Destination(server=a.url + "/")) is alpha  # one Cluster per server
    beta = dests.resolve(Destination(server=b.url.upper().replace("HTTP://", "http://")))
    assert beta.name == "beta"
    assert dests.resolve(Destination(server=b.url, name="beta")) is beta

    alpha.apply(configmap("only-in-alpha"))
    assert beta.get("v1", "ConfigMap", "only-in-alpha", "default") is None
    assert alpha.get("v1", "ConfigMap", "only-in-alpha", "default") is not None
    assert any(r.path.endswith("/only-in-alpha") for r in a.request_log)
    with pytest.raises(PermanentError, match="no cluster named beta with server"):
        dests.resolve(Destination(server=a.url, name="beta"))
    dests.close()


def test_default_client_is_in_cluster(api_client: Any, kubesim: KubeSim) -> None:
    dests = Destinations(api_client, control_namespace="no-such-namespace")
    by_name = dests.resolve(Destination(name="in-cluster"))
    assert by_name.name == "in-cluster"
    assert dests.resolve(Destination(server=IN_CLUSTER_SERVER)) is by_name
    assert dests.resolve(Destination(server=kubesim.url)) is by_name
    assert by_name.api_client is api_client


def test_cluster_secrets(api_client: Any, namespace: str, private_sim: KubeSim,
                         tmp_path: Path) -> None:
    control = Cluster(api_client, qps=0)
    config = json.dumps({"bearerToken": "x", "tlsClientConfig": {"insecure": True}})
    control.apply(cluster_secret(namespace, "remote", "argocd.argoproj.io/secret-type",
                                 {"name": "remote", "server": private_sim.url,
                                  "config": config}))
    dests = Destinations(api_client, control_namespace=namespace)
    remote = dests.resolve(Destination(name="remote"))
    assert (remote.name, remote.server) == ("remote", private_sim.url)
    assert dests.resolve(Destination(server=private_sim.url)) is remote
    remote.apply(configmap("from-secret"))
    assert any(r.path.endswith("/from-secret") for r in private_sim.request_log)
    assert remote.api_client.configuration.api_key == {"authorization": "Bearer x"}
    assert remote.api_client.configuration.verify_ssl is False

    # A Secret registered later (our own label) is found on the miss, without waiting for
    # the re-read interval.
    control.apply(cluster_secret(namespace, "later", "gitops-tasks.io/secret-type",
                                 {"name": "later", "server": "https://later.example:6443",
                                  "config": json.dumps({"username": "u", "password": "p"})}))
    later = dests.resolve(Destination(name="later"))
    auth = later.api_client.configuration.api_key["authorization"]
    assert auth == "Basic " + base64.b64encode(b"u:p").decode()

    # A broken Secret is reported when an app points at it, and only then.
    control.apply(cluster_secret(namespace, "broken", "gitops-tasks.io/secret-type",
                                 {"name": "broken", "server": "https://b.example",
                                  "config": "{not json"}))
    with pytest.raises(PermanentError, match=f"cluster Secret {namespace}/broken: config is"):
        dests.resolve(Destination(name="broken"))
    assert dests.resolve(Destination(name="remote")) is remote
    dests.close()


def test_secret_overrides_kubeconfig(api_client: Any, namespace: str, tmp_path: Path,
                                     private_sim: KubeSim) -> None:
    path = write_kubeconfig(tmp_path / "config", {"remote": private_sim.url})
    Cluster(api_client, qps=0).apply(cluster_secret(
        namespace, "remote", "gitops-tasks.io/secret-type",
        {"name": "remote", "server": private_sim.url, "config": '{"bearerToken": "s"}'}))
    dests = Destinations(api_client, kubeconfig=path, control_namespace=namespace)
    remote = dests.resolve(Destination(name="remote"))
    assert remote.api_client.configuration.api_key == {"authorization": "Bearer s"}


def test_unknown_destination(api_client: Any, namespace: str, tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "config", {"dev": "https://dev.example:6443"})
    dests = Destinations(api_client, kubeconfig=path, control_namespace=namespace)
    with pytest.raises(PermanentError) as info:
        dests.resolve(Destination(name="prod"))
    message = str(info.value)
    assert message.startswith("no cluster named prod is configured; known: ")
    assert "in-cluster (" in message and "dev (https://dev.example:6443)" in message
    with pytest.raises(PermanentError, match=r"no cluster with server https://x\.example"):
        dests.resolve(Destination(server="https://x.example"))
    with pytest.raises(PermanentError, match="neither"):
        dests.resolve(Destination())
    with pytest.raises(PermanentError, match="cannot read kubeconfig"):
        Destinations(api_client, kubeconfig=str(tmp_path / "missing"))
