"""A chart archive (.tgz, as `helm package` writes it) unpacked for rendering.

Called by `manifests` for chart sources. The archive comes from a remote repository, so its
content is untrusted like a Git tree: members are extracted with tarfile's `data` filter (no
absolute paths, no `..`, no links leaving the directory, no devices), and the unpacked size
and member count are capped so a small archive cannot fill the disk.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from ..errors import SourceTooLarge
from .transfer import ChartRepoError

_MAX_MEMBERS = 10_000


def extract(archive: Path, dest: Path, *, chart: str, max_bytes: int) -> Path:
    """Unpack `archive` into `dest` and return the chart directory in it (the one top-level
    directory holding Chart.yaml)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            if len(members) > _MAX_MEMBERS:
                raise SourceTooLarge(f"chart {chart!r}: more than {_MAX_MEMBERS} files")
            total = sum(m.size for m in members if m.isfile())
            if total > max_bytes:
                raise SourceTooLarge(f"chart {chart!r} unpacks to {total} bytes, over the "
                                     f"limit of {max_bytes}")
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ChartRepoError(f"chart {chart!r}: not a valid chart archive: {exc}") from None
    tops = [p for p in dest.iterdir() if p.is_dir() and (p / "Chart.yaml").is_file()]
    if len(tops) != 1:
        raise ChartRepoError(f"chart {chart!r}: the archive holds no chart (a top-level "
                             f"directory with Chart.yaml)")
    return tops[0]
