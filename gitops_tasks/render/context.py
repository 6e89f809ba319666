"""What a renderer knows about the app it renders for, passed down from `render()`.

Built by the caller of `gitops_tasks.render.render` (the refresh task, the CLI) from the
Application; renderers read it and never change it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..charts.store import ChartRepositories
from ..settings import RenderSettings


@dataclass(frozen=True)
class RenderContext:
    app_name: str
    # The destination namespace ("" if none): Helm's release namespace, plugins' environment.
    namespace: str
    # Commit SHA, for messages and for tools that want it (plugins get ARGOCD_APP_REVISION).
    revision: str = ""
    # Already redacted by the caller: it ends up in messages and plugin environments.
    repo_url: str = ""
    settings: RenderSettings = field(default_factory=RenderSettings)
    # Where Helm dependencies named by URL come from (None: such a dependency is an error).
    charts: ChartRepositories | None = None


def build_env(ctx: RenderContext, source_path: str, target_revision: str) -> dict[str, str]:
    """Argo CD's build environment: given to plugins as variables, substituted into jsonnet
    vars, Helm parameters and value-file names (`$ARGOCD_APP_NAME`), so Argo CD apps keep
    working unchanged."""
    return {
        "ARGOCD_APP_NAME": ctx.app_name,
        "ARGOCD_APP_NAMESPACE": ctx.namespace,
        "ARGOCD_APP_REVISION": ctx.revision,
        "ARGOCD_APP_REVISION_SHORT": ctx.revision[:7],
        "ARGOCD_APP_REVISION_SHORT_8": ctx.revision[:8],
        "ARGOCD_APP_SOURCE_PATH": source_path,
        "ARGOCD_APP_SOURCE_REPO_URL": ctx.repo_url,
        "ARGOCD_APP_SOURCE_TARGET_REVISION": target_revision,
    }


_VAR = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z0-9_]+)|(\$))")


def envsubst(text: str, env: dict[str, str]) -> str:
    """Go's `os.Expand` as Argo CD uses it: `$NAME` and `${NAME}` from `env` (unknown names
    become ""), and `$$` is a literal `$`."""
    if "$" not in text:
        return text

    def replace(m: re.Match[str]) -> str:
        if m.group(3):
            return "$"
        return env.get(m.group(1) if m.group(1) is not None else m.group(2), "")

    return _VAR.sub(replace, text)
