"""A Secret of the control namespace read every few seconds, so rotating a webhook secret or an
API token needs no restart. A read that fails keeps what was read last."""

from __future__ import annotations

import base64
import threading
import time

from gitops_tasks.errors import GitOpsError
from gitops_tasks.log import get_logger
from gitops_tasks.runtime import Runtime

_log = get_logger(component="secrets")


class SecretData:
    def __init__(self, runtime: Runtime | None, name: str, refresh: float) -> None:
        self.runtime = runtime
        self.name = name
        self.refresh = refresh
        self._data: dict[str, str] = {}
        self._read_at = -1e9
        self._lock = threading.Lock()

    def data(self) -> dict[str, str]:
        """The Secret's keys, decoded ({} when it does not exist)."""
        with self._lock:
            if time.monotonic() - self._read_at >= self.refresh:
                self._read_at = time.monotonic()
                self._data = self._load()
            return self._data

    def _load(self) -> dict[str, str]:
        if self.runtime is None:
            return {}
        try:
            secret = self.runtime.control.get("v1", "Secret", self.name,
                                              self.runtime.settings.control_namespace)
        except GitOpsError as exc:
            _log.warning("could not read the Secret; keeping what was read before",
                         secret=self.name, error=str(exc))
            return self._data
        out: dict[str, str] = {}
        for key, raw in ((secret or {}).get("data") or {}).items():
            if not isinstance(raw, str):
                continue
            try:
                out[key] = base64.b64decode(raw).decode().strip()
            except (ValueError, UnicodeDecodeError):
                _log.warning("Secret key is not base64 text; ignored", secret=self.name,
                             key=key)
        return out
