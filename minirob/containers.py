"""What a ``.pt`` / ``.bin`` file is, decided from its bytes before anything unpickles it.

``torch.load`` looks at a file and picks a loader: a zip holding ``constants.pkl`` goes to
``torch.jit.load``, which runs the archive's compiled code (a scripted ``__setstate__`` can write any
file); a legacy file's ``('module', ...)`` persistent ids make torch write ``.patch`` files. minirob
never hands an untrusted file to torch's loaders. This module opens the file (once: only a regular
file, never blocking on a FIFO), recognises the container and gives :mod:`minirob.safe_pickle` the
two things it needs from it: the pickle's bytes, and each tensor storage's bytes, checked against
the file.

The containers ``torch.save`` writes, and what minirob does with each:

* **zip** (torch >= 1.6): records ``<prefix>/data.pkl`` (the pickle), ``<prefix>/data/<key>`` (one
  storage's raw bytes), ``<prefix>/version``, ``<prefix>/byteorder`` and a few bookkeeping records,
  every one stored uncompressed. Read with Python's ``zipfile``, which checks each record's CRC-32
  as it is read. Refused: a zip holding TorchScript (``constants.pkl`` or ``code/``: a program), a
  compressed record (a few kilobytes of bzip2 expand to gigabytes), and a central directory over
  :data:`MAX_CENTRAL_DIRECTORY` bytes (``zipfile`` builds an object per record before anyone can
  count them).
* **legacy** (torch < 1.6): five pickles in a row -- the magic number, the protocol version (1001),
  system info, the object, the list of storage keys -- then, per key, an 8-byte element count and the
  storage's raw bytes. :class:`LegacyFile` reads it front to back, never past the file's end.
* anything else is refused: a tar (torch < 0.4), a plain ``pickle.dump`` (no magic number: not
  something ``torch.save`` wrote), or bytes that are no container at all.

Every size is the one measured on the open handle, so a file that changes while it is read can only
come out truncated (an error), never larger than it was.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from pathlib import Path
from typing import BinaryIO

import torch

from .errors import CheckpointError, MissingFileError, UnsafeCheckpointError, printable

# torch.serialization's constants for the legacy format (part of the format: fixed forever).
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
MAX_PICKLE_LINE = 1 << 16  # protocol-0 opcodes read a line; no honest line is this long
# torch's central directory takes about 62 bytes a record: room for ~130,000 storages, and at most
# ~180,000 of zipfile's record objects (~180 MB) for a hostile one.
MAX_CENTRAL_DIRECTORY = 8 << 20
_READ_CHUNK = 1 << 20


_NOT_REGULAR = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                (stat.S_ISSOCK, "a socket"))


def open_regular_file(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (a symlink to one is fine).

    Opened non-blocking, so a FIFO named ``model.pt`` is refused instead of waiting forever for a
    writer; the type is checked on the open handle, so the file cannot be swapped after the check.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | \
        getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise MissingFileError(f"no checkpoint file at {printable(path)}") from None
    except OSError as error:
        raise CheckpointError(f"{printable(path)}: cannot be opened ({printable(error.strerror)})") \
            from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = next((name for test, name in _NOT_REGULAR if test(mode)), "not a regular file")
        raise CheckpointError(f"{printable(path)}: {kind}, not a checkpoint file")
    return os.fdopen(descriptor, "rb")


def check_regular_file(path: Path) -> None:
    """Refuse (one line) a path that is missing, a directory, a FIFO or a device."""
    open_regular_file(path).close()


def file_size(handle: BinaryIO) -> int:
    return os.fstat(handle.fileno()).st_size


def container_kind(handle: BinaryIO, path: Path) -> str:
    """``"zip"`` or ``"pickle"`` (legacy torch file, or a plain pickle); anything else is refused."""
    handle.seek(0)
    head = handle.read(4)
    if not head:
        raise CheckpointError(f"{printable(path)}: file is empty")
    if head.startswith(b"PK"):
        return "zip"
    if head[:1] == b"\x80":  # a pickle's PROTO opcode: torch's legacy format starts with one
        return "pickle"
    handle.seek(0)
    if tarfile.is_tarfile(handle):
        raise CheckpointError(f"{printable(path)}: a tar-format checkpoint (torch < 0.4) is not "
                              "supported")
    raise CheckpointError(
        f"{printable(path)}: not a PyTorch file (neither torch's zip format nor a pickle: it starts "
        f"with {printable(repr(head))})"
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


class _OpeningReads:
    """The handle as ``zipfile`` sees it; while ``opening``, no read may ask for more than
    :data:`MAX_CENTRAL_DIRECTORY` bytes (zipfile reads the central directory in one read)."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle, self.size, self.opening = handle, size, True

    def read(self, n: int | None = -1) -> bytes:
        wanted = self.size - self.handle.tell() if n is None or n < 0 else n
        if self.opening and wanted > MAX_CENTRAL_DIRECTORY:
            raise CheckpointError(f"the zip's central directory is over {MAX_CENTRAL_DIRECTORY} "
                                  "bytes (more records than any checkpoint holds); refused")
        return self.handle.read(n)

    def __getattr__(self, name: str):  # seek, tell, seekable, name: the handle's own
        return getattr(self.handle, name)


