"""Charts from Helm repositories, resolved and downloaded once per host.

`ChartRepositories` is what the rest of the engine uses: `resolve` turns (repository, chart,
version constraint) into one `ChartVersion`, `archive` gives the chart's .tgz from the on-disk
store under the Git cache dir, downloading it (and checking its digest) only when the store does
not have it yet. Entries are keyed by (repository URL, chart, version, digest): a version that a
repository re-publishes with other content has another digest, so another entry.

Called by the render layer (`render.helm_deps`) and by `manifests` (chart sources).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import GitOpsError
from ..log import get_logger
from ..source.credentials import RepoCredentials
from ..source.urls import normalize_repo_url, redact, split_userinfo
from . import oci, repository
from .transfer import Auth, ChartRepoError, Limits

HelmCredentialLookup = Callable[[str], RepoCredentials | None]

_log = get_logger(component="charts")


@dataclass(frozen=True)
class ChartVersion:
    repo_url: str  # as the Application or Chart.yaml spells it (may hold credentials)
    chart: str
    version: str
    digest: str  # "sha256:<hex>", or "" for an index entry without one
    url: str = ""  # the archive's URL (HTTP repositories)

    def describe(self) -> str:
        return f"{self.chart} {self.version} from {redact(self.repo_url)}"


def is_oci(repo_url: str) -> bool:
    return repo_url.strip().lower().startswith("oci://")


def is_helm_repo_url(repo_url: str) -> bool:
    """Whether a URL can name a Helm repository: http(s) or oci://."""
    lowered = repo_url.strip().lower()
    return lowered.startswith(("http://", "https://", "oci://"))


def _digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ChartRepositories:
    def __init__(self, cache_dir: Path, credentials: HelmCredentialLookup | None = None, *,
                 timeout: float = 60.0, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.dir = cache_dir / "charts"
        self._credentials = credentials
        self.limits = Limits(timeout=timeout, max_bytes=max_bytes)

    # ------------------------------------------------------------------------- public

    def resolve(self, repo_url: str, chart: str, constraint: str) -> ChartVersion:
        """The version of `chart` in `repo_url` that `constraint` picks. Raises SourceError
        subclasses: RepoUnreachable, AuthenticationFailed, ChartNotFound, ChartRepoError."""
        if is_oci(repo_url):
            registry = self._registry(repo_url, chart)
            version = registry.resolve(constraint)
            layer = registry.layer(version)
            return ChartVersion(repo_url, chart, version, layer.digest)
        url, auth = self._http(repo_url)
        entries = repository.fetch_index(url, auth, self.limits)
        entry = repository.pick(entries, url, chart, constraint)
        return ChartVersion(repo_url, chart, entry.version, entry.digest, entry.url)

    def resolve_all(self, wanted: Iterable[tuple[str, str, str]]
                    ) -> dict[tuple[str, str, str], ChartVersion | GitOpsError]:
        """`resolve` for many (repository, chart, constraint) at once, reading each HTTP
        repository's index once (a sweep over many charts of one repository); an error is
        the value of the keys it concerns instead of being raised."""
        out: dict[tuple[str, str, str], ChartVersion | GitOpsError] = {}
        indexes: dict[str, dict[str, Any] | GitOpsError] = {}
        for key in dict.fromkeys(wanted):
            repo_url, chart, constraint = key
            try:
                if is_oci(repo_url):
                    out[key] = self.resolve(repo_url, chart, constraint)
                    continue
                url, auth = self._http(repo_url)
                if url not in indexes:
                    try:
                        indexes[url] = repository.fetch_index(url, auth, self.limits)
                    except GitOpsError as exc:
                        indexes[url] = exc
                entries = indexes[url]
                if isinstance(entries, GitOpsError):
                    out[key] = entries
                    continue
                entry = repository.pick(entries, url, chart, constraint)
                out[key] = ChartVersion(repo_url, chart, entry.version, entry.digest, entry.url)
            except GitOpsError as exc:
                out[key] = exc
        return out

    def archive(self, ref: ChartVersion) -> Path:
        """The chart's .tgz, from the store or downloaded into it."""
        path = self._path(ref)
        if path.is_file():
            if not ref.digest or _digest_of(path.read_bytes()) == ref.digest:
                return path
            _log.warning("dropping a corrupt chart archive", chart=ref.chart,
                         version=ref.version, repo=redact(ref.repo_url))
        data = self._download(ref)
        if ref.digest and _digest_of(data) != ref.digest:
            raise ChartRepoError(f"chart {ref.describe()}: digest mismatch (the index says "
                                 f"{ref.digest}, the download is {_digest_of(data)})")
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".tgz")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)  # atomic: other workers never see half an archive
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            raise
        _log.info("chart downloaded", chart=ref.chart, version=ref.version,
                  repo=redact(ref.repo_url), bytes=len(data))
        return path

    def pull(self, repo_url: str, chart: str, constraint: str) -> tuple[ChartVersion, Path]:
        ref = self.resolve(repo_url, chart, constraint)
        return ref, self.archive(ref)

    # ------------------------------------------------------------------------ private

    def _path(self, ref: ChartVersion) -> Path:
        key = "\0".join((normalize_repo_url(_without_scheme_prefix(ref.repo_url)), ref.chart,
                         ref.version, ref.digest))
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in ref.chart)[:60]
        return self.dir / f"{safe}-{digest}.tgz"

    def _download(self, ref: ChartVersion) -> bytes:
        if is_oci(ref.repo_url):
            registry = self._registry(ref.repo_url, ref.chart)
            digest = ref.digest or registry.layer(ref.version).digest
            data = registry.blob(digest)
            if _digest_of(data) != digest:
                raise ChartRepoError(f"chart {ref.describe()}: digest mismatch (the manifest "
                                     f"says {digest}, the blob is {_digest_of(data)})")
            return data
        url, auth = self._http(ref.repo_url)
        entry = repository.IndexEntry(ref.version, ref.url, ref.digest)
        return repository.download(url, entry, auth, self.limits)

    def _creds(self, repo_url: str) -> RepoCredentials | None:
        return self._credentials(repo_url) if self._credentials else None

    def _http(self, repo_url: str) -> tuple[str, Auth | None]:
        url, username, password = split_userinfo(repo_url)
        creds = self._creds(url)
        if creds is not None and creds.has_secret:
            username, password = creds.username, creds.password
        return url, Auth(username, password) if (username or password) else None

    def _registry(self, repo_url: str, chart: str) -> oci.Registry:
        creds = self._creds(repo_url)
        base = repo_url.strip().rstrip("/")
        ref = oci.Reference.parse(f"{base}/{chart}" if chart else base,
                                  plain_http=bool(creds and creds.oci_force_http))
        return oci.Registry(ref, creds.username if creds else "",
                            creds.password if creds else "", self.limits)


def _without_scheme_prefix(url: str) -> str:
    # normalize_repo_url drops http(s) schemes; give oci:// the same treatment.
    return "https://" + url.strip()[len("oci://"):] if is_oci(url) else url

