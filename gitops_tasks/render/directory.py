"""The plain directory renderer: YAML, JSON and Jsonnet files, as Argo CD's directory apps.

Called by `render()` for apps with a `directory` source or without a kustomization/Chart.yaml.

Argo CD semantics kept on purpose:
- files `*.yaml`, `*.yml`, `*.json`, `*.jsonnet`; subdirectories only with `recurse`;
- `include` / `exclude` are gobwas-style globs matched against the path relative to the app
  dir, with no path separator special-casing (`*` crosses `/`), `{a,b}` alternatives;
  exclude wins over include;
- `.jsonnet` files are always evaluated (with the source's ext vars, TLAs and libs);
  `.libsonnet` files are libraries, not manifests.

Where we differ: Argo CD silently ignores a YAML file it cannot parse unless it looks like a
manifest. We report malformed YAML with file and line, since a skipped manifest that was meant
to be applied is worse than a visible error. Documents that are not meant as objects (a mapping
with neither apiVersion nor kind, a bare list or scalar) are skipped with a debug log.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import RenderError, SourceTooLarge, UnsafePath
from ..log import get_logger
from ..model.application import DirectorySource, Source
from . import jsonnet, manifests
from .context import RenderContext, build_env
from .paths import SKIP_DIRS, is_inside, relative

_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json", ".jsonnet")


def render_directory(tree: Path, app_dir: Path, source: Source,
                     ctx: RenderContext) -> list[dict[str, Any]]:
    """Objects from every manifest file of the app dir, in sorted path order."""
    options = source.directory or DirectorySource()
    log = get_logger(app=ctx.app_name)
    env = build_env(ctx, source.path, source.target_revision)
    out: list[dict[str, Any]] = []
    total = 0
    files = list(_manifest_files(tree, app_dir, options, ctx.app_name))
    # Before anything else is read: one child process evaluates every jsonnet file.
    evaluated = jsonnet.evaluate_all([p for p in files if p.suffix == ".jsonnet"], tree=tree,
                                     options=options.jsonnet, env=env, ctx=ctx)
    for path in files:
        rel = relative(tree, path)
        size = path.stat().st_size
        total += size
        if size > ctx.settings.max_output_bytes or total > ctx.settings.max_output_bytes:
            raise SourceTooLarge(
                f"manifests passed {ctx.settings.max_output_bytes} bytes at {rel!r}",
                app=ctx.app_name)
        if path.suffix == ".jsonnet":
            out.extend(manifests.objects_from_data(evaluated[path], file=rel, line=None,
                                                   app=ctx.app_name))
            continue
        text = _read_text(path, rel, ctx.app_name)
        if path.suffix == ".json":
            objs = _objects_from_json(text, rel, ctx.app_name)
        else:
            objs = manifests.objects_from_text(text, file=rel, app=ctx.app_name,
                                               skip_non_objects=True)
        if not objs:
            log.debug("render.directory.skipped", file=rel, reason="no Kubernetes objects")
        out.extend(objs)
    return out


def _objects_from_json(text: str, rel: str, app: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RenderError(f"invalid JSON: {exc.msg}", app=app, file=rel,
                          line=exc.lineno) from exc
    # A top-level array of objects is accepted (kubectl accepts it, too); JSON that is not
    # meant as objects at all (package.json, tsconfig.json) is skipped like YAML of that sort.
    items = data if isinstance(data, list) else [data]
    if not any(manifests.is_object_like(item) for item in items):
        return []
    return manifests.objects_from_data(data, file=rel, line=None, app=app)


def _read_text(path: Path, rel: str, app: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RenderError("not UTF-8 text", app=app, file=rel) from exc


def _manifest_files(tree: Path, app_dir: Path, options: DirectorySource,
                    app: str) -> Iterator[Path]:
    """Candidate files, sorted, filtered by recurse/include/exclude, symlinks checked."""
    include = compile_glob(options.include) if options.include else None
    exclude = compile_glob(options.exclude) if options.exclude else None
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(app_dir):
        base = Path(dirpath)
        if options.recurse:
            kept = []
            for d in sorted(dirnames):
                if d.startswith(".") or d in SKIP_DIRS:
                    continue
                entry = base / d
                # Not descended into (os.walk does not follow links), but a link out of the
                # tree is refused rather than silently ignored, as Argo CD does.
                if entry.is_symlink() and not is_inside(tree, entry):
                    raise UnsafePath(f"symlink {relative(tree, entry)!r} points outside the "
                                     f"repository", app=app)
                kept.append(d)
            dirnames[:] = kept
        else:
            dirnames[:] = []
        for name in filenames:
            if not name.endswith(_MANIFEST_SUFFIXES):
                continue
            path = base / name
            rel = path.relative_to(app_dir).as_posix()
            if exclude is not None and exclude.fullmatch(rel):
                continue
            if include is not None and not include.fullmatch(rel):
                continue
            if path.is_symlink() and not is_inside(tree, path):
                raise UnsafePath(f"symlink {relative(tree, path)!r} points outside the "
                                 f"repository", app=app)
            if not path.is_file():
                continue
            found.append((rel, path))
    for _, path in sorted(found):
        yield path


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """A gobwas/glob pattern (as Argo CD compiles it, without separators) as a regex.

    `*` and `**` match any run of characters including `/`, `?` one character, `[a-z]` and
    `[!a-z]` classes, `{a,b,c}` alternatives (nesting allowed), `\\x` a literal x.
    """
    regex, _ = _translate(pattern, 0, in_braces=False)
    return re.compile(regex, re.DOTALL)


def _translate(pattern: str, pos: int, *, in_braces: bool) -> tuple[str, int]:
    out: list[str] = []
    while pos < len(pattern):
        c = pattern[pos]
        if in_braces and c in ",}":
            return "".join(out), pos
        if c == "*":
            while pos < len(pattern) and pattern[pos] == "*":
                pos += 1
            out.append(".*")
            continue
        if c == "?":
            out.append(".")
        elif c == "\\" and pos + 1 < len(pattern):
            pos += 1
            out.append(re.escape(pattern[pos]))
        elif c == "[":
            end = pattern.find("]", pos + 2)
            if end < 0:
                raise RenderError(f"invalid glob {pattern!r}: unclosed '['")
            body = pattern[pos + 1:end]
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("^", "\\^")
            out.append(f"[{'^' if negate else ''}{body}]")
            pos = end
        elif c == "{":
            alternatives = []
            pos += 1
            while True:
                alt, pos = _translate(pattern, pos, in_braces=True)
                alternatives.append(alt)
                if pos >= len(pattern):
                    raise RenderError(f"invalid glob {pattern!r}: unclosed '{{'")
                if pattern[pos] == "}":
                    break
                pos += 1  # past ","
            out.append(f"(?:{'|'.join(alternatives)})")
        else:
            out.append(re.escape(c))
        pos += 1
    return "".join(out), pos
