"""From an Application to the exact manifests Git says the cluster should hold.

Chains the source layer (resolve the revision, export the commit) and the render layer, with
the Redis render cache in front: a render whose key is cached does no git or tool work at all.
Called by the CLI (`gitops-tasks render`) and by the refresh/sync tasks.

A source that names a `chart` in a Helm repository (https:// or oci://) takes the other
branch: its revision is the chart version the targetRevision picks (Argo CD records the
version as the revision too), the chart archive comes from `charts.ChartRepositories` and is
rendered by the Helm renderer with the same options. A version is immutable, so the render
cache keys such a render by (repository, chart, version, options).
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from typing import Any

from .charts.archives import extract
from .charts.store import ChartRepositories, ChartVersion
from .charts.versions import is_exact
from .errors import GitOpsError
from .log import get_logger
from .model import Application
from .render import RenderContext, render
from .render.cache import RenderCache, cache_key
from .render.inputs import input_paths, kind_of
from .render.paths import scratch_dir
from .settings import RenderSettings
from .source import GitMirrors, normalize_repo_url, redact, resolve_app_path

_log = get_logger(component="manifests")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Rendered:
    # The commit SHA the manifests come from; for a chart from a Helm repository, its version.
    revision: str
    manifests: list[dict[str, Any]]
    cached: bool


class ManifestSource:
    def __init__(
        self,
        mirrors: GitMirrors,
        cache: RenderCache | None = None,
        settings: RenderSettings | None = None,
        charts: ChartRepositories | None = None,
    ) -> None:
        self.mirrors = mirrors
        self.cache = cache or RenderCache(None)
        self.settings = settings or RenderSettings()
        # Chart archives live beside the mirrors, shared by the host's workers likewise.
        self.charts = charts or ChartRepositories(
            mirrors.settings.cache_dir, timeout=self.settings.helm_timeout,
            max_bytes=self.settings.helm_max_download_bytes)

    def resolve(self, app: Application, revision: str | None = None) -> str:
        """The commit SHA the app (or an explicit revision, e.g. for rollback) points at; for
        a chart from a Helm repository, the chart version."""
        rev = revision or app.source.target_revision
        if app.source.chart:
            return self._chart_version(app, rev).version
        try:
            return self.mirrors.resolve(app.source.repo_url, rev, app=app.name)
        except GitOpsError as exc:
            raise exc.for_app(app.name) from exc

    def _context(self, app: str, namespace: str, revision: str, repo_url: str
                 ) -> RenderContext:
        return RenderContext(app_name=app, namespace=namespace, revision=revision,
                             repo_url=redact(repo_url), settings=self.settings,
                             charts=self.charts)

    def manifests(
        self, app: Application, revision: str | None = None, *, sha: str | None = None,
        fresh: bool = False,
    ) -> Rendered:
        """Render `app` at `revision` (default: its targetRevision). Pass `sha` when the caller
        already resolved it (a sweep resolves each repo once for all its apps); `fresh` (a hard
        refresh) renders again even when the cache has the result, and stores the new one."""
        started = time.perf_counter()
        if app.source.chart:
            return self._chart_manifests(app, revision, version=sha, fresh=fresh,
                                         started=started)
        if sha is None and revision and _FULL_SHA.match(revision.strip().lower()):
            # A pinned commit (an operation's revision): nothing to resolve. A commit that is
            # not in the mirror is fetched (or refused) by the export, on a cache miss.
            sha = revision.strip().lower()
        sha = sha or self.resolve(app, revision)
        source = app.source
        namespace = app.destination.namespace
        key = cache_key(normalize_repo_url(source.repo_url), sha, source, app.name, namespace)
        cached = None if fresh else self.cache.get(key)
        if cached is not None:
            return Rendered(sha, cached, True)
        # A new commit: if it changed none of the files this render reads, an earlier commit's
        # render is this one's too.
        inputs = self._inputs_key(app, sha)
        cached = None if fresh or inputs is None else self.cache.get(inputs)
        if cached is not None:
            self.cache.put(key, cached)
            _log.debug("render reused: the commit changed none of its inputs", app=app.name,
                       revision=sha)
            return Rendered(sha, cached, True)
        try:
            tree = self.mirrors.export(source.repo_url, sha, app=app.name)
            resolve_app_path(tree, source.path, app=app.name)
            objects = render(
                tree,
                source,
                self._context(app.name, namespace, sha, source.repo_url),
            )
        except GitOpsError as exc:
            raise exc.for_app(app.name) from exc
        self.cache.put(key, objects)
        if inputs is not None:
            self.cache.put(inputs, objects)
        _log.info(
            "rendered",
            app=app.name,
            revision=sha,
            objects=len(objects),
            seconds=round(time.perf_counter() - started, 3),
        )
        return Rendered(sha, objects, False)

    def _chart_version(self, app: Application, revision: str) -> ChartVersion:
        try:
            return self.charts.resolve(app.source.repo_url, app.source.chart, revision)
        except GitOpsError as exc:
            raise exc.for_app(app.name) from exc

    def _chart_manifests(self, app: Application, revision: str | None, *,
                         version: str | None, fresh: bool, started: float) -> Rendered:
        """Render a chart from a Helm repository. `version`: one the caller resolved already
        (the sweep); `revision`: an explicit one (a rollback to a recorded version)."""
        source = app.source
        namespace = app.destination.namespace
        wanted = version or revision or source.target_revision
        # An exact version needs no repository request to find its cache entry.
        ref = None if is_exact(wanted) else self._chart_version(app, wanted)
        resolved = ref.version if ref is not None else wanted.strip().removeprefix("=").strip()
        repo_id = f"{normalize_repo_url(_https(source.repo_url))}#chart={source.chart}"
        key = cache_key(repo_id, resolved, source, app.name, namespace)
        cached = None if fresh else self.cache.get(key)
        if cached is not None:
            return Rendered(resolved, cached, True)
        try:
            ref = ref or self._chart_version(app, resolved)
            archive = self.charts.archive(ref)
            with scratch_dir("chart") as scratch:
                # Unpacked, a chart may be a few times its compressed size, not unboundedly.
                chart_dir = extract(archive, scratch, chart=source.chart,
                                    max_bytes=self.settings.helm_max_download_bytes * 4)
                # Value files are relative to the chart, as Argo CD reads them for a chart
                # from a Helm repository.
                objects = render(
                    scratch,
                    dataclasses.replace(source, path=chart_dir.name),
                    self._context(app.name, namespace, ref.version, source.repo_url),
                )
        except GitOpsError as exc:
            raise exc.for_app(app.name) from exc
        self.cache.put(key, objects)
        _log.info("rendered", app=app.name, chart=source.chart, revision=ref.version,
                  objects=len(objects), seconds=round(time.perf_counter() - started, 3))
        return Rendered(ref.version, objects, False)

    def _inputs_key(self, app: Application, sha: str) -> str | None:
        """The render cache key by the content of what the render reads (see
        `render.inputs`), or None when that is unknown or there is no cache to ask."""
        if self.cache.client is None:
            return None
        source = app.source

        def read(paths: list[str]) -> dict[str, bytes | None]:
            return self.mirrors.read_files(source.repo_url, sha, paths, app=app.name)

        try:
            paths = input_paths(source, kind_of(source, read), read)
            content = None if paths is None else self.mirrors.content_id(
                source.repo_url, sha, paths, app=app.name)
        except GitOpsError as exc:
            _log.debug("render inputs unknown; keyed by the commit", app=app.name,
                       error=str(exc))
            return None
        if paths is not None and app.namespace:
            self.cache.put_inputs(app.namespace, app.name, paths)
        if content is None:
            return None
        return cache_key(normalize_repo_url(source.repo_url), f"inputs-{content}", source,
                         app.name, app.destination.namespace)


def _https(url: str) -> str:
    # normalize_repo_url knows http(s) and ssh; an oci:// registry path is the same kind of
    # identity (host and path).
    stripped = url.strip()
    return "https://" + stripped[len("oci://"):] if stripped.lower().startswith("oci://") \
        else stripped
