"""A Pod's quality-of-service class, which the Pod strategy records in `status.qosClass` at
create (PrepareForCreate) and which never changes afterwards.

Called by `store` on every Pod it creates, after defaulting: a container with limits but no
requests has had its requests defaulted to the limits by then, which is what makes it
Guaranteed, as on a real server. The rules are those of Kubernetes' GetPodQOS (only cpu and
memory count, zero quantities count as unset, init containers count like containers). Pod-level
`spec.resources` is ignored, as with the PodLevelResources gate off (alpha in the v1.32 kubesim
reports).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

__all__ = ["parse_quantity", "pod_qos_class"]

_QOS_RESOURCES = ("cpu", "memory")
_SUFFIXES: dict[str, Fraction] = {
    "": Fraction(1),
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9),
    "T": Fraction(10**12), "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30),
    "Ti": Fraction(2**40), "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}
_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?)$")


def parse_quantity(value: Any) -> Fraction | None:
    """The exact value of a resource.Quantity (`500m`, `1Gi`, `1e3`, 2); None if malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Fraction(value)
    if not isinstance(value, str):
        return None
    m = _QUANTITY.match(value.strip())
    if m is None:
        return None
    number = Fraction(m.group(1))
    if m.group(2):
        return number * Fraction(10) ** int(m.group(2)[1:])
    return number * _SUFFIXES[m.group(3) or ""]


def _positive(resources: Any) -> dict[str, Fraction]:
    out: dict[str, Fraction] = {}
    if not isinstance(resources, Mapping):
        return out
    for name in _QOS_RESOURCES:
        quantity = parse_quantity(resources.get(name))
        if quantity is not None and quantity > 0:
            out[name] = quantity
    return out


def pod_qos_class(spec: Any) -> str:
    """BestEffort, Burstable or Guaranteed for a (defaulted) pod spec."""
    spec = spec if isinstance(spec, Mapping) else {}
    requests: dict[str, Fraction] = {}
    limits: dict[str, Fraction] = {}
    guaranteed = True
    for key in ("containers", "initContainers"):
        containers = spec.get(key)
        for container in containers if isinstance(containers, list) else []:
            resources = container.get("resources") if isinstance(container, Mapping) else None
            resources = resources if isinstance(resources, Mapping) else {}
            for name, q in _positive(resources.get("requests")).items():
                requests[name] = requests.get(name, Fraction(0)) + q
            found = _positive(resources.get("limits"))
            for name, q in found.items():
                limits[name] = limits.get(name, Fraction(0)) + q
            # Guaranteed needs both cpu and memory limits on every container.
            if set(found) != set(_QOS_RESOURCES):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(name) == q for name, q in requests.items()) \
            and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"
