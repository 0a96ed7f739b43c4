"""A size-rotated log file, as gopkg.in/natefinch/lumberjack.v2 (v2.2.1) rotates the Go
adapter's audit log: blocking I/O, meant for a background thread.

A write that would take the file past `max_size_mb` (default 100 MB) first renames it to
`<name>-<UTC time 2006-01-02T15-04-05.000><ext>` and opens a new one. After each rotation a
background "mill" thread removes backups beyond the newest `max_backups` and those older than
`max_age_days` (by the time in their names), then gzips the remaining uncompressed backups when
`compress` is set. 0 means no limit for both.
"""

import contextlib
import datetime
import gzip
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RotatingFile", "backup_name", "ensure_log_file"]

log = logging.getLogger(__name__)

MEGABYTE = 1024 * 1024
DEFAULT_MAX_SIZE_MB = 100
_BACKUP_TIME_FORMAT = "%Y-%m-%dT%H-%M-%S"
_COMPRESS_SUFFIX = ".gz"


def ensure_log_file(path: str) -> None:
    """AuditLogOptions.ensureLogFile: create the directory (0700) and the file (0600) at
    start-up, so that a bad path fails there rather than on the first request."""
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_RDWR, 0o600)
    os.close(fd)


def _split(path: str) -> tuple[str, str, str]:
    """(directory, name without extension, extension) as filepath.Ext splits."""
    directory, base = os.path.split(path)
    dot = base.rfind(".")
    if dot < 0:
        return directory or ".", base, ""
    return directory or ".", base[:dot], base[dot:]


