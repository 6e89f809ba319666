"""`gitops_tasks.log`: one format for our lines and stdlib's (Celery's), bound context, no secrets.

The end-to-end checks run a child Python process and read its stderr, as a worker's log
collector would.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import structlog

from gitops_tasks import log
from gitops_tasks.settings import LogSettings

# Logs through both paths, with bound context, secrets and exceptions. argv[1]: the Python
# expression of the configure() call.
CHILD = textwrap.dedent("""
    import logging, sys
    from gitops_tasks import log
    from gitops_tasks.settings import LogSettings

    exec(sys.argv[1])
    ours = log.get_logger()
    celery = logging.getLogger("celery.worker")
    ours.debug("our debug")
    celery.debug("celery debug")
    with log.bound(app="guestbook", revision="abc123", task_id="t-1"):
        ours.info("fetched https://deploy:ghp_SECRET1@github.com/org/repo.git",
                  repo="redis://:SECRET2@redis:6379/0", password="SECRET3",
                  github_token="SECRET4", creds={"sshPrivateKey": "SECRET5", "user": "git"},
                  objects=3)
        with log.bound(operation="sync", revision="def456"):
            celery.warning("Connected to %s", "redis://:SECRET6@broker:6379/0")
            ours.warning("inner")
        celery.info("Task %s received (Authorization: Bearer SECRET7abcdefgh)", "gitops.sync")
        try:
            raise RuntimeError("clone of https://x:SECRET8@git.example/r failed")
        except RuntimeError:
            ours.exception("ours failed")
            celery.exception("celery failed")
    ours.info("after")
    celery.error("after stdlib")
