"""Benchmark the engine: 200 apps of 5 resources each on kubesim.

Prints the cold sync time, the no-change refresh time per app, the API requests per no-change
refresh (from kubesim's request log) and the dry-runs per no-change refresh (target: 0).

    python bench/reconcile.py [--apps 200]

kubesim runs in this process's background thread (its own event loop); Redis and git are real.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import yaml

from gitops_tasks.cluster import Cluster, Destinations
from gitops_tasks.diff import DryRunCache
from gitops_tasks.log import configure
from gitops_tasks.manifests import ManifestSource
from gitops_tasks.model import keys, parse_application
from gitops_tasks.reconcile import AppStore, Reconciler
from gitops_tasks.redisserver import require_redis_server
from gitops_tasks.render.cache import RenderCache
from gitops_tasks.settings import GitSettings
from gitops_tasks.source import GitMirrors
from kubesim.server import KubeSim

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from render import free_port, make_monorepo, wait_port  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=200)
    args = parser.parse_args()
    configure(level="WARNING")
    work = Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    rport = free_port()
    redis_proc = subprocess.Popen([require_redis_server(), "--port", str(rport), "--save", "",
                                   "--appendonly", "no"], stdout=subprocess.DEVNULL)
    sim = KubeSim(simulate=False).start()
    try:
        repo = make_monorepo(work / "repo", args.apps)
        wait_port(rport)
        client = redis.Redis(port=rport)
        client.ping()

        from kubernetes import client as kclient

        cfg = kclient.Configuration()
        cfg.host = sim.url
        api = kclient.ApiClient(cfg)
        control_ns = "gitops-tasks"
        crd = yaml.safe_load((ROOT / "deploy/crds/application.yaml").read_text())
        cluster = Cluster(api, qps=0)
        cluster.apply(crd)
        cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": control_ns}})
        for i in range(args.apps):
            cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": f"ns-{i}"}})
        apps = []
        for i in range(args.apps):
            obj = {"apiVersion": keys.API_VERSION, "kind": "Application",
                   "metadata": {"name": f"app-{i}", "namespace": control_ns},
                   "spec": {"source": {"repoURL": repo.as_uri(), "path": f"apps/app-{i}",
                                       "targetRevision": "main"},
                            "destination": {"server": "https://kubernetes.default.svc",
                                            "namespace": f"ns-{i}"}}}
            cluster.apply(obj)
            apps.append(parse_application(obj))
        reconciler = Reconciler(
            ManifestSource(GitMirrors(GitSettings(cache_dir=work / "cache")),
                           RenderCache(client)),
            Destinations(api, control_namespace=control_ns, qps=0),
            apps=AppStore(Cluster(api, qps=0), control_ns),
            dry_run_cache=DryRunCache(client),
        )
        print(f"{args.apps} apps x 5 resources on kubesim (simulation off), real git + Redis")
        t0 = time.perf_counter()
        for app in apps:
            outcome = reconciler.sync(app)
            if not outcome.succeeded:
                raise SystemExit(f"sync failed: {app.name}: {outcome.message}")
        cold = time.perf_counter() - t0
        print(f"cold sync (render, apply, status): {cold:7.2f} s total, "
              f"{cold / len(apps) * 1000:7.1f} ms per app")

        # Resolve the revision once per sweep, as the beat sweep does for a monorepo.
        sha = reconciler.manifests.resolve(apps[0])
        # One refresh to settle status after the post-sync writes.
        for app in apps:
            reconciler.manifests.manifests(app, sha=sha)
            reconciler.refresh(app)
        per_app: list[float] = []
        requests: list[int] = []
        dry_runs: list[int] = []
        writes: list[int] = []
        for _ in range(2):
            for app in apps:
                before = len(sim.request_log)
                t = time.perf_counter()
                cmp, _ = reconciler.refresh(app)
                per_app.append(time.perf_counter() - t)
                log = sim.request_log[before:]
                requests.append(len(log))
                writes.append(sum(1 for r in log if r.method != "GET"))
                dry_runs.append(cmp.dry_runs if cmp else 0)
        print(f"no-change refresh per app:         {statistics.median(per_app) * 1000:7.2f} ms "
              f"median, {statistics.mean(per_app) * 1000:7.2f} ms mean "
              "(includes one ls-remote of the repo)")
        print(f"API requests per no-change refresh: {statistics.mean(requests):6.2f} "
              f"(writes: {statistics.mean(writes):.2f})")
        print(f"dry-runs per no-change refresh:     {statistics.mean(dry_runs):6.2f}")
        kinds: dict[str, Any] = {}
        for r in sim.request_log[-requests[-1]:]:
            kinds[f"{r.method} {r.verb}"] = kinds.get(f"{r.method} {r.verb}", 0) + 1
        print(f"  last refresh's requests: {kinds}")
    finally:
        sim.stop()
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
