"""What a render reads from the repository: the app's path, and whatever outside it the tool is
told to read (Kustomize bases, components and patch files, Helm value files and file://
dependencies, Jsonnet library dirs). Pure: the caller passes a reader of files at the commit.

The render cache keys a render by the content of exactly these paths (their Git object ids),
not by the commit: a commit that touches none of them costs the app no render (argo-cd
#14242). Where the inputs cannot be known for certain (a plugin, which also sees the commit
SHA; a remote base; a path built from variables), `input_paths` returns None and the render is
keyed by the commit, as before.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from typing import Any

import yaml

from ..model import Source

Reader = Callable[[list[str]], dict[str, bytes | None]]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_MAX_KUSTOMIZATIONS = 200
# Fields of a kustomization whose values are local paths (files or directories).
_PATH_LISTS = ("resources", "bases", "components", "crds", "configurations", "generators",
               "transformers", "validators", "patchesStrategicMerge")
_PATH_ITEMS = ("patches", "patchesJson6902", "replacements")


class Unknown(Exception):
    """The inputs cannot be determined: key by the commit."""


def _join(base: str, rel: str) -> str:
    if "://" in rel or rel.startswith(("git@", "github.com/", "gitlab.com/", "bitbucket.org/",
                                        "ssh:", "oci:")) or "$" in rel:
        raise Unknown(rel)
    path = posixpath.normpath(rel.lstrip("/")) if rel.startswith("/") else \
        posixpath.normpath(posixpath.join(base, rel))
    if path == ".." or path.startswith("../"):
        raise Unknown(rel)
    return "" if path == "." else path


def _load(blob: bytes | None) -> dict[str, Any]:
    if blob is None:
        return {}
    try:
        doc = yaml.safe_load(blob)
    except yaml.YAMLError as exc:
        raise Unknown("unparsable") from exc  # the render will say what is wrong
    return doc if isinstance(doc, dict) else {}


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _kustomize_refs(doc: dict[str, Any]) -> list[str]:
    """The local references of one kustomization (relative to its directory)."""
    if doc.get("helmCharts") or doc.get("helmChartInflationGenerator"):
        raise Unknown("helmCharts")  # charts fetched from a repository at render time
    refs: list[str] = []
    for key in _PATH_LISTS:
        for item in _strings(doc.get(key)):
            if "\n" not in item:  # an inline patch is content, not a path
                refs.append(item)
    for key in _PATH_ITEMS:
        for item in doc.get(key) or []:
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                refs.append(item["path"])
    for key in ("configMapGenerator", "secretGenerator"):
        for gen in doc.get(key) or []:
            if not isinstance(gen, dict):
                continue
            for f in _strings(gen.get("files")) + _strings(gen.get("envs")) + \
                    ([gen["env"]] if isinstance(gen.get("env"), str) else []):
                refs.append(f.split("=", 1)[1] if "=" in f else f)
    openapi = doc.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        refs.append(openapi["path"])
    return refs


def _kustomize(root: str, read: Reader) -> set[str]:
    paths = {root}
    frontier = [root]
    seen: set[str] = set()
    while frontier:
        if len(seen) > _MAX_KUSTOMIZATIONS:
            raise Unknown("too many kustomizations")
        batch = [d for d in frontier if d not in seen]
        seen.update(batch)
        frontier = []
        wanted = [posixpath.join(d, f) if d else f for d in batch for f in KUSTOMIZATION_FILES]
        blobs = read(wanted) if wanted else {}
        for d in batch:
            docs = [blobs.get(posixpath.join(d, f) if d else f) for f in KUSTOMIZATION_FILES]
            doc = _load(next((b for b in docs if b is not None), None))
            for ref in _kustomize_refs(doc):
                path = _join(d, ref)
                if not _under(path, paths):
                    paths.add(path)
                # A directory among them may be a kustomization too (files simply are not).
                frontier.append(path)
    return paths


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(r == "" or path == r or path.startswith(r + "/") for r in roots)


def declared_kind(source: Source) -> str | None:
    """The renderer a source names, if it names one."""
    for kind, given in (("plugin", source.plugin), ("helm", source.helm),
                        ("kustomize", source.kustomize), ("directory", source.directory)):
        if given is not None:
            return kind
    return None


def kind_of(source: Source, read: Reader) -> str:
    """The renderer `render.detect` will pick, from the commit's files rather than a tree."""
    declared = declared_kind(source)
    if declared is not None:
        return declared
    try:
        root = _join("", source.path or ".")
    except Unknown:
        return "plugin"  # unknowable: keyed by the commit
    names = [posixpath.join(root, f) if root else f for f in (*KUSTOMIZATION_FILES, "Chart.yaml")]
    found = read(names)
    if any(found.get(n) is not None for n in names[:-1]):
        return "kustomize"
    if found.get(names[-1]) is not None:
        return "helm"
    return "directory"


def input_paths(source: Source, kind: str, read: Reader) -> list[str] | None:
    """Repo-relative paths (directories or files; "" is the whole repository) whose content
    fully determines the render of `source` by renderer `kind`, or None when unknown."""
    try:
        root = _join("", source.path or ".")
        if kind == "plugin":
            return None  # it sees the commit SHA and may read anything
        if kind == "kustomize":
            paths = _kustomize(root, read)
        elif kind == "helm":
            paths = {root}
            opts = source.helm
            for name in opts.value_files if opts else ():
                paths.add(_join(root, name))
            chart = _load(read([posixpath.join(root, "Chart.yaml")]).get(
                posixpath.join(root, "Chart.yaml")))
            for dep in chart.get("dependencies") or []:
                repo = dep.get("repository") if isinstance(dep, dict) else None
                if isinstance(repo, str) and repo.startswith("file://"):
                    paths.add(_join(root, repo[len("file://"):]))
        else:
            paths = {root}
            if source.directory is not None:
                for lib in source.directory.jsonnet.libs:
                    paths.add(_join("", lib if lib.startswith("/") else "/" + lib))
    except Unknown:
        return None
    # Only the outermost of nested paths: a parent's listing covers its children.
    ordered = sorted(paths, key=lambda p: (p.count("/"), p))
    kept: list[str] = []
    for p in ordered:
        if not _under(p, kept):
            kept.append(p)
    return sorted(kept)
