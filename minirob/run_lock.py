"""One writer per run directory: a lock file held for as long as a run writes there.

Two runs into one ``--out`` would overwrite each other's checkpoints, delete each other's
temporaries and interleave ``metrics.jsonl``. So a run first creates ``RUN_DIR/run.lock`` with
``os.open(O_CREAT | O_EXCL)``: the one file-creation call that is atomic on every OS and file system
Python supports (no ``fcntl``, so it works on Windows too). The file says who holds it (PID, host,
start time); a second run is refused with those facts. A lock whose holder died (same host, PID not
running) is taken over, so a run killed with -9 does not need a manual clean-up.

The lock is re-entrant within one process: ``pretrain()`` holds it around the whole recipe
(tokenizer, training, final model) and the loop it calls takes it again.

Limit, stated: a lock written on another host cannot be checked for liveness; it is refused and
the message says which file to delete if that run is gone.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from .errors import TrainingError, printable
from .locks import process_alive

LOCK_NAME = "run.lock"
_depth: dict[str, int] = {}  # lock paths this process holds -> how many times it took them


class RunLock:
    """``with RunLock(run_dir): ...`` -- hold ``run_dir/run.lock`` for the block (see module doc)."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / LOCK_NAME

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _key(self) -> str:
        return os.path.abspath(self.path)

    def acquire(self) -> None:
        key = self._key()
        if _depth.get(key):
            _depth[key] += 1
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mine = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        for _ in range(5):  # a stale lock is removed, then creation is tried again
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if not self._stale(holder):
                    raise TrainingError(self._refusal(holder)) from None
                self._remove_stale(holder)
                continue
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(mine, handle)
            _depth[key] = 1
            return
        raise TrainingError(f"could not take the lock {self.path} (it keeps reappearing)")

    def release(self) -> None:
        key = self._key()
        if not _depth.get(key):
            return
        _depth[key] -= 1
        if _depth[key] == 0:
            del _depth[key]
            holder = self._holder()
            if holder is not None and holder.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)

    def _holder(self, path: Path | None = None) -> dict | None:
        """The lock file's content; None if it cannot be read as ours (half-written, foreign)."""
        try:
            holder = json.loads((path or self.path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def _stale(self, holder: dict | None) -> bool:
        if holder is None:  # unreadable: stale once it is clearly not being written right now
            try:
                return time.time() - self.path.stat().st_mtime > 10
            except FileNotFoundError:
                return True
        pid = holder.get("pid")
        if holder.get("host") != socket.gethostname() or not isinstance(pid, int) or isinstance(pid, bool):
            return False
        return not process_alive(pid)

    def _remove_stale(self, holder: dict | None) -> None:
        # Rename first, then check what was renamed: between our read of the stale holder and the
        # rename, another process may have taken the stale lock over and created a live one. That
        # one is put back (os.link fails if a third lock appeared meanwhile: then the newest stands).
        aside = self.path.with_name(f".{LOCK_NAME}.stale-{os.getpid()}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:
            return
        if self._holder(aside) != holder:
            try:
                os.link(aside, self.path)
            except OSError:
                pass
        aside.unlink(missing_ok=True)

    def _refusal(self, holder: dict | None) -> str:
        if holder is None:
            who = "a writer whose lock file is being written or unreadable"
        else:
            who = (f"PID {printable(holder.get('pid'))} on {printable(holder.get('host'))}, started "
                   f"{printable(holder.get('started'))}")
        return (f"{self.path.parent} is in use by another run ({who}); wait for it to end or use "
                f"another --out directory (if that run is gone, delete {self.path})")
