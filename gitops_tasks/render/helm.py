"""The Helm renderer: the real Helm engine, never a re-implementation of it.

Called by `render()` for apps with a `helm` source or a `Chart.yaml`.

Which Helm: the `helm` binary when on PATH (`helm template`, as Argo CD runs it); otherwise the
Helm v4 engine from helm-python-sdk, run in a subprocess (`_helm_engine.py`, see there why).
Both get the same inputs, prepared here:

- values in Helm's order: the chart's values.yaml (Helm applies it itself) < `valueFiles` in
  order < inline `values` < `parameters` (`--set`, then `--set-string` for forceString ones,
  which is the order Helm applies its flags in);
- value files are relative to the chart directory, or to the repo root with a leading `/` (as
  Argo CD reads them); they may leave the chart dir but never the repository (UnsafePath); a
  missing one is an error unless `ignoreMissingValueFiles`; remote (URL) value files are
  refused, a worker must not fetch arbitrary URLs named in Git;
- `$ARGOCD_APP_*` build variables are substituted in value-file names and parameter values,
  and commas in parameter values are escaped unless the value is a `{a,b}` list (Argo CD);
- release name = `releaseName` or the app name; namespace = the destination namespace;
- CRDs from `crds/` (chart and subcharts) come first unless `skipCrds`;
- dependencies that Chart.yaml lists but `charts/` lacks are put in place first
  (`helm_deps`: file://, Helm repositories, OCI registries, Chart.lock), and one still
  missing is an error, as with `helm template`, never a render without it.

With the SDK the output order is: CRDs, then templates by path, documents in template order
(`helm template` orders by kind instead; the sync layer orders objects itself either way).
NOTES.txt and partials are not manifests; test hooks are kept, as `helm template` keeps them.
"""

from __future__ import annotations

import json
import posixpath
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from ..errors import RenderError, UnsafePath
from ..log import get_logger
from ..model.application import HelmSource, Source
from . import _helm_engine, helm_deps, manifests, tools
from .context import RenderContext, build_env, envsubst
from .paths import check_symlinks_reached, safe_join, scratch_dir

# `bad/templates/a.yaml:6:15` or `parse error at (bad/templates/a.yaml:6)`: chart-relative.
_TEMPLATE_LOCATION = re.compile(r"([^\s():\"']+/(?:templates|charts|crds)/[^\s():\"']+):(\d+)")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


def render_helm(tree: Path, app_dir: Path, source: Source,
                ctx: RenderContext) -> list[dict[str, Any]]:
    app = ctx.app_name
    opts = source.helm or HelmSource()
    if not (app_dir / "Chart.yaml").is_file():
        raise RenderError("not a Helm chart: no Chart.yaml", app=app, file=source.path)
    # Helm's loader follows symlinks and templates can read any chart file (.Files.Get).
    check_symlinks_reached(tree, [app_dir], app=app)
    env = build_env(ctx, source.path, source.target_revision)
    value_docs = _value_files(tree, source, opts, env, app)
    if opts.values.strip():
        value_docs.append(("<inline values>", opts.values))
    set_exprs = [f"{p.name}={_escape_commas(envsubst(p.value, env))}"
                 for p in opts.parameters if not p.force_string]
    set_string_exprs = [f"{p.name}={_escape_commas(envsubst(p.value, env))}"
                        for p in opts.parameters if p.force_string]
    release = opts.release_name or app
    helm_bin = shutil.which("helm")
    with scratch_dir("helm") as scratch:
        chart_dir = helm_deps.prepare(tree, app_dir, ctx, scratch)
        if helm_bin:
            return _with_binary(helm_bin, tree, chart_dir, source, opts, ctx, scratch, release,
                                value_docs, set_exprs, set_string_exprs)
        return _with_sdk(tree, chart_dir, source, opts, ctx, scratch, release, value_docs,
                         set_exprs, set_string_exprs)


