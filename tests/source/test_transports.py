"""Credentials and failures over real transports: git http-backend with Basic auth, ssh through
a stand-in ssh (see gitservers.py), a closed port and a remote that never answers."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from gitops_tasks.errors import (
    AuthenticationFailed,
    PermanentError,
    RepoNotTrusted,
    RepoUnreachable,
)
from gitops_tasks.settings import GitSettings
from gitops_tasks.source import GitMirrors, RepoCredentials, match_credentials
from tests.source.conftest import HTTP_PASSWORD, HTTP_USER
from tests.source.gitservers import GitHTTPServer, HungServer, Origin, free_port, install_fake_ssh

SSH_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----"  # no final newline: we must add it, as ssh needs
)


def mirrors_with(settings: GitSettings, *creds: RepoCredentials) -> GitMirrors:
    return GitMirrors(settings, lambda url: match_credentials(url, creds))


def everything_under(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())


# -- HTTPS with Basic auth ------------------------------------------------------------------


def test_http_right_credentials_resolve_and_stay_out_of_argv_config_and_logs(
    origin: Origin, http_server: GitHTTPServer, settings: GitSettings,
    capfd: pytest.CaptureFixture[str],
) -> None:
    url = http_server.url(origin.name)
    creds = RepoCredentials(url=url, username=HTTP_USER, password=HTTP_PASSWORD,
                            secret="gitops-tasks/repo")
    mirrors = mirrors_with(settings, creds)
    assert mirrors.resolve(url, "main") == origin.git("rev-parse", "main")
    tree = mirrors.export(url, mirrors.resolve(url, "main"))
    assert (tree / "app" / "deploy.yaml").read_text() == "kind: ConfigMap\n"
    # Sent with the first request: no 401 round trip before the credentials.
    assert http_server.authorizations and all(http_server.authorizations)

    secret = HTTP_PASSWORD.encode()
    assert secret not in everything_under(settings.cache_dir)
    assert b"alice" not in (mirrors.mirror_path(url) / "config").read_bytes()
    out, err = capfd.readouterr()
    assert HTTP_PASSWORD not in out + err


def test_http_credentials_embedded_in_the_url_work_and_are_redacted(
    origin: Origin, http_server: GitHTTPServer, settings: GitSettings,
    capfd: pytest.CaptureFixture[str],
) -> None:
    url = f"http://{HTTP_USER}:{HTTP_PASSWORD}@127.0.0.1:{http_server.port}/{origin.name}.git"
    mirrors = GitMirrors(settings)
    assert mirrors.resolve(url, "main") == origin.git("rev-parse", "main")
    assert HTTP_PASSWORD.encode() not in everything_under(settings.cache_dir)
    with pytest.raises(Exception) as info:
        mirrors.resolve(url, "nope")
    assert HTTP_PASSWORD not in str(info.value) and "***@" in str(info.value)
    out, err = capfd.readouterr()
    assert HTTP_PASSWORD not in out + err


@pytest.mark.parametrize("password", ["wrong-password", None])
def test_http_wrong_or_missing_credentials_are_authentication_failed(
    origin: Origin, http_server: GitHTTPServer, settings: GitSettings, password: str | None,
) -> None:
    url = http_server.url(origin.name)
    creds = [] if password is None else [
        RepoCredentials(url=url, username=HTTP_USER, password=password, secret="ns/bad")]
    mirrors = mirrors_with(settings, *creds)
    started = time.monotonic()
    with pytest.raises(AuthenticationFailed) as info:
        mirrors.resolve(url, "main", app="guestbook")
    assert time.monotonic() - started < 5  # never waits on a prompt
    message = str(info.value)
    assert message.startswith("guestbook: ") and url in message
    assert ("ns/bad" if password else "no credentials") in message
    assert "wrong-password" not in message
    assert isinstance(info.value, PermanentError)


# -- SSH ------------------------------------------------------------------------------------


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Installs the stand-in ssh first on PATH; returns the log it writes one JSON line to per
    connection."""
    expected = tmp_path / "expected-key"
    expected.write_text(SSH_KEY + "\n")
    log = tmp_path / "ssh-log.jsonl"
    install_fake_ssh(tmp_path / "bin", log, expected)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    return log


