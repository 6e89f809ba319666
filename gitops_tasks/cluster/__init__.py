"""Cluster access: the only importer of the `kubernetes` client."""

from .config import api_client_from_kubeconfig, load_api_client
from .secrets import list_secrets

__all__ = ["api_client_from_kubeconfig", "list_secrets", "load_api_client"]
