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


# What a worker, beat, the receiver and Flower import at run time, the broker transport included
# (kombu loads it by name when it connects, so importing our modules alone would miss it), with
# every distribution that is not a declared dependency made unimportable, as in an install of
# the package alone (the image): optional imports (structlog's use of rich) fall back, required
# ones fail.
_SERVICE_IMPORTS = """
import sys
blocked = set(sys.argv[1].split(","))

class Blocker:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Blocker)
import gitops_tasks.cli, gitops_tasks.tasks.app, gitops_tasks.tasks.worker
import gitops_tasks.tasks.flower, gitops_tasks.render.helm, gitops_tasks.render.jsonnet
import scheduler.main, scheduler.webhook, scheduler.beat, workers.main
import kombu.transport.redis, celery.backends.redis, flower.app
import gitops_tasks.log
gitops_tasks.log.configure(level="INFO", fmt="console")
"""


def _closure(dist: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """The distributions `dist` (with `extras`) pulls in, by its metadata's markers."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [(dist, extras)]
    while todo:
        name, wanted = todo.pop()
        key = f"{canonicalize_name(name)}[{','.join(sorted(wanted))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            listed = requires(name) or []
        except PackageNotFoundError:
            continue
        for text in listed:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e})
                                         for e in (wanted | {""})):
                todo.append((req.name, frozenset(req.extras)))
    return {k.split("[")[0] for k in seen}


def test_the_services_start_with_only_the_declared_dependencies() -> None:
    """A module imported at run time from a package only the test tools bring works in the
    suite and fails in a production install: kombu's Redis transport needs `packaging`, which
    only kombu's `redis` extra declares (seen when the image's worker would not start)."""
    from importlib.metadata import packages_distributions

    from packaging.utils import canonicalize_name

    declared = _closure("gitops-tasks")
    ours = {"gitops_tasks", "scheduler", "workers", "kubesim"}
    blocked = {m for m, dists in packages_distributions().items()
               if m not in ours and not m.startswith("_")
               and not any(canonicalize_name(d) in declared for d in dists)}
    assert {"pytest", "hypothesis"} <= blocked and "celery" not in blocked
    done = subprocess.run([sys.executable, "-c", _SERVICE_IMPORTS, ",".join(sorted(blocked))],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
