"""`make run`: a local Kubernetes sandbox on kubesim, with a short demo, until Ctrl-C.

Starts kubesim, writes `.kubesim/kubeconfig`, shows real kubectl creating and rolling out a
Deployment against it, then keeps serving so you can point kubectl (or gitops-tasks) at it.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .server import KubeSim

DEMO_MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
"""


def wait_for_stop_signal() -> None:
    """Block until SIGINT or SIGTERM (the sandbox serves from a background thread)."""
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


def find_kubectl() -> str | None:
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return str(beside)
    return shutil.which("kubectl")


def _kubectl(kubectl: str, kubeconfig: Path, *args: str, stdin: str | None = None) -> None:
    cmd = [kubectl, "--kubeconfig", str(kubeconfig), *args]
    print(f"$ kubectl {' '.join(args)}", flush=True)
    result = subprocess.run(cmd, input=stdin, text=True, capture_output=True, timeout=60)
    out = (result.stdout + result.stderr).rstrip()
    if out:
        print(out, flush=True)
    if result.returncode != 0:
        raise SystemExit(f"kubectl failed with exit code {result.returncode}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubesim.sandbox")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", default=".kubesim/kubeconfig")
    parser.add_argument("--exit", action="store_true", help="stop after the demo")
    args = parser.parse_args(argv)

    sim = KubeSim(port=args.port, record_requests=False).start()
    kubeconfig = sim.write_kubeconfig(args.kubeconfig).resolve()
    print(f"kubesim is serving the Kubernetes API at {sim.url}", flush=True)
    kubectl = find_kubectl()
    try:
        if kubectl:
            _kubectl(kubectl, kubeconfig, "apply", "--server-side", "-f", "-",
                     stdin=DEMO_MANIFEST)
            _kubectl(kubectl, kubeconfig, "-n", "demo", "rollout", "status", "deployment/web",
                     "--timeout=30s")
            _kubectl(kubectl, kubeconfig, "-n", "demo", "get", "deployments,services")
        else:
            print("kubectl not found: install the test extras (make test) to get it")
        if args.exit:
            return 0
        print(
            "\nThe sandbox keeps running. In another shell:\n"
            f"  export KUBECONFIG={kubeconfig}\n"
            f"  {kubectl or 'kubectl'} get namespaces\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        wait_for_stop_signal()
        return 0
    finally:
        sim.stop()


if __name__ == "__main__":
    sys.exit(main())