def test_ssh_key_is_passed_with_i_in_a_private_file_then_deleted(
    origin: Origin, fake_ssh: Path, settings: GitSettings,
) -> None:
    url = f"ssh://git@git.example.test{origin.bare}"
    creds = RepoCredentials(url="ssh://git@git.example.test/", ssh_private_key=SSH_KEY,
                            kind="repo-creds", secret="ns/ssh")
    mirrors = mirrors_with(settings, creds)
    sha = mirrors.resolve(url, "main")
    assert sha == origin.git("rev-parse", "main")
    assert (mirrors.export(url, sha) / "README.md").read_text() == "hello\n"

    calls = [json.loads(line) for line in fake_ssh.read_text().splitlines()]
    assert len(calls) == 2  # one ls-remote, one fetch
    for call in calls:
        assert call["host"] == "git@git.example.test"
        assert call["command"].startswith("git-upload-pack ")
        assert call["key"] == SSH_KEY + "\n" and call["key_mode"] == 0o600
        assert "IdentitiesOnly=yes" in call["options"] and "BatchMode=yes" in call["options"]
        assert "StrictHostKeyChecking=accept-new" in call["options"]
        assert not Path(call["key_file"]).exists()  # deleted after the command
        assert not Path(call["key_file"]).parent.exists()
    assert SSH_KEY.encode()[40:80] not in everything_under(settings.cache_dir)


def test_ssh_insecure_skips_host_key_checks(origin: Origin, fake_ssh: Path,
                                            settings: GitSettings) -> None:
    url = f"git@git.example.test:{origin.bare}"
    creds = RepoCredentials(url=url, ssh_private_key=SSH_KEY, insecure_ignore_host_key=True)
    mirrors_with(settings, creds).resolve(url, "main")
    options = json.loads(fake_ssh.read_text().splitlines()[0])["options"]
    assert "StrictHostKeyChecking=no" in options and "UserKnownHostsFile=/dev/null" in options


def test_ssh_wrong_or_missing_key_is_authentication_failed(
    origin: Origin, fake_ssh: Path, settings: GitSettings,
) -> None:
    url = f"ssh://git@git.example.test{origin.bare}"
    for creds in ([RepoCredentials(url=url, ssh_private_key="not the key")], []):
        with pytest.raises(AuthenticationFailed, match="refused access"):
            mirrors_with(settings, *creds).resolve(url, "main")


# -- unreachable and hung remotes -----------------------------------------------------------


def test_closed_port_is_repo_unreachable_quickly(settings: GitSettings) -> None:
    url = f"git://127.0.0.1:{free_port()}/repo.git"
    started = time.monotonic()
    with pytest.raises(RepoUnreachable) as info:
        GitMirrors(settings).resolve(url, "main", app="guestbook")
    assert time.monotonic() - started < 3
    assert "guestbook: " in str(info.value) and url in str(info.value)


@pytest.mark.parametrize("scheme", ["git", "http"])
def test_hung_remote_is_repo_unreachable_after_the_timeout(
    hung_server: HungServer, tmp_path: Path, scheme: str,
) -> None:
    settings = GitSettings(cache_dir=tmp_path / "cache", timeout=2)
    url = f"{scheme}://127.0.0.1:{hung_server.port}/repo.git"
    started = time.monotonic()
    with pytest.raises(RepoUnreachable) as info:
        GitMirrors(settings).resolve(url, "main")
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 6, elapsed
    assert url in str(info.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the repository away")
def test_a_local_repository_owned_by_another_user_is_a_permanent_error_that_says_so(
        tmp_path: Path, settings: GitSettings) -> None:
    """git hides its safe.directory refusal behind "Could not read from remote repository",
    which read as a network problem and was retried forever (seen in the image, where the
    worker's user does not own a mounted repository)."""
    import subprocess

    repo = tmp_path / "theirs"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=a", "-c", "user.email=a@b",
                    "commit", "-q", "--allow-empty", "-m", "one"], check=True)
    for path in [repo, *repo.rglob("*")]:
        os.lchown(path, 12345, 12345)
    with pytest.raises(RepoNotTrusted, match="owned by another user") as info:
        GitMirrors(settings).resolve(f"file://{repo}", "main", app="guestbook")
    assert isinstance(info.value, PermanentError) and "safe.directory" in str(info.value)