class ZipCheckpoint:
    """A zip written by ``torch.save``: its layout checked, its pickle and storages read on demand."""

    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self.path, self.shown = path, printable(path)
        self.file_size = file_size(handle)
        reads = _OpeningReads(handle, self.file_size)
        try:
            self.archive = zipfile.ZipFile(reads)
        except CheckpointError as error:
            raise CheckpointError(f"{self.shown}: {error}") from None
        except Exception as error:  # BadZipFile, a damaged header's odd values, ...
            raise CheckpointError(f"{self.shown}: corrupted zip structure ({type(error).__name__}: "
                                  f"{printable(error)})") from None
        reads.opening = False
        self.names = self._check_layout(self.archive.namelist())
        order = "little"
        if f"{self.prefix}byteorder" in self.names:
            order = self.record(f"{self.prefix}byteorder").decode("ascii", "replace")
        if order not in ("little", "big"):
            raise CheckpointError(f"{self.shown}: unknown byte order {printable(order)!r}")
        self.byteorder = order

    def _check_layout(self, names: list[str]) -> set[str]:
        """torch's layout: one ``<prefix>/data.pkl`` and every record under ``<prefix>/``."""
        scripted = [n for n in names if n.rsplit("/", 1)[-1] == "constants.pkl" or "/code/" in n]
        if scripted:
            raise UnsafeCheckpointError(
                f"{self.shown}: a TorchScript archive (it holds {printable(scripted[0])}: compiled "
                "code that torch.jit.load would run), not a weights file; refused without loading "
                "it"
            )
        if len(set(names)) != len(names):
            raise CheckpointError(f"{self.shown}: the zip names one record twice; refused as "
                                  "ambiguous")
        pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(
                f"{self.shown}: a zip, but not one torch.save wrote (expected one <name>/data.pkl "
                f"record, found {len(pickles)})"
            )
        self.prefix = pickles[0][: -len("data.pkl")]
        strays = [n for n in names if not n.startswith(self.prefix)]
        if strays:
            raise CheckpointError(f"{self.shown}: record {printable(strays[0])} lies outside the "
                                  f"checkpoint's folder {printable(self.prefix)}")
        packed = [info.filename for info in self.archive.infolist()
                  if info.compress_type != zipfile.ZIP_STORED]
        if packed:  # torch stores every record as is; a compressed one can expand a thousandfold
            raise CheckpointError(f"{self.shown}: record {printable(packed[0])} is compressed, which "
                                  "torch.save never does; refused without expanding it")
        return set(names)

    def close(self) -> None:
        self.archive.close()

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = self.archive.getinfo(name)  # stored, as _check_layout made sure
        if info.file_size > self.file_size:
            raise CheckpointError(f"{self.shown}: record {printable(name)} claims {info.file_size} "
                                  f"bytes, more than the whole file ({self.file_size})")
        return info

    def record(self, name: str) -> bytes:
        with self.archive.open(self._info(name)) as record:
            return record.read()  # zipfile checks the CRC-32 on reaching the end

    def pickle_bytes(self) -> bytes:
        return self.record(f"{self.prefix}data.pkl")

    def storage(self, key: str, nbytes: int) -> torch.Tensor:
        """The raw bytes of storage ``key`` (a 1-D uint8 tensor of exactly ``nbytes``)."""
        name = f"{self.prefix}data/{key}"
        if name not in self.names:
            raise CheckpointError(f"{self.shown}: the pickle refers to storage {printable(key)!r}, "
                                  "which the zip does not hold")
        info = self._info(name)
        if info.file_size != nbytes:
            raise CheckpointError(
                f"{self.shown}: storage {printable(key)!r} holds {info.file_size} bytes, but the "
                f"pickle describes {nbytes}"
            )
        buffer = torch.empty(nbytes, dtype=torch.uint8)
        with self.archive.open(info) as record:
            if _read_exactly(record.readinto, buffer) != nbytes:
                raise CheckpointError(f"{self.shown}: storage {printable(key)!r} is truncated")
        return buffer

    def check_every_crc(self) -> None:
        """Read every record (each sized within the file), comparing each CRC-32."""
        for name in sorted(self.names):
            try:
                with self.archive.open(self._info(name)) as record:
                    while record.read(_READ_CHUNK):
                        pass
            except zipfile.BadZipFile as error:  # "Bad CRC-32 for file ...", a damaged header
                raise CheckpointError(f"{self.shown}: record {printable(name)!r} is corrupted "
                                      f"({printable(error)}); bad copy or disk?") from None


