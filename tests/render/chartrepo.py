"""Chart repositories served on loopback by the tests: charts built here as real .tgz archives,
a Helm repository (index.yaml + archives) and an OCI distribution registry (tags, manifests,
blobs), each a real HTTP server in a thread, with Basic or Bearer authentication when asked."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import yaml

CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
CONFIG_TYPE = "application/vnd.cncf.helm.config.v1+json"


def configmap_template(name: str) -> str:
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
            "data:\n  chart: \"{{ .Chart.Name }}-{{ .Chart.Version }}\"\n"
            "  greeting: \"{{ .Values.greeting | default \"none\" }}\"\n")


def write_chart(root: Path, name: str, version: str, *,
                dependencies: list[dict[str, Any]] | None = None, values: str = "",
                templates: Mapping[str, str] | None = None) -> Path:
    """A chart directory `root` with one ConfigMap named after the chart (by default)."""
    (root / "templates").mkdir(parents=True, exist_ok=True)
    chart: dict[str, Any] = {"apiVersion": "v2", "name": name, "version": version}
    if dependencies:
        chart["dependencies"] = dependencies
    (root / "Chart.yaml").write_text(yaml.safe_dump(chart, sort_keys=False))
    if values:
        (root / "values.yaml").write_text(values)
    for file, text in (templates or {"cm.yaml": configmap_template(f"{name}-cm")}).items():
        (root / "templates" / file).write_text(text)
    return root


def package(name: str, version: str, *, templates: Mapping[str, str] | None = None,
            values: str = "") -> bytes:
    """A chart archive as `helm package` lays it out: everything under `<name>/`."""
    files: dict[str, str] = {
        "Chart.yaml": yaml.safe_dump({"apiVersion": "v2", "name": name, "version": version}),
    }
    if values:
        files["values.yaml"] = values
    for file, text in (templates or {"cm.yaml": configmap_template(f"{name}-cm")}).items():
        files[f"templates/{file}"] = text
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class _Server:
    auth: tuple[str, str] | None = None
    requests: list[str] = field(default_factory=list)
    # The Authorization header of each request (None: none sent).
    authorizations: list[str | None] = field(default_factory=list)
    httpd: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.httpd is not None
        return int(self.httpd.server_address[1])

    def authorized(self, header: str | None) -> bool:
        if self.auth is None:
            return True
        expected = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return header == f"Basic {expected}"

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    @contextmanager
    def running(self) -> Iterator[Self]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server dispatches on
                server.requests.append(self.path)
                server.authorizations.append(self.headers.get("Authorization"))
                status, headers, body = server.answer(self)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.httpd.shutdown()
            self.httpd.server_close()
            thread.join(5)


@dataclass
class HelmRepo(_Server):
    """A Helm repository at http://127.0.0.1:<port>/<prefix>."""

    prefix: str = "charts"
    files: dict[str, bytes] = field(default_factory=dict)
    entries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.prefix}"

    def publish(self, archive: bytes, name: str, version: str, *, digest: str | None = None,
                with_digest: bool = True, url: str | None = None) -> None:
        """Serve `archive` and list it in the index (at `url` instead, when given)."""
        file = f"packages/{name}-{version}.tgz"
        self.files[f"/{self.prefix}/{file}"] = archive
        entry: dict[str, Any] = {"name": name, "version": version, "apiVersion": "v2",
                                 "urls": [url or file]}
        if with_digest:
            entry["digest"] = digest or sha256(archive)
        self.entries.setdefault(name, []).insert(0, entry)

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        if not self.authorized(handler.headers.get("Authorization")):
            return 401, {"WWW-Authenticate": 'Basic realm="charts"'}, b"unauthorized"
        if handler.path == f"/{self.prefix}/index.yaml":
            index = {"apiVersion": "v1", "entries": self.entries}
            return 200, {"Content-Type": "text/yaml"}, yaml.safe_dump(index).encode()
        body = self.files.get(handler.path)
        if body is None:
            return 404, {}, b"not found"
        return 200, {"Content-Type": "application/gzip"}, body


@dataclass
class OciRegistry(_Server):
    """An OCI distribution registry at 127.0.0.1:<port>; `bearer` makes it answer 401 with a
    Bearer challenge whose token service checks the Basic credentials."""

    bearer: bool = False
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[tuple[str, str], bytes] = field(default_factory=dict)
    token: str = "registry-token-123"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def push(self, repository: str, archive: bytes, version: str) -> str:
        config = json.dumps({"name": repository.rsplit("/", 1)[-1],
                             "version": version}).encode()
        self.blobs[f"sha256:{sha256(archive)}"] = archive
        self.blobs[f"sha256:{sha256(config)}"] = config
        manifest = {
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": CONFIG_TYPE, "digest": f"sha256:{sha256(config)}",
                       "size": len(config)},
            "layers": [{"mediaType": CHART_LAYER, "digest": f"sha256:{sha256(archive)}",
                        "size": len(archive)}],
        }
        self.manifests[(repository, version.replace("+", "_"))] = json.dumps(manifest).encode()
        return f"sha256:{sha256(archive)}"

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        path = handler.path.split("?", 1)[0]
        header = handler.headers.get("Authorization")
        if path == "/token":
            if not self.authorized(header):
                return 401, {}, b"bad credentials"
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"token": self.token}).encode()
        if self.bearer and header != f"Bearer {self.token}":
            challenge = (f'Bearer realm="http://{self.host}/token",service="{self.host}",'
                         'scope="pull"')
            return 401, {"WWW-Authenticate": challenge}, b"{}"
        if not self.bearer and not self.authorized(header):
            return 401, {"WWW-Authenticate": 'Basic realm="registry"'}, b"{}"
        if not path.startswith("/v2/"):
            return 404, {}, b"{}"
        rest = path[len("/v2/"):]
        if rest.endswith("/tags/list"):
            repository = rest[: -len("/tags/list")]
            tags = sorted(t for r, t in self.manifests if r == repository)
            if not tags:
                return 404, {}, b"{}"
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"name": repository, "tags": tags}).encode()
        if "/manifests/" in rest:
            repository, _, tag = rest.rpartition("/manifests/")
            body = self.manifests.get((repository, tag))
            if body is None:
                return 404, {}, b"{}"
            return 200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, body
        if "/blobs/" in rest:
            _, _, digest = rest.rpartition("/blobs/")
            blob = self.blobs.get(digest)
            return (200, {}, blob) if blob is not None else (404, {}, b"{}")
        return 404, {}, b"{}"