def _format_time(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime(_BACKUP_TIME_FORMAT) + f".{moment.microsecond // 1000:03d}"


def backup_name(path: str, now: float) -> str:
    directory, prefix, ext = _split(path)
    return os.path.join(directory, f"{prefix}-{_format_time(now)}{ext}")


@dataclass(frozen=True, slots=True)
class _Backup:
    name: str
    timestamp: float


class RotatingFile:
    """lumberjack.Logger. Not thread-safe by itself: one writer thread at a time."""

    def __init__(
        self,
        path: str,
        *,
        max_size_mb: int = 0,
        max_backups: int = 0,
        max_age_days: int = 0,
        compress: bool = False,
        clock: Callable[[], float] = time.time,
        mill_in_background: bool = True,
        megabyte: int = MEGABYTE,  # smaller in tests, as lumberjack's own tests do
    ) -> None:
        self.path = path
        self._max_bytes = (max_size_mb or DEFAULT_MAX_SIZE_MB) * megabyte
        self._max_backups = max_backups
        self._max_age_days = max_age_days
        self._compress = compress
        self._clock = clock
        self._fd: int | None = None
        self._size = 0
        self._mill_in_background = mill_in_background
        self._mill_wanted = threading.Event()
        self._mill_stop = False
        self._mill_thread: threading.Thread | None = None

    # --- writing -------------------------------------------------------------------------

    def write_lines(self, lines: Sequence[bytes]) -> list[Exception | None]:
        """Write each line as lumberjack's Write does (rotating first when the line would not
        fit); the error of each line, None when written."""
        results: list[Exception | None] = []
        for line in lines:
            try:
                self.write(line)
            except (OSError, ValueError) as exc:
                results.append(exc)
            else:
                results.append(None)
        return results

    def write(self, line: bytes) -> None:
        if len(line) > self._max_bytes:
            raise ValueError(
                f"write length {len(line)} exceeds maximum file size {self._max_bytes}"
            )
        if self._fd is None:
            self._open_existing_or_new(len(line))
        if self._size + len(line) > self._max_bytes:
            self._rotate()
        self._write_all(line)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            assert self._fd is not None
            written = os.write(self._fd, view)
            self._size += written
            view = view[written:]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        thread = self._mill_thread
        if thread is not None:
            self._mill_stop = True
            self._mill_wanted.set()
            # A compression in progress is left to finish in its (daemon) thread, as
            # lumberjack's Close does not wait for the mill either.
            thread.join(timeout=10)

    def _open_existing_or_new(self, write_len: int) -> None:
        self._mill()
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            self._open_new()
            return
        if size + write_len >= self._max_bytes:
            self._rotate()
            return
        try:
            self._fd = os.open(self.path, os.O_APPEND | os.O_WRONLY)
        except OSError:
            # lumberjack: an existing file that cannot be opened is replaced.
            self._open_new()
            return
        self._size = size

    def _rotate(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._open_new()
        self._mill()

    def _open_new(self) -> None:
        directory, _, _ = _split(self.path)
        os.makedirs(directory, mode=0o744, exist_ok=True)
        mode = 0o644
        with contextlib.suppress(FileNotFoundError):
            info = os.stat(self.path)
            mode = info.st_mode & 0o7777
            os.rename(self.path, backup_name(self.path, self._clock()))
        # Truncate: only we moved the old file away; anything created since is overwritten.
        self._fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, mode)
        self._size = 0

    # --- the mill ------------------------------------------------------------------------

    def _mill(self) -> None:
        if not (self._max_backups or self._max_age_days or self._compress):
            return
        if not self._mill_in_background:
            self.mill_once()
            return
        if self._mill_thread is None:
            self._mill_thread = threading.Thread(
                target=self._mill_run, name="audit-log-mill", daemon=True
            )
            self._mill_thread.start()
        self._mill_wanted.set()

    def _mill_run(self) -> None:
        while True:
            self._mill_wanted.wait()
            self._mill_wanted.clear()
            if self._mill_stop:
                return
            try:
                self.mill_once()
            except OSError as exc:  # lumberjack drops these; a log line is kinder
                log.warning("audit log clean-up of %s: %s", self.path, exc)

    def _backups(self) -> list[_Backup]:
        """The backups in the log's directory, newest first."""
        directory, prefix, ext = _split(self.path)
        found = []
        for entry in os.scandir(directory):
            if not entry.is_file():
                continue
            for suffix in (ext, ext + _COMPRESS_SUFFIX):
                timestamp = _time_from_name(entry.name, prefix + "-", suffix)
                if timestamp is not None:
                    found.append(_Backup(entry.name, timestamp))
                    break
        found.sort(key=lambda backup: backup.timestamp, reverse=True)
        return found

    def mill_once(self) -> None:
        """millRunOnce: remove surplus and expired backups, then compress the rest."""
        if not (self._max_backups or self._max_age_days or self._compress):
            return
        directory, _, _ = _split(self.path)
        files = self._backups()
        remove: list[_Backup] = []
        if self._max_backups and self._max_backups < len(files):
            # A backup and its compressed copy count once.
            preserved: set[str] = set()
            remaining = []
            for backup in files:
                preserved.add(backup.name.removesuffix(_COMPRESS_SUFFIX))
                if len(preserved) > self._max_backups:
                    remove.append(backup)
                else:
                    remaining.append(backup)
            files = remaining
        if self._max_age_days:
            cutoff = self._clock() - self._max_age_days * 86400
            remove.extend(b for b in files if b.timestamp < cutoff)
            files = [b for b in files if b.timestamp >= cutoff]
        error: OSError | None = None
        for backup in remove:
            try:
                os.remove(os.path.join(directory, backup.name))
            except OSError as exc:
                error = error or exc
        if self._compress:
            for backup in files:
                if not backup.name.endswith(_COMPRESS_SUFFIX):
                    try:
                        _compress(os.path.join(directory, backup.name))
                    except OSError as exc:
                        error = error or exc
        if error is not None:
            raise error


def _time_from_name(name: str, prefix: str, ext: str) -> float | None:
    if not name.startswith(prefix) or not name.endswith(ext):
        return None
    stamp = name[len(prefix) : len(name) - len(ext)]
    try:
        seconds, millis = stamp.rsplit(".", 1)
        if len(millis) != 3 or not millis.isdigit():
            return None
        moment = datetime.datetime.strptime(seconds, _BACKUP_TIME_FORMAT)
    except ValueError:
        return None
    return moment.replace(tzinfo=datetime.UTC).timestamp() + int(millis) / 1000


def _compress(path: str) -> None:
    """compressLogFile: gzip to `<path>.gz` with the same mode, then remove the original."""
    target = path + _COMPRESS_SUFFIX
    info = os.stat(path)
    try:
        fd = os.open(target, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, info.st_mode & 0o7777)
        with (
            open(path, "rb") as source,
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", filename="") as compressed,
        ):
            shutil.copyfileobj(source, compressed, 1 << 20)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(target)
        raise
    os.remove(path)
