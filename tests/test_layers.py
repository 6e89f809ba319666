"""The import rules of ARCHITECTURE.md, enforced: each outside library has one home."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("gitops_tasks", "scheduler", "workers")

# library -> the only package (path prefix) allowed to import it
HOMES = {
    "kubernetes": "gitops_tasks/cluster/",
    "git": "gitops_tasks/source/",
    "celery": "gitops_tasks/tasks/",
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def product_files() -> list[Path]:
    return sorted(p for pkg in PRODUCT for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("library, home", sorted(HOMES.items()))
def test_library_is_imported_only_in_its_layer(library: str, home: str) -> None:
    offenders = [str(p.relative_to(ROOT)) for p in product_files()
                 if library in imports_of(p) and not str(p.relative_to(ROOT)).startswith(home)]
    assert offenders == [], f"{library} may only be imported under {home}"


def test_product_code_never_imports_kubesim() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in product_files() if "kubesim" in imports_of(p)]
    assert offenders == []