def check_zip_crc(path: Path) -> None:
    """Verify the CRC-32 that a zip-format torch file (torch >= 1.6) keeps for every record.

    minirob's own loaders check each record they read; this checks the whole file at once, under
    the same rules (torch's layout, stored records only). A legacy file has no CRC: nothing to do.
    """
    path = Path(path)
    with open_regular_file(path) as handle:
        try:
            if container_kind(handle, path) != "zip":
                return
            archive = ZipCheckpoint(handle, path)
            try:
                archive.check_every_crc()
            finally:
                archive.close()
        except CheckpointError:
            raise
        except Exception as error:  # EOFError (truncated), a damaged local header, OSError, ...
            raise CheckpointError(f"{printable(path)}: corrupted zip structure "
                                  f"({type(error).__name__}: {printable(error)})") from None


class LegacyFile:
    """A legacy (non-zip) torch file read front to back; reads never ask for more than is left.

    Works as the ``file`` of a pickle unpickler (``read``/``readline``), so the pickles are read
    straight from disk, then :meth:`fill` reads the storages that follow them.
    """

    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self.path, self.shown, self.handle = path, printable(path), handle
        self.size = file_size(handle)
        handle.seek(0)

    def remaining(self) -> int:
        return self.size - self.handle.tell()

    def read(self, n: int = -1) -> bytes:
        left = self.remaining()
        return self.handle.read(left if n is None or n < 0 else min(n, left))

    def readline(self) -> bytes:
        return self.handle.readline(min(MAX_PICKLE_LINE, max(self.remaining(), 0)))

    def fill(self, key: str, buffer: torch.Tensor, numel: int, element_size: int) -> None:
        """Read storage ``key`` (its 8-byte element count, then its bytes) into ``buffer``."""
        header = self.read(8)
        if len(header) < 8:
            raise CheckpointError(f"{self.shown}: truncated before storage {printable(key)!r}")
        count = int.from_bytes(header, "little", signed=True)
        if count != numel:
            raise CheckpointError(
                f"{self.shown}: storage {printable(key)!r} holds {count} elements, but the pickle "
                f"describes {numel}"
            )
        nbytes = numel * element_size
        if nbytes > self.remaining() or _read_exactly(self.handle.readinto, buffer) != nbytes:
            raise CheckpointError(f"{self.shown}: storage {printable(key)!r} is truncated")
