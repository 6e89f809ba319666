"""Version constraints as Helm's semver library (Masterminds v3) reads them."""

from __future__ import annotations

import pytest

from gitops_tasks.charts.versions import (
    ConstraintError,
    is_exact,
    parse_constraint,
    parse_version,
)

VERSIONS = ["0.2.3", "0.2.9", "0.3.0", "1.0.0", "1.2.0", "1.2.5", "1.3.0", "2.0.0",
            "2.1.0-rc.1", "v2.2.0"]


@pytest.mark.parametrize("constraint, best, allowed", [
    ("1.2.*", "1.2.5", ["1.2.0", "1.2.5"]),
    ("1.2.x", "1.2.5", ["1.2.0", "1.2.5"]),
    (">=1.0 <2", "1.3.0", ["1.0.0", "1.2.0", "1.2.5", "1.3.0"]),
    (">= 1.0, < 1.3", "1.2.5", ["1.0.0", "1.2.0", "1.2.5"]),
    ("*", "v2.2.0", [v for v in VERSIONS if "rc" not in v]),
    ("", "v2.2.0", [v for v in VERSIONS if "rc" not in v]),
    ("^1.2", "1.3.0", ["1.2.0", "1.2.5", "1.3.0"]),
    ("^0.2.3", "0.2.9", ["0.2.3", "0.2.9"]),
    ("~1.2", "1.2.5", ["1.2.0", "1.2.5"]),
    ("~1", "1.3.0", ["1.0.0", "1.2.0", "1.2.5", "1.3.0"]),
    ("=1.2", "1.2.5", ["1.2.0", "1.2.5"]),
    (">1.2", "v2.2.0", ["1.3.0", "2.0.0", "v2.2.0"]),
    ("<=1.2", "1.2.5", ["0.2.3", "0.2.9", "0.3.0", "1.0.0", "1.2.0", "1.2.5"]),
    ("1.2 - 1.3", "1.3.0", ["1.2.0", "1.2.5", "1.3.0"]),
    ("<1 || >=2", "v2.2.0", ["0.2.3", "0.2.9", "0.3.0", "2.0.0", "v2.2.0"]),
    ("!=1.2.5, ~1.2", "1.2.0", ["1.2.0"]),
    ("1.2.5", "1.2.5", ["1.2.5"]),
    # A prerelease only for conditions that name one: all of them, if it is to match...
    (">=2.1.0-0 <2.2.0-0", "2.1.0-rc.1", ["2.1.0-rc.1"]),
    # ... each condition of it (as Masterminds checks them one by one).
    (">=2.1.0-0 <2.2", None, []),
    ("^3", None, []),
])
def test_constraints(constraint: str, best: str | None, allowed: list[str]) -> None:
    c = parse_constraint(constraint)
    assert c.best(VERSIONS) == best
    assert [v for v in VERSIONS if c.matches(parse_version(v))] == allowed  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["abc", ">=1.2.3.4", "1.2 ||", ">>1"])
def test_invalid_constraints(text: str) -> None:
    with pytest.raises(ConstraintError):
        parse_constraint(text)


def test_exact_versions() -> None:
    assert is_exact("1.2.3") and is_exact("=1.2.3") and is_exact("v1.2.3-rc.1")
    assert not is_exact("1.2") and not is_exact("1.2.*") and not is_exact("^1.2.3")
    assert parse_version("not a version") is None
