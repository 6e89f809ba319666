"""Evaluating the `.jsonnet` files of a directory source, called by the directory renderer.

The evaluation runs in a child process (`_jsonnet_engine.py`) with the same limits as Helm and
plugins: the render timeout, the output cap, a killed process group. One child evaluates every
jsonnet file of the app, so a directory of many files pays one interpreter start. Library dirs
(`libs`) are repo-root relative, as in Argo CD; imports never leave the repository tree.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import RenderError, UnsafePath
from ..model.application import JsonnetOptions
from . import _jsonnet_engine, tools
from .context import RenderContext, envsubst
from .paths import relative, safe_join, scratch_dir

# `file.jsonnet:3:5-10`, `file.jsonnet:(3:5)-(4:1)`: the first location is where it went wrong.
_LOCATION = re.compile(r"([^\s():]+):\(?(\d+):\d+")


def evaluate_all(paths: Sequence[Path], *, tree: Path, options: JsonnetOptions,
                 env: dict[str, str], ctx: RenderContext) -> dict[Path, Any]:
    """The JSON value each of `paths` evaluates to. RenderError with file and line for the
    first that fails, ToolTimeout past the render timeout."""
    app = ctx.app_name
    if not paths:
        return {}
    jpaths = [str(safe_join(tree, lib, app=app, what="jsonnet lib")) for lib in options.libs]

    def split(vars_: tuple[Any, ...], code: bool) -> dict[str, str]:
        return {v.name: envsubst(v.value, env) for v in vars_ if v.code == code}

    request = {
        "tree": str(tree), "files": [str(p) for p in paths], "jpaths": jpaths,
        "ext_vars": split(options.ext_vars, False), "ext_codes": split(options.ext_vars, True),
        "tla_vars": split(options.tlas, False), "tla_codes": split(options.tlas, True),
    }
    with scratch_dir("jsonnet") as scratch:
        result = tools.run(
            [sys.executable, "-I", _jsonnet_engine.__file__], tool="jsonnet", app=app,
            cwd=scratch, env=tools.clean_env(scratch), timeout=ctx.settings.tool_timeout,
            max_output=ctx.settings.max_output_bytes, stdin=json.dumps(request).encode())
    if result.returncode != 0:
        raise RenderError(f"jsonnet failed: {result.stderr_tail()}", app=app,
                          file=relative(tree, paths[0]))
    answer = json.loads(result.stdout)
    if "error" in answer:
        err = answer["error"]
        if err["type"] == "unsafe":
            raise UnsafePath(err["message"], app=app)
        raise _error(err["message"], Path(err["file"]), tree, app)
    return {Path(p): json.loads(text) for p, text in answer["results"].items()}


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
