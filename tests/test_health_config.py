"""Custom health checks from the `gitops-tasks-cm` ConfigMap reach an app's health: a script in
the control namespace of kubesim, read by `HealthConfig` through the cluster layer, judges the
resources of an app the reconciler syncs and refreshes; the ConfigMap is read again only after
the refresh interval, and a failed read keeps the scripts last read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops_tasks.errors import ApiForbidden, TransientError
from gitops_tasks.health import Health, HealthStatus, resource_health
from gitops_tasks.health_config import CONFIGMAP_NAME, HealthConfig
from gitops_tasks.reconcile import Reconciler
from gitops_tasks.settings import ReconcileSettings, TaskSettings
from tests.kubesim.http import call
from tests.test_reconcile import Env, configmap

SCRIPT = """\
local wanted = obj.data and obj.data.state or "missing"
if wanted == "ready" then
  return {status = "Healthy", message = "state is ready"}
end
return {status = "Degraded", message = "state is " .. wanted}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _put_settings(env: Env, data: dict[str, str]) -> None:
    path = f"/api/v1/namespaces/{env.control}/configmaps"
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP_NAME, "namespace": env.control}, "data": data}
    r = call(env.kubesim.url, "PUT", f"{path}/{CONFIGMAP_NAME}", body)
    if r.status == 404:
        r = call(env.kubesim.url, "POST", path, body)
    assert r.status in (200, 201), r.body


def _reconciler(env: Env, config: HealthConfig) -> Reconciler:
    base = env.reconciler
    return Reconciler(base.manifests, base.destinations, apps=env.apps,
                      dry_run_cache=base.comparer.dry_run_cache, hook_timeout=30,
                      tasks=TaskSettings(sync_poll_interval=0.05, retry_backoff=0.05,
                                         max_retries=2),
                      reconcile=ReconcileSettings(self_heal_backoff=0.0),
                      customizations=config.current)


def _resource_health(env: Env, name: str) -> dict[str, Any] | None:
    for r in env.status(name).get("resources") or []:
        if r["kind"] == "ConfigMap" and r["name"] == "probe":
            health: dict[str, Any] | None = r.get("health")
            return health
    raise AssertionError(f"no ConfigMap probe in {env.status(name)}")


def test_a_configmap_script_reaches_the_apps_resource_health(env: Env) -> None:
    _put_settings(env, {"resource.customizations.health.ConfigMap": SCRIPT})
    clock = Clock()
    config = HealthConfig(env.cluster, env.control, clock=clock)
    reconciler = _reconciler(env, config)
    env.commit({"app/cm.yaml": configmap("probe", {"state": "starting"})})
    app = env.app("probed", "app")

    assert reconciler.sync(app).succeeded
    reconciler.refresh(app)
    # Without a script a ConfigMap has no health; with it, the app is as bad as it says.
    assert _resource_health(env, "probed") == {"status": "Degraded",
                                               "message": "state is starting"}
    assert env.status("probed")["health"] == {"status": "Degraded",
                                              "message": "state is starting"}

    # An edit to the ConfigMap is not read again before the interval...
    _put_settings(env, {"resource.customizations.health.ConfigMap":
                        SCRIPT.replace('"state is " .. wanted', '"now " .. wanted')})
    reconciler.refresh(app)
    assert _resource_health(env, "probed") == {"status": "Degraded",
                                               "message": "state is starting"}
    # ... and is once it has passed.
    clock.now += 31
    reconciler.refresh(app)
    assert _resource_health(env, "probed") == {"status": "Degraded", "message": "now starting"}

    # Git moves the object to the state the script calls healthy.
    env.commit({"app/cm.yaml": configmap("probe", {"state": "ready"})})
    assert reconciler.sync(app).succeeded
    reconciler.refresh(app)
    assert env.status("probed")["health"]["status"] == "Healthy"

    # The script removed: a ConfigMap has no health notion again.
    _put_settings(env, {"unrelated": "x"})
    clock.now += 31
    reconciler.refresh(app)
    assert _resource_health(env, "probed") is None


