"""Errors that become Kubernetes `Status` responses, in one hierarchy.

Handlers and providers raise these; one middleware turns any of them (or any other exception)
into a `Status` body with the right code, as k8s.io/apiserver's `ErrorToAPIStatus` does.
Messages follow the Go adapter and custom-metrics-apiserver word for word where clients or
users may see them.
"""

from typing import Any

__all__ = [
    "APIError",
    "BadRequestError",
    "ForbiddenError",
    "InternalError",
    "MethodNotAllowedError",
    "NotAcceptableError",
    "NotFoundError",
    "ServiceUnavailableError",
    "UnauthorizedError",
    "UnknownError",
    "metric_not_found",
    "path_not_found",
    "status_body",
]


class APIError(Exception):
    """An error with a Kubernetes Status code and reason."""

    code = 500
    reason = "InternalError"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        return status_body(self.code, self.reason, self.message, self.details)


class BadRequestError(APIError):
    code = 400
    reason = "BadRequest"


class UnauthorizedError(APIError):
    code = 401
    reason = "Unauthorized"


class ForbiddenError(APIError):
    code = 403
    reason = "Forbidden"


class NotFoundError(APIError):
    code = 404
    reason = "NotFound"


class MethodNotAllowedError(APIError):
    code = 405
    reason = "MethodNotAllowed"


class NotAcceptableError(APIError):
    code = 406
    reason = "NotAcceptable"


class ServiceUnavailableError(APIError):
    code = 503
    reason = "ServiceUnavailable"


class InternalError(APIError):
    """apierrors.NewInternalError: the cause is kept in details, the message is prefixed."""

    def __init__(self, cause: str) -> None:
        super().__init__(
            f"Internal error occurred: {cause}", details={"causes": [{"message": cause}]}
        )


class UnknownError(APIError):
    """A plain Go error reaching the API layer: code 500 and no reason."""

    reason = ""


def metric_not_found(resource: object, metric: str, name: str | None = None) -> NotFoundError:
    """custom-metrics-apiserver's NewMetricNotFoundError / NewMetricNotFoundForError."""
    target = f"{resource} {name}" if name is not None else f"{resource}"
    return NotFoundError(f"the server could not find the metric {metric} for {target}")


def path_not_found() -> NotFoundError:
    """The generic apiserver's answer for a path nothing serves."""
    return NotFoundError("the server could not find the requested resource", details={})


def status_body(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
    }
    if reason:
        body["reason"] = reason
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body
