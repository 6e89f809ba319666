"""Server-side printing: `meta.k8s.io/v1` Table responses for `kubectl get`.

kubectl asks for a Table first; answering one lets `kubectl get` show a CRD's printer columns
(e.g. sync status and health of Applications) exactly as a real server would.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from .negotiation import partial_object
from .registry import ResourceType


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration, which kubectl shows in AGE columns."""
    s = int(seconds)
    if s < 0:
        return "<invalid>"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        rem = s % 60
        return f"{m}m{rem}s" if rem else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        rem = m % 60
        return f"{h}h{rem}m" if rem else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if d < 8:
        rem = h % 24
        return f"{d}d{rem}h" if rem else f"{d}d"
    if d < 365 * 2:
        return f"{d}d"
    return f"{d // 365}y"


def _age(obj: dict[str, Any]) -> str:
    ts = obj.get("metadata", {}).get("creationTimestamp")
    if not ts:
        return "<unknown>"
    created = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return human_duration((datetime.now(UTC) - created).total_seconds())


_SEGMENT = re.compile(
    r"\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_]+)==['\"]([^'\"]*)['\"]\)\]"
)


def json_path(obj: Any, path: str) -> Any:
    """The simple JSONPath subset printer columns use: `.a.b`, `[0]`, `[?(@.type=="Ready")]`."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    path = path.lstrip("$")
    cur = obj
    pos = 0
    while pos < len(path):
        m = _SEGMENT.match(path, pos)
        if not m:
            return None
        pos = m.end()
        if m.group(1) is not None:
            cur = cur.get(m.group(1)) if isinstance(cur, dict) else None
        elif m.group(2) is not None:
            idx = int(m.group(2))
            cur = cur[idx] if isinstance(cur, list) and idx < len(cur) else None
        else:
            key, want = m.group(3), m.group(4)
            cur = next(
                (i for i in cur if isinstance(i, dict) and str(i.get(key)) == want), None
            ) if isinstance(cur, list) else None
        if cur is None:
            return None
    return cur


def _cell(value: Any, col_type: str) -> Any:
    if value is None:
        return None
    if col_type == "date" and isinstance(value, str):
        try:
            ts = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return value
        return human_duration((datetime.now(UTC) - ts).total_seconds())
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, separators=(",", ":"))
    return value


Getter = Any  # Callable[[dict[str, Any]], Any]


def _g(obj: dict[str, Any], *path: str, default: Any = None) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, dict):
            return default
        cur = cur.get(p)
    return default if cur is None else cur


def _ready(obj: dict[str, Any]) -> str:
    ready = _g(obj, "status", "readyReplicas", default=0)
    return f"{ready}/{_g(obj, 'spec', 'replicas', default=0)}"


def _pod_ready(obj: dict[str, Any]) -> str:
    statuses = _g(obj, "status", "containerStatuses", default=[])
    total = len(_g(obj, "spec", "containers", default=[]))
    return f"{sum(1 for c in statuses if c.get('ready'))}/{total}"


def _pod_status(obj: dict[str, Any]) -> str:
    if _g(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    for c in _g(obj, "status", "containerStatuses", default=[]):
        waiting = _g(c, "state", "waiting", "reason")
        if waiting:
            return str(waiting)
    return str(_g(obj, "status", "phase", default="Pending"))


def _restarts(obj: dict[str, Any]) -> int:
    return sum(int(c.get("restartCount", 0)) for c in
               _g(obj, "status", "containerStatuses", default=[]))


def _ports(obj: dict[str, Any]) -> str:
    out = []
    for p in _g(obj, "spec", "ports", default=[]):
        text = f"{p.get('port')}"
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        out.append(f"{text}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _external_ip(obj: dict[str, Any]) -> str:
    ingress = _g(obj, "status", "loadBalancer", "ingress", default=[])
    ips = [i.get("ip") or i.get("hostname") for i in ingress if isinstance(i, dict)]
    if ips:
        return ",".join(str(i) for i in ips)
    return "<pending>" if _g(obj, "spec", "type") == "LoadBalancer" else "<none>"


def _job_status(obj: dict[str, Any]) -> str:
    for c in _g(obj, "status", "conditions", default=[]):
        if c.get("status") == "True" and c.get("type") in ("Complete", "Failed", "Suspended"):
            return str(c["type"])
    return "Running"


_ACCESS_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
                 "ReadWriteOncePod": "RWOP"}


def _access_modes(modes: Any) -> str:
    """kubectl's short forms (RWO, ROX...), as the printers of a real server join them."""
    if not isinstance(modes, list):
        return ""
    return ",".join(_ACCESS_MODES[m] for m in _ACCESS_MODES if m in modes)


