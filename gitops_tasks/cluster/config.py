"""ApiClients from a kubeconfig (file and context) or the in-cluster service account.

Called once per process by whoever needs the cluster (tasks, CLI); the client is then shared.
"""

from __future__ import annotations

import os
from typing import Any

from kubernetes import client, config

from ..errors import PermanentError


def api_client_from_kubeconfig(path: str | None = None, context: str | None = None) -> Any:
    cfg = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, client_configuration=cfg,
                                persist_config=False)
    except (config.ConfigException, OSError, TypeError) as exc:
        where = path or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise PermanentError(f"cannot load kubeconfig {where}"
                             f"{f' (context {context})' if context else ''}: {exc}") from exc
    return client.ApiClient(cfg)


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """In-cluster configuration when running in a Pod, else the kubeconfig."""
    if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        return client.ApiClient(cfg)
    return api_client_from_kubeconfig(kubeconfig, context)
