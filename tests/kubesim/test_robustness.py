"""kubesim under concurrent clients and hostile input: never a 500, never a hang."""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import urllib3

from kubesim.server import KubeSim

from .http import call


def _deployment(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": image}]}}},
    }


def test_concurrent_applies_are_serialised(kubesim: KubeSim, namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"

    def work(i: int) -> int:
        r = call(kubesim.url, "PATCH", f"{path}/d{i % 5}",
                 _deployment(f"d{i % 5}", f"img:{i}"),
                 content_type="application/apply-patch+yaml", fieldManager=f"m{i % 3}",
                 force="true")
        return r.status

    with ThreadPoolExecutor(8) as ex:
        statuses = list(ex.map(work, range(200)))
    assert set(statuses) <= {200, 201}
    assert statuses.count(201) == 5
    items = call(kubesim.url, "GET", path).body["items"]
    assert sorted(i["metadata"]["name"] for i in items) == [f"d{i}" for i in range(5)]
    # The request log proves the server never ran two writes of one object at once.
    writes = sorted(
        (r for r in kubesim.request_log if r.path.startswith(f"{path}/d0") and r.method == "PATCH"),
        key=lambda r: r.start,
    )
    assert len(writes) == 40
    rvs = set()
    for r in writes:
        assert r.end >= r.start
    for i in items:
        rvs.add(i["metadata"]["resourceVersion"])
    assert len(rvs) == 5


JUNK_BODIES: list[Any] = [
    b"", b"null", b"[]", b"42", b'"str"', b"{", b"\xff\xfe\x00", b'{"metadata": 5}',
    b'{"metadata": {"name": 7}}', b'{"apiVersion": 1, "kind": [], "metadata": {"name": "x"}}',
    b'{"metadata": {"name": "x", "labels": "nope"}}', b"- a\n- b\n", b"a: [1, 2",
    b'{"metadata": {"name": "x", "finalizers": "f"}}', b'{"spec": {"containers": 3}}',
]
CONTENT_TYPES = [
    "application/json", "application/yaml", "application/merge-patch+json",
    "application/json-patch+json", "application/strategic-merge-patch+json",
    "application/apply-patch+yaml", "text/plain", "",
]


@pytest.mark.parametrize("ctype", CONTENT_TYPES)
def test_junk_never_gives_500(kubesim: KubeSim, namespace: str, ctype: str) -> None:
    call(kubesim.url, "POST", f"/api/v1/namespaces/{namespace}/configmaps",
         {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    targets = [
        ("POST", f"/api/v1/namespaces/{namespace}/configmaps"),
        ("PUT", f"/api/v1/namespaces/{namespace}/configmaps/x"),
        ("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/x"),
        ("PATCH", f"/apis/apps/v1/namespaces/{namespace}/deployments/y"),
        ("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/x/status"),
        ("DELETE", f"/api/v1/namespaces/{namespace}/configmaps/nope"),
    ]
    for method, path in targets:
        for body in JUNK_BODIES:
            r = call(kubesim.url, method, path, body, content_type=ctype, fieldManager="fuzz")
            assert r.status < 500, (method, path, body, r.body)
            if r.status >= 400:
                assert r.body["kind"] == "Status" and r.body["code"] == r.status


def test_random_paths_and_params_never_give_500(kubesim: KubeSim) -> None:
    rng = random.Random(7)
    segments = ["api", "apis", "v1", "apps", "namespaces", "default", "configmaps", "x",
                "status", "scale", "watch", "", "..", "%00", "deployments", "v2", "foo"]
    params = ["labelSelector=a%20in%20(", "fieldSelector=x", "limit=-1", "limit=abc",
              "continue=zzz", "resourceVersion=abc", "timeoutSeconds=x", "dryRun=x",
              "fieldValidation=nope", "watch=false"]
    for _ in range(300):
        path = "/" + "/".join(rng.choice(segments) for _ in range(rng.randint(1, 7)))
        query = "&".join(rng.sample(params, rng.randint(0, 3)))
        r = urllib3.request("GET", f"{kubesim.url}{path}?{query}", timeout=10, retries=False)
        assert r.status < 500, (path, query, r.data[:200])


def test_injected_timeout_holds_the_request(kubesim: KubeSim, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/slow"
    kubesim.call(lambda: kubesim.add_fault(path=f"{namespace}/configmaps/slow$",
                                           timeout=True, count=1))
    start = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        urllib3.request("GET", kubesim.url + path, timeout=urllib3.Timeout(read=0.5),
                        retries=False)
    assert time.monotonic() - start < 5
    assert call(kubesim.url, "GET", path).status == 404


def test_simulation_switch() -> None:
    with KubeSim(simulate=False) as sim:
        base = "/apis/apps/v1/namespaces/default/deployments"
        call(sim.url, "POST", base, _deployment("still", "img:1"))
        time.sleep(0.8)
        status = call(sim.url, "GET", f"{base}/still").body.get("status") or {}
        assert "availableReplicas" not in status
        assert call(sim.url, "PUT", "/_kubesim/simulation", {"enabled": True}).status == 200
        call(sim.url, "POST", base, _deployment("moves", "img:1"))
        deadline = time.time() + 10
        while time.time() < deadline:
            st = call(sim.url, "GET", f"{base}/moves").body.get("status") or {}
            if st.get("availableReplicas") == 1:
                break
            time.sleep(0.1)
        assert st.get("availableReplicas") == 1


def test_many_watchers_and_writers(kubesim: KubeSim, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    received: list[list[str]] = [[] for _ in range(4)]

    def watch(idx: int) -> None:
        r = urllib3.request("GET", f"{kubesim.url}{path}?watch=1&timeoutSeconds=3",
                            preload_content=False, timeout=10, retries=False)
        buf = b""
        for chunk in r.stream(4096):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                ev = json.loads(line)
                received[idx].append(ev["object"]["metadata"]["name"])

    threads = [threading.Thread(target=watch, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda i: call(kubesim.url, "POST", path, {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"w{i}"}}),
            range(40)))
    for t in threads:
        t.join(10)
    for names in received:
        assert sorted(names) == sorted(f"w{i}" for i in range(40))


def test_fault_probability_hits_a_share_of_requests() -> None:
    with KubeSim(simulate=False) as sim:
        sim.call(lambda: sim.add_fault(path="/configmaps", status=503, probability=0.3))
        codes = [call(sim.url, "GET", "/api/v1/namespaces/default/configmaps").status
                 for _ in range(200)]
    failed = codes.count(503)
    assert codes.count(200) + failed == 200
    assert 30 <= failed <= 95  # 60 expected; the bounds are > 4 standard deviations wide
