"""The library's exceptions.

Every error minirob raises on purpose derives from :class:`MinirobError`, so callers (and the
``minirob`` command line) can tell "you gave me something wrong" apart from a bug. Each class also
derives from the built-in exception a Python user would expect (``ValueError`` for bad values,
``FileNotFoundError`` for missing files, ...), so ``except ValueError`` keeps working.

Messages name the culprit: the file and line, the key and its shapes, the id and the vocabulary
size, the option and its allowed values.
"""

from __future__ import annotations

import errno


def printable(value: object, limit: int = 200) -> str:
    """``value`` (a tensor name, a path, a lock holder: anything read from a file) made safe for a
    one-line message: control and other non-printable characters are written out as escapes
    (``\\n``, ``\\x1b``, ``\\u202e``), so a crafted name cannot fake log lines, recolour a terminal
    or reorder the text; cut to ``limit`` characters."""
    text = str(value)
    if not text.isprintable():
        text = repr(text)[1:-1]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def out_of_space(error: BaseException | None) -> bool:
    """Whether a failed write was a full disk (or quota), anywhere in the exception chain: torch's
    zip writer wraps the OSError in a RuntimeError ("unexpected pos"), and safetensors reports it
    only as text in its own error type ("No space left", "code: 28")."""
    for _ in range(10):  # a chain is short; a cycle (a context pointing back) must not loop
        if error is None:
            return False
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left" in str(error) or "code: 28" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


class MinirobError(Exception):
    """Base class of every error minirob raises deliberately."""


class ConfigError(MinirobError, ValueError):
    """A configuration value is invalid or inconsistent (e.g. hidden size not divisible by heads)."""


class InputError(MinirobError, ValueError):
    """A tensor passed to a model has the wrong shape, dtype, or values (ids out of vocabulary...)."""


class CheckpointError(MinirobError, ValueError):
    """A checkpoint cannot be read or does not fit the model (missing keys, shape mismatches,
    corrupted or untrusted files)."""


class UnsafeCheckpointError(CheckpointError):
    """A pickled checkpoint asked to import something outside the allow-list: refused, nothing ran."""


class TokenizerError(MinirobError, ValueError):
    """A vocabulary/merges/tokenizer file is missing or malformed, or the tokenizer got bad input."""


class DataError(MinirobError, ValueError):
    """A data file is malformed (the message names the file and line) or a dataset is unusable."""


class FetchError(MinirobError, RuntimeError):
    """A registry download failed, a client (pip/npm) is missing, or a checksum did not match."""


class TrainingError(MinirobError, RuntimeError):
    """Training cannot go on: NaN/inf loss, a resume directory from another configuration, ..."""


class MissingFileError(MinirobError, FileNotFoundError):
    """A path the user gave does not exist."""


class WriteError(MinirobError, OSError):
    """A file could not be written (disk full, no permission); nothing half-written is left."""
