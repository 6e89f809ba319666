"""Benchmark the whole pipeline: producers -> Redis -> Celery workers -> engine -> kubesim.

    python bench/pipeline.py [--sync-apps 200] [--sweep-apps 1000] [--repos 4]

In one run, against one kubesim process (workload simulation on, Deployments available 50 ms
after a change) and one redis-server, with real `gitops-tasks worker` and `beat` processes:

1. the floor: the same objects applied by one tight client (server-side apply, in-process);
2. cold sync of --sync-apps apps x 5 objects with 1 and then 2 workers (one process each):
   apps/s from the first Application created until every operation Succeeded, and the ratio
   to the floor;
3. a no-change full sweep of --sweep-apps apps: wall time, API requests, ls-remotes (counted
   by a `git` shim on PATH, across every process), renders and dry-runs;
4. the RSS of a worker that synced those apps;
5. Celery's overhead per task: a trivial task through the queue against the same work called
   directly.

Prints figures; asserts nothing. The client-side rate limit is off (GITOPS_TASKS_KUBE_QPS=0)
so the figures show the pipeline, not the default 50 requests/s budget.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import urllib3
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from render import RESOURCES, free_port, git, wait_port  # noqa: E402

from gitops_tasks.redisserver import require_redis_server  # noqa: E402

BIN = Path(sys.executable).parent
CLI = str(BIN / "gitops-tasks")
API = "/apis/gitops-tasks.io/v1alpha1"
POOL = urllib3.PoolManager(maxsize=16)
GIT = shutil.which("git") or "/usr/bin/git"


def http(base: str, method: str, path: str, body: Any = None, **query: str) -> Any:
    url = base + path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    data = json.dumps(body).encode() if body is not None else None
    ctype = "application/merge-patch+json" if method == "PATCH" else "application/json"
    resp = POOL.request(method, url, body=data, headers={"Content-Type": ctype},
                        timeout=120, retries=False)
    if resp.status >= 300 and resp.status != 404:
        raise SystemExit(f"{method} {path}: {resp.status} {resp.data[:300]!r}")
    return json.loads(resp.data) if resp.data else None


def wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


class Proc:
    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.popen = subprocess.Popen(argv, env=env, stdout=self._out, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    def group_rss_mib(self) -> float:
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[2]) != self.popen.pid:
                    continue
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except (OSError, ValueError, IndexError):
                continue
        return total / 1024

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._out.close()


class Bench:
    def __init__(self, work: Path, repos: int) -> None:
        self.work = work
        self.repos = repos
        self.procs: list[Proc] = []
        self.rport = free_port()
        self.procs.append(Proc([require_redis_server(), "--port", str(self.rport), "--save", "",
                                "--appendonly", "no"], dict(os.environ), work / "redis.log"))
        wait_port(self.rport)
        # Workloads simulated (Deployments become available 50 ms after a change), so apps
        # turn Healthy as on a cluster and their status writes are part of the load.
        self.sim = Proc([sys.executable, "-m", "kubesim", "--port", "0", "--ready-delay", "0.05",
                         "--kubeconfig", str(work / "kubeconfig")], dict(os.environ),
                        work / "kubesim.log")
        self.procs.append(self.sim)
        wait(lambda: (work / "kubesim.log").read_text().startswith("http"), 20, "kubesim")
        self.url = (work / "kubesim.log").read_text().splitlines()[0].strip()
        # Every git command of every process goes through this shim, which counts them.
        shim = work / "shim"
        shim.mkdir()
        self.git_log = work / "git-commands.log"
        (shim / "git").write_text(f'#!/bin/sh\necho "$1" >> {self.git_log}\n'
                                  f'exec {GIT} "$@"\n')
        (shim / "git").chmod(0o755)
        self.env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}",
                    "KUBECONFIG": str(work / "kubeconfig"),
                    "GITOPS_TASKS_REDIS_URL": f"redis://127.0.0.1:{self.rport}/0",
                    "GITOPS_TASKS_GIT_CACHE_DIR": str(work / "git-cache"),
                    "GITOPS_TASKS_KUBE_QPS": "0",
                    "GITOPS_TASKS_RECONCILE_INTERVAL": "3600",
                    "GITOPS_TASKS_RESUME_INTERVAL": "5",
                    "GITOPS_TASKS_LOG_LEVEL": "WARNING",
                    "GITOPS_TASKS_LOG_FORMAT": "json"}
        crd = yaml.safe_load((ROOT / "deploy/crds/application.yaml").read_text())
        subprocess.run([str(BIN / "kubectl"), "--kubeconfig", str(work / "kubeconfig"),
                        "apply", "--server-side", "-f", "-"], input=yaml.safe_dump(crd),
                       text=True, check=True, capture_output=True)
        self.repo_urls = [self._repo(r) for r in range(repos)]

    def _repo(self, index: int) -> str:
        repo = self.work / f"repo-{index}"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        git(repo, "config", "user.email", "b@example.com")
        git(repo, "config", "user.name", "bench")
        return repo.as_uri()

    def fill_repos(self, apps: int) -> None:
        """apps/app-<i> (five resources) in repo i % repos."""
        for r in range(self.repos):
            repo = self.work / f"repo-{r}"
            for i in range(r, apps, self.repos):
                d = repo / "apps" / f"app-{i}"
                if not d.exists():
                    d.mkdir(parents=True)
                    (d / "resources.yaml").write_text(RESOURCES.format(i=i))
            git(repo, "add", ".")
            git(repo, "commit", "-qm", f"{apps} apps", "--allow-empty")

    def namespace(self, name: str) -> None:
        http(self.url, "POST", "/api/v1/namespaces",
             {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def app(self, control: str, i: int, dest: str) -> dict[str, Any]:
        return {"apiVersion": "gitops-tasks.io/v1alpha1", "kind": "Application",
                "metadata": {"name": f"app-{i}", "namespace": control},
                "spec": {"source": {"repoURL": self.repo_urls[i % self.repos],
                                    "path": f"apps/app-{i}", "targetRevision": "main"},
                         "destination": {"server": "https://kubernetes.default.svc",
                                         "namespace": dest},
                         "syncPolicy": {"automated": {"prune": True}}}}

    def start(self, control: str, workers: int) -> list[Proc]:
        env = {**self.env, "GITOPS_TASKS_NAMESPACE": control}
        started = []
        for w in range(workers):
            started.append(Proc([CLI, "worker", "--concurrency", "1", "--probe-port", "0",
                                 "--hostname", f"w{w}@{control}"], env,
                                self.work / f"{control}-w{w}.log"))
        started.append(Proc([CLI, "beat"], env, self.work / f"{control}-beat.log"))
        self.procs.extend(started)
        time.sleep(3)  # workers connected, beat elected
        return started

    def phases(self, control: str) -> list[str]:
        items = http(self.url, "GET", f"{API}/namespaces/{control}/applications")["items"]
        return [((i.get("status") or {}).get("operationState") or {}).get("phase", "")
                for i in items]

    def idle(self) -> bool:
        """Nothing queued, nothing reserved by a worker, no task marked queued."""
        import redis

        client = redis.Redis(port=self.rport)
        busy = (client.llen("refresh") + client.llen("sync") + client.hlen("unacked")
                + len(client.keys("gitops:queued:*")))
        client.close()
        return busy == 0

    def requests(self, since: float) -> list[dict[str, Any]]:
        return list(http(self.url, "GET", "/_kubesim/requests", since=str(since)))

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def floor(bench: Bench, apps: int) -> float:
    """Objects/s of one tight in-process client applying the rendered objects."""
    from kubernetes import client as kclient

    from gitops_tasks.cluster import Cluster
    from gitops_tasks.manifests import ManifestSource
    from gitops_tasks.model import parse_application
    from gitops_tasks.settings import GitSettings
    from gitops_tasks.source import GitMirrors

    cfg = kclient.Configuration()
    cfg.host = bench.url
    cluster = Cluster(kclient.ApiClient(cfg), qps=0)
    source = ManifestSource(GitMirrors(GitSettings(cache_dir=bench.work / "floor-cache")))
    objects = []
    for i in range(apps):
        app = parse_application(bench.app("floor", i, f"floor-{i}"))
        for obj in source.manifests(app).manifests:
            obj.setdefault("metadata", {})["namespace"] = f"floor-{i}"
            objects.append(obj)
        bench.namespace(f"floor-{i}")
    started = time.perf_counter()
    for obj in objects:
        cluster.apply(obj, force=True)
    return len(objects) / (time.perf_counter() - started)


def cold_sync(bench: Bench, apps: int, workers: int) -> tuple[float, list[Proc]]:
    control = f"sync-{workers}w"
    bench.namespace(control)
    for i in range(apps):
        bench.namespace(f"{control}-{i}")
    procs = bench.start(control, workers)
    started = time.perf_counter()
    for i in range(apps):
        http(bench.url, "POST", f"{API}/namespaces/{control}/applications",
             bench.app(control, i, f"{control}-{i}"))
    wait(lambda: bench.phases(control).count("Succeeded") == apps, 600,
         f"{apps} apps synced by {workers} worker(s)")
    return apps / (time.perf_counter() - started), procs


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sync-apps", type=int, default=200)
    parser.add_argument("--sweep-apps", type=int, default=1000)
    parser.add_argument("--repos", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=300, help="tasks for the overhead figure")
    args = parser.parse_args()
    from gitops_tasks.log import configure

    configure(level="WARNING")
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    bench = Bench(work, args.repos)
    try:
        bench.fill_repos(max(args.sync_apps, args.sweep_apps))
        print(f"kubesim (workloads ready after 50 ms) at {bench.url}; redis-server; "
              f"{args.repos} repos; 5 objects per app")
        rate = floor(bench, args.sync_apps)
        print(f"(1) floor: one tight client applies {rate:7.0f} objects/s "
              f"= {rate / 5:6.1f} apps/s")
        for workers in (1, 2):
            apps_per_s, procs = cold_sync(bench, args.sync_apps, workers)
            print(f"(2) cold sync, {args.sync_apps} apps, {workers} worker(s): "
                  f"{apps_per_s:6.1f} apps/s ({apps_per_s / (rate / 5):.0%} of the floor)")
            for proc in procs:
                proc.stop()
        sweep_figures(bench, args.sweep_apps)
        overhead(bench, args.tasks)
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def sweep_figures(bench: Bench, apps: int) -> None:
    control = "sweep"
    bench.namespace(control)
    dest = "sweep-dest"
    bench.namespace(dest)
    procs = bench.start(control, 2)
    for i in range(apps):
        http(bench.url, "POST", f"{API}/namespaces/{control}/applications",
             bench.app(control, i, dest))
    wait(lambda: bench.phases(control).count("Succeeded") == apps, 900, f"{apps} apps synced")
    # ... and every post-sync refresh ran (it records the fingerprint the sweep compares).
    wait(bench.idle, 300, "the queues drained")
    rss = max(p.group_rss_mib() for p in procs[:-1])
    for proc in procs:
        proc.stop()

    os.environ.update({**bench.env, "GITOPS_TASKS_NAMESPACE": control})
    from gitops_tasks import settings as settings_mod
    from gitops_tasks.tasks import configure, context
    from gitops_tasks.tasks.sweep import sweep_now

    context.set_settings(settings_mod.load(), role="bench")
    configure(context.settings())
    context.runtime()
    lines_before = bench.git_log.read_text().splitlines() if bench.git_log.exists() else []
    walls, requests, gets, lists, dry_runs, due = [], [], [], [], [], []
    for _ in range(3):
        since = time.time()
        started = time.perf_counter()
        counts = sweep_now("full")
        walls.append(time.perf_counter() - started)
        log = bench.requests(since)
        requests.append(len(log))
        lists.append(sum(1 for r in log if r["verb"] == "list"))
        gets.append(sum(1 for r in log if r["verb"] == "get"))
        dry_runs.append(sum(1 for r in log if "dryRun" in (r.get("query") or {})))
        due.append(counts["due"])
    commands = bench.git_log.read_text().splitlines()[len(lines_before):]
    print(f"(3) no-change full sweep of {apps} apps ({bench.repos} repos, one destination): "
          f"{statistics.median(walls):.2f} s median of 3 "
          f"(min {min(walls):.2f}, max {max(walls):.2f})")
    print(f"    API requests per sweep: {statistics.mean(requests):.0f} "
          f"({statistics.mean(lists):.0f} lists, {statistics.mean(gets):.0f} gets); "
          f"dry-runs: {sum(dry_runs)}; apps found due: {due}")
    print(f"    git commands over 3 sweeps: {len(commands)} "
          f"(ls-remote: {commands.count('ls-remote')}, fetch: {commands.count('fetch')}); "
          f"renders: 0 (the sweep renders nothing; refreshes queued: {sum(due)})")
    print(f"(4) worker RSS after syncing {apps} apps: {rss:.0f} MiB "
          "(Celery parent + one pool process)")


def overhead(bench: Bench, tasks: int) -> None:
    """A trivial task (gitops.diff of an app that does not exist: one GET, a 404) through the
    queue, against the same function called in this process."""
    control = "sweep"
    procs = bench.start(control, 1)
    from gitops_tasks.tasks import celery_app
    from gitops_tasks.tasks.diff import diff

    results = [celery_app.send_task("gitops.diff", args=[control, "missing"])
               for _ in range(5)]
    for r in results:
        r.get(timeout=60)  # warm
    started = time.perf_counter()
    results = [celery_app.send_task("gitops.diff", args=[control, f"missing-{i}"])
               for i in range(tasks)]
    for r in results:
        r.get(timeout=120)
    queued = (time.perf_counter() - started) / tasks
    started = time.perf_counter()
    for i in range(tasks):
        diff.run(control, f"missing-{i}")
    direct = (time.perf_counter() - started) / tasks
    print(f"(5) Celery per task: {queued * 1000:.2f} ms through the queue (1 worker, "
          f"results read back) vs {direct * 1000:.2f} ms called directly: "
          f"{(queued - direct) * 1000:.2f} ms overhead")
    # The results hold a subscription on the result backend: drop them while Redis still runs,
    # or their finalisers retry against a stopped server for minutes at exit.
    del results, r
    gc.collect()
    celery_app.close()
    for proc in procs:
        proc.stop()


if __name__ == "__main__":
    sys.exit(main())
