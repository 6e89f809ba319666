"""The broker, recorded: every message sent for one app, every start, the app lock's acquires
and releases, and snapshots of the queues, from redis-server's own MONITOR stream. Shared by
the tests that prove "at most one queued refresh and one queued sync per app"."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis

_TOKEN = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_ESCAPE = re.compile(rb'\\(x[0-9a-fA-F]{2}|.)')
_SIMPLE = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b"}


def _unescape(raw: bytes) -> bytes:
    """Undo redis-server's quoting of one MONITOR argument (sdscatrepr)."""
    def one(m: re.Match[bytes]) -> bytes:
        code = m.group(1)
        if code.startswith(b"x") and len(code) == 3:
            return bytes([int(code[1:], 16)])
        return _SIMPLE.get(code, code)
    return _ESCAPE.sub(one, raw)


def _message(payload: bytes | str) -> tuple[str, str, list[Any]] | None:
    """(task name, task id, args) of a kombu/Celery JSON message, None if it is not one."""
    try:
        doc = json.loads(payload)
        headers = doc["headers"]
        body = json.loads(base64.b64decode(doc["body"])) if \
            doc["properties"].get("body_encoding") == "base64" else json.loads(doc["body"])
    except (ValueError, KeyError, TypeError):
        return None
    return str(headers.get("task")), str(headers.get("id")), list(body[0])


@dataclass
class Snapshot:
    """The broker's state for one app at one instant (one MULTI/EXEC)."""

    number: int
    at: float
    # kind -> ids of the app's messages of that kind: in the kind's queue list, and reserved
    # by a worker (in `unacked`: prefetched, held for a countdown, or running).
    listed: dict[str, list[str]]
    reserved: dict[str, list[str]]
    markers: dict[str, str | None]


@dataclass
class Event:
    kind: str  # "send", "start", "snapshot", "lock" (an acquire attempt), "unlock"
    task: str = ""  # "refresh" / "sync"
    id: str = ""
    at: float = 0.0
    snapshot: int = -1


