"""Settings, grouped by concern and read once from the environment (`GITOPS_TASKS_*`).

Every process (worker, beat, webhook, CLI) calls `load()` at start-up and passes the groups it
needs down; nothing below reads the environment itself, so tests build settings explicitly.

`load()` validates every value: all the problems found are reported together in one
`SettingsError`, one `NAME='value': expected ...` clause per problem, so a bad deployment fails at
start with a message that says what to fix. A variable set to an empty string counts as unset.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from .errors import GitOpsError

_PREFIX = "GITOPS_TASKS_"

T = TypeVar("T")


class SettingsError(GitOpsError):
    """Some `GITOPS_TASKS_*` variables are invalid. `problems` holds one line per problem; the
    message joins them with `; ` so it stays one line."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class GitSettings:
    # Bare mirrors, one per normalised repo URL, shared by the worker processes of a host.
    cache_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "gitops-tasks"
                            / "git")
    # Seconds a git network operation may take before it counts as unreachable.
    timeout: float = 60.0
    max_file_bytes: int = 8 * 1024 * 1024
    max_repo_bytes: int = 1024 * 1024 * 1024
    # Seconds a resolved branch or tag is trusted before asking the remote again.
    resolve_ttl: float = 0.0
    # Exported commit trees kept per repository (least recently used go first, and only once a
    # new tree is extracted); the tree just exported always stays, even with 0.
    max_trees_per_repo: int = 20
    # Seconds a tree must have gone unused before it may be evicted: readers take no lock, so
    # this must exceed the longest a render keeps using a tree after export() returned it.
    tree_min_idle_seconds: float = 600.0


@dataclass(frozen=True)
class RenderSettings:
    tool_timeout: float = 90.0
    # Config-management plugins: name -> shell-free command (argv), run in the app's directory.
    plugins: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    max_output_bytes: int = 64 * 1024 * 1024
    # Helm repositories and OCI registries (chart sources and Chart.yaml dependencies): the
    # seconds one request may take, and the largest index.yaml or chart archive downloaded.
    helm_timeout: float = 60.0
    helm_max_download_bytes: int = 128 * 1024 * 1024


@dataclass(frozen=True)
class RedisSettings:
    # redis://, rediss://, unix:// or several `;`-separated sentinel:// URLs.
    url: str = "redis://127.0.0.1:6379/0"
    # Rendered manifests are immutable per commit: keep them a week unless evicted.
    render_cache_ttl: int = 7 * 24 * 3600
    # The master name the sentinels are asked for, when `url` is sentinel://.
    sentinel_master: str = "mymaster"
    # Fernet keys sealing cache entries that hold Secret data (the first seals); none: each
    # process seals under a random key of its own, so such entries are not shared (`sealing`).
    cache_encryption_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterSettings:
    # Client-side rate limit per destination cluster, so a big sync cannot flood an API server.
    qps: float = 50.0  # 0: unlimited
    burst: int = 100
    request_timeout: float = 30.0
    # Seconds a hook (PreSync/PostSync Job...) may run before the sync counts it as failed.
    hook_timeout: float = 300.0


@dataclass(frozen=True)
class ReconcileSettings:
    # Every app is checked at least this often, plus up to `jitter` seconds so apps spread out.
    interval: float = 180.0
    jitter: float = 30.0
    # A full comparison (no shortcut on an unchanged revision) is forced at least this often.
    hard_interval: float = 3600.0
    # How often beat looks for operations no worker runs (a worker died mid-sync).
    resume_interval: float = 10.0
    # First delay before an automated retry or heal, doubling up to the maximum.
    self_heal_backoff: float = 5.0
    self_heal_backoff_max: float = 300.0


