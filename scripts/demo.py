"""`make run`: the whole system on one machine, keeping a (simulated) cluster in step with Git.

Starts everything `gitops-tasks up` starts (a redis-server, kubesim as the cluster, two
workers, beat, the receiver with the API, Flower), makes a Git repository from `examples/`,
registers only the root Application (an app of apps) with kubectl, and shows the loop: the
apps appearing and reaching Synced/Healthy, a commit delivered by a signed webhook and live
within a second or two, a drift made with kubectl healed by the next sweep, a file deleted and
pruned. Ends with a summary table and stops every process (or keeps running with --keep).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from gitops_tasks.up import CLI, LocalController  # noqa: E402

APPS = ("root", "guestbook", "kustomize", "helm", "jsonnet", "waves")
FAST = {  # minutes by default; seconds for a demo
    "GITOPS_TASKS_RECONCILE_INTERVAL": "5",
    "GITOPS_TASKS_RECONCILE_JITTER": "0",
    "GITOPS_TASKS_RESUME_INTERVAL": "1",
    "GITOPS_TASKS_SELF_HEAL_BACKOFF": "0",
    "GITOPS_TASKS_SYNC_POLL_INTERVAL": "0.5",
    "GITOPS_TASKS_LOG_LEVEL": "WARNING",
    "GIT_AUTHOR_NAME": "demo", "GIT_AUTHOR_EMAIL": "demo@example.com",
    "GIT_COMMITTER_NAME": "demo", "GIT_COMMITTER_EMAIL": "demo@example.com",
}


def say(text: str) -> None:
    print(text, flush=True)


def step(title: str) -> None:
    say(f"\n== {title}")


def wait(predicate: Callable[[], Any], timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.1)
    raise SystemExit(f"demo: {what} not reached within {timeout:.0f}s")


class Demo:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.ctl = LocalController(work / "controller", workers=2, kubesim=True,
                                   extra_env=FAST)
        self.repo = work / "repo"

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.repo, env=self.ctl.env, check=True,
                              capture_output=True, text=True).stdout.strip()

    def apps(self) -> dict[str, dict[str, Any]]:
        out = self.ctl.kubectl("get", "applications", "-n", "gitops-tasks", "-o", "json").stdout
        return {i["metadata"]["name"]: i for i in json.loads(out)["items"]}

    def state(self, obj: dict[str, Any]) -> tuple[str, str, str]:
        status = obj.get("status") or {}
        return (str((status.get("sync") or {}).get("status") or "Unknown"),
                str((status.get("health") or {}).get("status") or "Unknown"),
                str((status.get("sync") or {}).get("revision") or ""))

    def all_synced(self, revision: str | None = None) -> bool:
        apps = self.apps()
        return set(apps) >= set(APPS) and all(
            self.state(a)[:2] == ("Synced", "Healthy")
            and (revision is None or self.state(a)[2] == revision) for a in apps.values())

    def live(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
        result = self.ctl.kubectl("get", kind, name, "-n", namespace, "-o", "json",
                                  check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def push_webhook(self, before: str, after: str, files: list[str]) -> dict[str, Any]:
        """What GitHub sends on a push, signed with the receiver's secret."""
        commit = {"id": after, "added": [], "removed": [f for f in files if
                                                       not (self.repo / f).exists()],
                  "modified": [f for f in files if (self.repo / f).exists()]}
        body = json.dumps({"ref": "refs/heads/main", "before": before, "after": after,
                           "forced": False, "commits": [commit],
                           "repository": {"clone_url": self.repo.as_uri(),
                                          "default_branch": "main"}}).encode()
        secret = self.ctl.env["GITOPS_TASKS_WEBHOOK_GITHUB_SECRET"].encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ctl.webhook_port}/api/webhook", data=body, headers={
                "Content-Type": "application/json", "X-GitHub-Event": "push",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": "sha256=" + hmac.new(secret, body,
                                                            hashlib.sha256).hexdigest()})
        with urllib.request.urlopen(request, timeout=10) as resp:
            answer: dict[str, Any] = json.loads(resp.read())
        return answer

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-qm", message)
        return self.git("rev-parse", "HEAD")

    def run(self, keep: bool) -> int:
        step("Starting Redis, kubesim, 2 workers, beat, the receiver and API, Flower")
        self.ctl.start()
        for key, value in self.ctl.shown.items():
            say(f"  {key}: {value}")

        step(f"A Git repository from examples/ at {self.repo}")
        shutil.copytree(ROOT / "examples", self.repo)
        for path in [*self.repo.joinpath("root").glob("*.yaml"), self.repo / "root-app.yaml"]:
            path.write_text(path.read_text().replace("REPO_URL", self.repo.as_uri()))
        self.git("init", "-q", "-b", "main")
        first = self.commit("example apps")

        step("Register the root Application (an app of apps) with kubectl")
        self.ctl.kubectl("apply", "-f", str(self.repo / "root-app.yaml"))
        seen: dict[str, tuple[str, str, str]] = {}

        def progress() -> bool:
            for name, obj in sorted(self.apps().items()):
                state = self.state(obj)
                if seen.get(name) != state:
                    seen[name] = state
                    say(f"  {name:<10} {state[0]:<10} {state[1]}")
            return self.all_synced(first)
        took = wait(progress, 180, "every example app Synced and Healthy")
        say(f"  all {len(APPS)} apps Synced and Healthy after {took:.1f}s")

        step("A commit (guestbook: nginx 1.28), delivered by a signed GitHub webhook")
        deployment = self.repo / "apps/guestbook/deployment.yaml"
        deployment.write_text(deployment.read_text().replace("nginx:1.27", "nginx:1.28"))
        second = self.commit("guestbook: nginx 1.28")
        sent = time.monotonic()
        answer = self.push_webhook(first, second, ["apps/guestbook/deployment.yaml"])
        say(f"  the receiver queued a refresh of {answer['apps']}")

        def image() -> str:
            live = self.live("demo-guestbook", "deployment", "guestbook-ui") or {}
            containers = live.get("spec", {}).get("template", {}).get("spec", {}).get(
                "containers") or [{}]
            return str(containers[0].get("image", ""))
        wait(lambda: image() == "nginx:1.28", 30, "the pushed commit live")
        say(f"  webhook commit live: nginx:1.28 applied {time.monotonic() - sent:.2f}s after "
            "the push")

        step("Someone edits the cluster by hand: drift, healed by the next sweep")
        self.ctl.kubectl("-n", "demo-guestbook", "set", "image", "deployment/guestbook-ui",
                         "guestbook-ui=nginx:hand-edited")
        took = wait(lambda: image() == "nginx:1.28", 60, "the drift healed")
        say(f"  drift healed: image back to {image()} after {took:.1f}s")

        step("A file deleted from Git: its object is pruned")
        (self.repo / "apps/guestbook/settings.yaml").unlink()
        third = self.commit("guestbook: drop the settings ConfigMap")
        self.push_webhook(second, third, ["apps/guestbook/settings.yaml"])
        took = wait(lambda: self.live("demo-guestbook", "configmap", "guestbook-settings")
                    is None, 30, "the ConfigMap pruned")
        say(f"  Pruned: ConfigMap guestbook-settings is gone ({took:.1f}s)")
        wait(lambda: self.all_synced(), 60, "every app Synced and Healthy again")

        step("Summary (gitops-tasks app list)")
        table = subprocess.run([CLI, "app", "list"], env=self.ctl.env, capture_output=True,
                               text=True, check=True).stdout
        say(table.rstrip())
        if keep:
            say(f"\nStill running. KUBECONFIG={self.ctl.env['KUBECONFIG']} "
                f"GITOPS_TASKS_REDIS_URL={self.ctl.env['GITOPS_TASKS_REDIS_URL']}; try "
                f"`{CLI} app list`, the panel at "
                f"{self.ctl.shown['panel (sign in with the API token)']}, "
                f"Flower at {self.ctl.shown['Flower']}. Ctrl-C stops.")
            try:
                while not self.ctl.dead():
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo")
    parser.add_argument("--workdir", help="where the demo keeps its files (default: a new "
                                          "temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep running after the demo")
    parser.add_argument("--exit", action="store_true", help=argparse.SUPPRESS)  # the default
    args = parser.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="gitops-tasks-demo-")).resolve()
    if work.exists() and any(work.iterdir()):
        work = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    demo = Demo(work)
    try:
        return demo.run(args.keep)
    finally:
        demo.ctl.stop()
        say(f"\nStopped every process; files in {work}")


if __name__ == "__main__":
    sys.exit(main())
