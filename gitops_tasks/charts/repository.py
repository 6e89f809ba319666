"""HTTP(S) Helm chart repositories: `index.yaml`, the version a constraint picks in it, and
the chart archive it points at, as Helm's repo and downloader packages read them.

Called by `store.ChartRepositories`. The index is read from `<repo>/index.yaml`; an entry's
`urls[0]` is resolved against the repository URL when relative. Credentials go only to the
repository's own scheme and host (Helm's default, `passCredentials: false`).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

import yaml

from ..source.urls import redact
from . import transfer
from .transfer import Auth, ChartNotFound, ChartRepoError, Limits
from .versions import ConstraintError, parse_constraint

try:  # the C loader reads a large index (thousands of entries) many times faster
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


@dataclass(frozen=True)
class IndexEntry:
    version: str
    url: str  # absolute
    digest: str  # "sha256:<hex>", or "" when the index has none


def index_url(repo_url: str) -> str:
    return repo_url.rstrip("/") + "/index.yaml"


def fetch_index(repo_url: str, auth: Auth | None, limits: Limits) -> dict[str, Any]:
    """The parsed `entries` of the repository's index."""
    resp = transfer.get(index_url(repo_url), auth=auth, limits=limits)
    try:
        doc = yaml.load(resp.body, Loader=_Loader)  # a safe loader (C or Python)
    except yaml.YAMLError as exc:
        raise ChartRepoError(f"{redact(index_url(repo_url))} is not a valid index: "
                             f"{str(exc).splitlines()[0]}") from None
    entries = doc.get("entries") if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise ChartRepoError(f"{redact(index_url(repo_url))} is not a Helm repository index "
                             f"(no entries)")
    return entries


def pick(entries: dict[str, Any], repo_url: str, chart: str, constraint: str) -> IndexEntry:
    """The highest version of `chart` that `constraint` allows."""
    versions = entries.get(chart)
    if not isinstance(versions, list) or not versions:
        raise ChartNotFound(f"chart {chart!r} not found in {redact(repo_url)}")
    by_version: dict[str, dict[str, Any]] = {}
    for item in versions:
        if isinstance(item, dict) and isinstance(item.get("version"), str):
            by_version.setdefault(item["version"], item)
    try:
        best = parse_constraint(constraint).best(by_version)
    except ConstraintError as exc:
        raise ChartRepoError(str(exc)) from None
    if best is None:
        raise ChartNotFound(f"no version of chart {chart!r} in {redact(repo_url)} matches "
                            f"{constraint or '*'!r}")
    item = by_version[best]
    urls = item.get("urls")
    if not isinstance(urls, list) or not urls or not isinstance(urls[0], str):
        raise ChartRepoError(f"chart {chart!r} {best} in {redact(repo_url)} has no download URL")
    digest = item.get("digest")
    return IndexEntry(
        version=best,
        url=urllib.parse.urljoin(repo_url.rstrip("/") + "/", urls[0]),
        digest=f"sha256:{digest}" if isinstance(digest, str) and digest else "",
    )


def download(repo_url: str, entry: IndexEntry, auth: Auth | None, limits: Limits) -> bytes:
    same_origin = _origin(entry.url) == _origin(repo_url)
    return transfer.get(entry.url, auth=auth if same_origin else None, limits=limits).body


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc.rpartition("@")[2].lower()
