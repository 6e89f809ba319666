"""Charts in OCI registries (`oci://host/path/chart`), over the OCI distribution API as Helm's
registry client uses it: the tags are the versions (`+` is spelt `_` in a tag), the manifest
of a tag names the chart layer (`application/vnd.cncf.helm.chart.content.v1.tar+gzip`), and
the layer is a blob checked against its digest.

Called by `store.ChartRepositories`. Authentication as registries ask for it: a 401 with a
`Bearer` challenge is answered by getting a token from the realm it names (with the
repository's username and password, when there are any), a `Basic` challenge by sending them.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from ..errors import AuthenticationFailed, SourceTooLarge
from ..source.urls import redact
from . import transfer
from .transfer import Auth, ChartNotFound, ChartRepoError, Limits, Response
from .versions import ConstraintError, is_exact, parse_constraint

CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
_MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                   "application/vnd.docker.distribution.manifest.v2+json")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_MAX_TAG_PAGES = 20


@dataclass(frozen=True)
class Reference:
    """`oci://host[:port]/path/name`: the registry and the repository inside it."""

    host: str
    repository: str
    plain_http: bool = False

    @classmethod
    def parse(cls, url: str, *, plain_http: bool = False) -> Reference:
        rest = url.strip()
        if not rest.lower().startswith("oci://"):
            raise ChartRepoError(f"{redact(url)} is not an oci:// reference")
        rest = rest[len("oci://"):].rpartition("@")[2].strip("/")
        host, _, repository = rest.partition("/")
        if not host or not repository:
            raise ChartRepoError(f"{redact(url)} names no repository in the registry")
        return cls(host.lower(), repository, plain_http)

    @property
    def base(self) -> str:
        return f"{'http' if self.plain_http else 'https'}://{self.host}/v2/{self.repository}"

    def __str__(self) -> str:
        return f"oci://{self.host}/{self.repository}"


@dataclass(frozen=True)
class Layer:
    version: str
    digest: str
    size: int


class Registry:
    """A client for one repository of one registry; keeps the token it was given."""

    def __init__(self, ref: Reference, username: str, password: str, limits: Limits) -> None:
        self.ref = ref
        self._basic = Auth(username, password) if (username or password) else None
        self._auth: Auth | None = None
        self.limits = limits

    def tags(self) -> list[str]:
        url = f"{self.ref.base}/tags/list?n=1000"
        found: list[str] = []
        for _ in range(_MAX_TAG_PAGES):
            resp = self._get(url, self.limits)
            try:
                doc = json.loads(resp.body)
            except ValueError:
                raise ChartRepoError(f"{self.ref}: the tag list is not JSON") from None
            found.extend(t for t in doc.get("tags") or [] if isinstance(t, str))
            link = _NEXT_LINK.search(resp.headers.get("link", ""))
            if link is None:
                return found
            url = urllib.parse.urljoin(url, link.group(1))
        return found

    def resolve(self, constraint: str) -> str:
        """The version a constraint picks among the tags (an exact one is not listed)."""
        if is_exact(constraint):
            # Helm asks for the tag itself: no tag list needed (and none may be allowed).
            return constraint.strip().removeprefix("=").strip()
        versions = [t.replace("_", "+") for t in self.tags()]
        try:
            best = parse_constraint(constraint).best(versions)
        except ConstraintError as exc:
            raise ChartRepoError(str(exc)) from None
        if best is None:
            raise ChartNotFound(f"no version of {self.ref} matches {constraint or '*'!r}")
        return best

    def layer(self, version: str) -> Layer:
        limits = Limits(self.limits.timeout, 4 * 1024 * 1024,
                        {"Accept": ", ".join(_MANIFEST_TYPES)})
        resp = self._get(f"{self.ref.base}/manifests/{version.replace('+', '_')}", limits)
        try:
            manifest: dict[str, Any] = json.loads(resp.body)
        except ValueError:
            raise ChartRepoError(f"{self.ref}:{version}: the manifest is not JSON") from None
        for layer in manifest.get("layers") or []:
            if isinstance(layer, dict) and layer.get("mediaType") == CHART_LAYER:
                digest, size = layer.get("digest"), layer.get("size")
                if not isinstance(digest, str) or not digest.startswith("sha256:"):
                    break
                if isinstance(size, int) and size > self.limits.max_bytes:
                    raise SourceTooLarge(f"{self.ref}:{version} is {size} bytes, over the "
                                         f"limit of {self.limits.max_bytes}")
                return Layer(version, digest, size if isinstance(size, int) else -1)
        raise ChartRepoError(f"{self.ref}:{version} is not a Helm chart (no {CHART_LAYER} "
                             f"layer)")

    def blob(self, digest: str) -> bytes:
        return self._get(f"{self.ref.base}/blobs/{digest}", self.limits).body

    def _get(self, url: str, limits: Limits) -> Response:
        resp = transfer.get(url, auth=self._auth or self._basic, limits=limits,
                            allow_status=(401,))
        if resp.status != 401:
            return resp
        self._auth = self._answer(resp.headers.get("www-authenticate", ""))
        resp = transfer.get(url, auth=self._auth, limits=limits, allow_status=(401,))
        if resp.status == 401:
            raise AuthenticationFailed(f"{self.ref}: access refused (HTTP 401); check the "
                                       f"repository credentials")
        return resp

    def _answer(self, challenge: str) -> Auth:
        scheme, _, params_text = challenge.strip().partition(" ")
        if scheme.lower() == "basic":
            if self._basic is None:
                raise AuthenticationFailed(f"{self.ref}: the registry asks for credentials "
                                           f"and none are configured")
            return self._basic
        if scheme.lower() != "bearer":
            raise AuthenticationFailed(f"{self.ref}: unsupported authentication "
                                       f"{scheme or 'challenge'!r}")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        realm = params.pop("realm", "")
        if not realm:
            raise AuthenticationFailed(f"{self.ref}: a Bearer challenge without a realm")
        params.setdefault("scope", f"repository:{self.ref.repository}:pull")
        token_url = f"{realm}{'&' if '?' in realm else '?'}{urllib.parse.urlencode(params)}"
        resp = transfer.get(token_url, auth=self._basic,
                            limits=Limits(self.limits.timeout, 1024 * 1024))
        try:
            doc = json.loads(resp.body)
        except ValueError:
            raise AuthenticationFailed(f"{self.ref}: the token service did not answer "
                                       f"JSON") from None
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthenticationFailed(f"{self.ref}: the token service gave no token")
        return Auth(bearer=token)