@dataclass(frozen=True)
class TaskSettings:
    # Per-app lock TTL, renewed by a heartbeat while the task runs.
    lock_ttl: float = 30.0
    # Hard and soft limits of one task run; the soft one raises inside the task first.
    time_limit: float = 300.0
    soft_time_limit: float = 240.0
    # Redis redelivers an unacknowledged task after this: must exceed `time_limit`.
    visibility_timeout: float = 3600.0
    # Countdown between sync steps while resources progress, and the pause between waves.
    sync_poll_interval: float = 2.0
    sync_wave_delay: float = 0.0
    # Seconds one step may keep applying waves that need no wait before it yields.
    step_budget: float = 20.0
    # Countdown after a transient error, doubling up to the maximum, for `max_retries` retries
    # (the resume sweep picks the operation up again later).
    retry_backoff: float = 1.0
    retry_backoff_max: float = 120.0
    max_retries: int = 10
    # Lifetime of a "this app's task is queued" marker.
    queued_ttl: float = 900.0
    # Port of the worker's liveness/readiness server; 0: none.
    worker_probe_port: int = 8081


@dataclass(frozen=True)
class LogSettings:
    # json | console; "" picks console when stderr is a terminal, JSON lines otherwise.
    format: str = ""
    # DEBUG, INFO, WARNING, ERROR or CRITICAL.
    level: str = "INFO"


@dataclass(frozen=True)
class WebhookSecrets:
    """What each provider's requests are checked against; "" = not configured. Never shown."""
    github: str = field(default="", repr=False)
    gitlab: str = field(default="", repr=False)
    bitbucket_uuid: str = field(default="", repr=False)
    bitbucket_server: str = field(default="", repr=False)
    gitea: str = field(default="", repr=False)
    gogs: str = field(default="", repr=False)
    azure_devops_username: str = field(default="", repr=False)
    azure_devops_password: str = field(default="", repr=False)

    def any(self) -> bool:
        return any((self.github, self.gitlab, self.bitbucket_uuid, self.bitbucket_server,
                    self.gitea, self.gogs, self.azure_devops_password))


@dataclass(frozen=True)
class WebhookSettings:
    secrets: WebhookSecrets = field(default_factory=WebhookSecrets)
    # Bodies above this are refused (413) from their Content-Length, or once this much was read.
    max_payload_bytes: int = 10 * 1024 * 1024
    # A Secret in the control namespace whose keys (github.secret, gitlab.secret, ...) add to or
    # replace the variables; re-read every `secret_refresh` seconds, so rotation needs no restart.
    secret_name: str = "gitops-tasks-webhook"
    secret_refresh: float = 30.0
    # How long a delivery id is remembered (a provider's redelivery of it is acknowledged only).
    delivery_ttl: float = 86400.0
    # Applications are listed at most this often (a storm of pushes shares one list).
    apps_cache: float = 2.0


@dataclass(frozen=True)
class ApiSettings:
    # Bearer tokens of the management API: admins may change things, read-only ones read.
    admin_tokens: tuple[str, ...] = field(default=(), repr=False)
    readonly_tokens: tuple[str, ...] = field(default=(), repr=False)
    # A Secret in the control namespace adding tokens (keys admin.tokens, readonly.tokens,
    # one or more tokens separated by ',' or new lines), re-read every `secret_refresh` s.
    secret_name: str = "gitops-tasks-api"
    secret_refresh: float = 30.0
    # How long `GET .../diff` waits for a worker's answer.
    diff_timeout: float = 30.0


@dataclass(frozen=True)
class FlowerSettings:
    # "user:password" (several separated by ","): Flower asks for it; "" = no auth.
    basic_auth: str = field(default="", repr=False)


@dataclass(frozen=True)
class HealthSettings:
    # Users' health.lua scripts laid out as Argo CD's resource_customizations
    # (`<group>/<kind>/health.lua`), on top of the built-in checks; the `gitops-tasks-cm`
    # ConfigMap's scripts win over these.
    customizations_dir: Path | None = None


