"""`python -m kubesim` and `python -m kubesim.sandbox` as separate processes."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import KUBECTL

from .http import call


def test_main_serves_writes_kubeconfig_and_exits_cleanly(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubesim", "--port", "0", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["current-context"] == "kubesim"
        ctx = config["contexts"][0]
        assert ctx["name"] == "kubesim" and ctx["context"]["namespace"] == "default"
        assert config["clusters"][0]["cluster"]["server"] == url
        out = subprocess.run(
            [KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"),
             "get", "namespaces", "-o", "name"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.split()
        assert {"namespace/default", "namespace/kube-system", "namespace/kube-public",
                "namespace/kube-node-lease"} <= set(out)
        assert call(url, "GET", "/version").status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=15)
    assert rc == 0, proc.stderr.read() if proc.stderr else ""


def test_main_sigint_and_port_in_use(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "kubesim", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    port = url.rsplit(":", 1)[1]
    try:
        second = subprocess.run([sys.executable, "-m", "kubesim", "--port", port],
                                capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        assert "cannot listen" in second.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0


def test_sandbox_demo_runs_to_completion(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kubesim.sandbox", "--exit", "--kubeconfig",
         str(tmp_path / "kc")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'deployment "web" successfully rolled out' in result.stdout
    assert "web" in result.stdout
