"""Users' health scripts, found by (API group, kind) in Argo CD's formats. Pure: no I/O here but
reading a directory the caller names.

Built by the I/O layer (`gitops_tasks.health_config`, which reads the `gitops-tasks-cm`
ConfigMap) and by the CLI; consulted by `gitops_tasks.health.resource_health`. Where scripts come
from, first match wins:

1. The ConfigMap, in Argo CD's `argocd-cm` formats:
   - one key per kind, `resource.customizations.health.<group>_<kind>` (core kinds: just
     `<kind>`, as `resource.customizations.health.Service`), the script as the value;
   - the older single key `resource.customizations`, a YAML map of `<group>/<kind>` (core: just
     `<kind>`) to `{health.lua: script}`, where `*` matches any run of characters, as in
     `"*.crossplane.io/*"`. A kind's own key wins over a wildcard.
2. The directory of `GITOPS_TASKS_RESOURCE_CUSTOMIZATIONS_DIR`, laid out as Argo CD's
   resource_customizations: `<group>/<kind>/health.lua`, core kinds as `<kind>/health.lua`
   (Argo CD names them by the kind alone), and `_` in a directory name matching anything, as in
   Argo CD's `_.crossplane.io/_` (group and kind names never hold `_`).

Problems (a key that names no kind, a script file that cannot be read) are returned as text for
the caller to log; they never stop the other scripts from loading.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HEALTH_KEY_PREFIX = "resource.customizations.health."
LEGACY_KEY = "resource.customizations"
SCRIPT_FILE = "health.lua"
# Argo CD keys this project reads but cannot honour: said so instead of silently ignored.
_UNSUPPORTED_SUFFIX = ".useOpenLibs"


@dataclass(frozen=True)
class HealthScript:
    """A script for the kinds its (group, kind) pattern matches; `*` in a pattern matches any
    run of characters. `source` says where it came from, for messages."""

    group: str
    kind: str
    script: str
    source: str

    @property
    def wildcard(self) -> bool:
        return "*" in self.group or "*" in self.kind

    def matches(self, group: str, kind: str) -> bool:
        if not self.wildcard:
            return (self.group, self.kind) == (group, kind)
        return fnmatch.fnmatchcase(group, self.group) and fnmatch.fnmatchcase(kind, self.kind)


@dataclass(frozen=True)
class Customizations:
    """Health scripts in layers: a script from an earlier layer wins over a later one; within a
    layer an exact (group, kind) wins over a wildcard, and wildcards go in their given order."""

    layers: tuple[tuple[HealthScript, ...], ...] = ()
    _exact: tuple[dict[tuple[str, str], HealthScript], ...] = field(
        default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exact = tuple({(s.group, s.kind): s for s in reversed(layer) if not s.wildcard}
                      for layer in self.layers)
        object.__setattr__(self, "_exact", exact)

    @classmethod
    def of(cls, *layers: Iterable[HealthScript]) -> Customizations:
        return cls(tuple(tuple(layer) for layer in layers))

    def __len__(self) -> int:
        return sum(len(layer) for layer in self.layers)

    def script_for(self, group: str, kind: str) -> HealthScript | None:
        for layer, exact in zip(self.layers, self._exact, strict=True):
            found = exact.get((group, kind))
            if found is not None:
                return found
            for script in layer:
                if script.wildcard and script.matches(group, kind):
                    return script
        return None


NONE = Customizations()


def _group_kind(text: str) -> tuple[str, str] | None:
    """`group/kind` or a core `kind` (Argo CD's override key) as (group, kind)."""
    group, slash, kind = text.strip().rpartition("/")
    if not kind or (slash and not group):
        return None
    return group, kind


def parse_configmap(data: Mapping[str, Any], source: str) -> tuple[list[HealthScript], list[str]]:
    """The health scripts of a ConfigMap's `data`, with a line per key that could not be read.
    `source` names the ConfigMap in messages."""
    scripts: list[HealthScript] = []
    problems: list[str] = []
    for key in sorted(data):
        value = data[key]
        if not key.startswith(HEALTH_KEY_PREFIX):
            continue
        element = key[len(HEALTH_KEY_PREFIX):]
        if element.endswith(_UNSUPPORTED_SUFFIX):
            problems.append(f"{source} key {key}: not supported, scripts always run in the "
                            "sandbox")
            continue
        parts = element.split("_")
        if len(parts) == 1 and parts[0]:
            group, kind = "", parts[0]
        elif len(parts) == 2 and all(parts):
            group, kind = parts
        else:
            problems.append(f"{source} key {key}: expected {HEALTH_KEY_PREFIX}<group>_<kind> "
                            f"or {HEALTH_KEY_PREFIX}<kind> for a core kind")
            continue
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{source} key {key}: empty script")
            continue
        scripts.append(HealthScript(group, kind, value, f"{source} key {key}"))
    if LEGACY_KEY in data:
        legacy, more = _parse_legacy(data[LEGACY_KEY], source)
        scripts.extend(legacy)
        problems.extend(more)
    return scripts, problems


def _parse_legacy(text: Any, source: str) -> tuple[list[HealthScript], list[str]]:
    where = f"{source} key {LEGACY_KEY}"
    try:
        doc = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError as exc:
        return [], [f"{where}: not YAML: {str(exc).splitlines()[0]}"]
    if doc is None:
        return [], []
    if not isinstance(doc, Mapping):
        return [], [f"{where}: expected a map of <group>/<kind> to overrides"]
    scripts: list[HealthScript] = []
    problems: list[str] = []
    for name, override in doc.items():
        if not isinstance(override, Mapping) or "health.lua" not in override:
            continue  # ignoreDifferences, actions, ...: not health, not ours to judge here
        gk = _group_kind(str(name))
        script = override.get("health.lua")
        if gk is None:
            problems.append(f"{where}: {name!r} is not <group>/<kind> or <kind>")
        elif not isinstance(script, str) or not script.strip():
            problems.append(f"{where}: {name}: empty health.lua")
        else:
            if override.get("health.lua.useOpenLibs"):
                problems.append(f"{where}: {name}: health.lua.useOpenLibs is not supported, "
                                "the script runs in the sandbox")
            scripts.append(HealthScript(gk[0], gk[1], script, f"{where} {name}"))
    # Exact names before wildcards, so that listing order in the YAML does not matter for them.
    return sorted(scripts, key=lambda s: s.wildcard), problems


def load_directory(root: Path) -> tuple[list[HealthScript], list[str]]:
    """The `health.lua` scripts under `root` (`<group>/<kind>/health.lua`, `<kind>/health.lua`
    for core kinds), with a line per file that could not be used."""
    scripts: list[HealthScript] = []
    problems: list[str] = []
    if not root.is_dir():
        return [], [f"{root}: not a directory"]
    for path in sorted(root.rglob(SCRIPT_FILE)):
        parts: Sequence[str] = path.relative_to(root).parts[:-1]
        if len(parts) == 1:
            group, kind = "", parts[0]
        elif len(parts) == 2:
            group, kind = parts
        else:
            problems.append(f"{path}: expected <group>/<kind>/{SCRIPT_FILE} or "
                            f"<kind>/{SCRIPT_FILE} under {root}")
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot be read: {exc}")
            continue
        # Argo CD's directory names use `_` for "anything" (`_.crossplane.io/_`).
        scripts.append(HealthScript(group.replace("_", "*"), kind.replace("_", "*"), text,
                                    str(path)))
    return sorted(scripts, key=lambda s: s.wildcard), problems
