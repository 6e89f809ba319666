"""Helm chart repositories: HTTP(S) repositories (index.yaml) and OCI registries, version
constraints as Helm reads them, and an on-disk store of downloaded chart archives.

Called by the render layer (`render.helm_deps`, dependencies named in Chart.yaml) and by the
chaining layer (`manifests`, Applications whose source is a chart in a Helm repository).
Network access happens only here, only to the repositories those name.
"""
