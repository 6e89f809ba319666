"""The config-management-plugin renderer: an operator-configured command whose stdout is YAML.

Called by `render()` for apps with a `plugin` source. Only commands named in the settings
(`RenderSettings.plugins`, name -> argv) can run; an Application picks one by name and can pass
environment variables, never a command line.

The command runs, as in Argo CD, in the app's directory of the repository, here of a scratch
copy of it (the whole tree, so `../` references work; the shared tree stays untouched whatever
the plugin writes). Its environment is minimal: PATH, a private HOME, Argo CD's build variables
(ARGOCD_APP_NAME, ARGOCD_APP_NAMESPACE, ARGOCD_APP_REVISION, ...) and the Application's `env`
entries prefixed with ARGOCD_ENV_ (Argo CD's rule, so an Application cannot override PATH or the
build variables). A non-zero exit is a RenderError carrying the end of its stderr; a command
that runs past the tool timeout is killed with everything it started (ToolTimeout).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import RenderError
from ..model.application import PluginSource, Source
from . import manifests, tools
from .context import RenderContext, build_env, envsubst
from .paths import check_symlinks_reached, copy_tree, scratch_dir

ENV_PREFIX = "ARGOCD_ENV_"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def render_plugin(tree: Path, app_dir: Path, source: Source,
                  ctx: RenderContext) -> list[dict[str, Any]]:
    app = ctx.app_name
    plugin = source.plugin or PluginSource()
    argv = ctx.settings.plugins.get(plugin.name)
    if not argv:
        configured = ", ".join(sorted(ctx.settings.plugins)) or "none"
        raise RenderError(f"plugin {plugin.name!r} is not configured (configured: "
                          f"{configured})", app=app)
    build_vars = build_env(ctx, source.path, source.target_revision)
    extra = dict(build_vars)
    for name, value in plugin.env:
        if not _ENV_NAME.match(name):
            raise RenderError(f"plugin env name {name!r} is not a valid variable name",
                              app=app)
        extra[ENV_PREFIX + name] = envsubst(value, build_vars)
    # A plugin may read the whole tree: it gets a copy without the links that leave the tree.
    # Those under its own path are refused (they are its app's mistake); those elsewhere are
    # left out, so another team's bad link in a monorepo does not stop this app.
    check_symlinks_reached(tree, [app_dir], app=app)
    with scratch_dir("plugin") as scratch:
        copy = scratch / "tree"
        copy_tree(tree, copy, app=app, outside=app_dir)
        home = scratch / "home"
        home.mkdir()
        result = tools.run(argv, tool=f"plugin {plugin.name}", app=app,
                           cwd=copy / app_dir.relative_to(tree),
                           env=tools.clean_env(home, extra),
                           timeout=ctx.settings.tool_timeout,
                           max_output=ctx.settings.max_output_bytes)
    if result.returncode != 0:
        raise RenderError(f"plugin {plugin.name} exited with status {result.returncode}: "
                          f"{result.stderr_tail()}", app=app, file=source.path)
    return manifests.objects_from_text(result.stdout.decode("utf-8", "replace"),
                                       file=f"{source.path} (plugin {plugin.name} output)",
                                       app=app)
