"""An exclusive lock on a file, for processes that share a directory (two terminals fetching the
same data, parallel test workers).

Three ways to hold it, the first the platform has:

* ``fcntl.flock`` (Linux, macOS): the kernel drops the lock when the holder dies, even by kill -9;
* ``msvcrt.locking`` (Windows): the same, on the lock file's first byte;
* elsewhere, a lock file created with ``O_CREAT | O_EXCL`` holding the owner's PID, host and start
  time. A holder on this host whose PID no longer runs left it behind (killed); the next process
  takes it over. A live holder is waited for, up to ``timeout`` seconds, and then named in the error.

``import fcntl`` at the top of a module makes the module fail on Windows; here each way is tried.

``process_alive(pid)`` is the one liveness check every leftover-cleaner uses (the run lock, stale
``.saving-*`` folders, this module's lock files).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # Windows, and other systems without POSIX locks
    fcntl = None
try:
    import msvcrt
except ImportError:  # every system but Windows
    msvcrt = None

from .errors import MinirobError


class LockTimeout(MinirobError, TimeoutError):
    """Another live process held the lock for longer than the caller would wait."""


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, timeout: float = 3600.0) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the ``with`` block."""
    path = Path(path)
    if fcntl is not None or msvcrt is not None:
        with open(path, "a+b") as handle:
            _kernel_lock(handle, timeout, path)
            try:
                yield
            finally:
                _kernel_unlock(handle)
        return
    _create_lock_file(path, timeout)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _kernel_lock(handle, timeout: float, path: Path) -> None:
    if fcntl is not None:
        fcntl.flock(handle, fcntl.LOCK_EX)  # blocks until the holder releases or dies
        return
    deadline = time.monotonic() + timeout
    while True:  # msvcrt.LK_LOCK itself gives up after 10 s, so try without blocking, in a loop
        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise LockTimeout(f"{path}: still locked by another process after {timeout:.0f} s") from None
            time.sleep(0.2)


def _kernel_unlock(handle) -> None:
    if fcntl is not None:
        fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)


def _create_lock_file(path: Path, timeout: float) -> None:
    """The portable fallback: whoever creates the file holds the lock."""
    deadline = time.monotonic() + timeout
    me = f"{os.getpid()} {socket.gethostname()} {time.time():.0f}"
    while True:
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_holder(path)
            if _is_dead(holder) or (holder is None and _age(path) > 60):  # killed, or killed while writing
                path.unlink(missing_ok=True)  # left by a killed process: take it over
                continue
            if time.monotonic() > deadline:
                raise LockTimeout(f"{path}: held by {_describe(holder)} for longer than {timeout:.0f} s") from None
            time.sleep(0.2)
            continue
        with os.fdopen(descriptor, "w") as handle:
            handle.write(me + "\n")
        return


def _read_holder(path: Path) -> tuple[int, str, float] | None:
    """(PID, host, start time) written in a lock file; None while it is being written or unreadable."""
    try:
        pid, host, started = path.read_text().split()
        return int(pid), host, float(started)
    except (OSError, ValueError):
        return None


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie counts as dead)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would *terminate* the process on Windows
        import ctypes  # standard library; only needed here

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.GetLastError() == 5  # access denied: it exists
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except (ProcessLookupError, OverflowError):  # gone, or a number no PID can be
        return False
    except PermissionError:
        return True  # someone else's process
    try:  # Linux: a killed child its parent has not reaped yet is a zombie, not a writer
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _is_dead(holder: tuple[int, str, float] | None) -> bool:
    """True when the holder ran on this host and its PID is gone (a PID on another host sharing
    the folder cannot be checked from here, so it is never presumed dead)."""
    if holder is None:
        return False
    pid, host, _started = holder
    return host == socket.gethostname() and not process_alive(pid)


def _describe(holder: tuple[int, str, float] | None) -> str:
    if holder is None:
        return "another process"
    pid, host, started = holder
    return f"process {pid} on {host!r} since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))}"
