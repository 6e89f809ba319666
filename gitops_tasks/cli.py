"""The `gitops-tasks` command line.

`render` prints the manifests an Application renders to; it needs no cluster and no Redis (the
render cache is used only when the configured Redis answers).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from . import settings as settings_mod
from .errors import GitOpsError, InvalidApplication
from .model import Application, parse_application


def _load_application(path: str) -> Application:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise GitOpsError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise GitOpsError(f"{path}: not valid YAML: {exc}") from exc
    apps = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Application"]
    if len(apps) != 1:
        raise GitOpsError(f"{path}: expected exactly one Application, found {len(apps)}")
    return parse_application(apps[0])


def _cmd_render(args: argparse.Namespace) -> int:
    from .charts.store import ChartRepositories
    from .cluster import load_api_client
    from .manifests import ManifestSource
    from .render.cache import RenderCache
    from .repo_credentials import ClusterRepoCredentials
    from .runtime import default_kubeconfig, redis_or_none
    from .sealing import Sealer
    from .source import GitMirrors

    cfg = settings_mod.load()
    app = _load_application(args.file)
    client = None if args.no_cache else redis_or_none(cfg.redis.url, cfg.redis.sentinel_master)
    # Private repositories render as the controller renders them: with the credential Secrets
    # of the control namespace, when there is a cluster to read them from (a failed read only
    # fails repositories that need them).
    credentials = None
    kubeconfig = default_kubeconfig(args.kubeconfig)
    if kubeconfig is not None or os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            credentials = ClusterRepoCredentials(load_api_client(kubeconfig, args.context),
                                                 cfg.control_namespace)
        except GitOpsError as exc:
            print(f"note: no repository credentials from the cluster: {exc}", file=sys.stderr)
    source = ManifestSource(
        GitMirrors(cfg.git, credentials),
        RenderCache(client, cfg.redis.render_cache_ttl, Sealer(cfg.redis.cache_encryption_keys)),
        cfg.render,
        ChartRepositories(cfg.git.cache_dir, credentials.helm if credentials else None,
                          timeout=cfg.render.helm_timeout,
                          max_bytes=cfg.render.helm_max_download_bytes),
    )
    rendered = source.manifests(app, args.revision)
    yaml.safe_dump_all(rendered.manifests, sys.stdout, sort_keys=False, explicit_start=True)
    print(f"# {app.name}: {len(rendered.manifests)} objects at {rendered.revision}"
          f"{' (cached)' if rendered.cached else ''}", file=sys.stderr)
    return 0


def _runtime(args: argparse.Namespace, role: str = "cli") -> Any:
    """The engine for the current kubeconfig: destination clusters are its contexts and the
    Applications live in the control namespace of its current context."""
    from .runtime import Runtime

    return Runtime.build(settings_mod.load(), role=role, kubeconfig=args.kubeconfig,
                         context=args.context)


def _reconciler(args: argparse.Namespace) -> Any:
    return _runtime(args).reconciler


@contextlib.contextmanager
def _app_lock(runtime: Any, app: Application) -> Iterator[Callable[[], None]]:
    """The app's lock, as a worker takes it, while this process syncs in-process: the CLI and
    a running controller never apply one app at the same time. Without Redis there is no
    controller to race, and no lock."""
    from .locks import AppLock
    from .sweeping import app_id

    if runtime.redis is None:
        yield lambda: None
        return
    lock = AppLock(runtime.redis, app_id(runtime.apps.namespace, app.name),
                   ttl=runtime.settings.tasks.lock_ttl)
    if not lock.acquire():
        raise GitOpsError("a gitops-tasks worker is syncing this app right now; wait for it "
                          "(kubectl get application) and try again", app=app.name)
    with lock.holding():
        yield lock.check


def _warn_if_unregistered(reconciler: Any, app: Application) -> dict[str, Any] | None:
    previous, exists = reconciler.load_status(app)
    if not exists:
        print(f"note: Application {app.name} is not in namespace "
              f"{reconciler.apps.namespace}: there is no recorded inventory, so its objects "
              "are found by their tracking label (one list per kind), and no status is "
              "written. `kubectl apply` the Application first to keep both.", file=sys.stderr)
    return previous  # type: ignore[no-any-return]


def _cmd_diff(args: argparse.Namespace) -> int:
    app = _load_application(args.file)
    reconciler = _reconciler(args)
    cmp = reconciler.compare(app, _warn_if_unregistered(reconciler, app),
                             revision=args.revision)
    differs = False
    for key in sorted(cmp.diffs):
        diff = cmp.diffs[key]
        if diff.status.value == "Synced":
            continue
        differs = True
        print(f"===== {key} ({diff.status.value}) =====")
        text = diff.text()
        if text:
            print(text.rstrip("\n"))
    for key, owner in sorted(cmp.shared.items()):
        differs = True
        print(f"===== {key} (owned by application {owner}: not compared) =====")
    # The conditions explain what could not be compared (and warnings such as a shared
    # resource): printed, not left for status.conditions only.
    for ctype, message in cmp.conditions:
        print(f"{ctype}: {message}", file=sys.stderr)
    if cmp.errors or cmp.sync_status == "Unknown":
        return 2
    return 1 if differs else 0


def _cmd_sync(args: argparse.Namespace) -> int:
    app = _load_application(args.file)
    runtime = _runtime(args)
    reconciler = runtime.reconciler
    _warn_if_unregistered(reconciler, app)
    with _app_lock(runtime, app) as fence:
        outcome = reconciler.sync(app, revision=args.revision, prune=args.prune or None,
                                  dry_run=args.dry_run, force=args.force or None,
                                  initiated_by="cli", fence=fence)
    _print_outcome(app.name, outcome)
    return 0 if outcome.succeeded else 1


def _print_outcome(app_name: str, outcome: Any) -> None:
    rows = [("KIND", "NAMESPACE", "NAME", "RESULT", "MESSAGE")]
    for r in outcome.results:
        rows.append((r.key.group_kind, r.key.namespace, r.key.name, r.result, r.message))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])
    print(f"\n{app_name}: {outcome.phase} at {outcome.revision[:12] or '-'}: {outcome.message}")
    for ctype, message in outcome.conditions:
        print(f"{ctype}: {message}", file=sys.stderr)


def _cmd_refresh(args: argparse.Namespace) -> int:
    """One reconcile, as the controller would run it: compare, record, and sync when the
    app's automated policy says a sync is due (new revision, or drift with selfHeal)."""
    app = _load_application(args.file)
    runtime = _runtime(args)
    reconciler = runtime.reconciler
    refreshed = reconciler.refresh_app(app)
    cmp = refreshed.comparison
    print(f"{app.name}: {cmp.sync_status}, {cmp.health.status.value} at {cmp.revision[:12]}")
    for key, diff in sorted(cmp.diffs.items()):
        if diff.status.value != "Synced":
            print(f"  {diff.status.value:16s} {key}")
    # What explains an Unknown or a warning is printed, not left in status.conditions only.
    for ctype, message in cmp.conditions:
        print(f"{ctype}: {message}", file=sys.stderr)
    failed = bool(cmp.errors) or cmp.sync_status == "Unknown"
    if not refreshed.auto.due:
        if app.automated and cmp.sync_status != "Synced":
            print(f"no automated sync: {refreshed.auto.reason}")
        return 1 if failed else 0
    print("automated sync is due")
    with _app_lock(runtime, app) as fence:
        outcome = reconciler.sync(app, initiated_by="automated", fence=fence)
    _print_outcome(app.name, outcome)
    return 0 if outcome.succeeded else 1


