"""Real processes for the end-to-end tests: kubesim, redis-server, `gitops-tasks worker` and
`gitops-tasks beat`, each in its own process group so a test can SIGKILL, SIGSTOP and SIGCONT
a whole worker (its Celery parent and pool children) the way an OOM killer or a paused VM would.

`Stack` is one test's installation: its own control namespace, destination namespace, Redis
database, Git repository and processes; tests share only the kubesim and redis-server of their
xdist worker. Every claim a test makes about writes ("no overlap", "no second Job") is read from
kubesim's request log, never from the product's own bookkeeping.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.kubesim.http import call
from tests.source.gitservers import Origin

BIN = Path(sys.executable).parent
CLI = str(BIN / "gitops-tasks")
KUBECTL = str(BIN / "kubectl")
ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "deploy" / "crds" / "application.yaml"
API = "/apis/gitops-tasks.io/v1alpha1"

# Fast loops for tests; the defaults are minutes.
FAST = {
    "GITOPS_TASKS_RECONCILE_INTERVAL": "2",
    "GITOPS_TASKS_RECONCILE_JITTER": "0",
    "GITOPS_TASKS_RESUME_INTERVAL": "1",
    "GITOPS_TASKS_LOCK_TTL": "3",
    "GITOPS_TASKS_SYNC_POLL_INTERVAL": "0.3",
    "GITOPS_TASKS_SELF_HEAL_BACKOFF": "0",
    "GITOPS_TASKS_RETRY_BACKOFF": "0.2",
    "GITOPS_TASKS_RETRY_BACKOFF_MAX": "2",
    "GITOPS_TASKS_TASK_TIME_LIMIT": "60",
    "GITOPS_TASKS_TASK_SOFT_TIME_LIMIT": "50",
    "GITOPS_TASKS_VISIBILITY_TIMEOUT": "90",
    "GITOPS_TASKS_QUEUED_TTL": "60",
    "GITOPS_TASKS_KUBE_QPS": "0",
    "GITOPS_TASKS_LOG_FORMAT": "json",
    "GITOPS_TASKS_LOG_LEVEL": "INFO",
}


def wait_for(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.1,
             what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout:.0f}s (last: {last!r})")


class Proc:
    """A child process in a session of its own: signals go to the whole group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log_path = log
        self._log = log.open("ab")
        self.popen = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        self.pid = self.popen.pid

    def group(self) -> list[int]:
        """Every live pid of the process group (the Celery parent and its pool children)."""
        out = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == self.pid and fields[0] not in ("Z", "X"):
                out.append(int(entry.name))
        return out

    def signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        self.signal(signal.SIGSTOP)

    def cont(self) -> None:
        self.signal(signal.SIGCONT)

    def terminate(self, timeout: float = 20) -> int | None:
        if self.popen.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(10)
        self.signal(signal.SIGKILL)  # pool children left behind by a parent that died
        self._log.close()
        return self.popen.returncode

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines (others skipped)."""
        out = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out


class KubeSimProcess:
    """`python -m kubesim` in its own process, driven over HTTP like any client would."""

    def __init__(self, workdir: Path, ready_delay: float = 0.3) -> None:
        self.kubeconfig = workdir / "kubeconfig"
        self.proc = Proc("kubesim", [sys.executable, "-m", "kubesim", "--port", "0",
                                     "--kubeconfig", str(self.kubeconfig),
                                     "--ready-delay", str(ready_delay)],
                         dict(os.environ), workdir / "kubesim.log")
        self.url = wait_for(self._url, 20, what="kubesim's URL")

    def _url(self) -> str:
        for line in self.proc.log().splitlines():
            if line.startswith("http://"):
                return line.strip()
        if not self.proc.alive:
            raise RuntimeError(f"kubesim exited:\n{self.proc.log()}")
        return ""

    def requests(self, since: float = 0.0) -> list[dict[str, Any]]:
        return list(call(self.url, "GET", "/_kubesim/requests", since=str(since)).body)

    def add_fault(self, **fault: Any) -> None:
        assert call(self.url, "POST", "/_kubesim/faults", fault).status in (200, 201)

    def clear_faults(self) -> None:
        call(self.url, "DELETE", "/_kubesim/faults")

    def close(self) -> None:
        self.proc.terminate()


class Stack:
    """One test's gitops-tasks installation on the shared kubesim and redis-server."""

    def __init__(self, sim: KubeSimProcess, redis_url: str, tmp: Path, **env: str) -> None:
        self.sim = sim
        self.redis_url = redis_url
        self.tmp = tmp
        self.id = uuid.uuid4().hex[:8]
        self.control = f"ctl-{self.id}"
        self.dest = f"dst-{self.id}"
        self.procs: list[Proc] = []
        self.origin = Origin(tmp / "served", tmp / "work", "repo")
        self.env = {**os.environ, **FAST, **env,
                    "KUBECONFIG": str(sim.kubeconfig),
                    "GITOPS_TASKS_REDIS_URL": redis_url,
                    "GITOPS_TASKS_NAMESPACE": self.control,
                    "GITOPS_TASKS_GIT_CACHE_DIR": str(tmp / "git-cache")}
        for ns in (self.control, self.dest):
            self.kubectl("create", "namespace", ns)

    # ------------------------------------------------------------------ processes

    def worker(self, name: str = "w1", *, queues: str = "refresh,sync", concurrency: int = 1,
               probe_port: int = 0, **env: str) -> Proc:
        """A worker; `probe_port` 0: without its probe and metrics server."""
        proc = Proc(name, [CLI, "worker", "--queues", queues, "--concurrency", str(concurrency),
                           "--probe-port", str(probe_port), "--hostname", f"{name}@{self.id}"],
                    {**self.env, **env}, self.tmp / f"{name}.log")
        self.procs.append(proc)
        wait_for(lambda: "ready" in proc.log() or not proc.alive, 30,
                 what=f"worker {name} ready")
        assert proc.alive, proc.log()
        return proc

    def beat(self, name: str = "beat", **env: str) -> Proc:
        proc = Proc(name, [CLI, "beat"], {**self.env, **env}, self.tmp / f"{name}.log")
        self.procs.append(proc)
        return proc

    def webhook(self, name: str = "webhook", *args: str, **env: str) -> tuple[Proc, str]:
        """A `gitops-tasks webhook` process on a free port: (process, base URL)."""
        import socket

        from tests.source.gitservers import free_port

        port = free_port()
        proc = Proc(name, [CLI, "webhook", "--host", "127.0.0.1", "--port", str(port), *args],
                    {**self.env, **env}, self.tmp / f"{name}.log")
        self.procs.append(proc)

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
            except OSError:
                return not proc.alive
            return True
        wait_for(listening, 30, what=f"receiver {name} listening")
        assert proc.alive, proc.log()
        return proc, f"http://127.0.0.1:{port}"

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} -----\n{p.log()[-6000:]}" for p in self.procs)

    # ------------------------------------------------------------------ cluster

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True
                ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([KUBECTL, "--kubeconfig", str(self.sim.kubeconfig),
                                 "--cache-dir", str(self.tmp / "kubectl-cache"), *args],
                                input=stdin, text=True, capture_output=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
        return result

    def get(self, path: str) -> dict[str, Any] | None:
        reply = call(self.sim.url, "GET", path)
        return reply.body if reply.status == 200 else None

    def app_manifest(self, name: str, path: str, *, automated: dict[str, Any] | None = None,
                     sync_options: list[str] | None = None, finalizer: bool = False,
                     namespace: str | None = None, **spec: Any) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "apiVersion": "gitops-tasks.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": self.control},
            "spec": {"source": {"repoURL": self.origin.file_url, "path": path,
                                "targetRevision": "main"},
                     "destination": {"server": "https://kubernetes.default.svc",
                                     "namespace": namespace or self.dest}, **spec},
        }
        policy: dict[str, Any] = {}
        if automated is not None:
            policy["automated"] = automated
        if sync_options:
            policy["syncOptions"] = sync_options
        if policy:
            obj["spec"]["syncPolicy"] = policy
        if finalizer:
            obj["metadata"]["finalizers"] = ["resources-finalizer.gitops-tasks.io"]
        return obj

    def apply_app(self, obj: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(obj))

    def app(self, name: str) -> dict[str, Any] | None:
        return self.get(f"{API}/namespaces/{self.control}/applications/{name}")

    def status(self, name: str) -> dict[str, Any]:
        obj = self.app(name)
        return dict((obj or {}).get("status") or {})

    def synced_healthy(self, name: str, revision: str | None = None) -> bool:
        status = self.status(name)
        return ((status.get("sync") or {}).get("status") == "Synced"
                and (status.get("health") or {}).get("status") == "Healthy"
                and (revision is None or (status.get("sync") or {}).get("revision") == revision))

    def live(self, kind_path: str, name: str) -> dict[str, Any] | None:
        return self.get(kind_path.format(ns=self.dest) + f"/{name}")

    def writes(self, *, since: float = 0.0, namespace: str | None = None
               ) -> list[dict[str, Any]]:
        """Writes (not dry-runs) kubesim logged in a namespace (default: the destination)."""
        ns = namespace or self.dest
        return [r for r in self.sim.requests(since)
                if r["method"] in ("POST", "PUT", "PATCH", "DELETE")
                and f"/namespaces/{ns}/" in r["path"] and "dryRun" not in (r.get("query") or {})]

    def request_sync(self, name: str, revision: str = "", prune: bool = False) -> None:
        """What `gitops-tasks app sync` will do (issue 10): write the request on the
        Application; the watch queues the sync."""
        op = {"id": uuid.uuid4().hex[:12], "sync": {"revision": revision, "prune": prune},
              "initiatedBy": {"username": "test"}}
        reply = call(self.sim.url, "PATCH", f"{API}/namespaces/{self.control}/applications/"
                     f"{name}", {"operation": op}, content_type="application/merge-patch+json")
        assert reply.status == 200, reply.body


