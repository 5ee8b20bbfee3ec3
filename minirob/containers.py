"""What a ``.pt`` / ``.bin`` file is, decided from its bytes before anything unpickles it.

``torch.load`` looks at a file and picks a loader: a zip holding ``constants.pkl`` goes to
``torch.jit.load``, which runs the archive's compiled code (a scripted ``__setstate__`` can write any
file); a legacy file's ``('module', ...)`` persistent ids make torch write ``.patch`` files. minirob
never hands an untrusted file to torch's loaders. This module recognises the container and gives
:mod:`minirob.safe_pickle` the two things it needs from it: the pickle's bytes, and each tensor
storage's bytes, checked against the file.

The containers ``torch.save`` writes, and what minirob does with each:

* **zip** (torch >= 1.6): records ``<prefix>/data.pkl`` (the pickle), ``<prefix>/data/<key>`` (one
  storage's raw bytes, stored uncompressed), ``<prefix>/version``, ``<prefix>/byteorder`` and a few
  bookkeeping records. Read with Python's ``zipfile``, which checks each record's CRC-32 as it is
  read. A zip holding TorchScript (``constants.pkl`` or ``code/``) is refused: it is a program.
* **legacy** (torch < 1.6): five pickles in a row -- the magic number, the protocol version (1001),
  system info, the object, the list of storage keys -- then, per key, an 8-byte element count and the
  storage's raw bytes. :class:`LegacyFile` reads it front to back, never past the file's end.
* anything else is refused: a tar (torch < 0.4), a plain ``pickle.dump`` (no magic number: not
  something ``torch.save`` wrote), or bytes that are no container at all.
"""

from __future__ import annotations

import os
import re
import tarfile
import zipfile
from pathlib import Path

import torch

from .errors import CheckpointError, UnsafeCheckpointError

# torch.serialization's constants for the legacy format (part of the format: fixed forever).
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
MAX_PICKLE_LINE = 1 << 16  # protocol-0 opcodes read a line; no honest line is this long
STORAGE_KEY = re.compile(r"[0-9A-Za-z_]{1,64}")  # torch names storages 0, 1, ... (legacy: digits)


def escaped(text: object) -> str:
    """``text`` with control characters and non-ASCII escaped, safe to print in a one-line error."""
    ascii_text = str(text).encode("ascii", "backslashreplace").decode("ascii")
    return re.sub(r"[\x00-\x1f\x7f]", lambda match: f"\\x{ord(match.group()):02x}", ascii_text)


