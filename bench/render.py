"""Benchmark rendering: 200 apps in one monorepo, cold and warm (Redis-cached), and the cost of
asking the remote about a branch that did not move.

    python bench/render.py [--apps 200]

Starts its own redis-server and git daemon on loopback; prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from gitops_tasks.log import configure
from gitops_tasks.manifests import ManifestSource
from gitops_tasks.model import keys, parse_application
from gitops_tasks.redisserver import require_redis_server
from gitops_tasks.render.cache import RenderCache
from gitops_tasks.settings import GitSettings
from gitops_tasks.source import GitMirrors

RESOURCES = """\
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg-{i}}}
data: {{mode: bench, index: "{i}"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: sec-{i}}}
stringData: {{token: t{i}}}
---
apiVersion: v1
kind: Service
metadata: {{name: svc-{i}}}
spec:
  selector: {{app: app-{i}}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: sa-{i}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app-{i}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: app-{i}}}}}
  template:
    metadata: {{labels: {{app: app-{i}}}}}
    spec:
      serviceAccountName: sa-{i}
      containers:
      - name: app
        image: example/app:1.{i}
        ports: [{{containerPort: 8080}}]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_monorepo(repo: Path, apps: int) -> Path:
    """A git repository with `apps` directories of five resources each, one commit."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "b@example.com")
    git(repo, "config", "user.name", "bench")
    for i in range(apps):
        d = repo / "apps" / f"app-{i}"
        d.mkdir(parents=True)
        (d / "resources.yaml").write_text(RESOURCES.format(i=i))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "monorepo")
    return repo


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} never opened")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=200)
    args = parser.parse_args()
    configure(level="WARNING")
    work = Path(tempfile.mkdtemp(prefix="bench-render-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        repo = make_monorepo(work / "work", args.apps)
        served = work / "served"
        served.mkdir()
        git(work, "clone", "-q", "--bare", str(repo), str(served / "mono.git"))

        rport = free_port()
        procs.append(subprocess.Popen([require_redis_server(), "--port", str(rport), "--save", "",
                                       "--appendonly", "no"], stdout=subprocess.DEVNULL))
        gport = free_port()
        procs.append(subprocess.Popen(
            ["git", "daemon", "--reuseaddr", f"--base-path={served}", "--export-all",
             f"--port={gport}", "--listen=127.0.0.1", str(served)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(rport)
        wait_port(gport)
        client = redis.Redis(port=rport)

        for label, url in [("file://", (served / "mono.git").as_uri()),
                           ("git://", f"git://127.0.0.1:{gport}/mono.git")]:
            client.flushdb()
            mirrors = GitMirrors(GitSettings(cache_dir=work / f"cache-{label[:3]}"))
            source = ManifestSource(mirrors, RenderCache(client))
            apps = [parse_application({
                "apiVersion": keys.API_VERSION, "kind": "Application",
                "metadata": {"name": f"app-{i}"},
                "spec": {"source": {"repoURL": url, "path": f"apps/app-{i}",
                                    "targetRevision": "main"},
                         "destination": {"server": "https://kubernetes.default.svc",
                                         "namespace": f"ns-{i}"}}}) for i in range(args.apps)]
            print(f"\n{label} monorepo, {args.apps} apps x 5 resources")
            t0 = time.perf_counter()
            sha = source.resolve(apps[0])
            first_resolve = time.perf_counter() - t0

            t0, c0 = time.perf_counter(), time.process_time()
            for app in apps:
                assert not source.manifests(app, sha=sha).cached
            cold_wall = (time.perf_counter() - t0) / len(apps)
            cold_cpu = (time.process_time() - c0) / len(apps)

            rounds = []
            cpu_rounds = []
            for _ in range(5):
                t0, c0 = time.perf_counter(), time.process_time()
                for app in apps:
                    assert source.manifests(app, sha=sha).cached
                rounds.append((time.perf_counter() - t0) / len(apps))
                cpu_rounds.append((time.process_time() - c0) / len(apps))
            t0 = time.perf_counter()
            for _ in range(50):
                client.ping()
            rtt = (time.perf_counter() - t0) / 50

            fetches_before = mirrors.stats.fetches
            times = []
            for _ in range(20):
                t0 = time.perf_counter()
                source.resolve(apps[0])
                times.append(time.perf_counter() - t0)
            print(f"  first resolve (clone):       {first_resolve * 1000:8.1f} ms")
            print(f"  cold render per app:         {cold_wall * 1000:8.2f} ms wall, "
                  f"{cold_cpu * 1000:6.2f} ms CPU (in-process)")
            print(f"  warm render per app:         {statistics.median(rounds) * 1000:8.3f} ms "
                  f"wall, {statistics.median(cpu_rounds) * 1000:6.3f} ms CPU "
                  f"(Redis round trip {rtt * 1000:.3f} ms)")
            print(f"  resolve, remote unchanged:   {statistics.median(times) * 1000:8.1f} ms "
                  f"median, fetches: {mirrors.stats.fetches - fetches_before}")
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