def _claim(obj: dict[str, Any]) -> str:
    ref = _g(obj, "spec", "claimRef")
    if not isinstance(ref, dict) or not ref.get("name"):
        return ""
    return f"{ref.get('namespace', '')}/{ref['name']}"


def _count(obj: dict[str, Any], *path: str) -> int:
    return len(_g(obj, *path, default={}))


def _node_status(obj: dict[str, Any]) -> str:
    """printNode: the Ready condition as Ready/NotReady/Unknown, then SchedulingDisabled."""
    ready = next((c for c in _g(obj, "status", "conditions", default=[])
                  if isinstance(c, dict) and c.get("type") == "Ready"), None)
    state = {"True": "Ready", "False": "NotReady"}.get(str((ready or {}).get("status")),
                                                        "Unknown")
    if _g(obj, "spec", "unschedulable", default=False) is True:
        state += ",SchedulingDisabled"
    return state


def _node_roles(obj: dict[str, Any]) -> str:
    labels = _g(obj, "metadata", "labels", default={})
    roles = {k.removeprefix("node-role.kubernetes.io/") for k in labels
             if k.startswith("node-role.kubernetes.io/") and k != "node-role.kubernetes.io/"}
    if labels.get("kubernetes.io/role"):
        roles.add(labels["kubernetes.io/role"])
    return ",".join(sorted(roles)) or "<none>"


def _apiservice_service(obj: dict[str, Any]) -> str:
    svc = _g(obj, "spec", "service")
    if not isinstance(svc, dict):
        return "Local"
    return f"{svc.get('namespace', '')}/{svc.get('name', '')}"


def _apiservice_available(obj: dict[str, Any]) -> str:
    cond = next((c for c in _g(obj, "status", "conditions", default=[])
                 if isinstance(c, dict) and c.get("type") == "Available"), None)
    if cond is None:
        return "Unknown"
    status = str(cond.get("status", ""))
    return f"{status} ({cond['reason']})" if status != "True" and cond.get("reason") else status


# Where a kind's Age column goes when it is not the last one (Nodes show VERSION after it).
_AGE = ("Age", "date", None)

