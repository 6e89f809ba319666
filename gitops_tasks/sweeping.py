"""The drift sweep: which apps need a refresh, found without rendering or diffing anything.

Called by the `gitops.sweep` task every reconciliation interval. For thousands of apps a sweep
where nothing moved must cost O(repos + kinds), not O(objects):

- each repository is resolved once for all its apps and revisions (one ls-remote); charts
  from Helm repositories with one index.yaml read per repository (OCI: the tags of each
  chart), not cached between sweeps;
- the live state of managed objects is read with one label-selected, metadata-only list per
  (destination, kind), not one GET per object;
- an app whose fingerprint (commit, spec, resourceVersions of its inventory) is the one its
  last refresh recorded costs nothing more; a full (hard) refresh is forced once the last one is
  older than the hard-refresh interval.

The refresh task records each app's fingerprint in Redis (`SeenStore`) from what it compared,
with the same function the sweep uses, so the two agree exactly when nothing moved.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from .charts.store import ChartRepositories, ChartVersion
from .cluster import Cluster, Destinations
from .comparison import Comparison
from .errors import GitOpsError, InvalidApplication, TransientError
from .log import get_logger
from .model import Application, keys, parse_application
from .model.resources import ResourceKey
from .settings import ReconcileSettings
from .source import GitMirrors, normalize_repo_url, redact

# {fingerprint, at}: what the last refresh of an app compared, and when (epoch seconds).
SEEN_KEY = "gitops:seen:{app}"
# A refresh that failed for good (bad manifest, unknown revision) records this kind of
# fingerprint: only a new commit or a new spec is worth another try before the hard interval.
_ERROR = "error"

_log = get_logger(component="sweep")


def app_id(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def spec_digest(obj: Mapping[str, Any]) -> str:
    """A hash of the raw spec (valid or not): a user's edit changes it, a status write or a
    sync request does not."""
    payload = json.dumps(obj.get("spec"), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def live_digest(versions: Mapping[ResourceKey, str]) -> str:
    payload = json.dumps(sorted((str(k), v) for k, v in versions.items()),
                         separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def fingerprint(revision: str, spec: str, live: str) -> str:
    return f"{revision}|{spec}|{live}"


def error_fingerprint(revision: str, spec: str) -> str:
    return f"{_ERROR}|{revision}|{spec}"


def recorded_spec(value: str) -> str | None:
    """The spec digest inside a recorded fingerprint (either kind)."""
    parts = value.split("|")
    if len(parts) != 3:
        return None
    return parts[2] if parts[0] == _ERROR else parts[1]


def inventory(obj: Mapping[str, Any]) -> dict[ResourceKey, str]:
    """The app's recorded resources: key -> apiVersion."""
    out: dict[ResourceKey, str] = {}
    for r in ((obj.get("status") or {}).get("resources") or []):
        if not isinstance(r, dict) or not r.get("kind") or not r.get("name"):
            continue
        group, version = str(r.get("group") or ""), str(r.get("version") or "")
        if not version:
            continue
        out[ResourceKey(group, str(r["kind"]), str(r.get("namespace") or ""),
                        str(r["name"]))] = f"{group}/{version}" if group else version
    return out


def labelled_versions(app_name: str, keys_wanted: Iterable[ResourceKey],
                      live: Mapping[ResourceKey, Mapping[str, Any]]) -> dict[ResourceKey, str]:
    """resourceVersions of the wanted keys among `live` objects that carry the app's label:
    what both the sweep (from metadata lists) and the refresh (from its comparison) see."""
    label = keys.app_label_value(app_name)
    out = {}
    for key in keys_wanted:
        obj = live.get(key)
        meta = (obj or {}).get("metadata") or {}
        if obj is not None and (meta.get("labels") or {}).get(keys.APP_LABEL) == label:
            out[key] = str(meta.get("resourceVersion") or "")
    return out


def compared_fingerprint(cmp: Comparison, obj: Mapping[str, Any]) -> str:
    """The fingerprint of what `cmp` compared, for the Application `obj` (its raw spec): the
    one the sweep computes from metadata lists when nothing moved since."""
    entries = {ResourceKey(e.get("group", ""), e["kind"], e.get("namespace", ""), e["name"])
               for e in cmp.resource_entries()}
    versions = labelled_versions(cmp.app.name, entries, cmp.live)
    return fingerprint(cmp.revision, spec_digest(obj), live_digest(versions))