""")

SECRETS = [f"SECRET{i}" for i in range(1, 9)]


def run_child(configure: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", CHILD, configure], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    return result.stderr.splitlines()


def json_lines(configure: str) -> list[dict[str, Any]]:
    lines = run_child(configure)
    records = []
    for line in lines:
        record = json.loads(line)  # every line is one JSON object
        assert isinstance(record, dict), line
        records.append(record)
    return records


@pytest.fixture(scope="module")
def json_records() -> list[dict[str, Any]]:
    return json_lines("log.configure(LogSettings(format='json', level='DEBUG'))")


def test_json_lines_from_both_paths_carry_the_same_keys(
        json_records: list[dict[str, Any]]) -> None:
    events = [r["event"] for r in json_records]
    assert events[:2] == ["our debug", "celery debug"]
    assert len(json_records) == 10
    for record in json_records:
        assert {"timestamp", "level", "event"} <= record.keys()
        stamp = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
        assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
        assert record["level"] in {"debug", "info", "warning", "error"}
    stdlib = [r for r in json_records if r["event"].startswith(("celery", "Connected", "Task"))
              or r["event"] == "after stdlib"]
    assert stdlib and all(r["logger"] == "celery.worker" for r in stdlib)
    ours = [r for r in json_records if r not in stdlib]
    assert ours and all("logger" not in r for r in ours)


def test_bound_context_reaches_both_paths_and_is_restored(
        json_records: list[dict[str, Any]]) -> None:
    fetched, connected, inner, received, ours_failed, celery_failed, after, after_stdlib = \
        json_records[2:]
    for record in (fetched, received, ours_failed, celery_failed):
        assert (record["app"], record["revision"], record["task_id"]) == \
            ("guestbook", "abc123", "t-1")
        assert "operation" not in record
    for record in (connected, inner):  # nested: one key added, one overridden
        assert (record["app"], record["revision"], record["task_id"], record["operation"]) == \
            ("guestbook", "def456", "t-1", "sync")
    for record in (after, after_stdlib, *json_records[:2]):
        assert not {"app", "revision", "task_id", "operation"} & record.keys()
    assert fetched["objects"] == 3
    assert received["event"].startswith("Task gitops.sync received")  # %-args formatted


def test_secrets_are_masked_in_both_paths(json_records: list[dict[str, Any]]) -> None:
    text = json.dumps(json_records)
    for secret in SECRETS:
        assert secret not in text
    fetched, connected = json_records[2], json_records[3]
    assert fetched["event"] == "fetched https://***@github.com/org/repo.git"
    assert fetched["repo"] == "redis://***@redis:6379/0"
    assert fetched["password"] == "***" and fetched["github_token"] == "***"
    assert fetched["creds"] == {"sshPrivateKey": "***", "user": "git"}
    assert connected["event"] == "Connected to redis://***@broker:6379/0"
    assert "Bearer ***" in json_records[5]["event"]


def test_exceptions_render_as_dict_tracebacks(json_records: list[dict[str, Any]]) -> None:
    for record in json_records[6:8]:
        assert record["level"] == "error"
        (exc,) = record["exception"]
        assert exc["exc_type"] == "RuntimeError"
        assert exc["exc_value"] == "clone of https://***@git.example/r failed"
        assert exc["frames"]


def test_console_format_is_not_json() -> None:
    lines = run_child("log.configure(fmt='console', level='DEBUG')")
    text = "\n".join(lines)
    for line in lines:
        with pytest.raises(ValueError):
            json.loads(line)
    assert "celery debug" in text and "[celery.worker]" in text
    assert "app=guestbook" in text and "Traceback (most recent call last)" in text
    for secret in SECRETS:
        assert secret not in text


def test_the_format_follows_the_terminal_when_unset() -> None:
    # stderr is a pipe here: JSON lines.
    records = json_lines("log.configure(LogSettings(format='', level='INFO'))")
    assert records[0]["event"] == "fetched https://***@github.com/org/repo.git"


def test_configure_twice_does_not_duplicate_lines(json_records: list[dict[str, Any]]) -> None:
    again = json_lines("log.configure(json=True, level='DEBUG'); "
                       "log.configure(json=True, level='DEBUG')")
    assert [r["event"] for r in again] == [r["event"] for r in json_records]


def test_the_level_filters_both_paths() -> None:
    records = json_lines("log.configure(fmt='json', level='info'); "
                         "log.configure(fmt='json', level='WARNING')")
    assert [(r["event"], r.get("logger")) for r in records] == [
        ("Connected to redis://***@broker:6379/0", "celery.worker"),
        ("inner", None),
        ("ours failed", None),
        ("celery failed", "celery.worker"),
        ("after stdlib", "celery.worker"),
    ]


def test_configure_rejects_an_unknown_format_or_level() -> None:
    with pytest.raises(ValueError, match="log format"):
        log.configure(fmt="xml")
    with pytest.raises(ValueError, match="log level"):
        log.configure(level="LOUD")


@pytest.mark.parametrize("key", ["password", "PASSWD", "token", "github_token", "clientSecret",
                                 "Authorization", "sshPrivateKey", "private_key", "bearer",
                                 "db-password", "API_KEY"])
def test_secret_looking_keys(key: str) -> None:
    assert log.is_secret_key(key)


@pytest.mark.parametrize("key", ["app", "revision", "url", "user", "username", "repo", "count"])
def test_ordinary_keys(key: str) -> None:
    assert not log.is_secret_key(key)


@pytest.mark.parametrize("text, expected", [
    ("https://user:pass@host/x", "https://***@host/x"),
    ("redis://:pw@host", "redis://***@host"),
    ("fetch ssh://git@host:22/r failed", "fetch ssh://***@host:22/r failed"),
    ("two: https://a:b@h1/x and http://c@h2", "two: https://***@h1/x and http://***@h2"),
    ("https://u:p@ss@host/x", "https://***@host/x"),
    ("authorization: Basic dXNlcjpwYXNz", "authorization: Basic ***"),
    ("Bearer eyJhbGciOiJIUzI1NiJ9.x.y", "Bearer ***"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----", "***"),
    ("https://host/no-userinfo user@example.com", "https://host/no-userinfo user@example.com"),
])
def test_redact_text(text: str, expected: str) -> None:
    assert log.redact_text(text) == expected


def test_redact_event_recurses_and_keeps_other_types() -> None:
    class Thing:
        def __str__(self) -> str:
            return "thing at https://u:p@h"

    event = {"event": "x", "n": 1, "ok": True, "none": None, "token": {"a": 1},
             "nested": {"url": "https://u:p@h", "list": ["https://u:p@h", 2],
                        "apiKey": "k"}, "obj": Thing()}
    assert log.redact_event(None, "info", event) == {
        "event": "x", "n": 1, "ok": True, "none": None, "token": "***",
        "nested": {"url": "https://***@h", "list": ["https://***@h", 2], "apiKey": "***"},
        "obj": "thing at https://***@h"}


def test_bound_restores_previous_values_when_nested() -> None:
    get = structlog.contextvars.get_contextvars
    log.clear()
    with log.bound(app="a", revision="r1"):
        with log.bound(revision="r2", task_id="t"):
            assert get() == {"app": "a", "revision": "r2", "task_id": "t"}
        assert get() == {"app": "a", "revision": "r1"}
        log.bind(operation="sync")
        log.unbind("operation")
    assert get() == {}


def test_bound_restores_even_when_the_block_raises() -> None:
    log.clear()
    with pytest.raises(KeyError), log.bound(app="a"):
        raise KeyError("x")
    assert structlog.contextvars.get_contextvars() == {}


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.reset_defaults()


@pytest.mark.usefixtures("restored_logging")
def test_configure_in_process_keeps_one_handler() -> None:
    def ours() -> list[logging.Handler]:
        return [h for h in logging.getLogger().handlers
                if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)]

    log.configure(LogSettings(format="json", level="ERROR"))
    log.configure(level="WARNING")  # as the CLI calls it
    assert len(ours()) == 1
    assert logging.getLogger().level == logging.WARNING