@dataclass(frozen=True)
class Settings:
    git: GitSettings = field(default_factory=GitSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    render: RenderSettings = field(default_factory=RenderSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    control_namespace: str = "gitops-tasks"
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    tasks: TaskSettings = field(default_factory=TaskSettings)
    log: LogSettings = field(default_factory=LogSettings)
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    flower: FlowerSettings = field(default_factory=FlowerSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    health: HealthSettings = field(default_factory=HealthSettings)


LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
REDIS_SCHEMES = ("redis", "rediss", "unix", "sentinel")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s'\"@]*@")


class _Expected(ValueError):
    """Raised by a parser to say precisely what it expected (else the caller's text is used)."""


class _Env:
    """Reads `GITOPS_TASKS_*` values, parses them, and collects a line per problem."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.problems: list[str] = []
        self.failed: set[str] = set()

    def raw(self, name: str) -> str | None:
        value = self._env.get(_PREFIX + name)
        return value if value is not None and value.strip() else None

    def shown(self, name: str, value: object) -> str:
        """How a problem names the variable and its value (credentials in URLs masked)."""
        text = self.raw(name)
        if text is None:
            return f"{_PREFIX}{name} (unset, default {_plain(value)})"
        return f"{_PREFIX}{name}={_masked(text)!r}"

    def invalid(self, name: str, value: object, expected: str) -> None:
        self.failed.add(name)
        self.problems.append(f"{self.shown(name, value)}: expected {expected}")

    def parse(self, name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        text = self.raw(name)
        if text is None:
            return default
        try:
            return parse(text.strip())
        except _Expected as exc:
            self.invalid(name, text, str(exc))
        except ValueError:
            self.invalid(name, text, expected)
        return default

    def seconds(self, name: str, default: float, *, zero: bool = False) -> float:
        """A finite number of seconds, > 0 (or >= 0 with `zero`)."""
        expected = f"a number of seconds {'0 or more' if zero else 'greater than 0'}"

        def parse(text: str) -> float:
            value = float(text)
            if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
                raise ValueError(text)
            return value

        return self.parse(name, default, parse, expected)

    def integer(self, name: str, default: int, *, minimum: int, maximum: int | None = None,
                what: str = "a whole number") -> int:
        expected = (f"{what} from {minimum} to {maximum}" if maximum is not None
                    else f"{what} of {minimum} or more")

        def parse(text: str) -> int:
            value = int(text)
            if value < minimum or (maximum is not None and value > maximum):
                raise ValueError(text)
            return value

        return self.parse(name, default, parse, expected)

    def choice(self, name: str, default: str, choices: Collection[str]) -> str:
        """One of `choices`, matched case-insensitively and returned as spelled in `choices`."""
        by_key = {c.casefold(): c for c in choices}

        def parse(text: str) -> str:
            if text.casefold() not in by_key:
                raise ValueError(text)
            return by_key[text.casefold()]

        return self.parse(name, default, parse, "one of " + ", ".join(choices))

    def check(self, name: str, value: object, ok: bool, expected: str, *,
              against: str) -> None:
        """A constraint between two settings: report `name` when `ok` is false, unless one of
        the two was already reported as invalid on its own."""
        if not ok and not {name, against} & self.failed:
            self.invalid(name, value, expected)


def _masked(text: str) -> str:
    """`text` with the userinfo of every URL in it masked: error messages must not leak it."""
    return _URL_USERINFO.sub(r"\g<scheme>***@", text)


def _plain(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _redis_url(text: str) -> str:
    """A URL redis-py and Celery accept; `;` separates several sentinel:// URLs."""
    parts = [p.strip() for p in text.split(";")]
    schemes = {urlsplit(p).scheme.lower() for p in parts}
    if not schemes <= set(REDIS_SCHEMES):
        raise ValueError(text)
    if len(parts) > 1 and schemes != {"sentinel"}:
        raise _Expected("several URLs only as sentinel://host:port;sentinel://host:port")
    for part in parts:
        url = urlsplit(part)
        if url.scheme.lower() == "unix":
            if not url.path:
                raise _Expected("a socket path, as in unix:///run/redis.sock")
            continue
        try:
            port = url.port  # raises ValueError when not a port number
        except ValueError:
            port = 0
        if port == 0:
            raise _Expected(f"a port number from 1 to 65535 in {url.scheme}://host:port")
        if not url.hostname:
            raise _Expected(f"a host, as in {url.scheme}://host:port")
        db = url.path.strip("/")
        if db and not db.isdigit():
            raise _Expected(f"a database number as the path, as in {url.scheme}://host:port/0")
    return ";".join(parts)


def _namespace(text: str) -> str:
    if not _DNS1123_LABEL.match(text):
        raise ValueError(text)
    return text


def _word(text: str) -> str:
    if any(c.isspace() for c in text):
        raise ValueError(text)
    return text


def _cache_dir(text: str) -> Path:
    path = Path(text)
    if "\0" in text:
        raise ValueError(text)
    if path.exists() and not path.is_dir():
        raise _Expected("a directory (this path exists and is not one)")
    return path


def _customizations_dir(text: str) -> Path:
    if "\0" in text:
        raise ValueError(text)
    path = Path(text).expanduser()
    # A directory that does not exist yet is fine (a volume mounted later); a file is a mistake.
    if path.exists() and not path.is_dir():
        raise _Expected("a directory (this path exists and is not one)")
    return path


def _plugins(env: _Env) -> dict[str, tuple[str, ...]]:
    """`name=cmd arg arg;other=cmd` -> {name: argv}; empty entries (a trailing `;`) are skipped."""
    plugins: dict[str, tuple[str, ...]] = {}
    for part in (env.raw("PLUGINS") or "").split(";"):
        if not part.strip():
            continue
        name, sep, command = part.partition("=")
        name = name.strip()
        try:
            argv = tuple(shlex.split(command))
        except ValueError:  # an unclosed quote
            argv = ()
        entry = f"{_PREFIX}PLUGINS entry {_masked(part.strip())!r}"
        if not sep or not name or not argv:
            env.problems.append(f"{entry}: expected name=command [args] (entries separated "
                                "by ';', quotes closed)")
        elif name in plugins:
            env.problems.append(f"{entry}: expected each plugin name once, {name!r} is repeated")
        else:
            plugins[name] = argv
    return plugins


def _git(env: _Env) -> GitSettings:
    d = GitSettings()
    return GitSettings(
        cache_dir=env.parse("GIT_CACHE_DIR", d.cache_dir, _cache_dir, "a directory path"),
        timeout=env.seconds("GIT_TIMEOUT", d.timeout),
        max_file_bytes=env.integer("GIT_MAX_FILE_BYTES", d.max_file_bytes, minimum=1,
                                   what="a number of bytes"),
        max_repo_bytes=env.integer("GIT_MAX_REPO_BYTES", d.max_repo_bytes, minimum=1,
                                   what="a number of bytes"),
        resolve_ttl=env.seconds("GIT_RESOLVE_TTL", d.resolve_ttl, zero=True),
        max_trees_per_repo=env.integer("GIT_MAX_TREES", d.max_trees_per_repo, minimum=0),
        tree_min_idle_seconds=env.seconds("GIT_TREE_MIN_IDLE", d.tree_min_idle_seconds,
                                          zero=True),
    )


def _render(env: _Env) -> RenderSettings:
    d = RenderSettings()
    return RenderSettings(
        tool_timeout=env.seconds("RENDER_TIMEOUT", d.tool_timeout),
        plugins=_plugins(env),
        max_output_bytes=env.integer("RENDER_MAX_OUTPUT_BYTES", d.max_output_bytes, minimum=1,
                                     what="a number of bytes"),
        helm_timeout=env.seconds("HELM_TIMEOUT", d.helm_timeout),
        helm_max_download_bytes=env.integer("HELM_MAX_DOWNLOAD_BYTES",
                                            d.helm_max_download_bytes, minimum=1,
                                            what="a number of bytes"),
    )


def _redis(env: _Env) -> RedisSettings:
    d = RedisSettings()
    return RedisSettings(
        url=env.parse("REDIS_URL", d.url, _redis_url,
                      "a redis://, rediss://, unix:// or sentinel:// URL (several "
                      "sentinel://host:port separated by ';')"),
        render_cache_ttl=env.integer("RENDER_CACHE_TTL", d.render_cache_ttl, minimum=1,
                                     what="a whole number of seconds"),
        sentinel_master=env.parse("REDIS_SENTINEL_MASTER", d.sentinel_master, _word,
                                  "a sentinel master name without spaces"),
        cache_encryption_keys=_cache_keys(env),
    )


def _cache_keys(env: _Env) -> tuple[str, ...]:
    from .sealing import valid_key

    found = tokens(env.raw("CACHE_ENCRYPTION_KEYS") or "")
    if not all(valid_key(k) for k in found):
        # Named without its value: it is a key.
        env.problems.append(f"{_PREFIX}CACHE_ENCRYPTION_KEYS: expected Fernet keys (32 bytes "
                            "in URL-safe base64, as `python -c 'from cryptography.fernet import "
                            "Fernet; print(Fernet.generate_key().decode())'` prints), separated "
                            "by ','")
        return ()
    return found


def _cluster(env: _Env) -> ClusterSettings:
    d = ClusterSettings()
    return ClusterSettings(
        qps=env.parse("KUBE_QPS", d.qps, _qps, "a number of requests per second, 0 or more "
                                               "(0: unlimited)"),
        burst=env.integer("KUBE_BURST", d.burst, minimum=1, what="a number of requests"),
        request_timeout=env.seconds("KUBE_TIMEOUT", d.request_timeout),
        hook_timeout=env.seconds("HOOK_TIMEOUT", d.hook_timeout),
    )


def _qps(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


def _reconcile(env: _Env) -> ReconcileSettings:
    d = ReconcileSettings()
    s = ReconcileSettings(
        interval=env.seconds("RECONCILE_INTERVAL", d.interval),
        jitter=env.seconds("RECONCILE_JITTER", d.jitter, zero=True),
        hard_interval=env.seconds("HARD_RECONCILE_INTERVAL", d.hard_interval),
        resume_interval=env.seconds("RESUME_INTERVAL", d.resume_interval),
        self_heal_backoff=env.seconds("SELF_HEAL_BACKOFF", d.self_heal_backoff, zero=True),
        self_heal_backoff_max=env.seconds("SELF_HEAL_BACKOFF_MAX", d.self_heal_backoff_max,
                                          zero=True),
    )
    env.check("SELF_HEAL_BACKOFF_MAX", s.self_heal_backoff_max,
              s.self_heal_backoff_max >= s.self_heal_backoff,
              f"a number of seconds no less than {_PREFIX}SELF_HEAL_BACKOFF "
              f"({_plain(s.self_heal_backoff)})", against="SELF_HEAL_BACKOFF")
    return s


def _tasks(env: _Env) -> TaskSettings:
    d = TaskSettings()
    s = TaskSettings(
        lock_ttl=env.seconds("LOCK_TTL", d.lock_ttl),
        time_limit=env.seconds("TASK_TIME_LIMIT", d.time_limit),
        soft_time_limit=env.seconds("TASK_SOFT_TIME_LIMIT", d.soft_time_limit),
        visibility_timeout=env.seconds("VISIBILITY_TIMEOUT", d.visibility_timeout),
        sync_poll_interval=env.seconds("SYNC_POLL_INTERVAL", d.sync_poll_interval),
        sync_wave_delay=env.seconds("SYNC_WAVE_DELAY", d.sync_wave_delay, zero=True),
        step_budget=env.seconds("SYNC_STEP_BUDGET", d.step_budget),
        retry_backoff=env.seconds("RETRY_BACKOFF", d.retry_backoff),
        retry_backoff_max=env.seconds("RETRY_BACKOFF_MAX", d.retry_backoff_max),
        max_retries=env.integer("TASK_MAX_RETRIES", d.max_retries, minimum=0),
        queued_ttl=env.seconds("QUEUED_TTL", d.queued_ttl),
        worker_probe_port=env.integer("WORKER_PROBE_PORT", d.worker_probe_port, minimum=0,
                                      maximum=65535, what="a port number (0: no probe server)"),
    )
    time_limit = f"{_PREFIX}TASK_TIME_LIMIT ({_plain(s.time_limit)})"
    env.check("TASK_SOFT_TIME_LIMIT", s.soft_time_limit, s.soft_time_limit < s.time_limit,
              f"a number of seconds less than {time_limit}", against="TASK_TIME_LIMIT")
    env.check("VISIBILITY_TIMEOUT", s.visibility_timeout, s.visibility_timeout > s.time_limit,
              f"a number of seconds greater than {time_limit}, or Redis hands a task that is "
              "still running to another worker", against="TASK_TIME_LIMIT")
    env.check("RETRY_BACKOFF_MAX", s.retry_backoff_max, s.retry_backoff_max >= s.retry_backoff,
              f"a number of seconds no less than {_PREFIX}RETRY_BACKOFF "
              f"({_plain(s.retry_backoff)})", against="RETRY_BACKOFF")
    return s


def _log(env: _Env) -> LogSettings:
    d = LogSettings()
    return LogSettings(
        format=env.choice("LOG_FORMAT", d.format, LOG_FORMATS),
        level=env.choice("LOG_LEVEL", d.level, LOG_LEVELS),
    )


def _webhook(env: _Env) -> WebhookSettings:
    d = WebhookSettings()

    def secret(name: str, default: str = "") -> str:
        return env.raw(name) or default

    gitea = secret("WEBHOOK_GITEA_SECRET")
    secrets = WebhookSecrets(
        github=secret("WEBHOOK_GITHUB_SECRET"),
        gitlab=secret("WEBHOOK_GITLAB_SECRET"),
        bitbucket_uuid=secret("WEBHOOK_BITBUCKET_UUID"),
        bitbucket_server=secret("WEBHOOK_BITBUCKET_SERVER_SECRET"),
        gitea=gitea,
        # Gogs signs as Gitea does; one secret serves both unless Gogs has its own.
        gogs=secret("WEBHOOK_GOGS_SECRET", gitea),
        azure_devops_username=secret("WEBHOOK_AZURE_DEVOPS_USERNAME"),
        azure_devops_password=secret("WEBHOOK_AZURE_DEVOPS_PASSWORD"),
    )
    if bool(secrets.azure_devops_username) != bool(secrets.azure_devops_password):
        # Named without its value: one of the two is a password.
        missing, given = (("PASSWORD", "USERNAME") if secrets.azure_devops_username
                          else ("USERNAME", "PASSWORD"))
        env.problems.append(f"{_PREFIX}WEBHOOK_AZURE_DEVOPS_{given} is set: expected "
                            f"{_PREFIX}WEBHOOK_AZURE_DEVOPS_{missing} too (basic auth)")
    return WebhookSettings(
        secrets=secrets,
        max_payload_bytes=env.integer("WEBHOOK_MAX_PAYLOAD_BYTES", d.max_payload_bytes,
                                      minimum=1024),
        secret_name=env.parse("WEBHOOK_SECRET_NAME", d.secret_name, _namespace,
                              "a Secret name (a DNS-1123 label)"),
        secret_refresh=env.seconds("WEBHOOK_SECRET_REFRESH", d.secret_refresh),
        delivery_ttl=env.seconds("WEBHOOK_DELIVERY_TTL", d.delivery_ttl),
        apps_cache=env.seconds("WEBHOOK_APPS_CACHE", d.apps_cache, zero=True),
    )


def _flower(env: _Env) -> FlowerSettings:
    text = env.raw("FLOWER_BASIC_AUTH") or ""
    pairs = [pair.strip() for pair in text.split(",")] if text else []
    if any(not user or not password for user, _, password in
           (pair.partition(":") for pair in pairs)):
        # Named without its value: it holds passwords.
        env.problems.append(f"{_PREFIX}FLOWER_BASIC_AUTH: expected user:password (several "
                            "separated by ',')")
        return FlowerSettings()
    return FlowerSettings(basic_auth=",".join(pairs))


def tokens(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in re.split(r"[,\n]", text) if t.strip())


def _api(env: _Env) -> ApiSettings:
    d = ApiSettings()
    admin = tokens(env.raw("API_ADMIN_TOKENS") or "")
    readonly = tokens(env.raw("API_READONLY_TOKENS") or "")
    if any(len(t) < 16 for t in admin + readonly):
        # Named without its value: it is a credential.
        env.problems.append(f"{_PREFIX}API_ADMIN_TOKENS / {_PREFIX}API_READONLY_TOKENS: "
                            "expected tokens of at least 16 characters")
    return ApiSettings(
        admin_tokens=admin, readonly_tokens=readonly,
        secret_name=env.parse("API_SECRET_NAME", d.secret_name, _namespace,
                              "a Secret name (a DNS-1123 label)"),
        secret_refresh=env.seconds("API_SECRET_REFRESH", d.secret_refresh),
        diff_timeout=env.seconds("API_DIFF_TIMEOUT", d.diff_timeout),
    )


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from `env` (default: the process environment). Raises `SettingsError` naming
    every invalid variable."""
    reader = _Env(os.environ if env is None else env)
    settings = _read(reader)
    if reader.problems:
        raise SettingsError(reader.problems)
    return settings


def _read(reader: _Env) -> Settings:
    return Settings(
        git=_git(reader),
        render=_render(reader),
        redis=_redis(reader),
        cluster=_cluster(reader),
        control_namespace=reader.parse(
            "NAMESPACE", Settings.control_namespace, _namespace,
            "a DNS-1123 label (at most 63 lower-case letters, digits and '-', starting and "
            "ending with a letter or digit)"),
        reconcile=_reconcile(reader),
        tasks=_tasks(reader),
        log=_log(reader),
        webhook=_webhook(reader),
        flower=_flower(reader),
        api=_api(reader),
        health=HealthSettings(customizations_dir=reader.parse(
            "RESOURCE_CUSTOMIZATIONS_DIR", HealthSettings.customizations_dir,
            _customizations_dir, "a directory path")),
    )


@dataclass(frozen=True)
class Variable:
    """One setting as `gitops-tasks settings` shows it: its variable, its default, and the value
    this environment gives it (None when unset; credentials masked)."""

    name: str
    default: str
    value: str | None


class _Recorder(_Env):
    """An `_Env` that notes every variable read and the default it falls back to."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(env)
        self.defaults: dict[str, object] = {}

    def raw(self, name: str) -> str | None:
        self.defaults.setdefault(name, None)
        return super().raw(name)

    def parse(self, name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        self.defaults[name] = default
        return super().parse(name, default, parse, expected)


_CREDENTIAL = re.compile(r"SECRET$|TOKENS$|KEYS$|PASSWORD$|USERNAME$|UUID$|BASIC_AUTH$")


def variables(env: Mapping[str, str] | None = None) -> list[Variable]:
    """Every `GITOPS_TASKS_*` variable `load()` reads, in the order it reads them, with its
    default and its value in `env` (default: the process environment)."""
    recorder = _Recorder(os.environ if env is None else env)
    _read(recorder)
    found = []
    for name, default in recorder.defaults.items():
        text = recorder.raw(name)
        value = None if text is None else "***" if _CREDENTIAL.search(name) else _masked(text)
        found.append(Variable(_PREFIX + name, _shown_default(default), value))
    return found


def _shown_default(value: object) -> str:
    if value is None or value == "" or value == ():
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        return ",".join(_plain(v) for v in value)
    if isinstance(value, Path) and value.is_relative_to(tempfile.gettempdir()):
        return "$TMPDIR/" + str(value.relative_to(tempfile.gettempdir()))
    return _plain(value)