class SeenStore:
    """What each app's last refresh compared; Redis errors are misses (a refresh happens)."""

    def __init__(self, client: redis.Redis | None) -> None:
        self.client = client

    def put(self, app: str, value: str, at: float | None = None) -> None:
        if self.client is None:
            return
        try:
            self.client.hset(SEEN_KEY.format(app=app), mapping={
                "fingerprint": value, "at": str(time.time() if at is None else at)})
        except redis.RedisError as exc:
            _log.warning("could not record the refresh fingerprint", app=app, error=str(exc))

    def get_many(self, apps: list[str]) -> dict[str, tuple[str, float]]:
        if self.client is None or not apps:
            return {}
        try:
            pipe = self.client.pipeline(transaction=False)
            for app in apps:
                pipe.hgetall(SEEN_KEY.format(app=app))
            rows = pipe.execute()
        except redis.RedisError as exc:
            _log.warning("could not read refresh fingerprints", error=str(exc))
            return {}
        out = {}
        for app, row in zip(apps, rows, strict=True):
            if row:
                got = {(k.decode() if isinstance(k, bytes) else k):
                       (v.decode() if isinstance(v, bytes) else v) for k, v in row.items()}
                try:
                    out[app] = (got.get("fingerprint", ""), float(got.get("at", 0)))
                except ValueError:
                    continue
        return out

    def forget(self, app: str) -> None:
        if self.client is not None:
            with contextlib.suppress(redis.RedisError):
                self.client.delete(SEEN_KEY.format(app=app))


@dataclass(frozen=True)
class Due:
    name: str
    sha: str | None  # the commit the sweep resolved, so the refresh needs no ls-remote
    hard: bool
    reason: str


@dataclass
class SweepResult:
    due: list[Due] = field(default_factory=list)
    checked: int = 0
    repos: int = 0
    lists: int = 0
    problems: list[str] = field(default_factory=list)
    # (repoURL as written, targetRevision) -> commit, for the refreshes the sweep queues.
    shas: dict[tuple[str, str], str] = field(default_factory=dict)


@dataclass
class _App:
    obj: dict[str, Any]
    app: Application | None
    spec: str
    sha: str | None = None
    sha_error: GitOpsError | None = None
    cluster: Cluster | None = None


