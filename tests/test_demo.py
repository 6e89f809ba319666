"""`make run`'s demo runs the whole system and the GitOps loop to the end (a separate process:
redis-server, kubesim, two workers, beat, the receiver, Flower), then stops everything."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_the_gitops_loop(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITOPS_TASKS_", "KUBECONFIG"))}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=240, env=env,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "all 6 apps Synced and Healthy" in out
    assert re.search(r"panel \(sign in with the API token\)\s*:?\s*http://127\.0\.0\.1:\d+/", out)
    assert re.search(r"API admin token\s*:?\s*\S{20,}", out)
    assert "webhook commit live: nginx:1.28" in out
    assert "drift healed: image back to nginx:1.28" in out
    assert "Pruned: ConfigMap guestbook-settings is gone" in out
    table = out[out.index("== Summary"):].splitlines()[1:8]
    assert table[0].split()[:2] == ["NAME", "REPO"]
    rows = {line.split()[0]: line.split() for line in table[1:] if line.strip()}
    assert set(rows) == {"root", "guestbook", "kustomize", "helm", "jsonnet", "waves"}
    assert all("Synced" in r and "Healthy" in r for r in rows.values()), rows
    assert "Stopped every process" in out
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", leftover.stdout