@dataclass
class BrokerRecorder:
    """Records, in redis-server's own order, every message sent for one app (LPUSH onto a
    queue list), every task of the app that started (its `running()` prologue releases its
    queue marker: EVALSHA on `gitops:queued:{kind}:{ns}/{name}` with its own task id), and
    the app lock's acquire attempts (SET NX with a token) and releases (EVALSHA with it), and
    snapshots of the queue lists, `unacked` and the markers taken every `interval` seconds in
    one MULTI/EXEC that also ECHOes its number, so each snapshot has its place in that order.
    MONITOR is the source: it shows commands as the server executes them, Lua and
    transactions included."""

    url: str
    namespace: str
    name: str
    interval: float = 0.02
    events: list[Event] = field(default_factory=list)
    snapshots: dict[int, Snapshot] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    KINDS = ("refresh", "sync")
    TASKS = {"gitops.refresh": "refresh", "gitops.sync": "sync"}

    def marker(self, kind: str) -> str:
        return f"gitops:queued:{kind}:{self.namespace}/{self.name}"

    def __post_init__(self) -> None:
        self.client = redis.Redis.from_url(self.url)
        self.db = int(self.client.connection_pool.connection_kwargs.get("db", 0))
        self._monitor_ready = threading.Event()
        self._monitor_done = threading.Event()

    def start(self) -> BrokerRecorder:
        monitor = threading.Thread(target=self._monitor, daemon=True)
        monitor.start()
        assert self._monitor_ready.wait(5), "MONITOR did not start"
        sampler = threading.Thread(target=self._sample, daemon=True)
        sampler.start()
        self._threads = [monitor, sampler]
        return self

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def finish(self, timeout: float = 30) -> None:
        """Once nothing is queued or running for the app (no marker left), record one more
        second, then stop."""
        deadline = time.monotonic() + timeout
        while any(self.client.get(self.marker(k)) for k in self.KINDS):
            if time.monotonic() > deadline:
                raise AssertionError(f"markers of {self.name} still set after {timeout}s")
            time.sleep(0.1)
        time.sleep(1.0)
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._threads[1].join(5)
        self.client.echo(f"gitops-e2e-end:{self._tag}")
        assert self._monitor_done.wait(20), "MONITOR fell behind"
        self._threads[0].join(5)

    def _monitor(self) -> None:
        conn = redis.Redis.from_url(self.url, protocol=2).connection_pool.get_connection()
        try:
            conn.send_command("MONITOR")  # type: ignore[no-untyped-call]
            conn.read_response()
            self._monitor_ready.set()
            markers = {self.marker(k).encode(): k for k in self.KINDS}
            snap = f"gitops-e2e-snapshot:{self._tag}:".encode()
            end = f"gitops-e2e-end:{self._tag}".encode()
            lock_key = f"gitops:lock:{self.namespace}/{self.name}".encode()
            while True:
                line = conn.read_response(disable_decoding=True)
                if not isinstance(line, bytes):
                    continue
                stamp, _, rest = line.partition(b" ")
                db = int(rest[1:rest.index(b" ")])
                if db != self.db:
                    continue
                args = [_unescape(t) for t in _TOKEN.findall(rest[rest.index(b"]") + 1:])]
                if not args:
                    continue
                command = args[0].upper()
                if command == b"ECHO" and args[1:] == [end]:
                    return
                if command == b"ECHO" and len(args) == 2 and args[1].startswith(snap):
                    self.events.append(Event("snapshot", at=float(stamp),
                                             snapshot=int(args[1][len(snap):])))
                elif command in (b"LPUSH", b"RPUSH") and len(args) >= 3:
                    for payload in args[2:]:
                        found = _message(payload)
                        if found and found[0] in self.TASKS and \
                                found[2] == [self.namespace, self.name]:
                            self.events.append(Event("send", self.TASKS[found[0]], found[1],
                                                     float(stamp)))
                elif command == b"SET" and len(args) >= 3 and args[1] == lock_key:
                    self.events.append(Event("lock", id=args[2].decode(), at=float(stamp)))
                elif command in (b"EVALSHA", b"EVAL") and len(args) == 5 and \
                        args[2] == b"1" and args[3] == lock_key:
                    self.events.append(Event("unlock", id=args[4].decode(), at=float(stamp)))
                elif command in (b"EVALSHA", b"EVAL") and len(args) >= 5 and \
                        args[2] == b"1" and args[3] in markers:
                    self.events.append(Event("start", markers[args[3]], args[4].decode(),
                                             float(stamp)))
        finally:
            self._monitor_done.set()
            conn.disconnect()  # type: ignore[no-untyped-call]

    def _ids(self, payloads: list[bytes]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {k: [] for k in self.KINDS}
        for payload in payloads:
            found = _message(payload)
            if found and found[0] in self.TASKS and found[2] == [self.namespace, self.name]:
                out[self.TASKS[found[0]]].append(found[1])
        return out

    def _sample(self) -> None:
        number = 0
        while not self._stop.is_set():
            pipe = self.client.pipeline(transaction=True)
            pipe.echo(f"gitops-e2e-snapshot:{self._tag}:{number}")
            pipe.lrange("refresh", 0, -1)
            pipe.lrange("sync", 0, -1)
            pipe.hgetall("unacked")
            for kind in self.KINDS:
                pipe.get(self.marker(kind))
            _, refresh, sync, unacked, *markers = pipe.execute()
            listed = self._ids(refresh + sync)
            # An `unacked` entry is [message, exchange, routing key].
            reserved = self._ids([json.dumps(json.loads(v)[0]).encode()
                                  for v in unacked.values()])
            self.snapshots[number] = Snapshot(
                number, time.time(), listed, reserved,
                {k: (m.decode() if m else None) for k, m in zip(self.KINDS, markers,
                                                                  strict=True)})
            number += 1
            self._stop.wait(self.interval)


@dataclass
class QueueReport:
    sends: dict[str, int]
    starts: dict[str, int]
    snapshots: int
    busy_snapshots: int  # snapshots with some message of the app in the broker
    max_in_broker: dict[str, int]  # queued + running/finishing, at one snapshot
    max_queued: dict[str, int]
    lock_refusals: int  # acquire attempts made while another token held the app lock


def check_queue(recorder: BrokerRecorder) -> QueueReport:
    """Replay the recorded order and check, after every event, that at most one message of
    each kind is queued (sent and not started) for the app; at every snapshot, that what the
    broker holds agrees: each of the app's messages in a queue list or in `unacked` was seen
    sent, at most one of each kind has not started, and that one is the one the marker names."""
    queued: dict[str, set[str]] = {k: set() for k in recorder.KINDS}
    started: set[str] = set()
    sent: set[str] = set()
    sends = dict.fromkeys(recorder.KINDS, 0)
    starts = dict.fromkeys(recorder.KINDS, 0)
    max_queued = dict.fromkeys(recorder.KINDS, 0)
    max_broker = dict.fromkeys(recorder.KINDS, 0)
    seen = busy = refusals = 0
    holder: str | None = None
    for event in recorder.events:
        if event.kind == "send":
            assert event.id not in started, f"{event.task} {event.id} sent again after it ran"
            sent.add(event.id)
            queued[event.task].add(event.id)
            sends[event.task] += 1
        elif event.kind == "lock":
            if holder is None:
                holder = event.id
            elif event.id != holder:
                refusals += 1
        elif event.kind == "unlock":
            if event.id == holder:
                holder = None
        elif event.kind == "start":
            if event.id in queued[event.task]:
                starts[event.task] += 1
            queued[event.task].discard(event.id)
            started.add(event.id)
        else:
            snap = recorder.snapshots.get(event.snapshot)
            if snap is None:
                continue
            seen += 1
            busy += any(snap.listed[k] or snap.reserved[k] for k in recorder.KINDS)
            for kind in recorder.KINDS:
                present = set(snap.listed[kind]) | set(snap.reserved[kind])
                if seen == 1:
                    # Sent before MONITOR started (a sweep's refresh, say): whether it started
                    # already (a running task's message stays in `unacked` until it is
                    # acknowledged) is unknowable, so it is left out of the checks.
                    early = present - sent - started
                    sent |= early
                    started |= early
                unknown = present - sent
                assert not unknown, f"snapshot {snap.number}: {kind} messages {unknown} in " \
                                    f"the broker were never seen sent"
                waiting = present - started
                assert len(waiting) <= 1, \
                    f"snapshot {snap.number}: {len(waiting)} {kind} tasks queued: {waiting}"
                if waiting:
                    assert snap.markers[kind] == next(iter(waiting)), \
                        f"snapshot {snap.number}: queued {kind} {waiting} but the marker " \
                        f"names {snap.markers[kind]}"
                max_broker[kind] = max(max_broker[kind], len(present))
        for kind in recorder.KINDS:
            assert len(queued[kind]) <= 1, \
                f"{len(queued[kind])} {kind} tasks queued at once for the app: {queued[kind]}"
            max_queued[kind] = max(max_queued[kind], len(queued[kind]))
    return QueueReport(sends, starts, seen, busy, max_broker, max_queued, refusals)
