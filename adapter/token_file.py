"""A bearer token file, re-read when it changes.

Used for Prometheus (`--prometheus-token-file`, which the Go adapter reads once) and for the
Kubernetes clients (service-account tokens, which kubelet rotates). `current()` costs one
stat(): Kubernetes rotates projected tokens by swapping a symlink, which changes the inode,
and in-place rewrites change size or mtime. If the file becomes unreadable, the last good
token stays in use, so a rotation never fails requests.
"""

import logging
import os
import time
from pathlib import Path

__all__ = ["TokenFile", "TokenFileError"]

log = logging.getLogger(__name__)

# A rewrite within one timestamp tick keeps the stat(); re-read until the file is this old.
_RACY_SECONDS = 1.0


class TokenFileError(ValueError):
    """The token file cannot be read at start-up; the message never quotes the token."""


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class TokenFile:
    __slots__ = ("_key", "_path", "_racy", "_token", "_unreadable", "_what")

    def __init__(self, path: str, *, what: str) -> None:
        self._path = path
        self._what = what  # e.g. "prometheus-token-file", for messages
        self._key: tuple[int, int, int, int] | None = None
        self._racy = False
        self._unreadable = False
        try:
            self._token = self._read(os.stat(path))
        except (OSError, ValueError) as err:
            raise TokenFileError(f"failed to read {what}: {err}") from None

    def current(self) -> str:
        """The token to send now (possibly empty)."""
        try:
            st = os.stat(self._path)
            if self._racy or self._key != _stat_key(st):
                self._token = self._read(st)
            self._unreadable = False
        except (OSError, ValueError) as err:
            if not self._unreadable:  # log once per outage, not once per request
                log.warning("keeping the previous bearer token from %s: %s", self._what, err)
                self._unreadable = True
        return self._token

    def _read(self, st: os.stat_result) -> str:
        token = Path(self._path).read_bytes().decode("utf-8", errors="replace").strip()
        if any(c in token for c in "\r\n\0"):
            raise ValueError(f"{self._path}: the token contains a line break or NUL")
        self._key = _stat_key(st)
        self._racy = time.time() - st.st_mtime < _RACY_SECONDS
        return token
