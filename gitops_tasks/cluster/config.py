"""ApiClients from a kubeconfig (file and context), the in-cluster service account, or the
`config` of an Argo CD style cluster Secret.

Called once per process by whoever needs the default cluster (tasks, CLI), and by
`Destinations` once per destination cluster; the clients are then shared.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config

from ..errors import PermanentError

# Credential kinds of Argo CD cluster Secrets that need a plugin or cloud SDK we do not ship.
UNSUPPORTED_CLUSTER_AUTH = ("execProviderConfig", "awsAuthConfig")


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


def _pem_file(files_dir: Path, b64: str, what: str, where: str) -> str:
    """Write base64 PEM data to a private file named by its hash (urllib3 wants paths for
    client certificates and keys) and return the path."""
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PermanentError(f"{where}: tlsClientConfig.{what} is not valid base64") from exc
    path = files_dir / f"{hashlib.sha256(data).hexdigest()[:32]}.pem"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    return str(path)


def api_client_from_cluster_config(
    server: str, cluster_config: dict[str, Any], *, files_dir: Path, where: str
) -> Any:
    """An ApiClient for `server` from an Argo CD cluster Secret's `config`: bearerToken or
    username/password, and tlsClientConfig {insecure, caData, certData, keyData, serverName}.
    `where` names the Secret in error messages."""
    unsupported = [k for k in UNSUPPORTED_CLUSTER_AUTH if cluster_config.get(k)]
    if unsupported:
        raise PermanentError(f"{where}: config.{unsupported[0]} is not supported by "
                             "gitops-tasks; use a bearerToken or client certificate")
    cfg = client.Configuration()
    cfg.host = server
    token = cluster_config.get("bearerToken")
    username = cluster_config.get("username")
    if token:
        cfg.api_key = {"authorization": f"Bearer {token}"}
    elif username:
        basic = urllib3.util.make_headers(
            basic_auth=f"{username}:{cluster_config.get('password') or ''}")
        cfg.api_key = {"authorization": basic["authorization"]}
    tls = cluster_config.get("tlsClientConfig") or {}
    if not isinstance(tls, dict):
        raise PermanentError(f"{where}: config.tlsClientConfig must be an object")
    cfg.verify_ssl = not tls.get("insecure", False)
    if tls.get("caData"):
        cfg.ssl_ca_cert = _pem_file(files_dir, str(tls["caData"]), "caData", where)
    if tls.get("certData") or tls.get("keyData"):
        if not (tls.get("certData") and tls.get("keyData")):
            raise PermanentError(f"{where}: tlsClientConfig needs both certData and keyData")
        cfg.cert_file = _pem_file(files_dir, str(tls["certData"]), "certData", where)
        cfg.key_file = _pem_file(files_dir, str(tls["keyData"]), "keyData", where)
    if tls.get("serverName"):
        cfg.tls_server_name = str(tls["serverName"])
    return client.ApiClient(cfg)
