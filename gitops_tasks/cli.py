"""The `gitops-tasks` command line.

`render` prints the manifests an Application renders to; it needs no cluster and no Redis (the
render cache is used only when the configured Redis answers).
"""

from __future__ import annotations

import argparse
import sys
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


def _redis_or_none(url: str) -> Any:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        return None
    return client


def _cmd_render(args: argparse.Namespace) -> int:
    from .manifests import ManifestSource
    from .render.cache import RenderCache
    from .source import GitMirrors

    cfg = settings_mod.load()
    app = _load_application(args.file)
    client = None if args.no_cache else _redis_or_none(cfg.redis.url)
    source = ManifestSource(
        GitMirrors(cfg.git),
        RenderCache(client, cfg.redis.render_cache_ttl),
        cfg.render,
    )
    rendered = source.manifests(app, args.revision)
    yaml.safe_dump_all(rendered.manifests, sys.stdout, sort_keys=False, explicit_start=True)
    print(f"# {app.name}: {len(rendered.manifests)} objects at {rendered.revision}"
          f"{' (cached)' if rendered.cached else ''}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gitops-tasks",
        description="GitOps continuous delivery for Kubernetes on Celery and Redis.",
    )
    parser.add_argument("--version", action="version",
                        version=f"gitops-tasks {version('gitops-tasks')}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    render = sub.add_parser("render", help="print the manifests an Application renders to")
    render.add_argument("-f", "--file", required=True, help="Application manifest (- for stdin)")
    render.add_argument("--revision", help="branch, tag or commit (default: targetRevision)")
    render.add_argument("--no-cache", action="store_true", help="do not use the Redis cache")
    render.set_defaults(func=_cmd_render)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from .log import configure

    configure(level="WARNING")
    try:
        return int(args.func(args))
    except InvalidApplication as exc:
        print(f"error: {exc.app or 'Application'} is invalid:", file=sys.stderr)
        for path, message in exc.problems:
            print(f"  {path or '(root)'}: {message}", file=sys.stderr)
        return 1
    except GitOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
