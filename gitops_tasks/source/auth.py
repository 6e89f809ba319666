"""The environment of one git network command: credentials, timeouts and restrictions.

Called by `mirror.GitMirrors` around every `ls-remote` and `fetch`. Credentials reach git only
through environment variables of that one child process: never argv (visible in `ps`), never the
mirror's config (shared, on disk), never a log line.

- HTTPS: `GIT_CONFIG_COUNT`/`KEY_n`/`VALUE_n` set `http.<repo url>.extraHeader` to a Basic
  Authorization header, scoped to the repository's URL (curl drops it on a redirect to another
  host). It is sent with the first request, so an unchanged remote costs one round trip.
- SSH: the private key goes to a 0600 file in a private temporary directory, used through
  `GIT_SSH_COMMAND` with `IdentitiesOnly` and `BatchMode`, and deleted when the command ends.
"""

from __future__ import annotations

import base64
import math
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gitops_tasks.source.credentials import RepoCredentials
from gitops_tasks.source.urls import transport

# Transports git may use. Everything else (ext::, fd::, remote helpers) is refused, so a
# repoURL can never make git run a command.
_ALLOWED_PROTOCOLS = ("file", "git", "http", "https", "ssh")


def _config_env(pairs: list[tuple[str, str]]) -> dict[str, str]:
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for i, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def _ssh_command(
    key_file: Path | None, *, insecure: bool, known_hosts: Path, timeout: float
) -> str:
    argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, math.ceil(timeout))}",
            "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=2"]
    if key_file is not None:
        argv += ["-i", str(key_file), "-o", "IdentitiesOnly=yes"]
    if insecure:
        argv += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    else:
        # First contact records the host key in the cache dir (a worker's HOME may be read-only);
        # a changed key afterwards is refused. Pre-seed /etc/ssh/ssh_known_hosts to pin keys.
        argv += ["-o", "StrictHostKeyChecking=accept-new",
                 "-o", f"UserKnownHostsFile={known_hosts}"]
    return shlex.join(argv)


@contextmanager
def git_env(
    url: str, creds: RepoCredentials | None, *, timeout: float, cache_dir: Path
) -> Iterator[dict[str, str]]:
    """Environment variables for a git command talking to `url` (already free of userinfo)."""
    config: list[tuple[str, str]] = [
        # No credential helper of the host's config may answer for us or store our secrets.
        ("credential.helper", ""),
        ("protocol.allow", "never"),
        *((f"protocol.{name}.allow", "always") for name in _ALLOWED_PROTOCOLS),
        # A stalled HTTP transfer ends on its own before the hard kill at `timeout`.
        ("http.lowSpeedLimit", "1"),
        ("http.lowSpeedTime", str(max(1, math.ceil(timeout)))),
    ]
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        # Empty, not unset: git skips an empty askpass and fails instead of prompting.
        "GIT_ASKPASS": "",
        "SSH_ASKPASS": "",
        "GCM_INTERACTIVE": "never",
    }
    kind = transport(url)
    key_dir: str | None = None
    try:
        if kind == "http" and creds is not None:
            if creds.username or creds.password:
                token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
                config.append((f"http.{url}.extraHeader", f"Authorization: Basic {token}"))
            if creds.insecure_ignore_host_key:
                config.append(("http.sslVerify", "false"))
        if kind == "ssh":
            key_file: Path | None = None
            if creds is not None and creds.ssh_private_key:
                key_dir = tempfile.mkdtemp(prefix="gitops-tasks-ssh-")  # mode 0700
                key_file = Path(key_dir) / "id"
                key = creds.ssh_private_key.replace("\r\n", "\n")
                # OpenSSH refuses a key without its final newline.
                key = key if key.endswith("\n") else key + "\n"
                fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(key)
            env["GIT_SSH_COMMAND"] = _ssh_command(
                key_file,
                insecure=creds is not None and creds.insecure_ignore_host_key,
                known_hosts=cache_dir / "ssh_known_hosts",
                timeout=timeout,
            )
            env["GIT_SSH_VARIANT"] = "ssh"
        env.update(_config_env(config))
        yield env
    finally:
        if key_dir is not None:
            shutil.rmtree(key_dir, ignore_errors=True)
