"""The Helm engine (helm-python-sdk, Helm v4 in a C library) as a one-shot subprocess.

Run by `helm.py` as `python -I _helm_engine.py` when no `helm` binary is on PATH: a JSON
request on stdin, a JSON answer on stdout. Why a subprocess and not a call in the worker:
the engine is Go code that cannot be interrupted from Python, so only a process can be killed
at the timeout and have its output capped; and a Go runtime must not be loaded into a Celery
parent process that later forks. It costs about 0.1 s per cold render, which the render cache
pays once per commit.

It imports only the standard library and `helm_python` (run with -I, the package is not on
its path), so it stays a thin adapter: values are merged here with Helm's own parsers
(`values_from_yaml`, the `--set` parsers), and templates are rendered by Helm's engine.

Request: {"chart": dir, "release": str, "namespace": str|null, "include_crds": bool,
          "values": [{"name": str, "text": yaml}], "set": [expr], "set_string": [expr]}
Answer:  {"templates": {path: text}, "crds": [{"filename": str, "data": str}]}
      or {"error": {"type": str, "message": str, "file": str|null}}
"""

from __future__ import annotations

import json
import sys
from typing import Any


def merge_maps(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's `mergeMaps` for `-f` files: nested maps merge, anything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        current = out.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            out[key] = merge_maps(current, value)
        else:
            out[key] = value
    return out


def merge_set(base: Any, parsed: Any) -> Any:
    """Apply one parsed `--set` expression to the values, as Helm's `strvals.ParseInto` does.

    Helm parses into the existing values, so `a[1]=x` changes one element of an existing list
    and keeps the others; parsing alone yields `[None, "x"]`, where None marks "untouched".
    """
    if isinstance(base, dict) and isinstance(parsed, dict):
        out = dict(base)
        for key, value in parsed.items():
            out[key] = merge_set(out[key], value) if key in out else value
        return out
    if isinstance(base, list) and isinstance(parsed, list):
        merged = list(base) + [None] * max(0, len(parsed) - len(base))
        for i, value in enumerate(parsed):
            if value is not None:
                merged[i] = merge_set(merged[i], value) if merged[i] is not None else value
        return merged
    return parsed


def render(request: dict[str, Any]) -> dict[str, Any]:
    import helm_python as helm

    values: dict[str, Any] = {}
    for doc in request["values"]:
        try:
            values = merge_maps(values, helm.values_from_yaml(doc["text"]))
        except helm.HelmError as exc:
            return _error(exc, file=doc["name"])
    try:
        for expr in request["set"]:
            values = merge_set(values, helm.parse_set_string(expr))
        for expr in request["set_string"]:
            values = merge_set(values, helm.parse_set_string_values(expr))
        helm.validate_release_name(request["release"])
        with helm.Chart.load(request["chart"]) as chart:
            # `helm template` refuses a chart whose Chart.yaml names a dependency that is not
            # among the charts loaded from charts/ (action.CheckDependencies); the SDK's
            # render alone would leave it out without a word.
            loaded = {d.get("name") for d in chart.dependencies}
            missing = [d.get("name") for d in chart.metadata.get("dependencies") or []
                       if d.get("name") not in loaded]
            if missing:
                return {"error": {"type": "HelmChartInvalidError", "file": None,
                                  "message": "found in Chart.yaml, but missing in charts/ "
                                             f"directory: {', '.join(map(str, missing))}"}}
            templates = chart.render(values=values, name=request["release"],
                                     namespace=request["namespace"])
            crds = chart.crds if request["include_crds"] else []
    except helm.HelmError as exc:
        return _error(exc, file=None)
    return {"templates": templates,
            "crds": [{"filename": c["filename"], "data": c["data"]} for c in crds]}


def _error(exc: Exception, *, file: str | None) -> dict[str, Any]:
    return {"error": {"type": type(exc).__name__, "message": getattr(exc, "detail", str(exc)),
                      "file": file}}


def main() -> int:
    request = json.load(sys.stdin)
    json.dump(render(request), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