def container_kind(path: Path) -> str:
    """``"zip"`` or ``"pickle"`` (legacy torch file, or a plain pickle); anything else is refused."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith(b"PK"):
        return "zip"
    if head[:1] == b"\x80":  # a pickle's PROTO opcode: torch's legacy format starts with one
        return "pickle"
    if tarfile.is_tarfile(path):
        raise CheckpointError(f"{path}: a tar-format checkpoint (torch < 0.4) is not supported")
    raise CheckpointError(
        f"{path}: not a PyTorch file (neither torch's zip format nor a pickle: it starts with "
        f"{escaped(repr(head))})"
    )


def _read_exactly(read_into, buffer: torch.Tensor) -> int:
    """Fill the uint8 tensor ``buffer`` from ``read_into``; returns how many bytes arrived."""
    view = memoryview(buffer.numpy()).cast("B")
    done = 0
    while done < len(view):
        got = read_into(view[done:])
        if not got:
            break
        done += got
    return done


class ZipCheckpoint:
    """A zip written by ``torch.save``: its layout checked, its pickle and storages read on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file_size = path.stat().st_size
        try:
            self.archive = zipfile.ZipFile(path)
            names = self.archive.namelist()
        except Exception as error:  # BadZipFile, a damaged header's odd values, ...
            raise CheckpointError(f"{path}: corrupted zip structure ({type(error).__name__}: "
                                  f"{escaped(error)})") from None
        scripted = [n for n in names if n.rsplit("/", 1)[-1] == "constants.pkl" or "/code/" in n]
        if scripted:
            raise UnsafeCheckpointError(
                f"{path}: a TorchScript archive (it holds {escaped(scripted[0])}: compiled code "
                "that torch.jit.load would run), not a weights file; refused without loading it"
            )
        if len(set(names)) != len(names):
            raise CheckpointError(f"{path}: the zip names one record twice; refused as ambiguous")
        pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(
                f"{path}: a zip, but not one torch.save wrote (expected one <name>/data.pkl record, "
                f"found {len(pickles)})"
            )
        self.names = set(names)
        self.prefix = pickles[0][: -len("data.pkl")]
        strays = [n for n in names if not n.startswith(self.prefix)]
        if strays:
            raise CheckpointError(f"{path}: record {escaped(strays[0])} lies outside the "
                                  f"checkpoint's folder {escaped(self.prefix)}")
        order = self._record(f"{self.prefix}byteorder").decode("ascii", "replace") if \
            f"{self.prefix}byteorder" in names else "little"
        if order not in ("little", "big"):
            raise CheckpointError(f"{path}: unknown byte order {escaped(order)!r}")
        self.byteorder = order

    def close(self) -> None:
        self.archive.close()

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = self.archive.getinfo(name)
        if info.compress_type != zipfile.ZIP_STORED:  # torch stores every record uncompressed
            raise CheckpointError(f"{self.path}: record {escaped(name)} is compressed, which "
                                  "torch.save never does; refused (a compressed record can expand "
                                  "far beyond the file)")
        if info.file_size > self.file_size:
            raise CheckpointError(f"{self.path}: record {escaped(name)} claims {info.file_size} "
                                  f"bytes, more than the whole file ({self.file_size})")
        return info

    def _record(self, name: str) -> bytes:
        with self.archive.open(self._info(name)) as record:
            return record.read()  # zipfile checks the CRC-32 on reaching the end

    def pickle_bytes(self) -> bytes:
        return self._record(f"{self.prefix}data.pkl")

    def storage(self, key: str, nbytes: int) -> torch.Tensor:
        """The raw bytes of storage ``key`` (a 1-D uint8 tensor of exactly ``nbytes``)."""
        name = f"{self.prefix}data/{key}"
        if name not in self.names:
            raise CheckpointError(f"{self.path}: the pickle refers to storage {escaped(key)!r}, "
                                  "which the zip does not hold")
        info = self._info(name)
        if info.file_size != nbytes:
            raise CheckpointError(
                f"{self.path}: storage {escaped(key)!r} holds {info.file_size} bytes, but the "
                f"pickle describes {nbytes}"
            )
        buffer = torch.empty(nbytes, dtype=torch.uint8)
        with self.archive.open(info) as record:
            if _read_exactly(record.readinto, buffer) != nbytes:
                raise CheckpointError(f"{self.path}: storage {escaped(key)!r} is truncated")
        return buffer


class LegacyFile:
    """A legacy (non-zip) torch file read front to back; reads never ask for more than is left.

    Works as the ``file`` of a pickle unpickler (``read``/``readline``), so the pickles are read
    straight from disk, then :meth:`fill` reads the storages that follow them.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = open(path, "rb")
        self.size = os.fstat(self.handle.fileno()).st_size

    def close(self) -> None:
        self.handle.close()

    def remaining(self) -> int:
        return self.size - self.handle.tell()

    def read(self, n: int = -1) -> bytes:
        left = self.remaining()
        return self.handle.read(left if n is None or n < 0 else min(n, left))

    def readline(self) -> bytes:
        return self.handle.readline(MAX_PICKLE_LINE)

    def fill(self, key: str, buffer: torch.Tensor, numel: int, element_size: int) -> None:
        """Read storage ``key`` (its 8-byte element count, then its bytes) into ``buffer``."""
        header = self.read(8)
        if len(header) < 8:
            raise CheckpointError(f"{self.path}: truncated before storage {escaped(key)!r}")
        count = int.from_bytes(header, "little", signed=True)
        if count != numel:
            raise CheckpointError(
                f"{self.path}: storage {escaped(key)!r} holds {count} elements, but the pickle "
                f"describes {numel}"
            )
        nbytes = numel * element_size
        if nbytes > self.remaining() or _read_exactly(self.handle.readinto, buffer) != nbytes:
            raise CheckpointError(f"{self.path}: storage {escaped(key)!r} is truncated")
