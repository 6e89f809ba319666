"""Chart versions and version constraints, with the semantics of Helm's semver library
(Masterminds/semver v3), which both `helm dependency build` and Argo CD's `targetRevision` for
Helm repositories use.

Called by `repository` and `oci` to pick the version a constraint means. Pure.

What is implemented, as Masterminds does it:
- versions: an optional `v`, one to three numbers, `-prerelease`, `+metadata`;
- constraints: `||` between alternatives; `,` or spaces between conditions that must all hold;
  operators `=`, `!=`, `>`, `<`, `>=` (`=>`), `<=` (`=<`), `~` (`~>`), `^`; wildcards `x`, `X`
  and `*` in any position (`1.2.*`, `1.x`, `*`); hyphen ranges (`1.2 - 1.4.5`); a version with
  parts left out means all of them (`=1.2` is `>=1.2.0 <1.3.0`, `<=1.2` allows 1.2.9);
- prereleases are only chosen by a condition that names a prerelease itself (`>=1.0.0-0`).
The highest matching version wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import semver

_VERSION = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+(?P<build>[0-9A-Za-z.-]+))?$")
_WILDCARDS = frozenset({"x", "X", "*"})
_CONDITION = re.compile(r"^(?P<op>!=|>=|=>|<=|=<|~>|>|<|=|~|\^)?\s*(?P<ver>\S+)$")
_HYPHEN = re.compile(r"(\S+)\s+-\s+(\S+)")


class ConstraintError(ValueError):
    """The text is not a version constraint."""


def parse_version(text: str) -> semver.Version | None:
    """The version `text` names (Masterminds' lenient form), or None if it is not one."""
    m = _VERSION.match(text.strip())
    if m is None:
        return None
    return semver.Version(int(m["major"]), int(m["minor"] or 0), int(m["patch"] or 0),
                          m["pre"], m["build"])


@dataclass(frozen=True)
class _Condition:
    op: str
    version: semver.Version
    # How many leading parts were given (3 = a full version; fewer = the rest are wildcards).
    given: int

    def matches(self, v: semver.Version) -> bool:
        if v.prerelease and not self.version.prerelease:
            return False  # prereleases only for conditions that ask for them
        if self.op == "!=":
            return not self._within(v)
        if self.op in ("", "="):
            return self._within(v)
        if self.op == ">":
            return v > self._upper_inclusive() if self.given < 3 else v > self.version
        if self.op == ">=":
            return v >= self.version
        if self.op == "<":
            return v < self.version
        if self.op == "<=":
            return v <= self._upper_inclusive() if self.given < 3 else v <= self.version
        if self.op == "~":
            # ~1.2.3 and ~1.2: >=1.2.3 <1.3.0; ~1: >=1 <2.
            upper = (semver.Version(self.version.major + 1) if self.given == 1
                     else semver.Version(self.version.major, self.version.minor + 1))
            return self.version <= v < upper
        # ^: the leftmost non-zero part stays (^1.2 <2.0.0; ^0.2.3 <0.3.0; ^0.0.3 <0.0.4).
        b = self.version
        if b.major > 0 or self.given == 1:
            upper = semver.Version(b.major + 1)
        elif b.minor > 0 or self.given == 2:
            upper = semver.Version(0, b.minor + 1)
        else:
            upper = semver.Version(0, 0, b.patch + 1)
        return b <= v < upper

    def _within(self, v: semver.Version) -> bool:
        b = self.version
        if self.given == 3:
            return v.compare(b) == 0 and (v.prerelease or None) == (b.prerelease or None)
        if v < b:
            return False
        return v.major == b.major and (self.given < 2 or v.minor == b.minor)

    def _upper_inclusive(self) -> semver.Version:
        """The lowest version above everything a partial version stands for."""
        b = self.version
        if self.given == 0:
            return semver.Version(10 ** 18)
        if self.given == 1:
            return semver.Version(b.major + 1, 0, 0, "0")
        return semver.Version(b.major, b.minor + 1, 0, "0")


def _condition(text: str, original: str) -> _Condition:
    m = _CONDITION.match(text)
    if m is None:
        raise ConstraintError(f"{original!r} is not a version constraint")
    op = {"=>": ">=", "=<": "<=", "~>": "~"}.get(m["op"] or "", m["op"] or "")
    raw = m["ver"].lstrip("v")
    idx = next((i for i, ch in enumerate(raw) if ch in "-+"), len(raw))
    main, suffix = raw[:idx], raw[idx:]
    parts = main.split(".") if main else []
    given = 0
    numbers: list[int] = []
    for part in parts[:3]:
        if part in _WILDCARDS:
            break
        if not part.isdigit():
            raise ConstraintError(f"{original!r} is not a version constraint")
        numbers.append(int(part))
        given += 1
    if len(parts) > 3:
        raise ConstraintError(f"{original!r} is not a version constraint")
    if given == 0 and op in ("", "="):
        op = ">="  # `*` is any version
    full = ".".join(str(n) for n in [*numbers, 0, 0, 0][:3]) + suffix
    version = parse_version(full)
    if version is None:
        raise ConstraintError(f"{original!r} is not a version constraint")
    if version.prerelease:
        given = 3
    return _Condition(op, version, given)


@dataclass(frozen=True)
class Constraint:
    """A parsed constraint: alternatives, each a list of conditions that must all hold."""

    text: str
    alternatives: tuple[tuple[_Condition, ...], ...]

    def matches(self, version: semver.Version) -> bool:
        return any(all(c.matches(version) for c in group) for group in self.alternatives)

    def best(self, versions: Iterable[str]) -> str | None:
        """The highest of `versions` (as spelt there) that the constraint allows."""
        best: tuple[semver.Version, str] | None = None
        for text in versions:
            v = parse_version(text)
            if v is not None and self.matches(v) and (best is None or v > best[0]):
                best = (v, text)
        return None if best is None else best[1]


def parse_constraint(text: str) -> Constraint:
    """Parse a Masterminds constraint; empty text means any version (as `*`)."""
    original = text
    text = text.strip() or "*"
    groups: list[tuple[_Condition, ...]] = []
    for alternative in text.split("||"):
        alternative = _HYPHEN.sub(r">=\1 <=\2", alternative.strip())
        # `>= 1.2` is one condition: glue operators to their version before splitting.
        alternative = re.sub(r"(!=|>=|=>|<=|=<|~>|>|<|=|~|\^)\s+", r"\1", alternative)
        conditions = [c for c in re.split(r"[\s,]+", alternative) if c]
        if not conditions:
            raise ConstraintError(f"{original!r} is not a version constraint")
        groups.append(tuple(_condition(c, original) for c in conditions))
    return Constraint(original, tuple(groups))


def is_exact(text: str) -> bool:
    """Whether `text` names one version (`1.2.3`, `v1.2.3`, `=1.2.3`) rather than a range."""
    stripped = text.strip().removeprefix("=").strip()
    m = _VERSION.match(stripped)
    return m is not None and m["patch"] is not None
