"""The README's settings table: one row per variable the settings module reads, each with the
default the code falls back to, so the table cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

from gitops_tasks.settings import variables

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\| `(GITOPS_TASKS_[A-Z_]+)` \| (?:`([^`]*)`|unset) \| .+ \|$", re.M)


def test_every_setting_has_a_row_with_the_default_the_code_uses() -> None:
    readme = (ROOT / "README.md").read_text()
    table = {name: default or "" for name, default in ROW.findall(readme)}
    code = {v.name: v.default for v in variables({})}
    assert len(code) > 50
    assert {n: table.get(n) for n in code if table.get(n) != code[n]} == {}
    # Rows for variables the settings module does not read are named here on purpose.
    assert set(table) - set(code) == {"GITOPS_TASKS_REDIS_SERVER"}


def test_settings_are_read_from_the_environment_only_through_the_settings_module() -> None:
    """A variable read elsewhere would be missing from the table and from `settings`."""
    stray = []
    for path in (ROOT / "gitops_tasks").rglob("*.py"):
        if path.name in ("settings.py", "redisserver.py"):
            continue
        text = path.read_text()
        stray += [f"{path.name}: {m}" for m in
                  re.findall(r'environ(?:\.get)?\(?\[?"(GITOPS_TASKS_[A-Z_]+)', text)]
    assert stray == []
