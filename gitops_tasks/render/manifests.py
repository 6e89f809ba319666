"""From text (a YAML stream or JSON) to validated Kubernetes objects.

Called by every renderer: the directory renderer for each file, the tool renderers for a tool's
stdout. Parsing keeps the line of each document so errors can say where; `List` kinds are
flattened; empty documents are dropped; each object is checked to have apiVersion, kind and a
name before anything downstream relies on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import RenderError

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that reads timestamps as strings.

    Kubernetes (sigs.k8s.io/yaml) reads `date: 2024-01-01` as the string "2024-01-01"; PyYAML
    would make it a `datetime.date`, which is neither what the API server gets nor JSON.
    """


_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda loader, node: loader.construct_scalar(node),
)


@dataclass(frozen=True)
class Document:
    """One parsed document and the 1-based line where it starts (None when unknown)."""

    data: Any
    line: int | None


def load_yaml_stream(text: str, *, file: str | None, app: str) -> list[Document]:
    """Every document of a YAML stream (JSON is YAML), with its line; RenderError on bad YAML."""
    loader = _Loader(text)
    docs: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            line = node.start_mark.line + 1 if node.start_mark is not None else None
            docs.append(Document(loader.construct_document(node), line))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or str(exc)
        if exc.context:
            problem = f"{exc.context}: {problem}"
        raise RenderError(f"invalid YAML: {problem}", app=app, file=file,
                          line=mark.line + 1 if mark is not None else None) from exc
    except yaml.YAMLError as exc:
        raise RenderError(f"invalid YAML: {exc}", app=app, file=file) from exc
    finally:
        loader.dispose()
    return docs


def is_object_like(data: Any) -> bool:
    """Whether a document means to be a Kubernetes object: a mapping with apiVersion or kind.

    The directory renderer skips documents that are not (a package.json, a Helm values file
    lying next to manifests); everything else must then be a valid object.
    """
    return isinstance(data, dict) and ("apiVersion" in data or "kind" in data)


def flatten(data: Any, *, file: str | None, line: int | None, app: str) -> Iterator[Any]:
    """A document, or the items of a `...List` kind (recursively), one object at a time."""
    if isinstance(data, dict):
        kind = data.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and "items" in data:
            items = data["items"]
            if items is None:
                return
            if not isinstance(items, list):
                raise RenderError(f"{kind}.items must be a list", app=app, file=file, line=line)
            for item in items:
                yield from flatten(item, file=file, line=line, app=app)
            return
    yield data


def validate(obj: Any, *, file: str | None, line: int | None, app: str) -> dict[str, Any]:
    """`obj` if it is a usable object; RenderError naming the file and line otherwise."""
    if not isinstance(obj, dict):
        raise RenderError(f"expected a Kubernetes object (a mapping), got {_type_name(obj)}",
                          app=app, file=file, line=line)
    for key in ("apiVersion", "kind"):
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            raise RenderError(f"object has no {key}{_described(obj)}", app=app, file=file,
                              line=line)
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise RenderError(f"{obj['kind']} has no metadata", app=app, file=file, line=line)
    name = meta.get("name")
    # generateName is how hook Jobs get a fresh name per sync (Argo CD allows it for hooks).
    if not (isinstance(name, str) and name) and not (
            isinstance(meta.get("generateName"), str) and meta["generateName"]):
        raise RenderError(f"{obj['kind']} has no metadata.name", app=app, file=file, line=line)
    namespace = meta.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise RenderError(f"{obj['kind']} {name}: metadata.namespace must be a string",
                          app=app, file=file, line=line)
    return obj


def objects_from_text(text: str, *, file: str | None, app: str,
                      skip_non_objects: bool = False) -> list[dict[str, Any]]:
    """Parse, flatten and validate a YAML/JSON stream.

    With `skip_non_objects` (directory apps), documents that are not meant as objects (see
    `is_object_like`) are dropped; tools' output has no such excuse and must be all objects.
    """
    out: list[dict[str, Any]] = []
    for doc in load_yaml_stream(text, file=file, app=app):
        if doc.data is None:
            continue
        if skip_non_objects and not is_object_like(doc.data):
            continue
        out.extend(objects_from_data(doc.data, file=file, line=doc.line, app=app))
    return out


def objects_from_data(data: Any, *, file: str | None, line: int | None,
                      app: str) -> list[dict[str, Any]]:
    """Flatten and validate already-parsed data (a jsonnet result, one YAML document)."""
    out: list[dict[str, Any]] = []
    items = data if isinstance(data, list) else [data]
    for item in items:
        for obj in flatten(item, file=file, line=line, app=app):
            if obj is None:
                continue
            out.append(validate(obj, file=file, line=line, app=app))
    return out


def _described(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    parts = [f"kind {obj['kind']!r}" if obj.get("kind") else "",
             f"name {name!r}" if name else ""]
    text = ", ".join(p for p in parts if p)
    return f" ({text})" if text else ""


def _type_name(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number",
            bool: "a boolean"}.get(type(value), type(value).__name__)
