"""`gitops-tasks worker` as a Deployment runs it: probes, and SIGTERM finishing the step."""

from __future__ import annotations

import os
import signal
import socket
import time

import urllib3

from .stack import CLI, CM, Proc, Stack, configmap, wait_for

_HTTP = urllib3.PoolManager()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _probe(port: int, path: str) -> int:
    try:
        return int(_HTTP.request("GET", f"http://127.0.0.1:{port}{path}", timeout=2,
                                 retries=False).status)
    except urllib3.exceptions.HTTPError:
        return 0


def test_probes_and_sigterm_finishes_the_running_step(stack: Stack) -> None:
    files = {f"app/cm-{i}.yaml": configmap(f"cm-{i}") for i in range(6)}
    stack.origin.commit(files)
    port = _free_port()
    worker = Proc("w1", [CLI, "worker", "--concurrency", "1", "--probe-port", str(port),
                         "--hostname", f"w1@{stack.id}"], stack.env, stack.tmp / "w1p.log")
    stack.procs.append(worker)
    wait_for(lambda: _probe(port, "/readyz") == 200, 30, what="the worker ready")
    assert _probe(port, "/healthz") == 200
    assert _probe(port, "/nope") == 404
    stack.beat()
    # Every apply takes 0.5 s: one step applying the six ConfigMaps takes about 3 s.
    stack.sim.add_fault(path=f"/namespaces/{stack.dest}/configmaps/", method="PATCH",
                        latency=0.5)
    try:
        stack.apply_app(stack.app_manifest("slow", "app", automated={}))
        wait_for(lambda: stack.writes(), 20, what="the step started applying")
        signalled = time.time()
        # To the main process only, as Kubernetes (and systemd's KillMode=mixed) sends it: the
        # pool child that runs the step is left to finish it.
        os.kill(worker.pid, signal.SIGTERM)
        wait_for(lambda: not worker.alive, 40, what="the worker exited")
        assert worker.popen.returncode == 0, worker.log()[-3000:]
    finally:
        stack.sim.clear_faults()
    # The step it was running went on after SIGTERM and finished: all six applied, and the
    # operation recorded as Succeeded by that same worker (nothing else runs now).
    for i in range(6):
        assert stack.live(CM, f"cm-{i}") is not None
    later = [r for r in stack.writes(since=signalled) if r["method"] == "PATCH"]
    assert later, "nothing was written after SIGTERM: the step was cut short"
    assert stack.status("slow")["operationState"]["phase"] == "Succeeded"
