"""The wheel holds what an installed (not editable) gitops-tasks needs at run time: every
package, the Application CRD `up` installs, the typing markers; and nothing from tests/."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_the_crd_and_every_package(tmp_path: Path) -> None:
    # A copy of the sources, so building writes nothing into the checkout (build/, egg-info).
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("gitops_tasks", "scheduler", "workers", "kubesim"):
        shutil.copytree(ROOT / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--wheel-dir", str(tmp_path / "dist"), str(src)], check=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("gitops_tasks-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "gitops_tasks/model/application-crd.yaml" in names
    assert {"gitops_tasks/py.typed", "gitops_tasks/up.py", "gitops_tasks/redisserver.py",
            "scheduler/webhook.py", "workers/__init__.py", "kubesim/server.py"} <= names
    assert not [n for n in names if n.startswith("tests/")]
    # Installed apart from the checkout, the CRD is found inside the package.
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, timeout=300)
    found = subprocess.run(
        [sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "from gitops_tasks.model import CRD_FILE; print(CRD_FILE, CRD_FILE.is_file())",
         str(target)], capture_output=True, text=True, check=False, timeout=60)
    assert found.stdout.split() == [str(target / "gitops_tasks/model/application-crd.yaml"),
                                    "True"], found.stderr
