"""Manifests from a source tree: `render(tree, source, ctx) -> list[dict]`.

Called by the refresh task (through the render cache, keyed by repo, commit, path and
`Source.options_hash()`) and by the `gitops-tasks render` CLI. `tree` is the repository root of
one exported commit, shared and read-only: no renderer writes into it (tools that must write get
a scratch copy).

The renderer is the one the source names (`directory`, `helm`, `kustomize`, `plugin`), else it
is detected from the app directory: a kustomization file means Kustomize, a Chart.yaml means
Helm, anything else is a plain directory (YAML, JSON, Jsonnet).

Every returned object is validated (apiVersion, kind, metadata.name) and carries the app's
tracking annotation and label (see `tracking`). Errors are RenderError (or its ToolTimeout) or
UnsafePath/SourceTooLarge, always naming the app, and the file and line where known.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import GitOpsError, RenderError
from ..log import get_logger
from ..model.application import Source
from .context import RenderContext
from .directory import render_directory
from .helm import render_helm
from .inputs import declared_kind
from .kustomize import find_kustomization, render_kustomize
from .paths import require_dir
from .plugin import render_plugin
from .tracking import stamp

__all__ = ["RenderContext", "detect", "render"]

Renderer = Callable[[Path, Path, Source, RenderContext], list[dict[str, Any]]]

_RENDERERS: dict[str, Renderer] = {
    "directory": render_directory,
    "helm": render_helm,
    "kustomize": render_kustomize,
    "plugin": render_plugin,
}


def detect(app_dir: Path, source: Source) -> str:
    """The renderer for a source: the one it names, else what the files say."""
    declared = declared_kind(source)
    if declared is not None:
        return declared
    if find_kustomization(app_dir) is not None:
        return "kustomize"
    if (app_dir / "Chart.yaml").is_file():
        return "helm"
    return "directory"


def render(tree: Path, source: Source, ctx: RenderContext) -> list[dict[str, Any]]:
    """The objects the app at `tree/source.path` renders to, stamped with the app's keys."""
    log = get_logger(app=ctx.app_name, revision=ctx.revision)
    started = time.monotonic()
    try:
        root = tree.resolve(strict=True)
    except OSError as exc:
        raise RenderError(f"source tree {tree} is missing", app=ctx.app_name) from exc
    try:
        app_dir = require_dir(root, source.path, app=ctx.app_name)
        kind = detect(app_dir, source)
        objects = _RENDERERS[kind](root, app_dir, source, ctx)
        for obj in objects:
            stamp(obj, ctx.app_name)
    except GitOpsError as exc:
        # Helpers deep down (glob compilation, tracking) may not know the app; say it here.
        exc.for_app(ctx.app_name)
        raise
    log.debug("render.done", renderer=kind, path=source.path, objects=len(objects),
              seconds=round(time.monotonic() - started, 3))
    return objects
