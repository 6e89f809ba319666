"""gitops-tasks: GitOps continuous delivery for Kubernetes, on Celery and Redis."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gitops-tasks")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
