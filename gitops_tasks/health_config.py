"""The custom health checks a process uses: scripts from the `gitops-tasks-cm` ConfigMap of the
control namespace (Argo CD's `argocd-cm` key formats) over those of
`GITOPS_TASKS_RESOURCE_CUSTOMIZATIONS_DIR`.

Built once per process by `runtime.Runtime` (the CLI builds one too); the comparison asks for
`current()` once per app it compares, and every resource of that app is judged with the same
scripts. Both sources are read again at most every `refresh` seconds (30), never per object, so
an edit to the ConfigMap reaches every worker within half a minute without a restart. A failed
read of the ConfigMap keeps the scripts last read: a transient failure (an API hiccup) is tried
again after `retry` seconds, a permanent one (no RBAC) at the usual interval. Read errors and
problems with single keys or files are logged when they change, not at every read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from .cluster import Cluster
from .errors import GitOpsError, TransientError
from .health import NONE, Customizations
from .health.customizations import HealthScript, load_directory, parse_configmap
from .log import get_logger

CONFIGMAP_NAME = "gitops-tasks-cm"
REFRESH_SECONDS = 30.0
RETRY_SECONDS = 5.0

_log = get_logger(component="health-config")


class HealthConfig:
    """The current customizations, re-read at most every `refresh` seconds. Thread-safe."""

    def __init__(
        self,
        cluster: Cluster | None,
        namespace: str,
        directory: Path | None = None,
        *,
        refresh: float = REFRESH_SECONDS,
        retry: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.directory = directory
        self.refresh = refresh
        self.retry = retry
        self.clock = clock
        self._lock = threading.Lock()
        self._value: Customizations | None = None
        self._configmap: list[HealthScript] = []
        self._next = 0.0
        self._problems: frozenset[str] = frozenset()
        self._error = ""

    @property
    def source(self) -> str:
        return f"ConfigMap {self.namespace}/{CONFIGMAP_NAME}"

    def current(self) -> Customizations:
        value = self._value
        if value is not None and self.clock() < self._next:
            return value
        with self._lock:
            if self._value is not None and self.clock() < self._next:
                return self._value
            return self._reload()

    def _reload(self) -> Customizations:
        problems: list[str] = []
        delay = self.refresh
        if self.cluster is not None:
            try:
                self._configmap, cm_problems = self._read_configmap(self.cluster)
                problems += cm_problems
                self._error = ""
            except GitOpsError as exc:
                # Keep what was last read: a blip must not switch every custom check off.
                if exc.message != self._error:
                    _log.warning("cannot read the health customizations", source=self.source,
                                 error=exc.message, kept=len(self._configmap))
                self._error = exc.message
                if isinstance(exc, TransientError):
                    delay = self.retry
        directory: list[HealthScript] = []
        if self.directory is not None:
            directory, dir_problems = load_directory(self.directory)
            problems += dir_problems
        if frozenset(problems) != self._problems:
            for problem in problems:
                _log.warning("health customization ignored", problem=problem)
            self._problems = frozenset(problems)
        value = Customizations.of(self._configmap, directory)
        if value != self._value:
            _log.info("health customizations loaded", configmap=len(self._configmap),
                      directory=len(directory), source=self.source,
                      path=str(self.directory) if self.directory else None)
        self._value = value
        self._next = self.clock() + delay
        return value

    def _read_configmap(self, cluster: Cluster) -> tuple[list[HealthScript], list[str]]:
        obj = cluster.get("v1", "ConfigMap", CONFIGMAP_NAME, self.namespace)
        if obj is None:
            return [], []
        data = obj.get("data") or {}
        if not isinstance(data, dict):
            return [], [f"{self.source}: data is not a map"]
        return parse_configmap(data, self.source)


def static(customizations: Customizations = NONE) -> Callable[[], Customizations]:
    """A provider that always gives `customizations` (tests, and processes without a cluster)."""
    return lambda: customizations