def _cmd_rollback(args: argparse.Namespace) -> int:
    app = _load_application(args.file)
    runtime = _runtime(args)
    with _app_lock(runtime, app) as fence:
        outcome = runtime.reconciler.rollback(app, args.id, force=args.force, fence=fence)
    _print_outcome(app.name, outcome)
    return 0 if outcome.succeeded else 1


def _cmd_worker(args: argparse.Namespace) -> int:
    """The consumer: a Celery worker on the chosen queues (see `workers`)."""
    from . import metrics

    # Before the task modules are imported: the pool's children write their samples there.
    metrics_dir = metrics.enable_multiprocess(os.environ.get(metrics.MULTIPROC_ENV))
    from workers.main import run

    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    try:
        return run(settings_mod.load(), queues=queues, concurrency=args.concurrency,
                   probe_port=args.probe_port, hostname=args.hostname or "")
    except ValueError as exc:  # an unknown queue, a bad option
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _cmd_beat(args: argparse.Namespace) -> int:
    """The producers on a schedule: drift sweeps and the Application watch (see `scheduler`)."""
    from scheduler.main import run

    return run(settings_mod.load(), watch=not args.no_watch)


def _cmd_webhook(args: argparse.Namespace) -> int:
    """The push receiver (see `scheduler.webhook`)."""
    from scheduler.main import run_webhook

    return run_webhook(settings_mod.load(), host=args.host, port=args.port,
                       insecure=args.insecure)


