"""Human-readable diffs: a unified diff of two objects as YAML, Secret values masked.

Called by `ResourceDiff.text()` (compare.py), which the CLI (`gitops-tasks diff`) prints and the
engine may store. Output is stable: keys sorted, multi-line strings as YAML blocks so a changed
line of an embedded config file shows as one changed line.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

import yaml

from ..model.resources import ResourceKey

Obj = dict[str, Any]

# As Argo CD: "+" rather than "*", eight of them, one more per distinct value of the same key.
_MASK = "+" * 8
_SECRET_FIELDS = ("data", "stringData")


def is_secret(key: ResourceKey) -> bool:
    return key.group == "" and key.kind == "Secret"


def mask_secrets(live: Obj | None, desired: Obj | None) -> tuple[Obj | None, Obj | None]:
    """Copies with every Secret value replaced by a mask. Per key, equal values get equal masks
    and different values different ones, so a changed value is visible and no value leaks (nor
    its length)."""
    live, desired = copy.deepcopy(live), copy.deepcopy(desired)
    sides = [obj for obj in (live, desired) if obj is not None]
    for field in _SECRET_FIELDS:
        maps = [obj[field] for obj in sides if isinstance(obj.get(field), dict)]
        for name in sorted({k for m in maps for k in m}):
            masks: dict[str, str] = {}
            for m in maps:
                if name in m:
                    value = str(m[name])
                    if value not in masks:
                        masks[value] = _MASK + "+" * len(masks)
                    m[name] = masks[value]
    return live, desired


def unified(key: ResourceKey, live: Obj | None, desired: Obj | None, *, context: int = 3) -> str:
    """`--- live` / `+++ desired` unified diff of the two objects as YAML ("" when equal)."""
    if is_secret(key):
        live, desired = mask_secrets(live, desired)
    before = to_yaml(live).splitlines() if live is not None else []
    after = to_yaml(desired).splitlines() if desired is not None else []
    lines = list(difflib.unified_diff(before, after, fromfile="live", tofile="desired",
                                      n=context, lineterm=""))
    return "\n".join(lines) + "\n" if lines else ""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Block style for multi-line text (ConfigMap files): the diff then works line by line.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(obj: Any) -> str:
    # A wide line limit: folding long values would turn one changed value into several lines.
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False,
                     allow_unicode=True, width=4096)
