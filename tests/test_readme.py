"""The README names every setting the settings module reads."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented() -> None:
    source = (ROOT / "gitops_tasks" / "settings.py").read_text()
    names = set(re.findall(r'(?:env|reader)\.(?:parse|seconds|integer|choice|raw)\("([A-Z_]+)"',
                           source)) | set(re.findall(r'secret\("([A-Z_]+)"', source))
    readme = (ROOT / "README.md").read_text()
    missing = sorted(n for n in names if f"GITOPS_TASKS_{n}" not in readme)
    assert len(names) > 40 and not missing, missing