def _cmd_flower(args: argparse.Namespace) -> int:
    """Flower, the Celery console, on our broker (see `gitops_tasks.tasks.flower`)."""
    from .log import configure as configure_logging
    from .tasks.flower import start

    settings = settings_mod.load()
    configure_logging(settings.log)
    start(settings, port=args.port, address=args.address)
    return 0


def _cmd_up(args: argparse.Namespace) -> int:
    """Everything on one machine (see `up`)."""
    from .up import run

    kubesim = True if args.kubesim else (False if args.no_kubesim else None)
    return run(Path(args.workdir).resolve(), workers=args.workers,
               webhook_port=args.webhook_port, flower_port=args.flower_port, kubesim=kubesim)


def _cmd_health(args: argparse.Namespace) -> int:
    """The health of every object in a file, with the configured checks (see `cli_health`)."""
    from . import cli_health

    cfg = settings_mod.load()
    directories = [Path(d) for d in args.customizations]
    if cfg.health.customizations_dir is not None:
        directories.append(cfg.health.customizations_dir)
    return cli_health.run(args.file, configmap=args.configmap, directories=directories,
                          output=args.output)


def _cmd_settings(args: argparse.Namespace) -> int:
    """Every setting with its default and this environment's value, then the check `load()`
    makes at every process start (exit 2 naming each invalid value)."""
    from . import views

    found = settings_mod.variables()
    if args.output == "table":
        print(views.table([{"variable": v.name, "default": v.default,
                            "value": "" if v.value is None else v.value} for v in found],
                          ("variable", "default", "value")))
    else:
        print(views.dump([{"name": v.name, "default": v.default, "value": v.value}
                          for v in found], args.output))
    settings_mod.load()
    return 0


def _cmd_app(args: argparse.Namespace) -> int:
    """`gitops-tasks app ACTION`: through the controller (see `cli_app`)."""
    from . import cli_app

    rt = _runtime(args)
    try:
        a = args.action
        if a == "list":
            return cli_app.app_list(rt, args.output)
        if a == "get":
            return cli_app.app_get(rt, args.name, args.output)
        if a == "history":
            return cli_app.app_history(rt, args.name, args.output)
        if a == "diff":
            return cli_app.app_diff(rt, args.name, args.timeout, args.output)
        if a == "sync":
            return cli_app.app_sync(rt, args.name, revision=args.revision or "",
                                    prune=args.prune, dry_run=args.dry_run, force=args.force,
                                    wait=args.wait, timeout=args.timeout)
        if a == "rollback":
            return cli_app.app_rollback(rt, args.name, args.id, force=args.force,
                                        wait=args.wait, timeout=args.timeout)
        if a == "terminate-op":
            return cli_app.app_terminate(rt, args.name)
        if a == "refresh":
            return cli_app.app_refresh(rt, args.name, hard=args.hard)
        if a == "wait":
            return cli_app.app_wait(rt, args.name, health=args.health, sync=args.sync,
                                    operation=args.operation, timeout=args.timeout)
        if a == "create":
            return cli_app.app_create(rt, _application_doc(args.file), upsert=args.upsert)
        if a == "delete":
            return cli_app.app_delete(rt, args.name, cascade=args.cascade, wait=args.wait,
                                      timeout=args.timeout)
        raise GitOpsError(f"unknown app command {a}")
    finally:
        rt.close()


