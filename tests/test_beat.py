"""Beat's leader election (`scheduler.beat`) on a real Redis: one leader among several beats,
takeover within about one lock TTL when the leader stops or dies, and the leader's schedule
(the full sweep at once, the resume sweep every resume interval). Producers are fakes that
record what beat asked for; the lock, Redis and (for the watch) kubesim are real."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from gitops_tasks.locks import LOCK_KEY
from gitops_tasks.model import keys
from gitops_tasks.runtime import Runtime
from gitops_tasks.settings import ReconcileSettings, RedisSettings, Settings, TaskSettings
from kubesim.server import KubeSim
from scheduler.beat import LEADER, Beat, Producers
from tests.kubesim.http import call

CLI = str(Path(sys.executable).parent / "gitops-tasks")
TTL = 1.5
RESUME = 0.5


@dataclass
class Recorder:
    sweeps: list[tuple[str, float]] = field(default_factory=list)
    queued: list[tuple[str, str, str]] = field(default_factory=list)
    hard: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def producers(self) -> Producers:
        def enqueue(kind: str, namespace: str, name: str, **_: Any) -> str:
            with self.lock:
                self.queued.append((kind, namespace, name))
            return "id"

        def enqueue_sweep(mode: str) -> str:
            with self.lock:
                self.sweeps.append((mode, time.monotonic()))
            return "id"

        def request_hard(namespace: str, name: str) -> None:
            with self.lock:
                self.hard.append((namespace, name))

        return Producers(enqueue, enqueue_sweep, request_hard)

    def modes(self) -> list[str]:
        with self.lock:
            return [m for m, _ in self.sweeps]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout}s")


def db_url(redis_url: str, db: int) -> str:
    return redis_url.rsplit("/", 1)[0] + f"/{db}"


@pytest.fixture
def beat_settings(redis_url: str, namespace: str) -> Iterator[Settings]:
    """A Redis db of its own (the leader lock is one global name), emptied afterwards."""
    url = db_url(redis_url, 11)
    yield Settings(redis=RedisSettings(url=url), control_namespace=namespace,
                   reconcile=ReconcileSettings(interval=300.0, jitter=0.0,
                                               resume_interval=RESUME),
                   tasks=TaskSettings(lock_ttl=TTL))
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


class Running:
    """A Beat in a thread, with its own Runtime (as its own process would have)."""

    def __init__(self, settings: Settings, kubeconfig: Path, *, watch: bool = False) -> None:
        self.recorder = Recorder()
        self.runtime = Runtime.build(settings, role="beat", kubeconfig=str(kubeconfig),
                                     require_redis=True)
        self.beat = Beat(settings, self.runtime, self.recorder.producers(), watch=watch)
        self.thread = threading.Thread(target=self.beat.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.beat.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "beat did not stop"
        self.runtime.close()


@pytest.fixture
def beats(beat_settings: Settings, kubeconfig: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(**kwargs: Any) -> Running:
        started.append(Running(beat_settings, kubeconfig, **kwargs))
        return started[-1]

    yield start
    for b in started:
        if b.thread.is_alive():
            b.stop()


def test_exactly_one_of_two_leads_and_the_other_takes_over(beats: Callable[..., Running],
                                                          beat_settings: Settings) -> None:
    a, b = beats(), beats()
    wait_until(lambda: a.beat.leading.is_set() or b.beat.leading.is_set(), 5, "a leader")
    # For a while (several heartbeats and retries), never both, never none.
    deadline = time.monotonic() + 2 * TTL
    while time.monotonic() < deadline:
        assert a.beat.leading.is_set() != b.beat.leading.is_set()
        time.sleep(0.05)
    leader, follower = (a, b) if a.beat.leading.is_set() else (b, a)
    assert follower.recorder.sweeps == []  # the follower queues nothing
    client = redis.Redis.from_url(beat_settings.redis.url)
    assert client.exists(LOCK_KEY.format(app=LEADER))
    leader.stop()
    took = wait_until(follower.beat.leading.is_set, TTL + 1.0, "takeover after a stop")
    # It released the lock on the way out: the follower's next try (every ttl/3) wins.
    assert took <= TTL
    assert follower.recorder.modes()[:1] == ["full"]
    client.close()


def test_the_leader_queues_the_full_sweep_at_once_then_resume_sweeps(
        beats: Callable[..., Running]) -> None:
    one = beats()
    wait_until(one.beat.leading.is_set, 5, "leading")
    led_at = time.monotonic()
    wait_until(lambda: len(one.recorder.sweeps) >= 5, 5, "five sweeps")
    one.stop()
    sweeps = list(one.recorder.sweeps)
    assert sweeps[0][0] == "full" and sweeps[0][1] - led_at < 0.5
    # One full sweep: the next is a reconciliation interval (300 s) away.
    assert [m for m, _ in sweeps].count("full") == 1
    resumes = [t for m, t in sweeps if m == "resume"]
    assert len(resumes) >= 4
    assert resumes[0] - sweeps[0][1] >= RESUME - 0.05
    gaps = [b - a for a, b in itertools.pairwise(resumes)]
    assert all(RESUME - 0.05 <= g <= RESUME + 0.6 for g in gaps), gaps


def test_a_full_sweep_every_interval(beat_settings: Settings, kubeconfig: Path) -> None:
    settings = Settings(redis=beat_settings.redis, control_namespace=beat_settings
                        .control_namespace,
                        reconcile=ReconcileSettings(interval=1.0, jitter=0.0,
                                                    resume_interval=60.0),
                        tasks=TaskSettings(lock_ttl=TTL))
    one = Running(settings, kubeconfig)
    try:
        wait_until(lambda: one.recorder.modes().count("full") >= 3, 5, "three full sweeps")
    finally:
        one.stop()
    fulls = [t for m, t in one.recorder.sweeps if m == "full"]
    assert all(0.95 <= b - a <= 1.6 for a, b in itertools.pairwise(fulls)), fulls
    assert "resume" not in one.recorder.modes()


def test_the_leader_runs_the_application_watch(beats: Callable[..., Running],
                                               beat_settings: Settings, kubesim: KubeSim,
                                               application_crd: None) -> None:
    one = beats(watch=True)
    wait_until(one.beat.leading.is_set, 5, "leading")
    ns = beat_settings.control_namespace
    name = f"app-{uuid.uuid4().hex[:6]}"
    r = call(kubesim.url, "POST", f"/apis/gitops-tasks.io/v1alpha1/namespaces/{ns}/applications",
             {"apiVersion": keys.API_VERSION, "kind": "Application",
              "metadata": {"name": name},
              "spec": {"source": {"repoURL": "https://example.com/r.git", "path": "p"},
                       "destination": {"server": "https://kubernetes.default.svc"}}})
    assert r.status == 201, r.body
    wait_until(lambda: ("refresh", ns, name) in one.recorder.queued, 3, "refresh from watch")
    assert one.recorder.queued == [("refresh", ns, name)]
    # Stopping: the watch thread notices at its next event (or when its watch times out);
    # an event after the stop queues nothing.
    one.beat.stop.set()
    time.sleep(0.6)  # the leader loop has seen the stop and set the watch's stop event
    r = call(kubesim.url, "PATCH",
             f"/apis/gitops-tasks.io/v1alpha1/namespaces/{ns}/applications/{name}",
             {"spec": {"source": {"path": "q"}}}, content_type="application/merge-patch+json")
    assert r.status == 200, r.body
    started = time.monotonic()
    one.stop()
    assert time.monotonic() - started < 3
    assert one.recorder.queued == [("refresh", ns, name)]
    assert not any(t.name == "application-watch" and t.is_alive() for t in threading.enumerate())


# ------------------------------------------------------------------------- processes


class BeatProcess:
    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen([CLI, "beat", "--no-watch"], env=env, stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def leading(self) -> bool:
        return any(r.get("event") == "leading" for r in self.records())

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()
        return int(self.proc.returncode)


def test_a_sigkilled_leader_process_is_replaced_within_the_lock_ttl(
        redis_url: str, kubeconfig: Path, namespace: str, tmp_path: Path) -> None:
    url = db_url(redis_url, 12)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "GITOPS_TASKS_REDIS_URL": url,
           "GITOPS_TASKS_NAMESPACE": namespace, "GITOPS_TASKS_LOCK_TTL": str(TTL),
           "GITOPS_TASKS_RESUME_INTERVAL": "0.5", "GITOPS_TASKS_LOG_FORMAT": "json",
           "GITOPS_TASKS_LOG_LEVEL": "INFO", "GITOPS_TASKS_GIT_CACHE_DIR": str(tmp_path / "git")}
    procs = [BeatProcess(n, env, tmp_path / f"{n}.log") for n in ("one", "two")]
    try:
        wait_until(lambda: any(p.leading() for p in procs), 20, "a leading process")
        time.sleep(TTL)  # a few heartbeats: the other must still be waiting
        leaders = [p for p in procs if p.leading()]
        assert len(leaders) == 1, [p.log.read_text() for p in procs]
        leader = leaders[0]
        other = procs[1 - procs.index(leader)]
        assert other.proc.poll() is None, other.log.read_text()
        killed_at = time.monotonic()
        leader.kill()  # no release: the lock must expire by its TTL
        wait_until(other.leading, TTL + 3.0, "takeover after SIGKILL")
        took = time.monotonic() - killed_at
        assert took <= TTL + max(0.5, TTL / 3) + 1.0, took
        # The successor's lock is a new one: a higher fencing epoch in its log line.
        epochs = [int(r["epoch"]) for p in procs for r in p.records()
                  if r.get("event") == "leading"]
        assert len(epochs) == 2
        assert sorted(epochs) == [min(epochs), min(epochs) + 1]
        assert other.terminate() == 0  # SIGTERM: a clean stop
        assert any(r.get("event") == "beat stopped" for r in other.records())
        client = redis.Redis.from_url(url)
        assert not client.exists(LOCK_KEY.format(app=LEADER))  # released on the way out
        client.close()
    finally:
        for p in procs:
            p.kill()
            if not p._out.closed:
                p._out.close()
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()

