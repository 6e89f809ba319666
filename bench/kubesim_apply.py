"""Benchmark kubesim: server-side applies per second and list latency with 10,000 objects.

Runs kubesim as its own process (one event loop: one core) and drives it over HTTP from this
one with keep-alive connections. Prints wall-clock rates and the server's own CPU time per
request, read from /proc, so the figure does not depend on how fast the client is.

    python bench/kubesim_apply.py [--applies 2000] [--objects 10000] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import urllib3


def deployment(i: int) -> dict[str, Any]:
    labels = {"app": f"bench-{i}"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"bench-{i}", "namespace": "default", "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "example/app:1.0",
                         "ports": [{"containerPort": 8080}],
                         "env": [{"name": "MODE", "value": "bench"}]},
                        {"name": "sidecar", "image": "example/proxy:2.1",
                         "ports": [{"containerPort": 15000}]},
                    ]
                },
            },
        },
    }


def server_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def run_applies(pool: urllib3.PoolManager, url: str, n: int, clients: int) -> float:
    bodies = [json.dumps(deployment(i)).encode() for i in range(n)]

    def one(i: int) -> None:
        r = pool.request(
            "PATCH",
            f"{url}/apis/apps/v1/namespaces/default/deployments/bench-{i}"
            "?fieldManager=bench&force=true",
            body=bodies[i],
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        if r.status not in (200, 201):
            raise SystemExit(f"apply failed: {r.status} {r.data[:300]!r}")

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as ex:
        list(ex.map(one, range(n)))
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--applies", type=int, default=2000)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    proc = subprocess.Popen(
        [sys.executable, "-m", "kubesim", "--port", "0", "--no-simulate", "--no-request-log"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        pool = urllib3.PoolManager(maxsize=args.clients)
        print(f"kubesim at {url}; Deployment with 2 containers; {args.clients} client threads")

        cpu0 = server_cpu(proc.pid)
        wall = run_applies(pool, url, args.applies, args.clients)
        cpu = server_cpu(proc.pid) - cpu0
        print(f"cold create (apply):   {args.applies / wall:8.0f} applies/s wall, "
              f"{args.applies / cpu:8.0f} applies per server CPU-second")

        cpu0 = server_cpu(proc.pid)
        wall = run_applies(pool, url, args.applies, args.clients)
        cpu = server_cpu(proc.pid) - cpu0
        print(f"no-change re-apply:    {args.applies / wall:8.0f} applies/s wall, "
              f"{args.applies / cpu:8.0f} applies per server CPU-second")

        def create_cm(i: int) -> None:
            body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": f"cm-{i}",
                                            "labels": {"shard": str(i % 100)}},
                               "data": {"key": "value" * 10}}).encode()
            r = pool.request("POST", f"{url}/api/v1/namespaces/default/configmaps", body=body,
                             headers={"Content-Type": "application/json"})
            if r.status != 201:
                raise SystemExit(f"create failed: {r.status}")

        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as ex:
            list(ex.map(create_cm, range(args.objects)))
        wall = time.perf_counter() - start
        print(f"create {args.objects} ConfigMaps: {args.objects / wall:8.0f} creates/s")

        def timed(path: str, runs: int = 5) -> tuple[float, int]:
            times = []
            count = 0
            for _ in range(runs):
                t0 = time.perf_counter()
                r = pool.request("GET", url + path)
                times.append(time.perf_counter() - t0)
                count = len(json.loads(r.data)["items"])
            return statistics.median(times) * 1000, count

        for label, path in [
            ("list all", "/api/v1/namespaces/default/configmaps"),
            ("list labelSelector (1%)",
             "/api/v1/namespaces/default/configmaps?labelSelector=shard%3D7"),
            ("list limit=500", "/api/v1/namespaces/default/configmaps?limit=500"),
        ]:
            ms, count = timed(path)
            print(f"{label:26s} {ms:8.1f} ms median ({count} items of {args.objects})")
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
