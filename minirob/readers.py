"""Readers for the user's own data: plain text, CSV/TSV/JSONL tables, CoNLL files.

Every command that takes data accepts one of these three shapes, so a user with their own corpus
never has to write a loader:

* **plain text** (:func:`read_text`): a file, or a folder of ``*.txt`` files; a blank line
  separates documents (lines inside a document keep their newlines). Used for pretraining.
* **tables** (:func:`read_table`): ``.csv``, ``.tsv`` or ``.jsonl``, with a named text column and
  optionally a named label column. Used for sequence classification.
* **CoNLL** (:func:`read_conll`): one token per line, token in the first column and tag in the last,
  a blank line between sentences, ``-DOCSTART-`` lines skipped. Used for NER.

Errors are :class:`~minirob.errors.DataError` (or :class:`~minirob.errors.MissingFileError`) and
name the file and, where there is one, the line.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, NamedTuple

from .errors import DataError, MissingFileError

Sentence = list[tuple[str, str]]  # [(token, tag), ...]


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: no such file or folder")
    return path


def _read_utf8(path: Path) -> str:
    """The file's text; a non-UTF-8 file is reported with the line of the first bad byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")  # -sig: drop a byte-order mark some editors write
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 ({error.reason} at byte {error.start})") from None


def text_lines(text: str) -> list[str]:
    """Lines of ``text``, split at ``\\n`` only (a ``\\r`` before it is dropped).

    ``str.splitlines`` also splits at ``\\x1c``..``\\x1e``, ``\\x85`` and ``\\u2028``, which
    tweets and JSON strings do contain; splitting there would cut a token or a JSON line in two and
    shift every line number after it.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not start another
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _nonempty(path: Path, text: str) -> str:
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    return text


# --------------------------------------------------------------------------------------------------
# Plain text
# --------------------------------------------------------------------------------------------------


def split_documents(text: str) -> list[str]:
    """Cut text into documents at blank lines (lines holding only whitespace count as blank)."""
    documents = re.split(r"\n[ \t\r\f\v]*\n\s*", text.replace("\r\n", "\n"))
    return [document.strip() for document in documents if document.strip()]


def read_text(path: str | os.PathLike, pattern: str = "*.txt") -> list[str]:
    """Documents from a text file, or from every file matching ``pattern`` under a folder
    (recursively, in sorted path order so the result never depends on the file system).

    A blank line separates documents. An empty file, or a folder with no matching file, is an error
    (an empty training set is always a mistake, and better caught before a long run).
    """
    path = _existing(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob(pattern) if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DataError(f"{path}: the folder holds no files matching {pattern!r}")
    else:
        files = [path]
    documents: list[str] = []
    for file in files:
        documents.extend(split_documents(_nonempty(file, _read_utf8(file))))
    return documents


# --------------------------------------------------------------------------------------------------
# CSV / TSV / JSONL tables
# --------------------------------------------------------------------------------------------------


class LabelledText(NamedTuple):
    """One row of a classification table. ``label`` is ``None`` when no label column was asked for;
    otherwise it is the cell as written (a string from CSV/TSV, any JSON scalar from JSONL)."""

    text: str
    label: Any


_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def _table_rows(path: Path, fmt: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """(column names, [(line number, row dict)]) for a CSV/TSV or JSONL file."""
    text = _nonempty(path, _read_utf8(path))
    if fmt == "jsonl":
        rows, columns = [], {}
        for number, line in enumerate(text_lines(text), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            except RecursionError:  # the parser recurses per level; no table row nests that deep
                raise DataError(f"{path}:{number}: JSON nested too deeply for a table row") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object per line, got {type(row).__name__}")
            columns.update(dict.fromkeys(row))
            rows.append((number, row))
        return list(columns), rows
    # newline="": the csv module itself handles line ends, including newlines inside quoted cells.
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="," if fmt == "csv" else "\t")
    rows = []
    with _cells_up_to(len(text)):
        try:
            columns = list(reader.fieldnames or [])
            for row in reader:
                if None in row:  # more cells than header names
                    raise DataError(f"{path}:{reader.line_num}: {len(columns) + len(row[None])} cells for {len(columns)} columns")
                rows.append((reader.line_num, row))
        except csv.Error as error:
            raise DataError(f"{path}:{reader.line_num}: not a valid {fmt.upper()} row ({error})") from None
    return columns, rows


@contextlib.contextmanager
def _cells_up_to(size: int):
    """Let the csv module read cells as long as the whole file. Its default cap (131,072
    characters) refuses a long document in one cell; the cap is process-wide state, so it is
    raised for this read only and put back."""
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, min(size + 1, 2**31 - 1)))  # 2**31 - 1: a C long everywhere
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def read_table(
    path: str | os.PathLike,
    text_column: str = "text",
    label_column: str | None = "label",
    format: str | None = None,
) -> list[LabelledText]:
    """Rows of a CSV, TSV or JSONL file as :class:`LabelledText`.

    ``format`` is ``"csv"``, ``"tsv"`` or ``"jsonl"``; by default it follows the file's suffix.
    ``label_column=None`` reads unlabelled text (for prediction). A column that does not exist is
    an error listing the columns that do; an empty text or label cell is an error naming the line.
    """
    path = _existing(path)
    fmt = format or _FORMATS.get(path.suffix.lower())
    if fmt not in ("csv", "tsv", "jsonl"):
        raise DataError(f"{path}: cannot tell the table format from {path.suffix!r}; pass format='csv', 'tsv' or 'jsonl'")
    columns, rows = _table_rows(path, fmt)
    for role, column in (("text", text_column), ("label", label_column)):
        if column is not None and column not in columns:
            raise DataError(f"{path}: no {role} column {column!r}; the columns are {columns}")
    if not rows:
        raise DataError(f"{path}: the table has a header but no rows")
    examples = []
    for number, row in rows:
        text = row.get(text_column)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}:{number}: empty or non-text {text_column!r} cell: {text!r}")
        label = None
        if label_column is not None:
            label = row.get(label_column)
            if label is None or (isinstance(label, str) and not label.strip()):
                raise DataError(f"{path}:{number}: missing {label_column!r} value")
        examples.append(LabelledText(text, label))
    return examples


# --------------------------------------------------------------------------------------------------
# CoNLL and BIO tags
# --------------------------------------------------------------------------------------------------

_BIO = re.compile(r"(?P<prefix>[BI])-(?P<type>\S+)")


def check_bio(tags: list[str], repair: bool = True, places: list[str] | None = None) -> tuple[list[str], int]:
    """Check one sentence's tags against the BIO scheme; return (tags, number of repairs).

    Valid tags are ``O``, ``B-TYPE`` and ``I-TYPE``. An ``I-TYPE`` that does not continue a
    ``B-TYPE``/``I-TYPE`` of the same type (it follows ``O``, starts the sentence, or follows
    another type) is ill-formed: with ``repair=True`` it becomes ``B-TYPE``, the reading that
    conlleval and seqeval's default mode also give it, and it is counted; with ``repair=False`` it
    raises :class:`DataError`. A tag that is not BIO at all (``PER``, ``B-``, ``E-LOC``) always
    raises. ``places`` (e.g. "file:line" per tag) locates the culprit in the message.
    """
    fixed, repairs, previous = [], 0, "O"
    for index, tag in enumerate(tags):
        place = places[index] if places else f"tag {index}"
        match = _BIO.fullmatch(tag)
        if tag != "O" and match is None:
            raise DataError(f"{place}: tag {tag!r} is not BIO (expected O, B-TYPE or I-TYPE)")
        if match and match["prefix"] == "I" and previous[2:] != match["type"]:
            if not repair:
                raise DataError(f"{place}: {tag!r} follows {previous!r}; an I- tag must continue an entity of its type")
            tag = "B-" + match["type"]
            repairs += 1
        fixed.append(tag)
        previous = tag
    return fixed, repairs


def read_conll(
    path: str | os.PathLike,
    separator: str | None = None,
    bio: str = "repair",
) -> list[Sentence]:
    """Sentences of (token, tag) pairs from a CoNLL-style file.

    Columns are split on ``separator`` (default: any run of whitespace; pass ``"\\t"`` for files
    whose tokens may contain spaces). The token is the first column and the tag the last, so
    two-column files and CoNLL-2003's four columns both work; every line of a file must have as
    many columns as its first. Blank lines end sentences; ``-DOCSTART-`` lines are skipped.

    ``bio`` chooses what happens to ill-formed I- tags (see :func:`check_bio`): ``"repair"``
    (default) turns them into B- and warns once with the count, ``"strict"`` raises
    :class:`DataError` at the file and line, ``"keep"`` leaves every tag as written, unchecked.
    """
    if bio not in ("repair", "strict", "keep"):
        raise DataError(f"bio must be 'repair', 'strict' or 'keep', got {bio!r}")
    path = _existing(path)
    lines = text_lines(_nonempty(path, _read_utf8(path)))
    sentences: list[Sentence] = []
    current: list[tuple[str, str, int]] = []  # (token, tag, line number)
    width, width_line = None, 0
    repairs = 0

    def close() -> None:
        nonlocal repairs
        if not current:
            return
        tokens, tags, numbers = zip(*current)
        if bio != "keep":
            places = [f"{path}:{number}" for number in numbers]
            tags, fixed = check_bio(list(tags), repair=bio == "repair", places=places)
            repairs += fixed
        sentences.append(list(zip(tokens, tags)))
        current.clear()

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            close()
            continue
        cells = line.split(separator) if separator else line.split()
        if cells[0] == "-DOCSTART-":
            close()
            continue
        if width is None:
            width, width_line = len(cells), number
            if width < 2:
                raise DataError(f"{path}:{number}: expected at least 2 columns (token and tag), found 1: {line!r}")
        if len(cells) != width:
            raise DataError(f"{path}:{number}: expected {width} columns (as on line {width_line}), found {len(cells)}: {line!r}")
        if not cells[0] or not cells[-1]:
            raise DataError(f"{path}:{number}: empty token or tag: {line!r}")
        current.append((cells[0], cells[-1], number))
    close()
    if not sentences:
        raise DataError(f"{path}: no sentences (only -DOCSTART- or blank lines)")
    if repairs:
        warnings.warn(f"{path}: repaired {repairs} I- tags that did not continue an entity (now B-)", stacklevel=2)
    return sentences

