"""Repository URLs: their identity, their transport, and keeping credentials out of text.

Called by the mirrors (cache keys, argv), by credential matching, by every log line and error
message of this package (`redact`), and later by the webhook receiver, which matches pushed repos
to Applications with `normalize_repo_url`.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "git": 9418}
_SSH_SCHEMES = {"ssh", "git+ssh", "ssh+git"}

# `[user@]host:path` with no "://" and no slash before the colon is git's scp-like syntax.
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/\[\]]+):(?P<path>.*)$")
_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

# A URL's userinfo: everything between "scheme://" and the last "@" before the host's "/".
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s'\"<>]*)@")
_AUTH_HEADER = re.compile(r"(?i)(authorization:\s*[A-Za-z]+\s+)[^\s'\"]+")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.S
)


def _is_ssh_scheme(scheme: str) -> bool:
    return scheme.lower() in _SSH_SCHEMES


def redact(text: str) -> str:
    """`text` with credentials removed from every URL in it (`https://u:tok@h` -> `https://***@h`),
    and from Authorization headers and private keys, should git ever echo them.

    A bare ssh user (`ssh://git@host`) is kept: it is an account name, not a secret, and error
    messages are clearer with it. Any other userinfo may be a token and goes.
    """

    def _userinfo(match: re.Match[str]) -> str:
        scheme, userinfo = match.group("scheme"), match.group("userinfo")
        if ":" not in userinfo and _is_ssh_scheme(scheme[:-3]):
            return match.group(0)
        return f"{scheme}***@"

    text = _URL_USERINFO.sub(_userinfo, text)
    text = _AUTH_HEADER.sub(r"\1***", text)
    return _PRIVATE_KEY.sub("***", text)


def _is_scp_like(url: str) -> re.Match[str] | None:
    if _HAS_SCHEME.match(url) or url.startswith(("/", ".")):
        return None
    match = _SCP_LIKE.match(url)
    # A one-letter "host" without a user is a Windows drive ("C:\\repo"), not a server.
    if match is None or (len(match.group("host")) < 2 and not match.group("user")):
        return None
    return match


def transport(url: str) -> str:
    """"ssh", "http" (http or https), "git", "file" or another scheme: decides which credentials
    can apply to a URL (a password is no use to ssh, a key none to https)."""
    if _is_scp_like(url):
        return "ssh"
    if not _HAS_SCHEME.match(url):
        return "file"
    scheme = url.split("://", 1)[0].lower()
    if _is_ssh_scheme(scheme):
        return "ssh"
    if scheme in ("http", "https"):
        return "http"
    return scheme


def _host_port(parts: SplitResult, scheme: str) -> str:
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        return f"{host}:{port}"
    return host


def _strip_repo_suffix(path: str) -> str:
    path = path.rstrip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    return path.rstrip("/")


def normalize_repo_url(url: str) -> str:
    """The identity of a repository for caching and matching.

    `https://User:tok@GitHub.com/org/repo.git/`, `ssh://git@github.com/org/repo` and
    `git@github.com:org/repo.git` are all `github.com/org/repo`: scheme, userinfo, default port,
    trailing slash and `.git` dropped, host lower-cased, path case kept (many servers are
    case-sensitive). A non-default port stays (`host:8443/org/repo`). Local repositories keep
    their scheme and exact path (`file:///srv/repo.git`), since two directories differing only
    in `.git` are two repositories.
    """
    url = url.strip()
    scp = _is_scp_like(url)
    if scp:
        host = scp.group("host").lower()
        return f"{host}/{_strip_repo_suffix(scp.group('path')).lstrip('/')}"
    if not _HAS_SCHEME.match(url):
        return "file://" + posixpath.normpath(posixpath.abspath(url))
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return "file://" + posixpath.normpath(parts.path or "/")
    if _is_ssh_scheme(scheme):
        scheme = "ssh"
    return f"{_host_port(parts, scheme)}/{_strip_repo_suffix(parts.path).lstrip('/')}"


def split_userinfo(url: str) -> tuple[str, str, str]:
    """(url without secrets, username, password) from a URL that embeds them.

    HTTP(S) URLs lose their whole userinfo (a lone user there is usually a token); ssh URLs keep
    the user, which ssh needs, and lose only a password. Credentials found here are passed to git
    like a Secret's, so they never reach argv or the mirror's files.
    """
    url = url.strip()
    if not _HAS_SCHEME.match(url):
        return url, "", ""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, "", ""
    userinfo, _, hostport = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    if _is_ssh_scheme(parts.scheme):
        clean_netloc = f"{username}@{hostport}" if username else hostport
        return urlunsplit(parts._replace(netloc=clean_netloc)), "", password
    return urlunsplit(parts._replace(netloc=hostport)), username, password


def mirror_name(url: str) -> str:
    """A directory name for a repository's mirror: readable, and unique by a hash of its
    normalised URL (so `https://` and `git@` forms of one repo share a mirror)."""
    key = normalize_repo_url(url)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", key.removeprefix("file://")).strip("._-")
    return f"{readable[-60:].lstrip('._-') or 'repo'}-{digest}"