# Built-in kinds: the columns `kubectl get` shows for them (name, type, getter).
_BUILTIN_COLUMNS: dict[str, list[tuple[str, str, Getter]]] = {
    "Deployment": [
        ("Ready", "string", _ready),
        ("Up-to-date", "integer", lambda o: _g(o, "status", "updatedReplicas", default=0)),
        ("Available", "integer", lambda o: _g(o, "status", "availableReplicas", default=0)),
    ],
    "StatefulSet": [("Ready", "string", _ready)],
    "ReplicaSet": [
        ("Desired", "integer", lambda o: _g(o, "spec", "replicas", default=0)),
        ("Current", "integer", lambda o: _g(o, "status", "replicas", default=0)),
        ("Ready", "integer", lambda o: _g(o, "status", "readyReplicas", default=0)),
    ],
    "DaemonSet": [
        ("Desired", "integer", lambda o: _g(o, "status", "desiredNumberScheduled", default=0)),
        ("Current", "integer", lambda o: _g(o, "status", "currentNumberScheduled", default=0)),
        ("Ready", "integer", lambda o: _g(o, "status", "numberReady", default=0)),
        ("Up-to-date", "integer",
         lambda o: _g(o, "status", "updatedNumberScheduled", default=0)),
        ("Available", "integer", lambda o: _g(o, "status", "numberAvailable", default=0)),
    ],
    "Pod": [
        ("Ready", "string", _pod_ready),
        ("Status", "string", _pod_status),
        ("Restarts", "string", _restarts),
    ],
    "Service": [
        ("Type", "string", lambda o: _g(o, "spec", "type", default="ClusterIP")),
        ("Cluster-IP", "string", lambda o: _g(o, "spec", "clusterIP", default="<none>")),
        ("External-IP", "string", _external_ip),
        ("Port(s)", "string", _ports),
    ],
    "Namespace": [("Status", "string", lambda o: _g(o, "status", "phase", default=""))],
    "ConfigMap": [("Data", "integer",
                   lambda o: _count(o, "data") + _count(o, "binaryData"))],
    "Secret": [
        ("Type", "string", lambda o: _g(o, "type", default="Opaque")),
        ("Data", "integer", lambda o: _count(o, "data")),
    ],
    "Job": [
        ("Status", "string", _job_status),
        ("Completions", "string", lambda o: f"{_g(o, 'status', 'succeeded', default=0)}/"
                                            f"{_g(o, 'spec', 'completions', default=1)}"),
    ],
    "PersistentVolume": [
        ("Capacity", "string", lambda o: _g(o, "spec", "capacity", "storage", default="")),
        ("Access Modes", "string", lambda o: _access_modes(_g(o, "spec", "accessModes"))),
        ("Reclaim Policy", "string",
         lambda o: _g(o, "spec", "persistentVolumeReclaimPolicy", default="")),
        ("Status", "string", lambda o: _g(o, "status", "phase", default="")),
        ("Claim", "string", _claim),
        ("StorageClass", "string", lambda o: _g(o, "spec", "storageClassName", default="")),
        ("VolumeAttributesClass", "string",
         lambda o: _g(o, "spec", "volumeAttributesClassName", default="<unset>")),
        ("Reason", "string", lambda o: _g(o, "status", "reason", default="")),
    ],
    "ReplicationController": [
        ("Desired", "integer", lambda o: _g(o, "spec", "replicas", default=0)),
        ("Current", "integer", lambda o: _g(o, "status", "replicas", default=0)),
        ("Ready", "integer", lambda o: _g(o, "status", "readyReplicas", default=0)),
    ],
    "Node": [
        ("Status", "string", _node_status),
        ("Roles", "string", _node_roles),
        _AGE,
        ("Version", "string",
         lambda o: _g(o, "status", "nodeInfo", "kubeletVersion", default="")),
    ],
    "APIService": [
        ("Service", "string", _apiservice_service),
        ("Available", "string", _apiservice_available),
    ],
    "PersistentVolumeClaim": [
        ("Status", "string", lambda o: _g(o, "status", "phase", default="Pending")),
        ("Capacity", "string", lambda o: _g(o, "status", "capacity", "storage", default="")),
    ],
}


def _columns(rt: ResourceType) -> list[dict[str, Any]]:
    name_col = {"name": "Name", "type": "string", "format": "name", "priority": 0,
                "description": "Name must be unique within a namespace."}
    age_col = {"name": "Age", "type": "date", "format": "", "priority": 0,
               "description": "CreationTimestamp is a timestamp representing the server time "
                              "when this object was created.",
               "jsonPath": ".metadata.creationTimestamp"}
    cols = [name_col]
    if rt.printer_columns:
        for c in rt.printer_columns:
            cols.append({"name": c.get("name", ""), "type": c.get("type", "string"),
                         "format": c.get("format", ""), "priority": c.get("priority", 0),
                         "description": c.get("description", ""),
                         "jsonPath": c.get("jsonPath", "")})
    else:
        builtin = _BUILTIN_COLUMNS.get(rt.kind, []) if rt.builtin else []
        for column in builtin:
            name, col_type, getter = column
            if column == _AGE:
                cols.append(age_col)
                continue
            cols.append({"name": name, "type": col_type, "format": "", "priority": 0,
                         "description": name, "getter": getter})
        if _AGE not in builtin:
            cols.append(age_col)
    return cols


def to_table(rt: ResourceType, items: list[dict[str, Any]], list_meta: dict[str, Any],
             include_object: str, api_version: str = "meta.k8s.io/v1") -> dict[str, Any]:
    """A Table of `items` in `api_version` (meta.k8s.io/v1 or v1beta1, as negotiated); each row
    carries its object as `includeObject` says (Object, None, or by default its metadata)."""
    cols = _columns(rt)
    rows = []
    for obj in items:
        cells: list[Any] = [obj.get("metadata", {}).get("name", "")]
        for c in cols[1:]:
            if "getter" in c:
                cells.append(c["getter"](obj))
            else:
                cells.append(_cell(json_path(obj, c["jsonPath"]), c["type"]))
        row: dict[str, Any] = {"cells": cells}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_object(obj, api_version)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": list_meta,
        "columnDefinitions": [{k: v for k, v in c.items() if k not in ("jsonPath", "getter")}
                              for c in cols],
        "rows": rows,
    }
