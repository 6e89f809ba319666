"""A raw HTTP helper for kubesim tests that must send what typed clients never would."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3

_POOL = urllib3.PoolManager(maxsize=8)


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any
    raw: bytes = b""  # the body as sent, for tests that compare the exact text

    @property
    def reason(self) -> str:
        return str(self.body.get("reason", "")) if isinstance(self.body, dict) else ""


def call(base: str, method: str, path: str, body: Any = None,
         content_type: str = "application/json", accept: str = "application/json",
         **query: str) -> Reply:
    if isinstance(body, dict | list):
        data: bytes | None = json.dumps(body).encode()
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = body
    url = base + path + ("?" + urlencode(query) if query else "")
    resp = _POOL.request(method, url, body=data,
                         headers={"Content-Type": content_type, "Accept": accept},
                         timeout=30, retries=False)
    try:
        parsed = json.loads(resp.data) if resp.data else None
    except ValueError:
        parsed = resp.data.decode()
    return Reply(resp.status, parsed, resp.headers, resp.data)
