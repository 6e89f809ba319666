"""Logging, configured once per process: structlog for our code, and the same pipeline for every
stdlib logger (Celery, kombu, urllib3...), so all of a process's stderr is in one format.

Each process (CLI, worker, beat, webhook) calls `configure()` at start; modules create their
logger with `get_logger()` at import time; the layers that know the app, revision, task or
operation bind them for every line logged inside with `with bound(app=..., task_id=...):`.

Our lines go through stdlib logging too (logger `gitops_tasks`): the root logger's one handler
renders both kinds with `structlog.stdlib.ProcessorFormatter`, after `redact_event` has masked
secrets. Output is JSON lines (`timestamp`, `level`, `event`, `logger` for stdlib records, bound
keys) or console text.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

from .settings import LOG_FORMATS, LogSettings

MASK = "***"
# A key whose name (lower-cased, without `_` and `-`) contains one of these holds a secret.
_SECRET_KEY_PARTS = ("password", "passwd", "token", "secret", "authorization", "privatekey",
                     "bearer", "apikey")
# A URL's userinfo: everything between "scheme://" and the last "@" before the host's "/".
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s'\"<>]*@")
_AUTH_HEADER = re.compile(r"(?i)(?P<keep>\bauthorization:\s*[A-Za-z]+\s+)[^\s'\",;]+")
_BEARER = re.compile(r"(?i)(?P<keep>\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.S
)
_OUR_LOGGER = "gitops_tasks"
_FIRST_KEYS = ("timestamp", "level", "logger", "event")
_HANDLER_MARK = "_gitops_tasks_handler"

_configured = False


# --- redaction -----------------------------------------------------------------------------


def is_secret_key(key: str) -> bool:
    """Whether a key named `key` holds a secret (`password`, `github_token`, `sshPrivateKey`...)."""
    folded = key.lower().replace("_", "").replace("-", "")
    return any(part in folded for part in _SECRET_KEY_PARTS)


def redact_text(text: str) -> str:
    """`text` without credentials: URL userinfo (`https://u:p@h` -> `https://***@h`), the
    credentials of `Authorization:` headers and bearer tokens, and private key blocks."""
    text = _URL_USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    text = _AUTH_HEADER.sub(rf"\g<keep>{MASK}", text)
    text = _BEARER.sub(rf"\g<keep>{MASK}", text)
    return _PRIVATE_KEY.sub(MASK, text)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {k: MASK if isinstance(k, str) and is_secret_key(k) else _redact(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(v) for v in value]
    # Anything else would be rendered through repr() or str(): redact that text instead.
    return redact_text(str(value))


def redact_event(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: secret-looking keys masked, credentials removed from every string
    (the event, a stdlib record's formatted message, rendered tracebacks), recursively."""
    return {k: MASK if is_secret_key(k) else _redact(v) for k, v in event_dict.items()}


# --- context -------------------------------------------------------------------------------


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Bind `values` (app, revision, task_id, operation...) to every line logged inside, ours
    and stdlib's; on exit the keys get back the values they had before (nesting works)."""
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def bind(**values: Any) -> None:
    """Bind `values` to every later line of this context (thread, task) until `unbind`."""
    structlog.contextvars.bind_contextvars(**values)


def unbind(*keys: str) -> None:
    structlog.contextvars.unbind_contextvars(*keys)


def clear() -> None:
    """Forget every bound value: a worker process calls this as a task starts, so nothing of
    the previous task sticks to its lines."""
    structlog.contextvars.clear_contextvars()


# --- configuration -------------------------------------------------------------------------


class _StderrHandler(logging.Handler):
    """Writes each line to the `sys.stderr` of that moment (pytest and daemons replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = sys.stderr
            stream.write(line + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


class _JSONLines(structlog.processors.JSONRenderer):
    """JSON with `timestamp`, `level`, `logger` and `event` first, for people reading lines."""

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> str | bytes:
        first = {k: event_dict[k] for k in _FIRST_KEYS if k in event_dict}
        return super().__call__(logger, name, {**first, **event_dict})


def _our_logger(*_args: Any) -> logging.Logger:
    return logging.getLogger(_OUR_LOGGER)


def _is_tty() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False


def _choose_format(settings: LogSettings | None, fmt: str | None, json: bool | None) -> str:
    if fmt is None and json is not None:
        fmt = "json" if json else "console"
    if fmt is None:
        fmt = settings.format if settings else LogSettings().format
    fmt = fmt.lower()
    if not fmt:
        return "console" if _is_tty() else "json"
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r}: expected one of {', '.join(LOG_FORMATS)}")
    return fmt


def configure(settings: LogSettings | None = None, *, fmt: str | None = None,
              json: bool | None = None, level: str | None = None) -> None:
    """Configure structlog and the stdlib root logger; calling it again replaces the previous
    configuration (never a second handler).

    `fmt` ("json", "console") or `json` override `settings.format`, `level` overrides
    `settings.level`; an unset format means console on a terminal, JSON lines otherwise.
    """
    global _configured
    chosen = _choose_format(settings, fmt, json)
    level_name = (level or (settings.level if settings else LogSettings().level)).upper()
    levelno = logging.getLevelNamesMapping().get(level_name)
    if levelno is None:
        raise ValueError(f"log level {level_name!r}: expected DEBUG, INFO, WARNING, ERROR or "
                         "CRITICAL")

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    exceptions: Processor
    renderer: Processor
    if chosen == "json":
        exceptions = structlog.processors.ExceptionRenderer(
            ExceptionDictTransformer(show_locals=False))
        renderer = _JSONLines()
    else:
        exceptions = structlog.processors.format_exc_info
        renderer = structlog.dev.ConsoleRenderer(colors=_is_tty())
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, exceptions,
                    redact_event, renderer],
    )
    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=_our_logger,
        wrapper_class=structlog.make_filtering_bound_logger(levelno),
        # Not cached: a later configure() (or structlog.testing.capture_logs) must reach the
        # loggers modules created at import time.
        cache_logger_on_first_use=False,
    )

    handler = _StderrHandler()
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(levelno)
    logging.getLogger(_OUR_LOGGER).setLevel(logging.NOTSET)
    logging.captureWarnings(True)  # warnings.warn() lines in the same format
    _configured = True


def get_logger(**bound: Any) -> Any:
    """A lazy logger: modules create theirs at import time, before the process has called
    `configure()`, and it must still obey that configuration."""
    return structlog.get_logger(**bound)
