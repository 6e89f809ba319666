"""The Application resource and the keys gitops-tasks puts on objects."""

from pathlib import Path

from .application import (
    Application,
    Automated,
    Backoff,
    Destination,
    DirectorySource,
    HelmParameter,
    HelmSource,
    IgnoreDifference,
    JsonnetOptions,
    JsonnetVar,
    KustomizeSource,
    PluginSource,
    Retry,
    Source,
    SyncPolicy,
    parse_application,
    parse_duration,
)

# The Application CRD, shipped in the package so `gitops-tasks up` works from a wheel;
# deploy/crds/application.yaml is the same file (tests/model/test_application.py says so).
CRD_FILE = Path(__file__).with_name("application-crd.yaml")

__all__ = [
    "CRD_FILE",
    "Application",
    "Automated",
    "Backoff",
    "Destination",
    "DirectorySource",
    "HelmParameter",
    "HelmSource",
    "IgnoreDifference",
    "JsonnetOptions",
    "JsonnetVar",
    "KustomizeSource",
    "PluginSource",
    "Retry",
    "Source",
    "SyncPolicy",
    "parse_application",
    "parse_duration",
]