def _value_files(tree: Path, source: Source, opts: HelmSource, env: dict[str, str],
                 app: str) -> list[tuple[str, str]]:
    """(repo path, text) of each value file, checked to stay inside the tree."""
    log = get_logger(app=app)
    docs: list[tuple[str, str]] = []
    for raw in opts.value_files:
        name = envsubst(raw, env)
        if "://" in name:
            raise RenderError(f"remote value file {name!r} is not supported; commit it to the "
                              f"repository", app=app, file=source.path)
        if name.startswith("/"):
            rel = posixpath.normpath(name.lstrip("/"))
        else:
            rel = posixpath.normpath(posixpath.join(source.path, name))
        if rel == ".." or rel.startswith("../"):
            raise UnsafePath(f"value file {name!r} leaves the repository", app=app)
        path = safe_join(tree, rel, app=app, what="value file")
        if not path.is_file():
            if opts.ignore_missing_value_files:
                log.debug("render.helm.value_file_missing", file=rel)
                continue
            raise RenderError(f"value file {name!r} not found", app=app, file=rel)
        try:
            docs.append((rel, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError as exc:
            raise RenderError("value file is not UTF-8 text", app=app, file=rel) from exc
    return docs


def _escape_commas(value: str) -> str:
    # Helm's --set splits on commas; a `{a,b}` value is a list on purpose (Argo CD's rule).
    if value.startswith("{") and value.endswith("}"):
        return value
    return _UNESCAPED_COMMA.sub(r"\\,", value)


def _with_sdk(tree: Path, app_dir: Path, source: Source, opts: HelmSource, ctx: RenderContext,
              scratch: Path, release: str, value_docs: list[tuple[str, str]],
              set_exprs: list[str], set_string_exprs: list[str]) -> list[dict[str, Any]]:
    app = ctx.app_name
    request = {
        "chart": str(app_dir), "release": release, "namespace": ctx.namespace or None,
        "include_crds": not opts.skip_crds,
        "values": [{"name": name, "text": text} for name, text in value_docs],
        "set": set_exprs, "set_string": set_string_exprs,
    }
    result = tools.run(
        [sys.executable, "-I", _helm_engine.__file__], tool="helm", app=app, cwd=scratch,
        env=tools.clean_env(scratch), timeout=ctx.settings.tool_timeout,
        max_output=ctx.settings.max_output_bytes, stdin=json.dumps(request).encode())
    if result.returncode != 0:
        raise RenderError(f"helm engine failed: {result.stderr_tail()}", app=app,
                          file=source.path)
    answer = json.loads(result.stdout)
    if "error" in answer:
        err = answer["error"]
        message = str(err["message"]).replace(f"{tree}/", "").replace(
            f"{scratch}/chart", source.path)
        if err.get("file"):
            raise RenderError(f"helm: {message}", app=app, file=err["file"])
        raise _template_error(message, source, app)
    out: list[dict[str, Any]] = []
    for crd in sorted(answer["crds"], key=lambda c: str(c["filename"])):
        out.extend(manifests.objects_from_text(
            crd["data"], file=_repo_path(source, crd["filename"]), app=app))
    templates: dict[str, str] = answer["templates"]
    for path in sorted(templates):
        text = templates[path]
        if path.endswith("NOTES.txt") or posixpath.basename(path).startswith("_") \
                or not text.strip():
            continue
        out.extend(manifests.objects_from_text(text, file=_repo_path(source, path), app=app))
    return out


def _with_binary(helm_bin: str, tree: Path, app_dir: Path, source: Source, opts: HelmSource,
                 ctx: RenderContext, scratch: Path, release: str,
                 value_docs: list[tuple[str, str]], set_exprs: list[str],
                 set_string_exprs: list[str]) -> list[dict[str, Any]]:
    app = ctx.app_name
    argv = [helm_bin, "template", release, str(app_dir)]
    if ctx.namespace:
        argv += ["--namespace", ctx.namespace]
    if not opts.skip_crds:
        argv.append("--include-crds")
    # Values go through files we wrote (already read and checked), so helm never opens a
    # path from Git itself.
    for i, (_, text) in enumerate(value_docs):
        values_file = scratch / f"values-{i}.yaml"
        values_file.write_text(text, encoding="utf-8")
        argv += ["--values", str(values_file)]
    for expr in set_exprs:
        argv += ["--set", expr]
    for expr in set_string_exprs:
        argv += ["--set-string", expr]
    home = scratch / "home"
    home.mkdir()
    env = tools.clean_env(home, {
        "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    })
    result = tools.run(argv, tool="helm", app=app, cwd=home, env=env,
                       timeout=ctx.settings.tool_timeout,
                       max_output=ctx.settings.max_output_bytes)
    if result.returncode != 0:
        message = result.stderr_tail().replace(f"{tree}/", "").replace(
            f"{scratch}/chart", source.path).removeprefix("Error: ")
        for i, (name, _) in enumerate(value_docs):
            message = message.replace(str(scratch / f"values-{i}.yaml"), name)
        raise _template_error(message, source, app)
    return manifests.objects_from_text(result.stdout.decode("utf-8", "replace"),
                                       file=f"{source.path} (helm template)",
                                       app=app)


def _repo_path(source: Source, chart_path: str) -> str:
    """Helm names files "<chart name>/templates/x.yaml"; the repo knows "<app path>/templates/
    x.yaml" (the chart name need not match the directory name)."""
    _, _, inside = chart_path.partition("/")
    return posixpath.normpath(posixpath.join(source.path, inside or chart_path))


def _template_error(message: str, source: Source, app: str) -> RenderError:
    m = _TEMPLATE_LOCATION.search(message)
    file, line = (source.path, None) if m is None else (_repo_path(source, m.group(1)),
                                                        int(m.group(2)))
    summary = " ".join(part.strip() for part in message.splitlines() if part.strip())
    return RenderError(f"helm: {summary}", app=app, file=file, line=line)
