"""A chart's dependencies put in place before Helm renders it, as `helm dependency build` does
(Argo CD runs it before `helm template`).

Called by `helm.render_helm`. The dependencies are those of Chart.yaml (or requirements.yaml
for apiVersion v1 charts):
- already vendored in `charts/` (a directory or a .tgz whose chart has the dependency's name):
  used as they are, nothing is fetched;
- `file://path`: the chart at that path, relative to the chart, copied in; it must stay inside
  the repository (UnsafePath) and its version must satisfy the dependency's;
- `https://...` (a Helm repository) or `oci://...` (a registry): the version the constraint
  picks, or the one Chart.lock pins when it lists the dependency, downloaded through
  `charts.ChartRepositories` (on-disk store, digest checked).
`@name`/`alias:` repository references need `helm repo add` entries, which a worker does not
have: refused with a message that says to use the URL.

The chart in the tree is shared and read-only, so dependencies go into a scratch copy. Which
archives a chart's remote dependencies resolved to is remembered per (repo, commit, chart
path) on disk: a commit never changes, so a warm render of it fetches nothing, not even an
index. Condition, tags, alias and import-values are then applied by Helm's engine itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..charts.store import ChartRepositories, is_helm_repo_url
from ..charts.versions import ConstraintError, parse_constraint, parse_version
from ..errors import (
    DependencyUnreachable,
    RenderError,
    RepoUnreachable,
    SourceError,
    UnsafePath,
)
from ..log import get_logger
from ..source.urls import redact
from .context import RenderContext
from .paths import check_symlinks_reached, is_inside, relative, safe_join

_MAX_CHART_YAML = 1024 * 1024


@dataclass(frozen=True)
class Dependency:
    chart: str  # the chart that depends on it
    name: str
    version: str
    repository: str

    def describe(self) -> str:
        where = f" from {redact(self.repository)}" if self.repository else ""
        return f"chart {self.chart!r}: dependency {self.name!r} {self.version or '*'}{where}"


def _read_yaml(path: Path, *, app: str, file: str) -> dict[str, Any]:
    try:
        if path.stat().st_size > _MAX_CHART_YAML:
            raise RenderError("larger than 1 MiB", app=app, file=file)
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RenderError(f"cannot be read: {exc}", app=app, file=file) from exc
    return doc if isinstance(doc, dict) else {}


def declared(chart_dir: Path, *, app: str, file: str) -> list[Dependency]:
    """The dependencies of the chart in `chart_dir` (Chart.yaml, or requirements.yaml)."""
    chart = _read_yaml(chart_dir / "Chart.yaml", app=app, file=f"{file}/Chart.yaml")
    raw = chart.get("dependencies")
    if raw is None and chart.get("apiVersion", "v1") == "v1":
        raw = _read_yaml(chart_dir / "requirements.yaml", app=app,
                         file=f"{file}/requirements.yaml").get("dependencies")
    out: list[Dependency] = []
    for item in raw or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise RenderError("a dependency without a name", app=app, file=f"{file}/Chart.yaml")
        out.append(Dependency(str(chart.get("name", "")), item["name"],
                              str(item.get("version") or ""),
                              str(item.get("repository") or "").strip()))
    return out


def _locked(chart_dir: Path, *, app: str, file: str) -> dict[tuple[str, str], str]:
    """(name, repository) -> version pinned by Chart.lock (requirements.lock for v1)."""
    for lock_name in ("Chart.lock", "requirements.lock"):
        lock = _read_yaml(chart_dir / lock_name, app=app, file=f"{file}/{lock_name}")
        if lock:
            return {(str(d.get("name")), str(d.get("repository") or "").strip()):
                    str(d.get("version"))
                    for d in lock.get("dependencies") or [] if isinstance(d, dict)}
    return {}


def _vendored(chart_dir: Path) -> set[str]:
    """Names of the charts in `charts/`, as Helm's loader sees them."""
    names: set[str] = set()
    charts = chart_dir / "charts"
    if not charts.is_dir():
        return names
    for entry in charts.iterdir():
        if entry.is_dir() and (entry / "Chart.yaml").is_file():
            try:
                doc = yaml.safe_load((entry / "Chart.yaml").read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue  # Helm will say what is wrong with it
            if isinstance(doc, dict) and isinstance(doc.get("name"), str):
                names.add(doc["name"])
        elif entry.is_file() and entry.name.endswith(".tgz"):
            name = _archive_chart_name(entry)
            if name:
                names.add(name)
    return names


def _archive_chart_name(path: Path) -> str | None:
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "Chart.yaml" and member.isfile():
                    f = tar.extractfile(member)
                    doc = yaml.safe_load(f.read(_MAX_CHART_YAML)) if f else None
                    name = doc.get("name") if isinstance(doc, dict) else None
                    return name if isinstance(name, str) else None
    except (OSError, tarfile.TarError, yaml.YAMLError):
        return None
    return None


def prepare(tree: Path, app_dir: Path, ctx: RenderContext, scratch: Path) -> Path:
    """The chart directory to render: `app_dir` itself when every dependency is vendored,
    else a copy under `scratch` with the missing ones added to its `charts/`."""
    app = ctx.app_name
    rel = relative(tree, app_dir)
    deps = declared(app_dir, app=app, file=rel)
    have = _vendored(app_dir)
    missing = [d for d in deps if d.name not in have]
    if not missing:
        return app_dir
    chart = scratch / "chart"
    _copy_chart(tree, app_dir, chart, app=app)
    (chart / "charts").mkdir(exist_ok=True)
    locked = _locked(app_dir, app=app, file=rel)
    remote: list[Dependency] = []
    for dep in missing:
        if dep.repository.startswith("file://"):
            _copy_local(tree, app_dir, dep, chart / "charts" / dep.name, app=app, rel=rel)
        elif is_helm_repo_url(dep.repository):
            remote.append(dep)
        elif dep.repository.startswith(("@", "alias:")):
            raise RenderError(f"{dep.describe()}: repository names need `helm repo add`, which "
                              f"workers do not have; use the repository URL",
                              app=app, file=f"{rel}/Chart.yaml")
        elif not dep.repository:
            raise RenderError(f"{dep.describe()}: not in charts/ and no repository to get it "
                              f"from", app=app, file=f"{rel}/Chart.yaml")
        else:
            raise RenderError(f"{dep.describe()}: unsupported repository (use https://, "
                              f"oci:// or file://)", app=app, file=f"{rel}/Chart.yaml")
    if remote:
        _fetch_remote(remote, locked, chart / "charts", ctx, rel)
    return chart


def _copy_local(tree: Path, app_dir: Path, dep: Dependency, dest: Path, *, app: str,
                rel: str) -> None:
    target = posixpath.normpath(posixpath.join(rel, dep.repository[len("file://"):]))
    if target == ".." or target.startswith("../") or target.startswith("/"):
        raise UnsafePath(f"{dep.describe()} leaves the repository", app=app)
    src = safe_join(tree, target, app=app, what=f"file:// dependency {dep.name!r}")
    if not (src / "Chart.yaml").is_file():
        raise RenderError(f"{dep.describe()}: no chart at {target!r}", app=app,
                          file=f"{rel}/Chart.yaml")
    check_symlinks_reached(tree, [src], app=app)
    doc = _read_yaml(src / "Chart.yaml", app=app, file=f"{target}/Chart.yaml")
    if dep.version:
        found = parse_version(str(doc.get("version", "")))
        try:
            ok = found is not None and parse_constraint(dep.version).matches(found)
        except ConstraintError as exc:
            raise RenderError(f"{dep.describe()}: {exc}", app=app,
                              file=f"{rel}/Chart.yaml") from exc
        if not ok:
            raise RenderError(f"{dep.describe()}: the chart at {target!r} is version "
                              f"{doc.get('version')!r}", app=app, file=f"{rel}/Chart.yaml")
    _copy_chart(tree, src, dest, app=app)


def _copy_chart(tree: Path, src: Path, dest: Path, *, app: str) -> None:
    """Copy the chart at `src` to `dest` as Helm's loader would read it: links are followed
    (their targets were checked to be inside the repository; one that is not is refused here
    as well), so a template linked from elsewhere in the repository is in the copy too. A
    directory reached twice through links (a loop) is refused, as Helm's loader refuses it."""

    def copy_dir(source: Path, target: Path, seen: frozenset[Path]) -> None:
        real = source.resolve()
        if real in seen:
            raise UnsafePath(f"symlink loop at {relative(tree, source)!r}", app=app)
        target.mkdir(parents=True, exist_ok=True)
        for entry in sorted(source.iterdir()):
            if entry.name in (".git", ".hg", ".svn"):
                continue
            if entry.is_symlink() and not is_inside(tree, entry):
                raise UnsafePath(f"symlink {relative(tree, entry)!r} points outside the "
                                 f"repository", app=app)
            if entry.is_dir():
                copy_dir(entry, target / entry.name, seen | {real})
            elif entry.is_file():
                shutil.copyfile(entry, target / entry.name)

    copy_dir(src, dest, frozenset())


def _fetch_remote(deps: list[Dependency], locked: dict[tuple[str, str], str], dest: Path,
                  ctx: RenderContext, rel: str) -> None:
    app = ctx.app_name
    charts = ctx.charts
    if charts is None:
        raise RenderError(f"{deps[0].describe()}: this render has no access to Helm "
                          f"repositories", app=app, file=f"{rel}/Chart.yaml")
    remembered = _remembered(charts, ctx, rel)
    record: dict[str, list[str]] = {}
    log = get_logger(app=app)
    for dep in deps:
        stored, name = remembered.get(dep.name, (None, ""))
        if stored is not None and stored.is_file():
            shutil.copyfile(stored, dest / name)
            continue
        constraint = _pinned(dep, locked, app=app, rel=rel)
        try:
            ref, archive = charts.pull(dep.repository, dep.name, constraint)
        except RepoUnreachable as exc:
            raise DependencyUnreachable(f"{dep.describe()}: {exc.message}", app=app,
                                        file=f"{rel}/Chart.yaml") from exc
        except SourceError as exc:
            raise RenderError(f"{dep.describe()}: {exc.message}", app=app,
                              file=f"{rel}/Chart.yaml") from exc
        log.debug("render.helm.dependency", chart=dep.name, version=ref.version,
                  repo=redact(dep.repository))
        name = f"{dep.name}-{ref.version}.tgz"
        shutil.copyfile(archive, dest / name)
        record[dep.name] = [archive.name, name]
    if record:
        _remember(charts, ctx, rel, {**{k: [p.name, n] for k, (p, n) in remembered.items()},
                                     **record})


def _pinned(dep: Dependency, locked: dict[tuple[str, str], str], *, app: str,
            rel: str) -> str:
    """The version to fetch: Chart.lock's when it lists the dependency, which must still be
    one Chart.yaml allows (`helm dependency build` refuses a lock out of sync), else the
    constraint of Chart.yaml."""
    pinned = locked.get((dep.name, dep.repository))
    if pinned is None:
        return dep.version
    version = parse_version(pinned)
    try:
        allowed = version is not None and parse_constraint(dep.version).matches(version)
    except ConstraintError as exc:
        raise RenderError(f"{dep.describe()}: {exc}", app=app, file=f"{rel}/Chart.yaml") from exc
    if not allowed:
        raise RenderError(f"{dep.describe()}: Chart.lock pins {pinned!r}, which Chart.yaml no "
                          f"longer allows; run `helm dependency update` and commit Chart.lock",
                          app=app, file=f"{rel}/Chart.lock")
    return pinned


def _memo_path(charts: ChartRepositories, ctx: RenderContext, rel: str) -> Path | None:
    if not ctx.revision or not ctx.repo_url:
        return None  # nothing identifies the content: resolve every time
    key = hashlib.sha256(f"{ctx.repo_url}\0{ctx.revision}\0{rel}".encode()).hexdigest()[:32]
    return charts.dir / "resolved" / f"{key}.json"


def _remembered(charts: ChartRepositories, ctx: RenderContext,
                rel: str) -> dict[str, tuple[Path, str]]:
    """name -> (archive in the store, its file name in charts/) from an earlier render of
    the same commit."""
    memo = _memo_path(charts, ctx, rel)
    if memo is None or not memo.is_file():
        return {}
    try:
        doc = json.loads(memo.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    return {name: (charts.dir / entry[0], entry[1]) for name, entry in doc.items()
            if isinstance(entry, list) and len(entry) == 2
            and all(isinstance(e, str) and "/" not in e and e not in ("", ".", "..")
                    for e in entry)}


def _remember(charts: ChartRepositories, ctx: RenderContext, rel: str,
              record: dict[str, list[str]]) -> None:
    memo = _memo_path(charts, ctx, rel)
    if memo is None:
        return
    memo.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=memo.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record, sort_keys=True))
        os.replace(tmp, memo)  # readers see the old record or the new one, never half
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise
