"""Giving freed C heap memory back to the system.

glibc keeps freed heap pages for reuse, so after a burst (a thousand closed connections, a
25 MB answer) the process's RSS stays up although Python has freed everything; `malloc_trim`
returns them."""

import ctypes
from collections.abc import Callable

__all__ = ["heap_trimmer"]


def heap_trimmer() -> Callable[[], object] | None:
    """glibc's `malloc_trim(0)`; None where the C library has none (musl, macOS)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return lambda: trim(0)
