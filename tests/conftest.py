"""The suite never sits silent: while collection or one test runs longer than 4 s, a line says
what is running and for how long (the README promises no silent pause over 5 s).

The lines go to the terminal pytest started on, through a descriptor duplicated while
capturing was off, so a test's captured output neither swallows nor carries them.
"""

import os
import threading
import time
from collections.abc import Iterator

import pytest

_EVERY = 4.0


class _Ticker:
    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._what: str | None = None
        self._since = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress-ticker", daemon=True)
        self._thread.start()

    def start(self, what: str) -> None:
        with self._lock:
            self._what, self._since = what, time.monotonic()

    def done(self) -> None:
        with self._lock:
            self._what = None

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        os.close(self._fd)

    def _run(self) -> None:
        started = next_tick = 0.0
        while not self._stop.wait(0.5):
            with self._lock:
                what, since = self._what, self._since
            if what is None:
                continue
            now = time.monotonic()
            if started != since:  # another test (or the collection) since the last look
                started, next_tick = since, since + _EVERY
            if now >= next_tick:
                line = f"\n   ... {what}: still running ({now - since:.0f} s)\n"
                os.write(self._fd, line.encode(errors="replace"))
                next_tick = now + _EVERY


# One per pytest process; the hooks that report a test's start and end get no config.
_ticker: _Ticker | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _ticker  # noqa: PLW0603
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        return
    with capture.global_and_fixture_disabled():
        fd = os.dup(1)
    _ticker = _Ticker(fd)


def pytest_unconfigure() -> None:
    global _ticker  # noqa: PLW0603
    if _ticker is not None:
        _ticker.close()
        _ticker = None


@pytest.hookimpl(wrapper=True)
def pytest_collection() -> Iterator[None]:
    if _ticker is not None:
        _ticker.start("collecting the tests")
    try:
        return (yield)
    finally:
        if _ticker is not None:
            _ticker.done()


def pytest_runtest_logstart(nodeid: str) -> None:
    if _ticker is not None:
        _ticker.start(nodeid)


def pytest_runtest_logfinish() -> None:
    if _ticker is not None:
        _ticker.done()
