"""Kubernetes `Status` errors, raised anywhere in kubesim and turned into responses by the server.

The official clients decode these bodies (kubectl prints `message`, the Python client exposes
`reason` and `code`), so the shape must match the real API server's exactly.
"""

from __future__ import annotations

from typing import Any


class StatusError(Exception):
    """A failed request, carried as the `Status` object a real API server would return."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        kind: str = "",
        name: str = "",
        group: str = "",
        causes: list[dict[str, Any]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.kind = kind
        self.name = name
        self.group = group
        self.causes = causes or []
        self.retry_after = retry_after

    def to_status(self) -> dict[str, Any]:
        # metav1.Status field order (kind, apiVersion, metadata, status, message, reason,
        # details, code): clients and tests compare the encoded text, and every empty field is
        # omitempty, so e.g. an error the API server mapped to no reason (etcd's) carries none.
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            status["reason"] = self.reason
        details = _details(self.name, self.group, self.kind, "", self.causes, self.retry_after)
        if details:
            status["details"] = details
        status["code"] = self.code
        return status


def _details(name: str, group: str, kind: str, uid: str, causes: list[dict[str, Any]],
             retry_after: int | None) -> dict[str, Any]:
    """metav1.StatusDetails in its field order, every field omitempty."""
    details: dict[str, Any] = {}
    for key, value in (("name", name), ("group", group), ("kind", kind), ("uid", uid),
                       ("causes", causes)):
        if value:
            details[key] = value
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return details


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        404,
        "NotFound",
        f'{_qualified(resource, group)} "{name}" not found',
        kind=resource,
        name=name,
        group=group,
    )


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        409,
        "AlreadyExists",
        f'{_qualified(resource, group)} "{name}" already exists',
        kind=resource,
        name=name,
        group=group,
    )


def conflict(resource: str, name: str, group: str = "", detail: str = "") -> StatusError:
    detail = detail or (
        "the object has been modified; please apply your changes to the latest version "
        "and try again"
    )
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {detail}',
        kind=resource,
        name=name,
        group=group,
    )


def invalid(
    kind: str, name: str, group: str, errors: list[tuple[str, str]], reason_type: str = ""
) -> StatusError:
    """422 Invalid with one cause per (field, message), as field.ErrorList renders them."""
    causes = [
        {"reason": reason_type or "FieldValueInvalid", "message": msg, "field": field}
        for field, msg in errors
    ]
    joined = ", ".join(f"{field}: {msg}" if field else msg for field, msg in errors)
    if len(errors) > 1:
        joined = f"[{joined}]"
    return StatusError(
        422,
        "Invalid",
        f'{kind}.{group} "{name}" is invalid: {joined}'
        if group
        else f'{kind} "{name}" is invalid: {joined}',
        kind=kind,
        name=name,
        group=group,
        causes=causes,
    )


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> StatusError:
    return StatusError(405, "MethodNotAllowed", message)


_MEDIA_TYPES = (
    "application/json",
    "application/yaml",
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
# What a PATCH of a custom resource accepts: no strategic merge patch.
CUSTOM_RESOURCE_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
)


def unsupported_media_type(
    content_type: str, accepted: tuple[str, ...] = _MEDIA_TYPES
) -> StatusError:
    return StatusError(
        415,
        "UnsupportedMediaType",
        f'the body of the request was in an unknown format "{content_type}" - accepted media '
        f"types include: {', '.join(accepted)}",
    )


def not_acceptable(message: str) -> StatusError:
    """406: no representation the client accepts can be produced."""
    return StatusError(406, "NotAcceptable", message)


def forbidden(
    resource: str, name: str, group: str, message: str, cause_type: str = ""
) -> StatusError:
    causes = [{"reason": cause_type, "message": message}] if cause_type else None
    return StatusError(
        403,
        "Forbidden",
        f'{_qualified(resource, group)} "{name}" is forbidden: {message}',
        kind=resource,
        name=name,
        group=group,
        causes=causes,
    )


def request_entity_too_large(limit: int) -> StatusError:
    """413 for a request body over the server's limit (apimachinery's
    NewRequestEntityTooLargeError: no details)."""
    return StatusError(413, "RequestEntityTooLarge",
                       f"Request entity too large: limit is {limit}")


def expired(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def success_status(resource: str, name: str, group: str, uid: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": _details(name, group, resource, uid, [], None),
    }
