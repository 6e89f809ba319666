"""`gitops-tasks up`: the whole controller on one machine, for trying it and for the demo.

Starts what is missing and every role as a child process: a redis-server (gitops_tasks.redisserver)
unless GITOPS_TASKS_REDIS_URL answers, kubesim as the cluster when asked or when no kubeconfig
is configured (with the Application CRD installed), N workers, beat, the receiver with the API,
and Flower. Secrets the receiver, the API and Flower need are generated when none is set and
printed once. Ctrl-C or SIGTERM stops every child (SIGTERM, then SIGKILL after a grace period),
in the reverse order of their start.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import GitOpsError
from .model import CRD_FILE
from .redisserver import require_redis_server
from .runtime import default_kubeconfig, redis_or_none

BIN = Path(sys.executable).parent
CLI = str(BIN / "gitops-tasks")
KUBECTL = str(BIN / "kubectl") if (BIN / "kubectl").exists() else "kubectl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise GitOpsError(f"{what} did not come up within {timeout:.0f}s")


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
    except OSError:
        return False
    return True


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class LocalController:
    workdir: Path
    workers: int = 2
    webhook_port: int = 0
    flower_port: int = 0
    kubesim: bool | None = None  # None: when no kubeconfig is configured
    extra_env: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    shown: dict[str, str] = field(default_factory=dict)  # what to tell the user

    def start(self) -> LocalController:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.extra_env}
        env.setdefault("GITOPS_TASKS_GIT_CACHE_DIR", str(self.workdir / "git-cache"))
        env.setdefault("GITOPS_TASKS_LOG_FORMAT", "json")
        self.env = env
        try:
            self._redis()
            self._cluster()
            self._secrets()
            for i in range(self.workers):
                self._spawn(f"worker-{i + 1}", [CLI, "worker", "--concurrency", "1",
                                                "--probe-port", str(free_port()),
                                                "--hostname", f"worker-{i + 1}@%h"])
            self._spawn("beat", [CLI, "beat"])
            self.webhook_port = self.webhook_port or free_port()
            self._spawn("webhook", [CLI, "webhook", "--host", "127.0.0.1",
                                    "--port", str(self.webhook_port)])
            self.flower_port = self.flower_port or free_port()
            self._spawn("flower", [CLI, "flower", "--address", "127.0.0.1",
                                   "--port", str(self.flower_port)])
            _wait(lambda: _listening(self.webhook_port), 60, "the receiver")
            _wait(lambda: _listening(self.flower_port), 60, "Flower")
        except BaseException:
            self.stop()
            raise
        self.shown["receiver and API"] = f"http://127.0.0.1:{self.webhook_port}"
        self.shown["panel (sign in with the API token)"] = f"http://127.0.0.1:{self.webhook_port}/"
        self.shown["Flower"] = f"http://127.0.0.1:{self.flower_port}"
        return self

    # ------------------------------------------------------------------ parts

    def _spawn(self, name: str, argv: list[str]) -> Child:
        log = self.workdir / f"{name}.log"
        out = log.open("ab")
        popen = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        out.close()
        child = Child(name, popen, log)
        self.children.append(child)
        return child

    def _redis(self) -> None:
        url = self.env.get("GITOPS_TASKS_REDIS_URL", "")
        if url and redis_or_none(url, self.env.get("GITOPS_TASKS_REDIS_SENTINEL_MASTER",
                                                   "mymaster")) is not None:
            self.shown["Redis"] = url
            return
        try:
            server = require_redis_server(self.env)
        except GitOpsError as exc:
            raise GitOpsError(f"no Redis: set GITOPS_TASKS_REDIS_URL to one, or {exc}") from None
        port = free_port()
        self._spawn("redis", [server, "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no",
                              "--dir", str(self.workdir)])
        _wait(lambda: _listening(port), 20, "redis-server")
        self.env["GITOPS_TASKS_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        self.shown["Redis"] = self.env["GITOPS_TASKS_REDIS_URL"]

    def _cluster(self) -> None:
        use_sim = self.kubesim if self.kubesim is not None else \
            default_kubeconfig(self.env.get("KUBECONFIG")) is None
        if use_sim:
            kubeconfig = self.workdir / "kubeconfig"
            kubeconfig.unlink(missing_ok=True)
            self._spawn("kubesim", [sys.executable, "-m", "kubesim", "--port", "0",
                                    "--kubeconfig", str(kubeconfig), "--no-request-log"])
            _wait(kubeconfig.exists, 30, "kubesim")
            self.env["KUBECONFIG"] = str(kubeconfig)
            self.shown["cluster"] = f"kubesim (KUBECONFIG={kubeconfig})"
        else:
            where = self.env.get("KUBECONFIG") or "~/.kube/config"
            self.shown["cluster"] = f"the current context of {where}"
        namespace = self.env.get("GITOPS_TASKS_NAMESPACE", "gitops-tasks")
        self.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
        if self.kubectl("get", "namespace", namespace, check=False).returncode != 0:
            self.kubectl("create", "namespace", namespace)

    def _secrets(self) -> None:
        if not any(k.startswith("GITOPS_TASKS_WEBHOOK_") and k.endswith(("_SECRET", "_UUID"))
                   for k in self.env):
            self.env["GITOPS_TASKS_WEBHOOK_GITHUB_SECRET"] = secrets.token_hex(16)
            self.shown["GitHub webhook secret"] = self.env["GITOPS_TASKS_WEBHOOK_GITHUB_SECRET"]
        if "GITOPS_TASKS_API_ADMIN_TOKENS" not in self.env:
            self.env["GITOPS_TASKS_API_ADMIN_TOKENS"] = secrets.token_urlsafe(24)
            self.shown["API admin token"] = self.env["GITOPS_TASKS_API_ADMIN_TOKENS"]
        if "GITOPS_TASKS_FLOWER_BASIC_AUTH" not in self.env:
            self.env["GITOPS_TASKS_FLOWER_BASIC_AUTH"] = f"admin:{secrets.token_urlsafe(12)}"
            self.shown["Flower login"] = self.env["GITOPS_TASKS_FLOWER_BASIC_AUTH"]

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True
                ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([KUBECTL, *args], env=self.env, input=stdin, text=True,
                                capture_output=True, timeout=120)
        if check and result.returncode != 0:
            raise GitOpsError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result

    def dead(self) -> list[str]:
        return [c.name for c in self.children if c.popen.poll() is not None]

    def stop(self, grace: float = 20.0) -> None:
        for child in reversed(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in reversed(self.children):
            try:
                child.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.popen.pid, signal.SIGKILL)
                child.popen.wait(10)
        self.children.clear()


def run(workdir: Path, *, workers: int, webhook_port: int, flower_port: int,
        kubesim: bool | None) -> int:
    """`gitops-tasks up`: start, tell, wait for Ctrl-C or SIGTERM, stop everything."""
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    controller = LocalController(workdir, workers=workers, webhook_port=webhook_port,
                                 flower_port=flower_port, kubesim=kubesim).start()
    try:
        width = max(len(k) for k in controller.shown)
        for key, value in controller.shown.items():
            sys.stdout.write(f"{key.ljust(width)}  {value}\n")
        sys.stdout.write(f"logs in {workdir}; Ctrl-C stops everything\n")
        sys.stdout.flush()
        while not stop:
            dead = controller.dead()
            if dead:
                sys.stderr.write(f"error: {', '.join(dead)} exited; see their logs in "
                                 f"{workdir}; stopping\n")
                return 1
            time.sleep(0.5)
        return 0
    finally:
        controller.stop()
