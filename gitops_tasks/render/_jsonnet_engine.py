"""The jsonnet evaluator (C++ jsonnet, module `_jsonnet`) as a one-shot subprocess.

Run by `jsonnet.py` as `python -I _jsonnet_engine.py`: a JSON request on stdin, a JSON answer on
stdout. Why a subprocess and not a call in the worker: an evaluation cannot be interrupted from
Python, and a runaway program (infinite recursion, a huge `std.range`) would hang or exhaust a
worker that other apps share; a process can be killed at the timeout, its output capped and
its memory returned. It imports only the standard library and `_jsonnet`.

Imports go through the callback below, never jsonnet's default file importer, so `import
"/etc/passwd"` or `importstr "../../../x"` cannot read outside the repository tree.

Request: {"tree": dir, "files": [path], "jpaths": [dir], "ext_vars": {}, "ext_codes": {},
          "tla_vars": {}, "tla_codes": {}}
Answer:  {"results": {path: json text}}
      or {"error": {"type": "unsafe"|"eval", "message": str, "file": path}}
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def _inside(tree: str, path: str) -> bool:
    resolved = os.path.realpath(path)
    return resolved == tree or resolved.startswith(tree + os.sep)


def evaluate(request: dict[str, Any]) -> dict[str, Any]:
    import _jsonnet

    tree = os.path.realpath(request["tree"])
    jpaths = list(request["jpaths"])
    unsafe: list[str] = []

    def import_callback(base: str, rel: str) -> tuple[str, bytes]:
        if rel.startswith("/"):
            unsafe.append(f"jsonnet import {rel!r} is an absolute path")
            raise RuntimeError("absolute imports are not allowed")
        # Relative to the importing file first, then the libs, right-most first (as the
        # jsonnet command line treats -J).
        for directory in [base, *reversed(jpaths)]:
            candidate = os.path.join(directory, rel)
            if not os.path.isfile(candidate):
                continue
            if not _inside(tree, candidate):
                where = os.path.relpath(base, tree)
                unsafe.append(f"jsonnet import {rel!r} from {where!r} leaves the repository")
                raise RuntimeError("import leaves the repository")
            with open(candidate, "rb") as handle:
                return candidate, handle.read()
        raise RuntimeError("no such file in the importing directory or the jsonnet libs")

    results: dict[str, str] = {}
    for path in request["files"]:
        try:
            results[path] = _jsonnet.evaluate_file(
                path, ext_vars=request["ext_vars"], ext_codes=request["ext_codes"],
                tla_vars=request["tla_vars"], tla_codes=request["tla_codes"],
                import_callback=import_callback)
        except RuntimeError as exc:
            if unsafe:
                return {"error": {"type": "unsafe", "message": unsafe[0], "file": path}}
            return {"error": {"type": "eval", "message": str(exc), "file": path}}
    return {"results": results}


if __name__ == "__main__":
    json.dump(evaluate(json.load(sys.stdin)), sys.stdout)
