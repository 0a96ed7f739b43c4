"""What the adapter needs of a Kubernetes API client: GET, POST and watch, on raw JSON.

`adapter.kube.client.KubeClient` implements it over aiohttp; the REST mapper, the object
cache and the authentication/authorization reviews are written against this protocol, so
tests can use a real fake API server or an in-memory one.
"""

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

__all__ = ["KubeAPI", "KubeAPIError"]


class KubeAPIError(Exception):
    """A failed API call: the HTTP status and the Status object's reason and message
    (status 0 when the server could not be reached or did not answer in time)."""

    def __init__(self, status: int, reason: str, message: str, *, path: str = "") -> None:
        super().__init__(f"{status} {reason}: {message}" + (f" ({path})" if path else ""))
        self.status = status
        self.reason = reason
        self.message = message
        self.path = path


class KubeAPI(Protocol):
    async def get(
        self, path: str, params: Mapping[str, str] | None = None, *, accept: str | None = None
    ) -> dict[str, Any]:
        """GET `path` (e.g. `/api/v1/namespaces/x/pods`); the decoded JSON body.
        Raises KubeAPIError for a non-2xx answer or a transport failure."""
        ...

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a JSON body (TokenReview, SubjectAccessReview); the decoded answer."""
        ...

    def watch(
        self, path: str, params: Mapping[str, str] | None = None, *, accept: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """GET `path` with `watch=1` and stream the events (`{"type", "object"}`), one per
        JSON line, until the server ends the stream. An ERROR event is yielded as is
        (its object is a Status, e.g. code 410 when the resourceVersion is too old)."""
        ...
