"""Evaluating one `.jsonnet` file, called by the directory renderer for each one it finds.

Uses the `jsonnet` package (C++ jsonnet, module `_jsonnet`) in process: it is fast and only
computes, it runs no commands. Imports go through our own callback, never jsonnet's default
file importer, so `import "/etc/passwd"` or `importstr "../../../x"` cannot read outside the
repository tree. Library dirs (`libs`) are repo-root relative, as in Argo CD.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import _jsonnet

from ..errors import RenderError, UnsafePath
from ..model.application import JsonnetOptions
from .context import envsubst
from .paths import is_inside, relative, safe_join

# `file.jsonnet:3:5-10`, `file.jsonnet:(3:5)-(4:1)`: the first location is where it went wrong.
_LOCATION = re.compile(r"([^\s():]+):\(?(\d+):\d+")


def evaluate(path: Path, *, tree: Path, options: JsonnetOptions, env: dict[str, str],
             app: str) -> Any:
    """The JSON value `path` evaluates to. RenderError with file and line if it fails."""
    jpaths = [safe_join(tree, lib, app=app, what="jsonnet lib") for lib in options.libs]
    unsafe: list[UnsafePath] = []

    def import_callback(base: str, rel: str) -> tuple[str, bytes]:
        if rel.startswith("/"):
            unsafe.append(UnsafePath(f"jsonnet import {rel!r} is an absolute path", app=app))
            raise RuntimeError("absolute imports are not allowed")
        # Relative to the importing file first, then the libs, right-most first (as the
        # jsonnet command line treats -J).
        for directory in [Path(base), *reversed(jpaths)]:
            candidate = directory / rel
            if not candidate.is_file():
                continue
            if not is_inside(tree, candidate):
                unsafe.append(UnsafePath(
                    f"jsonnet import {rel!r} from {relative(tree, Path(base))!r} leaves the "
                    f"repository", app=app))
                raise RuntimeError("import leaves the repository")
            return str(candidate), candidate.read_bytes()
        raise RuntimeError("no such file in the importing directory or the jsonnet libs")

    def split(vars_: tuple[Any, ...], code: bool) -> dict[str, str]:
        return {v.name: envsubst(v.value, env) for v in vars_ if v.code == code}

    try:
        text = _jsonnet.evaluate_file(
            str(path),
            ext_vars=split(options.ext_vars, False),
            ext_codes=split(options.ext_vars, True),
            tla_vars=split(options.tlas, False),
            tla_codes=split(options.tlas, True),
            import_callback=import_callback,
        )
    except RuntimeError as exc:
        if unsafe:
            raise unsafe[0] from exc
        raise _error(str(exc), path, tree, app) from exc
    return json.loads(text)


def _error(message: str, path: Path, tree: Path, app: str) -> RenderError:
    # jsonnet reports absolute paths; messages must speak in repo paths.
    prefix = f"{tree}/"
    cleaned = message.replace(prefix, "").strip()
    file, line = relative(tree, path), None
    m = _LOCATION.search(cleaned)
    if m:
        file, line = m.group(1), int(m.group(2))
    lines = [ln.strip() for ln in cleaned.splitlines() if ln.strip()]
    summary = "; ".join(lines[:3])
    return RenderError(f"jsonnet: {summary}", app=app, file=file, line=line)
