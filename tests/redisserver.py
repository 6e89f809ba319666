"""Private redis-server processes for tests that must kill, pause or restart one: start, kill,
pause, restart on the same port (an empty server, as after a crash without persistence)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from gitops_tasks.redisserver import find_redis_server

REDIS_SERVER = find_redis_server()
needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One private redis-server (or sentinel) process: start, kill, pause, restart on the same
    port. Always `stop()` it (the fixtures below do)."""

    def __init__(self, workdir: Path, *args: str, port: int | None = None,
                 sentinel_conf: str | None = None) -> None:
        assert REDIS_SERVER is not None
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else free_port()
        self.args = args
        self.sentinel_conf = sentinel_conf
        self.proc: subprocess.Popen[bytes] | None = None
        self.logfile = workdir / f"redis-{self.port}.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        assert REDIS_SERVER is not None
        self.logfile.write_text("")
        if self.sentinel_conf is not None:
            conf = self.workdir / f"sentinel-{self.port}.conf"
            conf.write_text(f"port {self.port}\nbind 127.0.0.1\n{self.sentinel_conf}")
            cmd = [REDIS_SERVER, str(conf), "--sentinel"]
            ready = "+monitor master"
        else:
            cmd = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(self.workdir), *self.args]
            ready = "Ready to accept connections"
        cmd += ["--logfile", str(self.logfile)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while ready not in self.logfile.read_text(errors="replace"):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"redis-server exited: {err}{self.logfile.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server not ready:\n{self.logfile.read_text()}")
            time.sleep(0.02)
        return self

    def kill(self) -> None:
        """SIGKILL, and wait: its data (nothing is saved) is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None