def _application_doc(path: str) -> dict[str, Any]:
    """The one Application document of a file (`app create` checks it before writing)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except OSError as exc:
        raise GitOpsError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise GitOpsError(f"{path}: not valid YAML: {exc}") from exc
    apps = [d for d in docs if d.get("kind") == "Application"]
    if len(apps) != 1:
        raise GitOpsError(f"{path}: expected exactly one Application, found {len(apps)}")
    return apps[0]


def _app_parser(sub: Any) -> None:
    from .views import OUTPUTS

    app = sub.add_parser("app", help="act on Applications through the controller (list, "
                                     "get, diff, sync, refresh, wait, history, rollback, ...)")
    actions = app.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help: str, *, named: bool = True, output: bool = False,
               timeout: float | None = None) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=help)
        if named:
            p.add_argument("name", help="the Application's name")
        if output:
            p.add_argument("-o", "--output", choices=OUTPUTS, default="table")
        if timeout is not None:
            p.add_argument("--timeout", type=float, default=timeout,
                           help=f"seconds (default {timeout:.0f})")
        p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
        p.add_argument("--context", help="kubeconfig context of the control cluster")
        p.set_defaults(func=_cmd_app)
        return p

    action("list", "name, repo, path, revision, sync, health, last sync", named=False,
           output=True)
    action("get", "status, conditions, resources and operation", output=True)
    action("history", "the deployed revisions", output=True)
    action("diff", "what differs between Git and the cluster (exit 0: none, 1: some, 2: "
                   "error), computed by a worker", output=True, timeout=60)
    sync = action("sync", "request a sync (written on the Application; a worker runs it)",
                  timeout=600)
    sync.add_argument("--revision", help="branch, tag or commit (default: targetRevision)")
    sync.add_argument("--prune", action="store_true", help="delete what left Git")
    sync.add_argument("--dry-run", action="store_true", help="report only; change nothing")
    sync.add_argument("--force", action="store_true", help="take over others' fields")
    sync.add_argument("--wait", action="store_true", help="follow the operation to its end")
    rollback = action("rollback", "sync the revision of a history entry", timeout=600)
    rollback.add_argument("id", type=int, help="history id (`app history`)")
    rollback.add_argument("--force", action="store_true",
                          help="even though automated sync is on")
    rollback.add_argument("--wait", action="store_true", help="follow the operation")
    action("terminate-op", "stop the running operation between steps")
    refresh = action("refresh", "compare again now")
    refresh.add_argument("--hard", action="store_true", help="no render or dry-run cache")
    wait = action("wait", "until Synced, Healthy and no operation runs (or what is asked)",
                  timeout=300)
    wait.add_argument("--health", action="store_true", help="until Healthy")
    wait.add_argument("--sync", action="store_true", help="until Synced")
    wait.add_argument("--operation", action="store_true", help="until no operation runs")
    create = action("create", "create an Application from a manifest (Argo CD's work)",
                    named=False)
    create.add_argument("-f", "--file", required=True, help="manifest (- for stdin)")
    create.add_argument("--upsert", action="store_true", help="update it if it exists")
    delete = action("delete", "delete an Application", timeout=300)
    delete.add_argument("--cascade", action="store_true",
                        help="delete its resources too (adds the resources finalizer)")
    delete.add_argument("--wait", action="store_true", help="until it is gone")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gitops-tasks",
        description="GitOps continuous delivery for Kubernetes on Celery and Redis.",
    )
    parser.add_argument("--version", action="version",
                        version=f"gitops-tasks {version('gitops-tasks')}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    render = sub.add_parser("render", help="print the manifests an Application renders to")
    render.add_argument("-f", "--file", required=True, help="Application manifest (- for stdin)")
    render.add_argument("--revision", help="branch, tag or commit (default: targetRevision)")
    render.add_argument("--no-cache", action="store_true", help="do not use the Redis cache")
    render.add_argument("--kubeconfig", help="kubeconfig whose control namespace holds the "
                                             "repository credentials (default: $KUBECONFIG)")
    render.add_argument("--context", help="kubeconfig context of the control cluster")
    render.set_defaults(func=_cmd_render)

    def cluster_args(p: argparse.ArgumentParser, revision: bool = True) -> None:
        p.add_argument("-f", "--file", required=True, help="Application manifest (- for stdin)")
        if revision:
            p.add_argument("--revision", help="branch, tag or commit (default: targetRevision)")
        p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
        p.add_argument("--context", help="kubeconfig context of the control cluster")

    diff = sub.add_parser("diff", help="show what differs between Git and the cluster "
                                       "(exit 0: none, 1: differences, 2: error)")
    cluster_args(diff)
    diff.set_defaults(func=_cmd_diff)
    sync = sub.add_parser("sync", help="apply Git to the cluster in-process")
    cluster_args(sync)
    sync.add_argument("--prune", action="store_true", help="delete what was removed from Git")
    sync.add_argument("--dry-run", action="store_true", help="report only; change nothing")
    sync.add_argument("--force", action="store_true",
                      help="take over fields other managers changed (server-side apply force)")
    sync.set_defaults(func=_cmd_sync)
    refresh = sub.add_parser("refresh", help="compare and record status; run the automated "
                                             "sync when the app's policy says it is due")
    cluster_args(refresh, revision=False)
    refresh.set_defaults(func=_cmd_refresh)
    rollback = sub.add_parser("rollback", help="sync an earlier history entry's revision")
    cluster_args(rollback, revision=False)
    rollback.add_argument("--id", type=int, required=True, help="history id (status.history)")
    rollback.add_argument("--force", action="store_true",
                          help="roll back even though automated sync is on")
    rollback.set_defaults(func=_cmd_rollback)

    worker = sub.add_parser("worker", help="run a worker: take refresh and sync tasks from "
                                           "Redis (SIGTERM finishes the current step)")
    worker.add_argument("--queues", default="refresh,sync",
                        help="comma-separated queues to consume (default: refresh,sync)")
    worker.add_argument("--concurrency", type=int, default=0,
                        help="worker processes (default: one per CPU)")
    worker.add_argument("--probe-port", type=int, default=None,
                        help="port of /healthz and /readyz (default: "
                             "$GITOPS_TASKS_WORKER_PROBE_PORT or 8081; 0: none)")
    worker.add_argument("--hostname", help="the worker's name in Flower (default: "
                                           "gitops-tasks@<host>)")
    worker.set_defaults(func=_cmd_worker)
    beat = sub.add_parser("beat", help="run the producers: periodic drift sweeps and the "
                                       "Application watch (one leader among all beats)")
    beat.add_argument("--no-watch", action="store_true",
                      help="sweeps only, no Application watch")
    beat.set_defaults(func=_cmd_beat)
    webhook = sub.add_parser("webhook", help="run the push receiver: Git webhooks queue a "
                                             "refresh of exactly the apps a push touched")
    webhook.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any)")
    webhook.add_argument("--host", default="0.0.0.0", help="address (default 0.0.0.0)")
    webhook.add_argument("--insecure", action="store_true",
                         help="accept unsigned pushes from providers that have no secret")
    webhook.set_defaults(func=_cmd_webhook)
    flower = sub.add_parser("flower", help="run Flower, the Celery console, on the broker "
                                           "(basic auth from $GITOPS_TASKS_FLOWER_BASIC_AUTH)")
    flower.add_argument("--port", type=int, default=5555, help="port (default 5555)")
    flower.add_argument("--address", default="0.0.0.0", help="address (default 0.0.0.0)")
    flower.set_defaults(func=_cmd_flower)
    up = sub.add_parser("up", help="everything on one machine: Redis, kubesim when there is "
                                   "no cluster, workers, beat, receiver and API, Flower")
    up.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    up.add_argument("--webhook-port", type=int, default=8080, help="receiver and API port")
    up.add_argument("--flower-port", type=int, default=5555, help="Flower's port")
    up.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "gitops-tasks-up"),
                    help="logs, caches and kubesim's kubeconfig")
    which = up.add_mutually_exclusive_group()
    which.add_argument("--kubesim", action="store_true", help="always use kubesim")
    which.add_argument("--no-kubesim", action="store_true",
                       help="never: the kubeconfig's cluster")
    up.set_defaults(func=_cmd_up)
    from .views import OUTPUTS

    health = sub.add_parser("health", help="the health of every object in a YAML file, with "
                                           "the built-in checks and the custom Lua scripts")
    health.add_argument("-f", "--file", required=True,
                        help="objects, a YAML stream or a List (- for stdin)")
    health.add_argument("--customizations", action="append", default=[], metavar="DIR",
                        help="health.lua scripts as <group>/<kind>/health.lua (repeatable; "
                             "before $GITOPS_TASKS_RESOURCE_CUSTOMIZATIONS_DIR)")
    health.add_argument("--configmap", metavar="FILE",
                        help="a gitops-tasks-cm ConfigMap manifest whose scripts come first")
    health.add_argument("-o", "--output", choices=OUTPUTS, default="table")
    health.set_defaults(func=_cmd_health)

    shown = sub.add_parser("settings", help="every GITOPS_TASKS_* setting: default and value "
                                            "here (credentials masked); exit 2 if one is invalid")
    shown.add_argument("-o", "--output", choices=OUTPUTS, default="table")
    shown.set_defaults(func=_cmd_settings)
    _app_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from .log import configure

    # The services configure logging from the settings themselves.
    if args.command not in ("worker", "beat", "webhook", "flower"):
        configure(level="WARNING")
    try:
        return int(args.func(args))
    except settings_mod.SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except InvalidApplication as exc:
        print(f"error: {exc.app or 'Application'} is invalid:", file=sys.stderr)
        for path, message in exc.problems:
            print(f"  {path or '(root)'}: {message}", file=sys.stderr)
        return 1
    except GitOpsError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        # diff: 1 means "differences"; health: 1 would read as "unhealthy". Errors are 2.
        return 2 if {"diff", "health"} & {args.command, getattr(args, "action", "")} else 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug or an unforeseen failure: one line unless --debug
        if args.debug:
            raise
        print(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
