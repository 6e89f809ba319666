"""Real git repositories and real git servers on loopback, for the source tests.

- `Origin`: a bare repository (what servers serve) and a working clone that commits, tags,
  force-pushes and deletes branches in it, with the git CLI.
- `GitDaemon`: `git daemon` serving a directory over git:// (protocol v2).
- `GitHTTPServer`: `git http-backend` run as CGI behind `http.server`, requiring Basic auth, so
  that credential injection is tested against a server that really checks it.
- `HungServer`: accepts TCP connections and never answers (a remote that hangs).
- `fake_ssh`: a stand-in `ssh` put first on PATH. Our GIT_SSH_COMMAND starts with `ssh`, so git
  runs this script with the same argv a real ssh would get; the script records that argv and the
  key file it was given (`-i`), refuses a wrong key like sshd ("Permission denied (publickey)"),
  and otherwise runs the requested `git-upload-pack '<path>'` locally, which is what sshd would
  do on the server. That tests our key handling and ssh options without an sshd.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, text=True,
        timeout=30,
    )
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout.strip()


class Origin:
    """A served bare repository `<served>/<name>.git` and a working clone that pushes to it."""

    def __init__(self, served: Path, work_root: Path, name: str) -> None:
        self.name = name
        self.bare = served / f"{name}.git"
        self.work = work_root / name
        git("init", "--quiet", "--bare", "-b", "main", str(self.bare))
        git("init", "--quiet", "-b", "main", str(self.work))
        git("remote", "add", "origin", str(self.bare), cwd=self.work)

    @property
    def file_url(self) -> str:
        return self.bare.as_uri()

    def git(self, *args: str) -> str:
        return git(*args, cwd=self.work)

    def write(self, files: dict[str, str | bytes]) -> None:
        for path, content in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)

    def commit(self, files: dict[str, str | bytes], message: str = "change",
               branch: str = "main", push: bool = True) -> str:
        current = self.git("symbolic-ref", "--short", "-q", "HEAD")
        if current != branch:
            exists = self.git("branch", "--list", branch)
            self.git("checkout", "--quiet", *([] if exists else ["-b"]), branch)
        self.write(files)
        self.git("add", "-A")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        if push:
            self.git("push", "--quiet", "--force", "origin", branch)
        return self.git("rev-parse", "HEAD")

    def symlink(self, path: str, target: str) -> None:
        """Create a symlink in the working tree (committed by the next `commit`)."""
        link = self.work / path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)

    def tag(self, name: str, ref: str = "main", *, annotated: bool = False) -> str:
        args = ["-a", "-m", f"release {name}"] if annotated else []
        self.git("tag", *args, name, ref)
        self.git("push", "--quiet", "origin", f"refs/tags/{name}")
        return self.git("rev-parse", name)

    def force_push(self, branch: str, files: dict[str, str | bytes]) -> str:
        """Rewrite `branch`: drop its last commit, commit something else, push --force."""
        self.git("checkout", "--quiet", branch)
        self.git("reset", "--quiet", "--hard", "HEAD~1")
        return self.commit(files, "rewritten", branch)

    def delete_branch(self, branch: str) -> None:
        self.git("checkout", "--quiet", "main")
        self.git("push", "--quiet", "origin", "--delete", branch)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class GitDaemon:
    def __init__(self, served: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", f"--base-path={served}", "--export-all",
             f"--port={self.port}", "--listen=127.0.0.1", "--informative-errors", str(served)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # its per-connection children die with the group
        )
        wait_for_port(self.port)

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=10)


class _BackendHandler(BaseHTTPRequestHandler):
    server: GitHTTPServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _cgi(self) -> None:
        self.server.requests.append(self.path)
        self.server.authorizations.append(self.headers.get("Authorization", ""))
        if self.headers.get("Authorization") != self.server.expected_authorization:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self._body()
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(self.server.served),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": unquote(path),
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": self.server.username,
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        output = subprocess.run(["git", "http-backend"], input=body, env=env,
                                capture_output=True, timeout=30).stdout
        separator = b"\r\n\r\n" if b"\r\n\r\n" in output else b"\n\n"
        head, _, payload = output.partition(separator)
        status, headers = 200, []
        for line in head.decode().splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class GitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, served: Path, username: str, password: str) -> None:
        super().__init__(("127.0.0.1", 0), _BackendHandler)
        self.served = served
        self.username = username
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.expected_authorization = f"Basic {token}"
        self.requests: list[str] = []
        self.authorizations: list[str] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.git"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


class HungServer:
    """Accepts connections, reads nothing, answers nothing."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.connections: list[socket.socket] = []
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def stop(self) -> None:
        self._stopped = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for conn in self.connections:
            conn.close()
        self._thread.join(timeout=5)


FAKE_SSH = """#!{python}
# Stand-in for ssh (see tests/source/gitservers.py): records argv and key, checks the key,
# then runs the remote command locally as sshd would.
import json, os, stat, sys
args = sys.argv[1:]
with_value = set("BbcDEeFIiJLlmOoPpQRSWw")
key_file, options, i = None, [], 0
while i < len(args) and args[i].startswith("-") and len(args[i]) >= 2:
    flag = args[i]
    if flag[1] in with_value:
        value = flag[2:] or args[i + 1]
        i += 1 if flag[2:] else 2
    else:
        value, i = "", i + 1
    if flag[1] == "i":
        key_file = value
    elif flag[1] == "o":
        options.append(value)
host, command = args[i], " ".join(args[i + 1:])
record = {{"host": host, "command": command, "options": options, "key_file": key_file,
          "key": None, "key_mode": None}}
if key_file and os.path.exists(key_file):
    record["key"] = open(key_file).read()
    record["key_mode"] = stat.S_IMODE(os.stat(key_file).st_mode)
with open({log!r}, "a") as log:
    log.write(json.dumps(record) + "\\n")
if record["key"] != open({expected!r}).read():
    print("git@" + host + ": Permission denied (publickey).", file=sys.stderr)
    sys.exit(255)
os.execvp("sh", ["sh", "-c", command])
"""


def install_fake_ssh(bin_dir: Path, log: Path, expected_key: Path) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "ssh"
    script.write_text(FAKE_SSH.format(python=sys.executable, log=str(log),
                                      expected=str(expected_key)))
    script.chmod(0o755)
    return script
