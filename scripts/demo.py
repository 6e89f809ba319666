"""`make run`: gitops-tasks keeping a (simulated) cluster in step with a Git repository.

Starts kubesim, makes a local Git repository with a small app, registers an Application and
then drives the real `gitops-tasks` command through the GitOps loop: first sync, a change in
Git, a drift made by hand with kubectl (self-healed), a file deleted from Git (pruned). Then it
keeps serving so you can try the commands yourself, until Ctrl-C (or exits with --exit).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from kubesim.sandbox import wait_for_stop_signal
from kubesim.server import KubeSim
from kubesim.workloads import SimSettings

BIN = Path(sys.executable).parent
KUBECTL = str(BIN / "kubectl") if (BIN / "kubectl").exists() else "kubectl"
CLI = str(BIN / "gitops-tasks")
ROOT = Path(__file__).resolve().parents[1]

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: guestbook-ui}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: guestbook-ui}}}}
  template:
    metadata: {{labels: {{app: guestbook-ui}}}}
    spec:
      containers:
      - name: guestbook-ui
        image: {image}
        ports: [{{containerPort: 80}}]
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: guestbook-ui}
spec:
  selector: {app: guestbook-ui}
  ports: [{port: 80, targetPort: 80}]
"""
CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: guestbook-settings}
data: {greeting: hello}
"""


def step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def run(*cmd: str, env: dict[str, str], cwd: Path | None = None, show: bool = True,
        check: bool = True) -> str:
    if show:
        shown = " ".join("kubectl" if c == KUBECTL else "gitops-tasks" if c == CLI else c
                         for c in cmd)
        print(f"$ {shown}", flush=True)
    result = subprocess.run(cmd, env=env, cwd=cwd, text=True, capture_output=True, timeout=120)
    out = (result.stdout + result.stderr).rstrip()
    if show and out:
        print(out, flush=True)
    if check and result.returncode != 0:
        raise SystemExit(f"command failed ({result.returncode}): {' '.join(cmd)}")
    return out


def git(repo: Path, *args: str, env: dict[str, str]) -> None:
    run("git", *args, env=env, cwd=repo, show=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo")
    parser.add_argument("--workdir", default=".kubesim", help="where the demo keeps its files")
    parser.add_argument("--exit", action="store_true", help="stop after the demo")
    args = parser.parse_args(argv)
    work = Path(args.workdir).resolve()
    repo = work / "demo-repo"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)

    sim = KubeSim(sim_settings=SimSettings(ready_delay=0.5), record_requests=False).start()
    kubeconfig = sim.write_kubeconfig(work / "kubeconfig")
    env = dict(os.environ, KUBECONFIG=str(kubeconfig),
               GITOPS_TASKS_GIT_CACHE_DIR=str(work / "git-cache"),
               # Heal a drift right away (the default waits 5 s after a sync, as Argo CD's
               # self-heal timeout, so two controllers fighting over a field cannot spin).
               GITOPS_TASKS_SELF_HEAL_BACKOFF="0",
               GIT_AUTHOR_NAME="demo", GIT_AUTHOR_EMAIL="demo@example.com",
               GIT_COMMITTER_NAME="demo", GIT_COMMITTER_EMAIL="demo@example.com")
    try:
        step(f"A Kubernetes API server (kubesim) at {sim.url}; a Git repository at {repo}")
        (repo / "guestbook").mkdir()
        (repo / "guestbook" / "deployment.yaml").write_text(DEPLOYMENT.format(image="nginx:1.27"))
        (repo / "guestbook" / "service.yaml").write_text(SERVICE)
        (repo / "guestbook" / "settings.yaml").write_text(CONFIGMAP)
        git(repo, "init", "-q", "-b", "main", env=env)
        git(repo, "add", ".", env=env)
        git(repo, "commit", "-qm", "guestbook", env=env)
        app_file = work / "guestbook-app.yaml"
        app_file.write_text(f"""\
apiVersion: gitops-tasks.io/v1alpha1
kind: Application
metadata: {{name: guestbook, namespace: gitops-tasks}}
spec:
  source: {{repoURL: "{repo.as_uri()}", path: guestbook, targetRevision: main}}
  destination: {{server: https://kubernetes.default.svc, namespace: guestbook}}
  syncPolicy:
    automated: {{prune: true, selfHeal: true}}
    syncOptions: [CreateNamespace=true]
""")

        step("Install the Application CRD and register the app")
        run(KUBECTL, "apply", "--server-side", "-f", str(ROOT / "deploy/crds/application.yaml"),
            env=env)
        run(KUBECTL, "create", "namespace", "gitops-tasks", env=env)
        run(KUBECTL, "apply", "--server-side", "-f", str(app_file), env=env)

        step("What would change (diff before the first sync)")
        run(CLI, "diff", "-f", str(app_file), env=env, check=False)

        step("Reconcile: the app is automated, so the refresh syncs it")
        run(CLI, "refresh", "-f", str(app_file), env=env)
        run(KUBECTL, "-n", "guestbook", "rollout", "status", "deployment/guestbook-ui",
            "--timeout=30s", env=env)
        run(CLI, "refresh", "-f", str(app_file), env=env)
        run(KUBECTL, "get", "applications", "-n", "gitops-tasks", env=env)

        step("A commit in Git: new image")
        (repo / "guestbook" / "deployment.yaml").write_text(DEPLOYMENT.format(image="nginx:1.28"))
        git(repo, "commit", "-qam", "nginx 1.28", env=env)
        run(CLI, "refresh", "-f", str(app_file), env=env)

        step("Someone edits the cluster by hand: drift, self-healed")
        run(KUBECTL, "-n", "guestbook", "set", "image", "deployment/guestbook-ui",
            "guestbook-ui=nginx:hand-edited", env=env)
        run(CLI, "refresh", "-f", str(app_file), env=env)
        image = run(KUBECTL, "-n", "guestbook", "get", "deployment", "guestbook-ui", "-o",
                    "jsonpath={.spec.template.spec.containers[0].image}", env=env)
        print(f"image after self-heal: {image}")

        step("A file deleted from Git: its object is pruned")
        (repo / "guestbook" / "settings.yaml").unlink()
        git(repo, "commit", "-qam", "drop settings", env=env)
        run(CLI, "refresh", "-f", str(app_file), env=env)
        run(KUBECTL, "-n", "guestbook", "get", "configmaps,deployments,services", env=env)
        run(KUBECTL, "get", "applications", "-n", "gitops-tasks", env=env)

        if args.exit:
            return 0
        print(
            "\nThe sandbox keeps running. In another shell:\n"
            f"  export KUBECONFIG={kubeconfig}\n"
            f"  {KUBECTL} get applications -n gitops-tasks\n"
            f"  {CLI} diff -f {app_file}\n"
            f"  (edit {repo}/guestbook, commit, then) {CLI} refresh -f {app_file}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        wait_for_stop_signal()
        return 0
    finally:
        sim.stop()


if __name__ == "__main__":
    sys.exit(main())