CM = "/api/v1/namespaces/{ns}/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/{ns}/deployments"
JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"


def configmap(name: str, data: dict[str, str] | None = None, **annotations: str) -> str:
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = {k.replace("__", "/").replace("_", "-"): v
                               for k, v in annotations.items()}
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                           "data": data or {"k": "v"}})


def deployment(name: str, image: str = "nginx:1.27", replicas: int = 1,
               annotations: dict[str, str] | None = None) -> str:
    doc: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "main", "image": image}]}}},
    }
    return yaml.safe_dump(doc)


def job(name: str, hook: str, image: str = "busybox", policy: str = "BeforeHookCreation",
        **annotations: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "annotations": {
            "argocd.argoproj.io/hook": hook, "argocd.argoproj.io/hook-delete-policy": policy,
            **annotations}},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "m", "image": image}]}}}})


# ----------------------------------------------------------------------------- failure tests
# Helpers of tests/e2e/test_failures.py: who sent a logged request, and when a fault was hit.

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def agent_worker(record: dict[str, Any]) -> str:
    """The worker node name (`w1@<stackid>`) in a logged request's user agent, or ""."""
    agent = str(record.get("user_agent") or "")
    marker = "(worker "
    if marker not in agent:
        return ""
    return agent.split(marker, 1)[1].split(";", 1)[0].strip()


