"""The worker's health probe (`workers.probe.serve`): a real HTTP server on a free port whose
answers follow the `alive` and `ready` callables."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

import pytest
import urllib3

from workers.probe import serve

_HTTP = urllib3.PoolManager()


@dataclass
class Flags:
    alive: bool = True
    ready: bool = False
    calls: list[str] = field(default_factory=list)

    def is_alive(self) -> bool:
        self.calls.append("alive")
        return self.alive

    def is_ready(self) -> bool:
        self.calls.append("ready")
        return self.ready


@pytest.fixture(scope="module")
def _server() -> Iterator[tuple[Flags, ThreadingHTTPServer]]:
    flags = Flags()
    server = serve(0, flags.is_alive, flags.is_ready, host="127.0.0.1")
    yield flags, server
    server.shutdown()
    server.server_close()


@pytest.fixture
def probe(_server: tuple[Flags, ThreadingHTTPServer]) -> tuple[Flags, str]:
    flags, server = _server
    flags.alive, flags.ready, flags.calls[:] = True, False, []
    return flags, f"http://127.0.0.1:{server.server_address[1]}"


def get(url: str, method: str = "GET") -> tuple[int, str, str]:
    resp = _HTTP.request(method, url, timeout=5, retries=False)
    return resp.status, resp.data.decode(), str(resp.headers.get("Content-Type", ""))


def test_healthz_follows_alive(probe: tuple[Flags, str]) -> None:
    flags, base = probe
    assert get(base + "/healthz") == (200, "ok\n", "text/plain; charset=utf-8")
    flags.alive = False
    assert get(base + "/healthz")[:2] == (503, "not ok\n")
    assert get(base + "/livez")[0] == 503  # the Kubernetes-style alias
    flags.alive = True
    assert get(base + "/healthz")[0] == 200
    assert get(base + "/healthz?verbose=1")[0] == 200  # a query string does not matter
    assert set(flags.calls) == {"alive"}  # readiness was never asked


def test_readyz_follows_ready(probe: tuple[Flags, str]) -> None:
    flags, base = probe
    assert get(base + "/readyz")[0] == 503  # starting: not consuming yet
    flags.ready = True
    assert get(base + "/readyz")[:2] == (200, "ok\n")
    flags.alive = False  # liveness is independent of readiness
    assert get(base + "/readyz")[0] == 200
    assert get(base + "/healthz")[0] == 503
    flags.ready = False  # shutting down
    assert get(base + "/readyz")[0] == 503


@pytest.mark.parametrize("path", ["/", "/metrics", "/healthz/", "/readyzz", "/HEALTHZ"])
def test_other_paths_are_404(probe: tuple[Flags, str], path: str) -> None:
    flags, base = probe
    status, body, _ = get(base + path)
    assert (status, body) == (404, "not found\n")
    assert flags.calls == []  # no check ran for an unknown path


def test_content_length_matches_body(probe: tuple[Flags, str]) -> None:
    _, base = probe
    resp = _HTTP.request("GET", base + "/healthz", timeout=5, retries=False)
    assert int(resp.headers["Content-Length"]) == len(resp.data)


def test_a_slow_check_does_not_block_other_probes() -> None:
    release = threading.Event()
    entered = threading.Event()

    def slow_ready() -> bool:
        entered.set()
        release.wait(5)
        return True

    server = serve(0, lambda: True, slow_ready, host="127.0.0.1")
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        result: list[int] = []
        slow = threading.Thread(target=lambda: result.append(get(base + "/readyz")[0]))
        slow.start()
        assert entered.wait(5)
        assert get(base + "/healthz")[0] == 200  # answered while /readyz hangs
        release.set()
        slow.join(5)
        assert result == [200]
    finally:
        release.set()
        server.shutdown()
        server.server_close()