def test_no_configmap_means_builtin_checks_only(env: Env) -> None:
    config = HealthConfig(env.cluster, env.control)
    assert len(config.current()) == 0


class _FlakyCluster:
    """Answers the first read, then fails as an API server under load would."""

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data
        self.calls = 0

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> Any:
        self.calls += 1
        if self.calls > 1:
            raise TransientError("GET configmaps/gitops-tasks-cm: 503 Service Unavailable")
        return {"data": self.data}


def test_a_failed_read_keeps_the_last_scripts_and_retries_sooner(tmp_path: Path) -> None:
    cluster = _FlakyCluster({"resource.customizations.health.Service":
                             'return {status = "Degraded", message = "custom"}'})
    clock = Clock()
    config = HealthConfig(cluster, "ns", clock=clock)  # type: ignore[arg-type]
    assert len(config.current()) == 1
    assert cluster.calls == 1
    config.current()
    assert cluster.calls == 1  # cached within the interval
    clock.now += 31
    kept = config.current()
    assert cluster.calls == 2 and len(kept) == 1
    clock.now += 6  # the retry comes after 5 s, not 30
    config.current()
    assert cluster.calls == 3


class _ForbiddenCluster:
    calls = 0

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> Any:
        self.calls += 1
        raise ApiForbidden("configmaps \"gitops-tasks-cm\" is forbidden", status=403)


def test_a_forbidden_read_is_not_retried_every_few_seconds() -> None:
    cluster = _ForbiddenCluster()
    clock = Clock()
    config = HealthConfig(cluster, "ns", clock=clock)  # type: ignore[arg-type]
    assert len(config.current()) == 0
    clock.now += 6
    config.current()
    assert cluster.calls == 1  # permanent: the usual interval, not the 5 s retry
    clock.now += 31
    config.current()
    assert cluster.calls == 2


def test_directory_scripts_under_the_configmaps(tmp_path: Path) -> None:
    for kind, message in (("Service", "from dir"), ("Endpoints", "from dir")):
        (tmp_path / kind).mkdir()
        (tmp_path / kind / "health.lua").write_text(
            f'return {{status = "Healthy", message = "{message}"}}')
    cluster = _FlakyCluster({"resource.customizations.health.Service":
                             'return {status = "Degraded", message = "from configmap"}'})
    config = HealthConfig(cluster, "ns", tmp_path)  # type: ignore[arg-type]
    custom = config.current()
    svc = {"apiVersion": "v1", "kind": "Service"}
    eps = {"apiVersion": "v1", "kind": "Endpoints"}
    assert resource_health(svc, custom) == Health(HealthStatus.DEGRADED, "from configmap")
    assert resource_health(eps, custom) == Health(HealthStatus.HEALTHY, "from dir")


def test_the_runtime_wires_the_configmap_and_the_directory(env: Env, kubeconfig: Path,
                                                           redis_url: str,
                                                           tmp_path: Path) -> None:
    from gitops_tasks.runtime import Runtime
    from gitops_tasks.settings import HealthSettings, RedisSettings, Settings

    (tmp_path / "scripts" / "Endpoints").mkdir(parents=True)
    (tmp_path / "scripts" / "Endpoints" / "health.lua").write_text(
        'return {status = "Healthy", message = "from dir"}')
    _put_settings(env, {"resource.customizations.health.Service":
                        'return {status = "Degraded", message = "from configmap"}'})
    settings = Settings(control_namespace=env.control, redis=RedisSettings(url=redis_url),
                        health=HealthSettings(customizations_dir=tmp_path / "scripts"))
    rt = Runtime.build(settings, role="test", kubeconfig=str(kubeconfig))
    try:
        custom = rt.reconciler.comparer.customizations()
        svc = {"apiVersion": "v1", "kind": "Service"}
        eps = {"apiVersion": "v1", "kind": "Endpoints"}
        assert resource_health(svc, custom) == Health(HealthStatus.DEGRADED, "from configmap")
        assert resource_health(eps, custom) == Health(HealthStatus.HEALTHY, "from dir")
    finally:
        rt.close()
