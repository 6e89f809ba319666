"""Chart archives from remote repositories are unpacked like untrusted input."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from gitops_tasks.charts.archives import extract
from gitops_tasks.charts.transfer import ChartRepoError
from gitops_tasks.errors import SourceTooLarge


def archive(tmp_path: Path, members: dict[str, bytes], *, link: str | None = None) -> Path:
    path = tmp_path / "chart.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo("web/templates/evil")
            info.type = tarfile.SYMTYPE
            info.linkname = link
            tar.addfile(info)
    return path


CHART = b"apiVersion: v2\nname: web\nversion: 1.0.0\n"


def test_extracts_the_chart_directory(tmp_path: Path) -> None:
    path = archive(tmp_path, {"web/Chart.yaml": CHART, "web/templates/a.yaml": b"x: 1\n"})
    chart = extract(path, tmp_path / "out", chart="web", max_bytes=1 << 20)
    assert chart == tmp_path / "out" / "web" and (chart / "templates" / "a.yaml").is_file()


@pytest.mark.parametrize("members, link", [
    ({"web/Chart.yaml": CHART, "../escape.yaml": b"x"}, None),
    ({"web/Chart.yaml": CHART}, "/etc/passwd"),
    ({"web/Chart.yaml": CHART}, "../../../outside"),
])
def test_members_leaving_the_directory_are_refused(tmp_path: Path, members: dict[str, bytes],
                                                   link: str | None) -> None:
    path = archive(tmp_path, members, link=link)
    with pytest.raises(ChartRepoError, match="not a valid chart archive"):
        extract(path, tmp_path / "out", chart="web", max_bytes=1 << 20)
    assert not (tmp_path / "escape.yaml").exists()


def test_unpacked_size_is_capped(tmp_path: Path) -> None:
    path = archive(tmp_path, {"web/Chart.yaml": CHART, "web/big": b"\0" * 100_000})
    with pytest.raises(SourceTooLarge, match="unpacks to"):
        extract(path, tmp_path / "out", chart="web", max_bytes=50_000)


def test_an_archive_without_a_chart(tmp_path: Path) -> None:
    path = archive(tmp_path, {"README.md": b"hi"})
    with pytest.raises(ChartRepoError, match="holds no chart"):
        extract(path, tmp_path / "out", chart="web", max_bytes=1 << 20)
