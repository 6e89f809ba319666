"""The Application custom resource as typed, validated Python objects.

`parse_application(obj)` is called by everything that receives an Application (the CLI reading a
file, the tasks reading the cluster). It collects every problem of the spec, each with its field
path, and raises one `InvalidApplication` listing them all, so a user fixes a manifest in one go.
The spec follows Argo CD's, so an Argo CD Application parses (with either apiVersion). Unlike
Argo CD, an unknown field or sync option is an error naming the closest known one, and an Argo
CD field gitops-tasks does not implement is refused with the reason (`fields.py`), so nothing
in a manifest is silently ignored.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InvalidApplication
from . import fields, keys

DEFAULT_REVISION = "HEAD"
DEFAULT_HISTORY_LIMIT = 10


@dataclass(frozen=True)
class JsonnetVar:
    name: str
    value: str
    code: bool = False


@dataclass(frozen=True)
class JsonnetOptions:
    ext_vars: tuple[JsonnetVar, ...] = ()
    tlas: tuple[JsonnetVar, ...] = ()
    libs: tuple[str, ...] = ()


@dataclass(frozen=True)
class DirectorySource:
    recurse: bool = False
    include: str = ""
    exclude: str = ""
    jsonnet: JsonnetOptions = field(default_factory=JsonnetOptions)


@dataclass(frozen=True)
class HelmParameter:
    name: str
    value: str
    force_string: bool = False


@dataclass(frozen=True)
class HelmSource:
    value_files: tuple[str, ...] = ()
    # Inline values as YAML text (Argo CD's `values` string or `valuesObject`, serialised).
    values: str = ""
    parameters: tuple[HelmParameter, ...] = ()
    release_name: str = ""
    skip_crds: bool = False
    ignore_missing_value_files: bool = False


@dataclass(frozen=True)
class KustomizeSource:
    name_prefix: str = ""
    name_suffix: str = ""
    images: tuple[str, ...] = ()
    common_labels: tuple[tuple[str, str], ...] = ()
    common_annotations: tuple[tuple[str, str], ...] = ()
    namespace: str = ""


@dataclass(frozen=True)
class PluginSource:
    name: str = ""
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Source:
    repo_url: str
    target_revision: str = DEFAULT_REVISION
    path: str = "."
    directory: DirectorySource | None = None
    helm: HelmSource | None = None
    kustomize: KustomizeSource | None = None
    plugin: PluginSource | None = None
    # A chart in a Helm repository (repo_url is https:// or oci://, not Git); target_revision
    # is then a chart version or a semver range, and path is unused.
    chart: str = ""

    @property
    def is_helm_repository(self) -> bool:
        return bool(self.chart)

    @property
    def chart_key(self) -> tuple[str, str, str]:
        """(repoURL, chart, targetRevision): what a chart source's version depends on."""
        return (self.repo_url, self.chart, self.target_revision)

    def options_hash(self, *extra: str) -> str:
        """A stable hash of everything that shapes the rendered output except the commit."""
        doc = asdict(self)
        doc.pop("target_revision")
        payload = json.dumps([doc, extra], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Destination:
    server: str = ""
    name: str = ""
    namespace: str = ""


@dataclass(frozen=True)
class Backoff:
    duration_seconds: float = 5.0
    factor: float = 2.0
    max_duration_seconds: float = 180.0


@dataclass(frozen=True)
class Retry:
    limit: int = 0
    backoff: Backoff = field(default_factory=Backoff)


@dataclass(frozen=True)
class Automated:
    prune: bool = False
    self_heal: bool = False
    allow_empty: bool = False


@dataclass(frozen=True)
class SyncPolicy:
    automated: Automated | None = None
    sync_options: tuple[tuple[str, str], ...] = ()
    retry: Retry | None = None

    def option(self, name: str) -> str | None:
        for key, value in self.sync_options:
            if key == name:
                return value
        return None

    def enabled(self, name: str) -> bool:
        return (self.option(name) or "").lower() == "true"


@dataclass(frozen=True)
class IgnoreDifference:
    kind: str
    group: str = ""
    name: str = ""
    namespace: str = ""
    json_pointers: tuple[str, ...] = ()
    jq_path_expressions: tuple[str, ...] = ()
    managed_fields_managers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Application:
    name: str
    namespace: str
    source: Source
    destination: Destination
    project: str = "default"
    sync_policy: SyncPolicy = field(default_factory=SyncPolicy)
    ignore_differences: tuple[IgnoreDifference, ...] = ()
    revision_history_limit: int = DEFAULT_HISTORY_LIMIT
    depends_on: tuple[str, ...] = ()
    uid: str = ""
    resource_version: str = ""

    @property
    def automated(self) -> bool:
        return self.sync_policy.automated is not None


# ---------------------------------------------------------------------------- parsing

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?$")
_SOURCE_TYPES = ("directory", "helm", "kustomize", "plugin")


def parse_duration(text: str) -> float | None:
    """Go-style durations as Argo CD's retry backoff uses them ("5s", "3m", "1h30m")."""
    text = text.strip()
    if not text:
        return None
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    m = _DURATION.match(text)
    if not m or not any(m.groups()):
        return None
    h, mins, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mins * 60 + s


class _Parser:
    """Walks the raw dict, recording (path, message) problems instead of failing on the first."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    def known(self, raw: dict[str, Any], path: str, table: fields.Fields) -> None:
        """Every key of `raw` must be in `table`; listed fields gitops-tasks does not implement
        carry their reason. As the API server's strict field validation, but with a hint."""
        for key in raw:
            name = str(key)
            where = f"{path}.{name}" if path else name
            if name not in table:
                self.problem(where, fields.unknown(name, table))
            elif table[name] is not None and raw[key] is not None:
                self.problem(where, str(table[name]))

    def mapping(self, value: Any, path: str, required: bool = False) -> dict[str, Any]:
        if value is None:
            if required:
                self.problem(path, "is required")
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"must be an object, not {_type_name(value)}")
            return {}
        return value

    def string(self, value: Any, path: str, *, required: bool = False, default: str = "") -> str:
        if value is None or value == "":
            if required:
                self.problem(path, "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.problem(path, f"must be a string, not {_type_name(value)}")
            return default
        return str(value)

    def boolean(self, value: Any, path: str) -> bool:
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.problem(path, f"must be true or false, not {value!r}")
        return False

    def integer(self, value: Any, path: str, default: int, minimum: int = 0) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(path, f"must be an integer, not {value!r}")
            return default
        if value < minimum:
            self.problem(path, f"must be at least {minimum}, not {value}")
            return default
        return value

    def strings(self, value: Any, path: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem(path, f"must be a list of strings, not {_type_name(value)}")
            return ()
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.problem(f"{path}[{i}]", f"must be a string, not {_type_name(item)}")
            else:
                out.append(item)
        return tuple(out)

    def string_map(self, value: Any, path: str) -> tuple[tuple[str, str], ...]:
        m = self.mapping(value, path)
        out = []
        for k, v in m.items():
            if not isinstance(v, str | int | float) or isinstance(v, bool):
                self.problem(f"{path}.{k}", f"must be a string, not {_type_name(v)}")
            else:
                out.append((str(k), str(v)))
        return tuple(sorted(out))

    def objects(self, value: Any, path: str, table: fields.Fields | None = None
                ) -> list[tuple[str, dict[str, Any]]]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(path, f"must be a list, not {_type_name(value)}")
            return []
        out = []
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            if not isinstance(item, dict):
                self.problem(p, f"must be an object, not {_type_name(item)}")
            else:
                if table is not None:
                    self.known(item, p, table)
                out.append((p, item))
        return out


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list",
            dict: "object"}.get(type(value), type(value).__name__)


def _jsonnet_vars(p: _Parser, value: Any, path: str) -> tuple[JsonnetVar, ...]:
    out = []
    for ipath, item in p.objects(value, path, fields.JSONNET_VAR):
        name = p.string(item.get("name"), f"{ipath}.name", required=True)
        val = p.string(item.get("value"), f"{ipath}.value")
        out.append(JsonnetVar(name, val, p.boolean(item.get("code"), f"{ipath}.code")))
    return tuple(out)


def _directory(p: _Parser, raw: dict[str, Any], path: str) -> DirectorySource:
    p.known(raw, path, fields.DIRECTORY)
    jn = p.mapping(raw.get("jsonnet"), f"{path}.jsonnet")
    p.known(jn, f"{path}.jsonnet", fields.JSONNET)
    return DirectorySource(
        recurse=p.boolean(raw.get("recurse"), f"{path}.recurse"),
        include=p.string(raw.get("include"), f"{path}.include"),
        exclude=p.string(raw.get("exclude"), f"{path}.exclude"),
        jsonnet=JsonnetOptions(
            ext_vars=_jsonnet_vars(p, jn.get("extVars"), f"{path}.jsonnet.extVars"),
            tlas=_jsonnet_vars(p, jn.get("tlas"), f"{path}.jsonnet.tlas"),
            libs=p.strings(jn.get("libs"), f"{path}.jsonnet.libs"),
        ),
    )


def _helm(p: _Parser, raw: dict[str, Any], path: str) -> HelmSource:
    import yaml

    p.known(raw, path, fields.HELM)
    values = raw.get("values")
    values_object = raw.get("valuesObject")
    text = ""
    if values_object is not None:
        if not isinstance(values_object, dict):
            p.problem(f"{path}.valuesObject", "must be an object")
        else:
            text = yaml.safe_dump(values_object, sort_keys=True)
    elif isinstance(values, dict):
        text = yaml.safe_dump(values, sort_keys=True)
    elif values is not None:
        if not isinstance(values, str):
            p.problem(f"{path}.values", "must be YAML text or an object")
        else:
            try:
                parsed = yaml.safe_load(values)
            except yaml.YAMLError as exc:
                p.problem(f"{path}.values", f"is not valid YAML: {exc}")
            else:
                if parsed is not None and not isinstance(parsed, dict):
                    p.problem(f"{path}.values", "must be a YAML mapping")
                text = values
    params = []
    for ipath, item in p.objects(raw.get("parameters"), f"{path}.parameters",
                                 fields.HELM_PARAMETER):
        params.append(HelmParameter(
            name=p.string(item.get("name"), f"{ipath}.name", required=True),
            value=p.string(item.get("value"), f"{ipath}.value"),
            force_string=p.boolean(item.get("forceString"), f"{ipath}.forceString"),
        ))
    return HelmSource(
        value_files=p.strings(raw.get("valueFiles"), f"{path}.valueFiles"),
        values=text,
        parameters=tuple(params),
        release_name=p.string(raw.get("releaseName"), f"{path}.releaseName"),
        skip_crds=p.boolean(raw.get("skipCrds"), f"{path}.skipCrds"),
        ignore_missing_value_files=p.boolean(raw.get("ignoreMissingValueFiles"),
                                             f"{path}.ignoreMissingValueFiles"),
    )


def _kustomize(p: _Parser, raw: dict[str, Any], path: str) -> KustomizeSource:
    p.known(raw, path, fields.KUSTOMIZE)
    return KustomizeSource(
        name_prefix=p.string(raw.get("namePrefix"), f"{path}.namePrefix"),
        name_suffix=p.string(raw.get("nameSuffix"), f"{path}.nameSuffix"),
        images=p.strings(raw.get("images"), f"{path}.images"),
        common_labels=p.string_map(raw.get("commonLabels"), f"{path}.commonLabels"),
        common_annotations=p.string_map(raw.get("commonAnnotations"),
                                        f"{path}.commonAnnotations"),
        namespace=p.string(raw.get("namespace"), f"{path}.namespace"),
    )


def _plugin(p: _Parser, raw: dict[str, Any], path: str) -> PluginSource:
    p.known(raw, path, fields.PLUGIN)
    env = []
    for ipath, item in p.objects(raw.get("env"), f"{path}.env", fields.PLUGIN_ENV):
        env.append((p.string(item.get("name"), f"{ipath}.name", required=True),
                    p.string(item.get("value"), f"{ipath}.value")))
    return PluginSource(name=p.string(raw.get("name"), f"{path}.name"), env=tuple(env))


def _chart_source(p: _Parser, raw: dict[str, Any], path: str, repo: str) -> tuple[str, str]:
    """(chart, targetRevision) of a source that names a chart in a Helm repository."""
    from ..charts.versions import ConstraintError, parse_constraint

    chart = p.string(raw.get("chart"), f"{path}.chart", required=True).strip()
    if not chart or "/" in chart or chart in (".", ".."):
        p.problem(f"{path}.chart", f"must be a chart name, not {chart!r}")
    lowered = repo.strip().lower()
    if not lowered.startswith(("http://", "https://", "oci://")) or \
            lowered.rstrip("/").endswith(".git"):
        p.problem(f"{path}.repoURL", "with chart, must be a Helm repository (https://... "
                                     "serving index.yaml) or an OCI registry (oci://host/"
                                     f"path), not a Git repository ({repo!r})")
    for other in ("path", *_SOURCE_TYPES):
        if other != "helm" and raw.get(other) is not None:
            p.problem(f"{path}.{other}", "has no meaning with chart: the chart from the Helm "
                                         "repository is rendered with the helm options")
    revision = p.string(raw.get("targetRevision"), f"{path}.targetRevision")
    if not revision.strip():
        p.problem(f"{path}.targetRevision", "required with chart: a chart version (1.2.3) or "
                                            "a range (1.2.*, >=1.0 <2, *)")
    else:
        try:
            parse_constraint(revision)
        except ConstraintError as exc:
            p.problem(f"{path}.targetRevision", str(exc))
    return chart, revision.strip()


def _source(p: _Parser, raw: dict[str, Any], path: str) -> Source:
    repo = p.string(raw.get("repoURL"), f"{path}.repoURL", required=True)
    p.known(raw, path, fields.SOURCE)
    if raw.get("chart") is not None:
        chart, revision = _chart_source(p, raw, path, repo)
        chart_helm = _helm(p, p.mapping(raw["helm"], f"{path}.helm"), f"{path}.helm") \
            if raw.get("helm") is not None else HelmSource()
        return Source(repo_url=repo, target_revision=revision, path=".", helm=chart_helm,
                      chart=chart)
    src_path = p.string(raw.get("path"), f"{path}.path", default=".")
    if src_path.startswith("/") or ".." in src_path.split("/"):
        p.problem(f"{path}.path", f"must be a relative path inside the repository, not "
                                  f"{src_path!r}")
    present = [t for t in _SOURCE_TYPES if raw.get(t) is not None]
    if len(present) > 1:
        p.problem(path, f"only one of {', '.join(_SOURCE_TYPES)} may be set, found "
                        f"{', '.join(present)}")
    directory = helm = kustomize = plugin = None
    if raw.get("directory") is not None:
        directory = _directory(p, p.mapping(raw["directory"], f"{path}.directory"),
                               f"{path}.directory")
    if raw.get("helm") is not None:
        helm = _helm(p, p.mapping(raw["helm"], f"{path}.helm"), f"{path}.helm")
    if raw.get("kustomize") is not None:
        kustomize = _kustomize(p, p.mapping(raw["kustomize"], f"{path}.kustomize"),
                               f"{path}.kustomize")
    if raw.get("plugin") is not None:
        plugin = _plugin(p, p.mapping(raw["plugin"], f"{path}.plugin"), f"{path}.plugin")
    return Source(
        repo_url=repo,
        target_revision=p.string(raw.get("targetRevision"), f"{path}.targetRevision",
                                 default=DEFAULT_REVISION),
        path=src_path.strip("/") or ".",
        directory=directory,
        helm=helm,
        kustomize=kustomize,
        plugin=plugin,
    )


def _sync_policy(p: _Parser, raw: dict[str, Any]) -> SyncPolicy:
    path = "spec.syncPolicy"
    p.known(raw, path, fields.SYNC_POLICY)
    automated = None
    if raw.get("automated") is not None:
        a = p.mapping(raw["automated"], f"{path}.automated")
        p.known(a, f"{path}.automated", fields.AUTOMATED)
        if a.get("enabled") is not False:
            automated = Automated(
                prune=p.boolean(a.get("prune"), f"{path}.automated.prune"),
                self_heal=p.boolean(a.get("selfHeal"), f"{path}.automated.selfHeal"),
                allow_empty=p.boolean(a.get("allowEmpty"), f"{path}.automated.allowEmpty"),
            )
    options = []
    for i, opt in enumerate(p.strings(raw.get("syncOptions"), f"{path}.syncOptions")):
        key, sep, value = opt.partition("=")
        if not sep or not key.strip():
            p.problem(f"{path}.syncOptions[{i}]", f"must look like Name=value, not {opt!r}")
            continue
        problem = _sync_option_problem(key.strip(), value.strip())
        if problem:
            p.problem(f"{path}.syncOptions[{i}]", problem)
            continue
        options.append((key.strip(), value.strip()))
    retry = None
    if raw.get("retry") is not None:
        r = p.mapping(raw["retry"], f"{path}.retry")
        p.known(r, f"{path}.retry", fields.RETRY)
        b = p.mapping(r.get("backoff"), f"{path}.retry.backoff")
        p.known(b, f"{path}.retry.backoff", fields.BACKOFF)
        defaults = Backoff()

        def dur(name: str, default: float) -> float:
            value = b.get(name)
            if value is None:
                return default
            parsed = parse_duration(str(value))
            if parsed is None:
                p.problem(f"{path}.retry.backoff.{name}",
                          f"must be a duration like 5s, 2m or 1h, not {value!r}")
                return default
            return parsed

        factor = b.get("factor", defaults.factor)
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor < 1:
            p.problem(f"{path}.retry.backoff.factor", f"must be a number >= 1, not {factor!r}")
            factor = defaults.factor
        retry = Retry(
            limit=p.integer(r.get("limit"), f"{path}.retry.limit", 0, minimum=-1),
            backoff=Backoff(dur("duration", defaults.duration_seconds), float(factor),
                            dur("maxDuration", defaults.max_duration_seconds)),
        )
    return SyncPolicy(automated=automated, sync_options=tuple(options), retry=retry)


def _sync_option_problem(name: str, value: str) -> str | None:
    """Why `name=value` cannot be honoured, or None. Argo CD ignores an option it does not
    know; here a typo like CreateNamespce=true would leave the namespace uncreated without a
    word, so it is an error that names the option meant."""
    canonical = {k.lower(): k for k in fields.APP_SYNC_OPTIONS}.get(name.lower())
    if canonical is None:
        refusal = {k.lower(): m for k, m in fields.SYNC_OPTION_REFUSALS.items()}.get(
            name.lower())
        if refusal:
            return refusal
        close = fields.closest(name, [*fields.APP_SYNC_OPTIONS, *fields.SYNC_OPTION_REFUSALS])
        hint = f"; did you mean {close}?" if close else ""
        return f"unknown sync option {name}{hint}"
    allowed = fields.APP_SYNC_OPTIONS[canonical]
    if value.lower() in allowed:
        return None
    if canonical in fields.SYNC_OPTION_REFUSALS and value.lower() in fields.BOOLEAN:
        return fields.SYNC_OPTION_REFUSALS[canonical]
    return f"{canonical} must be {' or '.join(allowed)}, not {value!r}"


def _ignore_differences(p: _Parser, raw: Any) -> tuple[IgnoreDifference, ...]:
    out = []
    for ipath, item in p.objects(raw, "spec.ignoreDifferences", fields.IGNORE_DIFFERENCE):
        pointers = p.strings(item.get("jsonPointers"), f"{ipath}.jsonPointers")
        for j, ptr in enumerate(pointers):
            if not ptr.startswith("/"):
                p.problem(f"{ipath}.jsonPointers[{j}]", f"must start with '/', not {ptr!r}")
        out.append(IgnoreDifference(
            kind=p.string(item.get("kind"), f"{ipath}.kind", required=True),
            group=p.string(item.get("group"), f"{ipath}.group"),
            name=p.string(item.get("name"), f"{ipath}.name"),
            namespace=p.string(item.get("namespace"), f"{ipath}.namespace"),
            json_pointers=pointers,
            jq_path_expressions=p.strings(item.get("jqPathExpressions"),
                                          f"{ipath}.jqPathExpressions"),
            managed_fields_managers=p.strings(item.get("managedFieldsManagers"),
                                              f"{ipath}.managedFieldsManagers"),
        ))
    return tuple(out)


def _spec_source(p: _Parser, spec: dict[str, Any]) -> Source:
    """`spec.source`, or the only entry of `spec.sources` (the same thing, spelt as a list)."""
    raw_source, path = spec.get("source"), "spec.source"
    sources = spec.get("sources")
    if sources is not None:
        if raw_source is not None:
            p.problem("spec.sources", "source and sources are mutually exclusive; set source")
        elif not isinstance(sources, list):
            p.problem("spec.sources", f"must be a list, not {_type_name(sources)}")
        elif len(sources) != 1:
            p.problem("spec.sources", f"multi-source Applications are not supported by "
                                      f"gitops-tasks ({len(sources)} sources): use source")
        else:
            raw_source, path = sources[0], "spec.sources[0]"
    src_raw = p.mapping(raw_source, path, required=sources is None)
    return _source(p, src_raw, path) if src_raw else Source(repo_url="")


def parse_application(obj: Any) -> Application:
    """A validated Application from its custom-resource dict; raises InvalidApplication."""
    p = _Parser()
    if not isinstance(obj, dict):
        raise InvalidApplication([("", f"must be an object, not {_type_name(obj)}")])
    api_version = obj.get("apiVersion")
    if api_version not in keys.API_VERSIONS:
        p.problem("apiVersion", f"must be {' or '.join(keys.API_VERSIONS)}, not "
                                f"{api_version!r}")
    if obj.get("kind") != keys.KIND:
        p.problem("kind", f"must be {keys.KIND}, not {obj.get('kind')!r}")
    p.known(obj, "", fields.TOP)
    meta = p.mapping(obj.get("metadata"), "metadata", required=True)
    p.known(meta, "metadata", fields.METADATA)
    name = p.string(meta.get("name"), "metadata.name", required=True)
    spec = p.mapping(obj.get("spec"), "spec", required=True)
    p.known(spec, "spec", fields.SPEC)
    source = _spec_source(p, spec)
    p.objects(spec.get("info"), "spec.info", fields.INFO_ITEM)
    dest_raw = p.mapping(spec.get("destination"), "spec.destination", required=True)
    p.known(dest_raw, "spec.destination", fields.DESTINATION)
    destination = Destination(
        server=p.string(dest_raw.get("server"), "spec.destination.server"),
        name=p.string(dest_raw.get("name"), "spec.destination.name"),
        namespace=p.string(dest_raw.get("namespace"), "spec.destination.namespace"),
    )
    if dest_raw and not destination.server and not destination.name:
        p.problem("spec.destination", "one of server or name is required")
    if destination.server and destination.name:
        p.problem("spec.destination", "server and name are mutually exclusive; set one")
    sync_policy = _sync_policy(p, p.mapping(spec.get("syncPolicy"), "spec.syncPolicy"))
    ignore_differences = _ignore_differences(p, spec.get("ignoreDifferences"))
    history_limit = p.integer(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit",
                              DEFAULT_HISTORY_LIMIT)
    depends_on = p.strings(spec.get("dependsOn"), "spec.dependsOn")
    if name and name in depends_on:
        p.problem("spec.dependsOn", "an Application cannot depend on itself")
    app = Application(
        name=name,
        namespace=p.string(meta.get("namespace"), "metadata.namespace",
                           default=keys.DEFAULT_CONTROL_NAMESPACE),
        source=source,
        destination=destination,
        project=p.string(spec.get("project"), "spec.project", default="default"),
        sync_policy=sync_policy,
        ignore_differences=ignore_differences,
        revision_history_limit=history_limit,
        depends_on=depends_on,
        uid=str(meta.get("uid") or ""),
        resource_version=str(meta.get("resourceVersion") or ""),
    )
    if p.problems:
        raise InvalidApplication(p.problems, app=name or None)
    return app