def agent_pid(record: dict[str, Any]) -> int | None:
    """The pid in a logged request's user agent (the pool child that sent it)."""
    agent = str(record.get("user_agent") or "")
    if "; pid " not in agent:
        return None
    digits = agent.rsplit("; pid ", 1)[1].rstrip(")").strip()
    return int(digits) if digits.isdigit() else None


def is_write(record: dict[str, Any]) -> bool:
    """A write that changes something: not a dry-run."""
    return (record["method"] in WRITE_METHODS
            and "dryRun" not in (record.get("query") or {}))


def faults(sim: KubeSimProcess) -> list[dict[str, Any]]:
    """The faults kubesim still holds (a fault with a count goes once used up)."""
    return list(call(sim.url, "GET", "/_kubesim/faults").body)


def wait_fault_taken(sim: KubeSimProcess, path: str, timeout: float = 30) -> float:
    """Wait until kubesim took the (count=1) fault on `path`, that is until a matching
    request is in flight, held by the fault's latency; returns when that was seen."""
    wait_for(lambda: not any(f["path"] == path for f in faults(sim)), timeout, interval=0.02,
             what=f"a request held by the fault on {path}")
    return time.time()


# ---------------------------------------------------------------------- helpers (operations)

def remove_from_git(stack: Stack, *paths: str, message: str = "remove") -> str:
    """Delete files from the working clone, commit and push; returns the new commit."""
    for path in paths:
        (stack.origin.work / path).unlink()
    return stack.origin.commit({}, message)


def applies(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The server-side applies (PATCH, not dry-run) among logged requests, by start time."""
    return sorted((r for r in records if r["method"] == "PATCH"
                   and "dryRun" not in (r.get("query") or {})), key=lambda r: r["start"])


def object_name(record: dict[str, Any]) -> str:
    """The object a logged request was about (the last path segment)."""
    return str(record["path"].rstrip("/").rsplit("/", 1)[-1])


def conditions(stack: Stack, name: str) -> dict[str, str]:
    """{condition type: message} of an Application."""
    return {str(c.get("type")): str(c.get("message") or "")
            for c in stack.status(name).get("conditions") or []}
