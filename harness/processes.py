"""Child processes that do not outlive the harness process that started them."""

import shutil
import sys

__all__ = ["dying_with_parent"]


def dying_with_parent(argv: list[str]) -> list[str]:
    """``argv`` run so that the kernel sends it SIGTERM when the thread that started it dies.

    util-linux's setpriv (Essential on Debian) sets PR_SET_PDEATHSIG and execs, keeping the
    pid; that avoids running Python code between fork and exec (``preexec_fn``), which is
    unsafe while other threads run.
    """
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    if setpriv is None:
        return argv
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]
