"""The authenticated identity of a request (k8s.io/apiserver `user.Info`)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "ALL_AUTHENTICATED",
    "ALL_UNAUTHENTICATED",
    "ANONYMOUS",
    "ANONYMOUS_USER",
    "CREDENTIAL_ID_KEY",
    "SYSTEM_MASTERS",
    "UserInfo",
]

ANONYMOUS_USER = "system:anonymous"
ALL_AUTHENTICATED = "system:authenticated"
ALL_UNAUTHENTICATED = "system:unauthenticated"
SYSTEM_MASTERS = "system:masters"
CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"


def _freeze_extra(extra: Mapping[str, Sequence[str]]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({key: tuple(values) for key, values in extra.items()})


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as the authenticators found it: name, uid, groups (in order) and extra values.

    `groups` and `extra` are normalised to tuples and a read-only mapping, so a `UserInfo` can
    be shared between requests and cached without copying."""

    name: str
    uid: str = ""
    groups: Sequence[str] = ()
    extra: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "extra", _freeze_extra(self.extra))

    def __hash__(self) -> int:
        return hash((self.name, self.uid, tuple(self.groups), tuple(sorted(self.extra))))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UserInfo):
            return NotImplemented
        return (self.name, self.uid, tuple(self.groups), dict(self.extra)) == (
            other.name,
            other.uid,
            tuple(other.groups),
            dict(other.extra),
        )

    def with_group(self, group: str) -> "UserInfo":
        """A copy with `group` appended (unless already present)."""
        if group in self.groups:
            return self
        return UserInfo(self.name, self.uid, (*self.groups, group), self.extra)


ANONYMOUS = UserInfo(ANONYMOUS_USER, groups=(ALL_UNAUTHENTICATED,))
