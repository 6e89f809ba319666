"""A schema-driven fuzz run of the management API (schemathesis on our own /openapi.json),
against a real receiver process: no 5xx on any input, and nothing is served without the right
token (none or an unknown one: 401; a read-only token on a write: 403)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from scheduler.openapi import spec

from .stack import KubeSimProcess, Stack

ADMIN = "admin-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"
WRITES = {"POST", "DELETE"}

schema = schemathesis.openapi.from_dict(spec())


@dataclass
class Served:
    stack: Stack
    base: str


@pytest.fixture(scope="module")
def served(sim: KubeSimProcess, e2e_redis: Any,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    stack = Stack(sim, f"redis://127.0.0.1:{e2e_redis.port}/15",
                  tmp_path_factory.mktemp("api-fuzz"))
    stack.origin.commit({"web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: w}\n"})
    stack.apply_app(stack.app_manifest("web", "web"))
    stack.worker()  # answers the diffs
    _, base = stack.webhook("webhook", "--insecure", GITOPS_TASKS_API_ADMIN_TOKENS=ADMIN,
                            GITOPS_TASKS_API_READONLY_TOKENS=READER,
                            GITOPS_TASKS_LOG_LEVEL="WARNING")
    yield Served(stack, base)
    stack.close()


@schema.parametrize()
@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_error_and_no_access_without_the_right_role(case: Any,
                                                              served: Served) -> None:
    for token in (None, "unknown-token-0123456789", READER, ADMIN):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = case.call(base_url=served.base, headers=headers, timeout=30)
        assert response.status_code < 500, (token, case.method, case.formatted_path,
                                            response.status_code, response.text[:300])
        if case.method.upper() != case.operation.method.upper():
            # schemathesis also tries methods the route does not have
            assert response.status_code == 405, (case.method, case.formatted_path)
            continue
        # What was sent (a negative case may have dropped or changed the header).
        sent = str(response.request.headers.get("Authorization") or "")
        if sent not in (f"Bearer {READER}", f"Bearer {ADMIN}"):
            assert response.status_code == 401, (case.method, case.formatted_path, sent)
        elif sent == f"Bearer {READER}" and case.method.upper() in WRITES:
            assert response.status_code == 403, (case.method, case.formatted_path)
