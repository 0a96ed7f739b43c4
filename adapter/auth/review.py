"""What authentication and authorization need of the Kubernetes API: the two review calls.

The kube client implements this; tests use an in-memory fake. Both methods return the review's
`.status` and raise (e.g. `adapter.kube.api.KubeAPIError`) when the call fails.
"""

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["ReviewClient"]


class ReviewClient(Protocol):
    async def create_token_review(
        self, token: str, audiences: Sequence[str] = ()
    ) -> dict[str, Any]:
        """POST a TokenReview; its status: `{"authenticated", "user": {"username", "uid",
        "groups", "extra"}, "audiences", "error"}`."""
        ...

    async def create_subject_access_review(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """POST a SubjectAccessReview with `spec`; its status: `{"allowed", "denied", "reason",
        "evaluationError"}`."""
        ...
