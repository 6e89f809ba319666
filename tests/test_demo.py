"""`make run`'s demo runs the whole GitOps loop to the end (as a separate process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_the_gitops_loop(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--exit", "--workdir",
         str(tmp_path)],
        capture_output=True, text=True, timeout=240,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "automated sync is due" in out
    assert "image after self-heal: nginx:1.28" in out
    assert "Pruned" in out
    assert out.rstrip().splitlines()[-1].split()[:3] == ["guestbook", "Synced", "Healthy"]
