"""The `gitops-tasks` command line.

Subcommands arrive with the engine (render, diff, sync); for now it reports its version.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gitops-tasks",
        description="GitOps continuous delivery for Kubernetes on Celery and Redis.",
    )
    parser.add_argument("--version", action="version",
                        version=f"gitops-tasks {version('gitops-tasks')}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
