"""Which Applications a push touches: same repository, a ref the app follows, and a changed
file under the paths the app renders from."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..source import normalize_repo_url
from .events import Push

REFRESH_PATHS = "gitops-tasks.io/refresh-paths"
ARGO_REFRESH_PATHS = "argocd.argoproj.io/manifest-generate-paths"
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


@dataclass(frozen=True)
class Target:
    """An Application as the receiver matches it."""
    namespace: str
    name: str
    repo: str             # normalized repoURL
    target_revision: str
    paths: tuple[str, ...]  # repo-relative directories ("" is the whole repository)
    annotated: bool = False  # paths from a refresh-paths annotation (they replace all else)


def _clean(path: str) -> str:
    path = posixpath.normpath("/" + path.strip()).lstrip("/")
    return "" if path == "." else path


def _paths(app_path: str, annotation: str | None) -> tuple[str, ...]:
    base = _clean(app_path)
    if annotation is None:
        return (base,)
    # Argo CD's form: ';'-separated, relative to the app's path unless absolute (from the
    # repository's root). The annotation replaces the path: list "." to keep it.
    out: list[str] = []
    for item in annotation.split(";"):
        item = item.strip()
        if not item:
            continue
        out.append(_clean(item) if item.startswith("/") else _clean(posixpath.join(base, item)))
    return tuple(dict.fromkeys(out)) or (base,)


def _key(url: str) -> str:
    # Hosted Git servers treat the path case-insensitively: a false match costs one cheap
    # refresh, a missed one a push nobody deploys.
    return normalize_repo_url(url).casefold()


def target_of(obj: dict[str, Any]) -> Target | None:
    """The Target of a raw Application, or None when it has no Git source to match."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    source = spec.get("source") if isinstance(spec, dict) else None
    if not isinstance(source, dict) or not isinstance(source.get("repoURL"), str):
        return None
    if source.get("chart"):
        return None  # a chart from a Helm repository: pushes to Git do not move it
    annotations = meta.get("annotations") or {}
    annotation = annotations.get(REFRESH_PATHS, annotations.get(ARGO_REFRESH_PATHS))
    path = source.get("path")
    if not isinstance(path, str):
        path = "."
    return Target(
        namespace=str(meta.get("namespace", "")), name=str(meta.get("name", "")),
        repo=_key(source["repoURL"]),
        target_revision=str(source.get("targetRevision") or "HEAD"),
        paths=_paths(path, annotation if isinstance(annotation, str) else None),
        annotated=isinstance(annotation, str))


def ref_matches(target_revision: str, ref: str, default_branch: str) -> bool:
    """Whether an app following `target_revision` follows the pushed `ref`."""
    revision = target_revision.strip()
    if revision in ("", "HEAD"):
        if not ref.startswith("refs/heads/"):
            return False
        # Without the default branch named in the payload, any branch might be it.
        return not default_branch or ref == f"refs/heads/{default_branch}"
    if _SHA.match(revision.lower()):
        return False  # pinned to a commit: no push moves it
    if revision.startswith("refs/"):
        return ref == revision
    return ref in (f"refs/heads/{revision}", f"refs/tags/{revision}")


def touches(paths: Iterable[str], changed: frozenset[str] | None) -> bool:
    """Whether a changed file lies under one of `paths` (None: the changes are unknown)."""
    if changed is None:
        return True
    for path in paths:
        if path == "":
            if changed:
                return True
            continue
        prefix = path + "/"
        if any(f == path or f.startswith(prefix) for f in changed):
            return True
    return False


def affected(push: Push, targets: Iterable[Target]) -> list[Target]:
    """The targets whose repository and ref the push moved (paths are checked apart, since the
    changed files may have to come from Git)."""
    repos = {_key(u) for u in push.repo_urls}
    return [t for t in targets
            if t.repo in repos and ref_matches(t.target_revision, push.ref, push.default_branch)]
