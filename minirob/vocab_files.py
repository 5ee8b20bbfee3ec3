"""Reading the files a byte-level BPE is made of: ``vocab.json`` and ``merges.txt``.

Both tokenizers read these files: :mod:`minirob.bpe` (plain Python, for reading) and
:mod:`minirob.tokenizer` (the Rust library). They share this module so that a bad file gets the
same one-line :class:`~minirob.errors.TokenizerError` naming its file and line, whichever of them
opens it, and so that ``bpe.py`` stands alone without the Rust wrapper.

The files are untrusted input: a JSON file nested 100,000 deep, an id of 2**40 or a file that is
not UTF-8 must be an error message, not a ``RecursionError`` or a process that the Rust library
aborts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import MissingFileError, TokenizerError


class MissingTokenizerFileError(TokenizerError, MissingFileError):
    """A vocabulary, merges, tokenizer.json or training file does not exist (catchable both as a
    :class:`TokenizerError` and as a ``FileNotFoundError``)."""


def read_json(path: str | os.PathLike, what: str = "JSON file"):
    """Parse a JSON file; every way it can be broken is a :class:`TokenizerError` naming it.

    Python's JSON parser recurses once per nesting level, so ``[[[[...]]]]`` 100,000 deep raises
    ``RecursionError`` inside it; no tokenizer file nests more than a few levels, so that is
    reported as a damaged file (the parser stops at the interpreter's limit, so the work is bounded).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingTokenizerFileError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise TokenizerError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    except UnicodeDecodeError as error:
        raise TokenizerError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except RecursionError:
        raise TokenizerError(f"{path}: JSON nested too deeply to be a {what}") from None


def read_vocab(path: str | os.PathLike) -> dict[str, int]:
    """Read a ``{token: id}`` JSON file (``vocab.json`` / GPT-2's ``encoder.json``), checked.

    The ids must be the integers 0..n-1, each given once, as in every vocabulary a tokenizer
    library writes: an id past the end (2**40, say) would otherwise become an embedding table of
    that many rows, or a number the Rust library cannot hold.
    """
    vocab = read_json(path, "vocabulary file")
    if not isinstance(vocab, dict) or not vocab:
        raise TokenizerError(f"{path}: expected a JSON object mapping tokens to ids")
    owner: dict[int, str] = {}
    for token, token_id in vocab.items():
        if not isinstance(token_id, int) or isinstance(token_id, bool) or token_id < 0:
            raise TokenizerError(f"{path}: token {token!r} has id {token_id!r}; ids must be integers >= 0")
        if token_id in owner:
            raise TokenizerError(f"{path}: id {token_id} is given to both {owner[token_id]!r} and {token!r}")
        if token_id >= len(vocab):
            raise TokenizerError(
                f"{path}: token {token!r} has id {token_id}, but the file holds {len(vocab)} tokens; "
                f"ids must run from 0 to {len(vocab) - 1}, each given once"
            )
        owner[token_id] = token
    return vocab


def read_merges(
    path: str | os.PathLike, vocab: dict[str, int], vocab_path: str | os.PathLike = "the vocabulary"
) -> list[tuple[str, str]]:
    """Read a merges file (``merges.txt`` / GPT-2's ``vocab.bpe``): one ``left right`` pair per
    line, in priority order, after an optional ``#version`` line. Both halves and their
    concatenation must be vocabulary tokens."""
    path = Path(path)
    if not path.is_file():
        raise MissingTokenizerFileError(f"merges file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as error:
        raise TokenizerError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    merges = []
    for number, line in enumerate(lines, start=1):
        if (number == 1 and line.startswith("#version")) or not line.strip():
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise TokenizerError(f"{path}:{number}: expected two tokens separated by one space, got {line!r}")
        for token in (*parts, parts[0] + parts[1]):
            if token not in vocab:
                raise TokenizerError(
                    f"{path}:{number}: the merge {line!r} needs token {token!r}, which is not in {vocab_path}"
                )
        merges.append((parts[0], parts[1]))
    return merges
