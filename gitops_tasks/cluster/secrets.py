"""Reading Secrets by label (repository credentials, cluster credentials)."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ..errors import PermanentError, TransientError


def list_secrets(api_client: Any, namespace: str, label_selector: str) -> list[dict[str, Any]]:
    """Secrets in `namespace` matching `label_selector`, as plain dicts (data still base64)."""
    core = client.CoreV1Api(api_client)
    try:
        # _preload_content=False keeps the raw JSON: no model round trip, data stays base64.
        resp: Any = core.list_namespaced_secret(namespace, label_selector=label_selector,
                                           _preload_content=False, _request_timeout=30)
    except ApiException as exc:
        if exc.status in (401, 403):
            raise PermanentError(f"not allowed to list Secrets in namespace {namespace}: "
                                 f"{exc.reason}") from exc
        if exc.status == 404:
            return []
        raise TransientError(f"listing Secrets in {namespace} failed: {exc.status} "
                             f"{exc.reason}") from exc
    except OSError as exc:
        raise TransientError(f"listing Secrets in {namespace} failed: {exc}") from exc
    import json

    items: list[dict[str, Any]] = json.loads(resp.data).get("items", [])
    return items
