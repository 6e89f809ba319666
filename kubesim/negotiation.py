"""Response content negotiation: which representation the `Accept` header asks for.

As k8s.io/apiserver/pkg/endpoints/handlers/negotiation does it: the header is a comma-separated
list of media ranges, tried by descending q-value (concrete types before wildcards, otherwise in
the order given), and the first range the endpoint can serve wins; none is 406 NotAcceptable.
A range's `as`, `g` and `v` parameters ask for a conversion into a `meta.k8s.io` (v1 or v1beta1)
kind: `Table` (what `kubectl get` prints), `PartialObjectMetadata` (one object, or each object of
a watch: metadata only) or `PartialObjectMetadataList` (a list of those). Any other conversion
(`as=Foo`, another group or version) is a range the endpoint cannot serve, so the next one is
tried.

Like the real server (whose check carries a "TODO: should delineate between lists and non-list
endpoints"), negotiation only asks whether an endpoint can convert at all: asking a list for
`PartialObjectMetadata` or one object for `PartialObjectMetadataList` picks that range and then
fails with 406 in `require`, even when a later range would have fitted.

kubesim writes only JSON, also for YAML and wildcard ranges (and `text/plain`, for unconverted
answers); protobuf and CBOR ranges are skipped, so the JSON range clients send after them wins.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from . import errors

PLAIN = ""
TABLE = "Table"
PARTIAL = "PartialObjectMetadata"
PARTIAL_LIST = "PartialObjectMetadataList"

META_GROUP = "meta.k8s.io"
META_VERSIONS = ("v1", "v1beta1")

# What each kind of endpoint can convert into. Table needs a table convertor, which kubesim has
# for lists and single GETs only (a real server also answers Table watches: kubectl's Table-first
# Accept falls back to plain events here). PLAIN_ONLY: discovery and other non-resource paths,
# and write answers, which kubesim never converts (a real server would).
RESOURCE_READ = frozenset({PLAIN, TABLE, PARTIAL, PARTIAL_LIST})
NO_TABLE = frozenset({PLAIN, PARTIAL, PARTIAL_LIST})
PLAIN_ONLY = frozenset({PLAIN})

# Media ranges answered with JSON and convertible; `text/plain` only takes unconverted answers.
_JSON_RANGES = frozenset({("application", "json"), ("application", "yaml"),
                          ("application", "*"), ("*", "*")})
_PLAIN_RANGES = _JSON_RANGES | {("text", "plain")}


@dataclass(frozen=True)
class MediaRange:
    """One clause of an Accept header."""

    type: str
    subtype: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0


@dataclass(frozen=True)
class Representation:
    """The negotiated answer: the resource's own kind (`PLAIN`) or a `meta.k8s.io` conversion."""

    kind: str = PLAIN
    version: str = "v1"

    @property
    def api_version(self) -> str:
        return f"{META_GROUP}/{self.version}"


def parse_accept(header: str) -> list[MediaRange]:
    """The clauses of `header` in the order a server tries them; malformed clauses are dropped
    (as goautoneg drops them), so are clauses with q=0 ("not acceptable")."""
    ranges = [r for r in (_parse_range(part) for part in header.split(",")) if r is not None]
    ranges = [r for r in ranges if r.q > 0]
    # sorted() is stable: equal preference keeps the client's order.
    return sorted(ranges, key=lambda r: (-r.q, r.type == "*", r.subtype == "*"))


def _parse_range(part: str) -> MediaRange | None:
    mime, *raw_params = part.split(";")
    mime = mime.strip().lower()
    if mime == "*":
        mime = "*/*"
    kind, sep, subtype = mime.partition("/")
    if not sep or not kind or not subtype or "/" in subtype:
        return None
    params: dict[str, str] = {}
    q = 1.0
    for raw in raw_params:
        key, eq, value = raw.partition("=")
        key, value = key.strip().lower(), value.strip().strip('"')
        if not eq or not key:
            return None
        if key == "q":
            try:
                q = float(value)
            except ValueError:
                return None
        else:
            params[key] = value
    return MediaRange(kind, subtype, params, q)


def _representation(media: MediaRange, offers: Collection[str]) -> Representation | None:
    """What `media` asks for, when the endpoint can serve it."""
    if media.params.get("stream", "") not in ("", "watch"):
        return None
    if not any(k in media.params for k in ("as", "g", "v")):
        if PLAIN in offers and (media.type, media.subtype) in _PLAIN_RANGES:
            return Representation()
        return None
    kind, group, version = (media.params.get(k, "") for k in ("as", "g", "v"))
    if (kind in (TABLE, PARTIAL, PARTIAL_LIST) and kind in offers and group == META_GROUP
            and version in META_VERSIONS and (media.type, media.subtype) in _JSON_RANGES):
        return Representation(kind, version)
    return None


def negotiate(header: str, offers: Collection[str]) -> Representation:
    """The first representation in `header` that is among the endpoint's `offers`; no header is
    the resource's own JSON. Raises 406 NotAcceptable when nothing fits."""
    if not header.strip():
        if PLAIN in offers:
            return Representation()
    else:
        for media in parse_accept(header):
            rep = _representation(media, offers)
            if rep is not None:
                return rep
    raise errors.not_acceptable("only the following media types are accepted: application/json, "
                                f"application/yaml (asked for {header})")


def require(rep: Representation, *, is_list: bool, what: str) -> None:
    """406 when the negotiated conversion does not fit the answer's shape, as the real server's
    asPartialObjectMetadata[List] refuse (`what` names the answer's kind)."""
    if is_list and rep.kind == PARTIAL:
        raise errors.not_acceptable(
            f"you requested {PARTIAL}, but the requested object is a list ({what})")
    if not is_list and rep.kind == PARTIAL_LIST:
        raise errors.not_acceptable(
            f"you requested {PARTIAL_LIST}, but the requested object is not a list ({what})")


def partial_object(obj: dict[str, Any], api_version: str = f"{META_GROUP}/v1") -> dict[str, Any]:
    """metav1.PartialObjectMetadata of `obj`: its whole metadata, no spec, no status."""
    return {"kind": PARTIAL, "apiVersion": api_version, "metadata": obj.get("metadata", {})}


def as_object(rep: Representation, obj: dict[str, Any]) -> dict[str, Any]:
    """One object (a GET answer or a watch event's object) in `rep`; Table is the caller's."""
    require(rep, is_list=False, what=str(obj.get("kind", "")))
    if rep.kind == PARTIAL:
        return partial_object(obj, rep.api_version)
    return obj


def as_list(rep: Representation, list_kind: str, api_version: str, items: list[dict[str, Any]],
            list_meta: dict[str, Any]) -> dict[str, Any]:
    """A list answer in `rep`; Table is the caller's. An empty PartialObjectMetadataList has
    `"items": null`, as the real server's (Go's nil slice) does."""
    require(rep, is_list=True, what=list_kind)
    if rep.kind == PARTIAL_LIST:
        return {"kind": PARTIAL_LIST, "apiVersion": rep.api_version, "metadata": list_meta,
                "items": [partial_object(o, rep.api_version) for o in items] or None}
    return {"kind": list_kind, "apiVersion": api_version, "metadata": list_meta, "items": items}