class Sweeper:
    def __init__(self, mirrors: GitMirrors, destinations: Destinations, seen: SeenStore,
                 settings: ReconcileSettings, *, namespace: str,
                 clock: Callable[[], float] = time.time,
                 charts: ChartRepositories | None = None) -> None:
        self.mirrors = mirrors
        self.charts = charts
        self.destinations = destinations
        self.seen = seen
        self.settings = settings
        self.namespace = namespace
        self.clock = clock

    def sweep(self, objs: list[dict[str, Any]]) -> SweepResult:
        result = SweepResult()
        apps: dict[str, _App] = {}
        for obj in objs:
            meta = obj.get("metadata") or {}
            if meta.get("deletionTimestamp"):
                continue  # the deletion path handles it
            try:
                app: Application | None = parse_application(obj)
            except InvalidApplication:
                app = None
            apps[str(meta.get("name"))] = _App(obj, app, spec_digest(obj))
        result.checked = len(apps)
        result.repos = self._resolve(apps, result)
        live = self._list_live(apps, result)
        seen = self.seen.get_many([app_id(self.namespace, n) for n in apps])
        now = self.clock()
        for name, entry in apps.items():
            due = self._due(name, entry, live, seen.get(app_id(self.namespace, name)), now)
            if due is not None:
                result.due.append(due)
        return result

    def _resolve(self, apps: dict[str, _App], result: SweepResult) -> int:
        charts = self._resolve_charts(apps, result)
        by_repo: dict[str, tuple[str, set[str]]] = {}
        for entry in apps.values():
            if entry.app is None or entry.app.source.chart:
                continue
            source = entry.app.source
            repo = normalize_repo_url(source.repo_url)
            by_repo.setdefault(repo, (source.repo_url, set()))[1].add(source.target_revision)
        shas: dict[tuple[str, str], str | GitOpsError] = {}
        for repo, (url, revisions) in by_repo.items():
            for revision, sha in self.mirrors.resolve_many(url, sorted(revisions)).items():
                shas[(repo, revision)] = sha
                if isinstance(sha, GitOpsError):
                    result.problems.append(f"{url} {revision}: {sha.message}")
                else:
                    result.shas[(url, revision)] = sha
        for entry in apps.values():
            if entry.app is None or entry.app.source.chart:
                continue
            got = shas.get((normalize_repo_url(entry.app.source.repo_url),
                            entry.app.source.target_revision))
            if isinstance(got, str):
                entry.sha = got
            else:
                entry.sha_error = got
        return len(by_repo) + charts

    def _resolve_charts(self, apps: dict[str, _App], result: SweepResult) -> int:
        """The chart version of each app whose source is a Helm repository (its "sha" for the
        fingerprint). Not published for the refreshes: (repoURL, targetRevision) does not
        name one chart, so each refresh resolves its own."""
        wanted = {entry.app.source.chart_key for entry in apps.values()
                  if entry.app is not None and entry.app.source.chart}
        if not wanted:
            return 0
        if self.charts is None:
            found: dict[tuple[str, str, str], ChartVersion | GitOpsError] = dict.fromkeys(
                wanted, GitOpsError("no access to Helm repositories configured"))
        else:
            found = self.charts.resolve_all(wanted)
        for key, got in found.items():
            if isinstance(got, GitOpsError):
                result.problems.append(f"{redact(key[0])} {key[1]} {key[2]}: {got.message}")
        for entry in apps.values():
            if entry.app is None or not entry.app.source.chart:
                continue
            got = found[entry.app.source.chart_key]
            if isinstance(got, GitOpsError):
                entry.sha_error = got
            else:
                entry.sha = got.version
        return len({(url, chart) for url, chart, _ in found})

    def _list_live(self, apps: dict[str, _App], result: SweepResult
                   ) -> dict[str, dict[ResourceKey, dict[str, Any]]]:
        """{cluster name: {key: metadata-only object}} for every kind some app recorded, one
        list per (destination, kind). A kind whose list failed is left out (its apps are
        compared again next sweep)."""
        kinds: dict[str, tuple[Cluster, set[tuple[str, str]]]] = {}
        for entry in apps.values():
            if entry.app is None:
                continue
            try:
                entry.cluster = self.destinations.resolve(entry.app.destination)
            except GitOpsError as exc:
                result.problems.append(f"{entry.app.name}: {exc.message}")
                continue
            wanted = kinds.setdefault(entry.cluster.name, (entry.cluster, set()))[1]
            for key, api_version in inventory(entry.obj).items():
                wanted.add((api_version, key.kind))
        live: dict[str, dict[ResourceKey, dict[str, Any]]] = {}
        for name, (cluster, wanted) in kinds.items():
            objects = live.setdefault(name, {})
            for api_version, kind in sorted(wanted):
                try:
                    items, _ = cluster.list_metadata(api_version, kind,
                                                     label_selector=keys.APP_LABEL)
                except GitOpsError as exc:
                    if isinstance(exc, TransientError):
                        result.problems.append(f"list {kind} on {name}: {exc.message}")
                    continue
                result.lists += 1
                for item in items:
                    objects[ResourceKey.of(item)] = item
        return live

    def _due(self, name: str, entry: _App, live: dict[str, dict[ResourceKey, dict[str, Any]]],
             seen: tuple[str, float] | None, now: float) -> Due | None:
        if seen is None:
            return Due(name, entry.sha, False, "not refreshed yet")
        recorded, at = seen
        stale = now - at >= self.settings.hard_interval
        if entry.app is None or entry.sha is None or entry.cluster is None:
            # Invalid, unresolvable or undeliverable: its refresh would fail the same way.
            if stale:
                return Due(name, None, True, "hard refresh interval (last refresh failed)")
            if recorded.startswith(_ERROR) and recorded.endswith("|" + entry.spec):
                return None
            return Due(name, None, False, "the Application changed")
        if recorded.startswith(_ERROR):
            if recorded != error_fingerprint(entry.sha, entry.spec):
                return Due(name, entry.sha, False, "new commit or spec since a failed refresh")
            return Due(name, entry.sha, True, "hard refresh interval") if stale else None
        versions = labelled_versions(name, inventory(entry.obj),
                                     live.get(entry.cluster.name, {}))
        current = fingerprint(entry.sha, entry.spec, live_digest(versions))
        if current != recorded:
            revision = recorded.split("|", 1)[0]
            reason = (f"new commit {entry.sha[:12]}" if revision != entry.sha else
                      "the Application changed" if recorded.split("|")[1] != entry.spec else
                      "live objects changed")
            return Due(name, entry.sha, False, reason)
        if stale:
            return Due(name, entry.sha, True, "hard refresh interval")
        return None
