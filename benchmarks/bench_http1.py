"""Micro-benchmark: reading HTTP/1.1 answers with the lean client's connection protocol.

Run from the repository root: ``python benchmarks/bench_http1.py [--old PATH]``. Answers are
fed to the protocol's ``data_received`` as a socket would deliver them (small answers in one
read, large ones in 256 KiB reads), without a socket, so that only framing is measured: the
status line, headers, Content-Length or chunked bodies, handing the body over. Cases: a
typical query answer (~2 KB, Content-Length; ~6 KB chunked in one chunk as Go sends it) and
a 25 MB answer (Content-Length; chunked in 8 KiB chunks). ``--old`` is the path of another
``http1.py`` to compare with (say, the hand-written parser from git history:
``git show <rev>:adapter/prometheus/http1.py > /tmp/http1_old.py``). Numbers only.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from adapter.prometheus import http1  # noqa: E402

__all__ = ["main"]

_REQUEST = b"GET /api/v1/query?query=up HTTP/1.1\r\nHost: prometheus\r\n\r\n"
_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Sat, 06 Dec 2026 09:00:00 GMT\r\n"
)
_READ = 256 * 1024  # what one socket read delivers at most (uvloop's buffer)


class _Transport:
    """Enough of a transport for the protocol: it writes nowhere."""

    def write(self, data: bytes) -> None:
        pass

    def abort(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _vector(size: int) -> bytes:
    item = b'{"metric":{"namespace":"shop","pod":"web-%06d"},"value":[1700000000.123,"0.25"]}'
    items: list[bytes] = []
    total = 0
    while total < size:
        items.append(item % len(items))
        total += len(items[-1]) + 1
    return (
        b'{"status":"success","data":{"resultType":"vector","result":[' + b",".join(items) + b"]}}"
    )


def _content_length(body: bytes) -> bytes:
    return _HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body


def _chunked(body: bytes, chunk: int) -> bytes:
    parts = [_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"]
    for start in range(0, len(body), chunk):
        piece = body[start : start + chunk]
        parts.append(b"%x\r\n%s\r\n" % (len(piece), piece))
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


def _reads(answer: bytes) -> list[bytes]:
    return [answer[start : start + _READ] for start in range(0, len(answer), _READ)]


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("http1_compared", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reader(module: ModuleType) -> Callable[[list[bytes]], bytes]:
    """One answer read by `module`'s protocol: the body it hands over."""
    loop = asyncio.get_running_loop()
    connection: Any = module._Connection()
    connection.connection_made(_Transport())
    exchange = getattr(module, "_Exchange", None)

    def read(reads: list[bytes]) -> bytes:
        waiter = loop.create_future()
        if exchange is None:  # the hand-written parser: a waiter for the whole answer
            connection.send(_REQUEST, waiter)
        else:
            connection.send(_REQUEST, exchange(waiter, module.BufferedBody, 0))
        for data in reads:
            connection.data_received(data)
        result = waiter.result()
        return bytes(result.body) if exchange is None else bytes(result[1].content())

    return read


def _time(read: Callable[[list[bytes]], bytes], reads: list[bytes], seconds: float) -> float:
    """Median seconds per answer over batches run for about `seconds`."""
    read(reads)  # warm up
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    batch = 1
    while time.perf_counter() < deadline or len(samples) < 5:
        started = time.perf_counter()
        for _ in range(batch):
            read(reads)
        elapsed = time.perf_counter() - started
        samples.append(elapsed / batch)
        if elapsed < 0.01:
            batch *= 2
    return statistics.median(samples)


def _format(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs" if seconds < 0.001 else f"{seconds * 1e3:,.2f} ms"


async def _run(modules: Sequence[tuple[str, ModuleType]], seconds: float) -> None:
    small = _vector(2_000)
    medium = _vector(6_000)
    large = _vector(25_000_000)
    cases = [
        ("2 KB answer, Content-Length", _reads(_content_length(small))),
        ("6 KB answer, chunked (one chunk)", _reads(_chunked(medium, len(medium)))),
        ("25 MB answer, Content-Length", _reads(_content_length(large))),
        ("25 MB answer, chunked (8 KiB chunks)", _reads(_chunked(large, 8192))),
    ]
    names = [name for name, _ in modules]
    print("| case | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for label, reads in cases:
        cells = []
        expected = None
        for _, module in modules:
            read = _reader(module)
            body = read(reads)
            expected = body if expected is None else expected
            assert body == expected, f"{label}: the parsers disagree"
            seconds_each = _time(read, reads, seconds)
            cells.append(_format(seconds_each))
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, help="another http1.py to compare with")
    parser.add_argument("--seconds", type=float, default=2.0, help="per case and parser")
    args = parser.parse_args(argv)
    modules: list[tuple[str, ModuleType]] = []
    if args.old is not None:
        modules.append((f"old ({args.old.name})", _load(args.old)))
    modules.append(("httptools", http1))
    asyncio.run(_run(modules, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
