"""Benchmark the push path: Git push -> webhook receiver -> Redis -> worker -> kubesim.

    python bench/webhook.py [--apps 1000] [--pushes 50]

One run, one kubesim, one redis-server, real `gitops-tasks worker` (2), `beat` and `webhook`
processes, repositories served by `git daemon` (the payloads name their URLs):

0. the floors: one HTTP round trip to the receiver (`/healthz`) plus one server-side apply by
   a tight in-process client (the least a push can cost); the receiver's /healthz throughput
   with the same client threads;
1. push-to-applied latency for one app (its own repository), over --pushes pushes: from the
   moment the delivery is sent to the end of the apply of the changed ConfigMap (kubesim's
   request log), p50 and p99;
2. the same for one changed app in a monorepo of --apps apps (one ConfigMap each), and how many
   apps the push made a worker read (each refresh GETs its Application; the target is 1);
3. receiver throughput, in requests/s, for signed pushes that match no app;
4. a storm of 200 webhooks/s for 3 s for one app (each naming a real commit): the most
   refresh/sync messages ever queued at once (sampled every 20 ms), applies of its object,
   and the time from the last delivery until the last commit is live.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline import API, CLI, Bench, Proc, http, wait
from render import free_port, wait_port

from tests.source.gitservers import GitDaemon, Origin
from tests.webhooks import payloads

SECRET = "bench-s3cret"
CM = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {prefix}-{i}
data:
  value: "{v}"
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Run:
    def __init__(self, work: Path) -> None:
        self.bench = Bench(work, 0)
        self.work = work
        served = work / "served"
        served.mkdir()
        self.daemon = GitDaemon(served)
        self.host = f"127.0.0.1:{self.daemon.port}"
        self.repos: dict[str, Origin] = {}
        for name in ("single", "mono"):
            self.repos[name] = Origin(served, work / "checkouts", f"acme/{name}")
        self.control, self.dest = "hooks", "hooks-dest"
        self.bench.namespace(self.control)
        self.bench.namespace(self.dest)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.pool = urllib3.PoolManager(maxsize=16, retries=False, timeout=30)

    def start(self) -> None:
        self.procs = self.bench.start(self.control, 2)
        env = {**self.bench.env, "GITOPS_TASKS_NAMESPACE": self.control,
               "GITOPS_TASKS_WEBHOOK_GITHUB_SECRET": SECRET}
        self.receiver = Proc([CLI, "webhook", "--host", "127.0.0.1", "--port", str(self.port)],
                             env, self.work / "webhook.log")
        self.bench.procs.append(self.receiver)
        wait_port(self.port)

    def app(self, repo: str, i: int) -> dict[str, Any]:
        return {"apiVersion": "gitops-tasks.io/v1alpha1", "kind": "Application",
                "metadata": {"name": f"{repo}-{i}", "namespace": self.control},
                "spec": {"source": {"repoURL": self.daemon.url(f"acme/{repo}"),
                                    "path": f"apps/app-{i}", "targetRevision": "main"},
                         "destination": {"server": "https://kubernetes.default.svc",
                                         "namespace": self.dest},
                         "syncPolicy": {"automated": {"prune": True}}}}

    def create(self, repo: str, count: int) -> None:
        for i in range(count):
            http(self.bench.url, "POST", f"{API}/namespaces/{self.control}/applications",
                 self.app(repo, i))

    def delivery(self, repo: str, before: str, after: str, files: list[str]
                 ) -> payloads.Delivery:
        return payloads.github(org="acme", repo=repo, ref="refs/heads/main", before=before,
                               after=after, files=files, host=self.host, secret=SECRET)

    def post(self, d: payloads.Delivery) -> int:
        return int(self.pool.request("POST", self.base + "/api/webhook", body=d.body,
                                     headers=d.headers).status)

    def applied_at(self, since: float, name: str, timeout: float = 30) -> float:
        """End time of the first apply (not a dry run) of ConfigMap `name` after `since`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self.bench.requests(since):
                if r["method"] == "PATCH" and r["path"].endswith(f"/configmaps/{name}") \
                        and "dryRun" not in (r.get("query") or {}):
                    return float(r["end"])
            time.sleep(0.01)
        raise SystemExit(f"{name} not applied within {timeout}s")

    def latency(self, repo: str, count: int, pushes: int) -> tuple[list[float], list[int]]:
        """`pushes` pushes, each changing one of the repo's `count` apps."""
        origin = self.repos[repo]
        before = origin.git("rev-parse", "HEAD")
        latencies: list[float] = []
        touched: list[int] = []
        for k in range(pushes):
            i = (k * 131 + 7) % count
            path = f"apps/app-{i}/cm.yaml"
            content = CM.format(prefix=repo, i=i, v=f"{time.time()}")
            after = origin.commit({path: content}, f"push {k}")
            t0 = time.time()
            status = self.post(self.delivery(repo, before, after, [path]))
            assert status == 202, status
            latencies.append(self.applied_at(t0, f"{repo}-{i}") - t0)
            time.sleep(0.3)  # the refreshes and the post-sync writes settle
            gets = {r["path"].rsplit("/", 1)[1] for r in self.bench.requests(t0)
                    if r["method"] == "GET" and f"{API}/namespaces/{self.control}/applications/"
                    in r["path"] and "worker" in r.get("user_agent", "")}
            touched.append(len(gets))
            before = after
        return latencies, touched

    def throughput(self, path: str, body: bytes, headers: dict[str, str], total: int,
                   threads: int = 8) -> float:
        def hammer(n: int) -> None:
            pool = urllib3.PoolManager(retries=False, timeout=30)
            for _ in range(n):
                pool.request("POST" if body else "GET", self.base + path, body=body or None,
                             headers=headers)
        workers = [threading.Thread(target=hammer, args=(total // threads,))
                   for _ in range(threads)]
        started = time.perf_counter()
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        return (total // threads * threads) / (time.perf_counter() - started)

    def storm(self, rate: int, seconds: float) -> tuple[int, int, float, float]:
        origin = self.repos["single"]
        first = origin.git("rev-parse", "HEAD")
        commits = [first]
        for k in range(int(rate * seconds)):
            content = CM.format(prefix="single", i=0, v=f"s{k}")
            commits.append(origin.commit({"apps/app-0/cm.yaml": content}, f"storm {k}",
                                         push=False))
        import redis

        client = redis.Redis(port=self.bench.rport)
        most, stop = [0], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                most[0] = max(most[0], client.llen("refresh") + client.llen("sync"))
                time.sleep(0.02)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.time()
        pairs = list(itertools.pairwise(commits))
        started = time.monotonic()
        batch = max(1, rate // 10)
        for n, (before, after) in enumerate(pairs):
            if n % batch == 0:
                # The commits of the next tenth of a second reach the server before their
                # deliveries are sent, as on a real server.
                origin.git("push", "--quiet", "origin",
                           f"{pairs[min(n + batch, len(pairs)) - 1][1]}:refs/heads/main")
            due = started + n / rate
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            self.post(self.delivery("single", before, after, ["apps/app-0/cm.yaml"]))
        last_sent = time.time()
        achieved = len(pairs) / (time.monotonic() - started)

        def live() -> bool:
            cm = http(self.bench.url, "GET", f"/api/v1/namespaces/{self.dest}/configmaps/single-0")
            return bool(cm) and cm["data"]["value"] == f"s{len(pairs) - 1}"
        wait(live, 60, "the storm's last commit live")
        converged = time.time() - last_sent
        stop.set()
        sampler.join()
        applies = sum(1 for r in self.bench.requests(t0)
                      if r["method"] == "PATCH" and r["path"].endswith("/configmaps/single-0")
                      and "dryRun" not in (r.get("query") or {}))
        return most[0], applies, converged, achieved


def floor_latency(run: Run, samples: int = 50) -> float:
    from kubernetes import client as kclient

    from gitops_tasks.cluster import Cluster

    cfg = kclient.Configuration()
    cfg.host = run.bench.url
    cluster = Cluster(kclient.ApiClient(cfg), qps=0)
    times = []
    for k in range(samples):
        started = time.perf_counter()
        run.pool.request("GET", run.base + "/healthz")
        cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "floor", "namespace": run.dest},
                       "data": {"value": str(k)}}, force=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--pushes", type=int, default=50)
    args = parser.parse_args()
    from gitops_tasks.log import configure

    configure(level="WARNING")
    work = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    run = Run(work)
    try:
        run.repos["single"].commit({"apps/app-0/cm.yaml": CM.format(prefix="single", i=0, v="0")})
        run.repos["mono"].commit({f"apps/app-{i}/cm.yaml": CM.format(prefix="mono", i=i, v="0")
                                  for i in range(args.apps)})
        run.start()
        run.create("single", 1)
        run.create("mono", args.apps)
        wait(lambda: sum(1 for i in http(run.bench.url, "GET",
                                         f"{API}/namespaces/{run.control}/applications")
                         ["items"] if ((i.get("status") or {}).get("sync") or {})
                         .get("status") == "Synced") == args.apps + 1, 900,
             "every app synced")
        wait(run.bench.idle, 300, "the queues drained")
        print(f"kubesim, redis-server, 2 workers, beat, receiver; {args.apps} apps in a "
              "monorepo + 1 app alone; repos on git daemon")
        floor = floor_latency(run)
        health = run.throughput("/healthz", b"", {}, 2000)
        print(f"(0) floor: /healthz round trip + one apply {floor * 1000:6.1f} ms; "
              f"/healthz {health:6.0f} requests/s (8 client threads)")
        lat, _ = run.latency("single", 1, args.pushes)
        print(f"(1) one app, {len(lat)} pushes: push-to-applied p50 {pct(lat, .5) * 1000:6.0f} "
              f"ms, p99 {pct(lat, .99) * 1000:6.0f} ms (max {max(lat) * 1000:.0f} ms)")
        lat, touched = run.latency("mono", args.apps, min(args.pushes, 20))
        print(f"(2) one changed app of {args.apps} in a monorepo, {len(lat)} pushes: p50 "
              f"{pct(lat, .5) * 1000:6.0f} ms, p99 {pct(lat, .99) * 1000:6.0f} ms; apps a "
              f"worker read per push: {sorted(set(touched))} (target: [1])")
        unmatched = payloads.github(org="acme", repo="nobody", ref="refs/heads/main",
                                    before="a" * 40, after="b" * 40, files=["x"],
                                    host=run.host, secret=SECRET)
        # Signed pushes of a repository no app follows (each with its own delivery id would
        # be the same work; one id makes later ones duplicates, so vary it).
        body, headers = unmatched.body, dict(unmatched.headers)
        headers.pop("X-GitHub-Delivery")
        rate = run.throughput("/api/webhook", body, headers, 3000)
        print(f"(3) receiver: {rate:6.0f} signed non-matching pushes/s (8 client threads; "
              f"{rate / health:.0%} of /healthz)")
        most, applies, converged, achieved = run.storm(200, 3.0)
        print(f"(4) storm: 600 webhooks for one app at {achieved:.0f}/s (commits pushed every "
              f"0.1 s): at most {most} refresh/sync messages queued at once, {applies} "
              f"applies, last commit live {converged * 1000:.0f} ms after the last delivery")
    finally:
        run.daemon.stop()
        run.bench.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
