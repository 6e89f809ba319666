"""Cluster access: the only importer of the `kubernetes` client.

The engine and the task layer call `Destinations.resolve()` (or build a `Cluster` on the
default ApiClient) and then work with plain dicts; errors are the `Api*` classes of
`gitops_tasks.errors`, re-exported here.
"""

from ..errors import (
    ApiBadRequest,
    ApiConflict,
    ApiError,
    ApiForbidden,
    ApiInvalid,
    ApiNotFound,
    ApiPermanent,
    ApiTransient,
    ApiUnauthorized,
    UnknownKind,
)
from .client import Cluster, WatchExpired
from .config import api_client_from_cluster_config, api_client_from_kubeconfig, load_api_client
from .destinations import IN_CLUSTER_NAME, IN_CLUSTER_SERVER, Destinations
from .discovery import ResourceInfo
from .secrets import list_secrets
from .throttling import Limiter, LimiterFactory, TokenBucket
from .transport import USER_AGENT

__all__ = [
    "IN_CLUSTER_NAME",
    "IN_CLUSTER_SERVER",
    "USER_AGENT",
    "ApiBadRequest",
    "ApiConflict",
    "ApiError",
    "ApiForbidden",
    "ApiInvalid",
    "ApiNotFound",
    "ApiPermanent",
    "ApiTransient",
    "ApiUnauthorized",
    "Cluster",
    "Destinations",
    "Limiter",
    "LimiterFactory",
    "ResourceInfo",
    "TokenBucket",
    "UnknownKind",
    "WatchExpired",
    "api_client_from_cluster_config",
    "api_client_from_kubeconfig",
    "list_secrets",
    "load_api_client",
]
