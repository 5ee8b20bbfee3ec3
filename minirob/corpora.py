"""The corpora's own files, turned into clean Python objects and deterministic splits.

Each reader takes the directory that holds a source's files (what :func:`minirob.registry.fetch`
returns, or a copy of it anywhere) and knows nothing about downloading; :mod:`minirob.datasets`
joins the two (``load_brown()`` = ``read_brown(fetch("brown"))``).

* Brown (:func:`read_brown`): 500 documents of detokenised sentences, for pretraining; and
  (:func:`read_brown_pos`) the same sentences as words with universal part-of-speech tags
  (:mod:`minirob.pos_tags`), split by the same documents (:func:`split_brown_pos`).
* Sentiment (:func:`read_sentiment`): human-rated sentences with binary labels.
* WNUT-16 (:func:`read_wnut16`): tweets with BIO entity tags.

Every split is seeded and the same on every machine (:func:`split_seeded`).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence, TypeVar

from .errors import DataError
from .pos_tags import universal_tag
from .readers import Sentence, read_conll, text_lines

# --------------------------------------------------------------------------------------------------
# Deterministic splits
# --------------------------------------------------------------------------------------------------

T = TypeVar("T")


@dataclass
class Splits:
    """Train, validation and test parts of one data set."""

    train: list
    validation: list
    test: list

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def split_seeded(items: Sequence[T], validation: float = 0.1, test: float = 0.1, seed: int = 0) -> Splits:
    """Shuffle ``items`` with ``random.Random(seed)`` and cut validation, test, then train.

    The sizes are ``round(n * validation)`` and ``round(n * test)``; the rest is train. Same items,
    same seed: same splits, on every machine and Python version (``random.Random`` is specified).
    """
    if not 0 <= validation < 1 or not 0 <= test < 1 or validation + test >= 1:
        raise DataError(f"split fractions must be in [0, 1) with validation + test < 1, got {validation} and {test}")
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_val, n_test = round(len(items) * validation), round(len(items) * test)
    pick = lambda ids: [items[i] for i in ids]  # noqa: E731
    return Splits(
        train=pick(order[n_val + n_test :]),
        validation=pick(order[:n_val]),
        test=pick(order[n_val : n_val + n_test]),
    )


# --------------------------------------------------------------------------------------------------
# Brown corpus: tagged tokens -> plain text
# --------------------------------------------------------------------------------------------------

# Brown writes opening double quotes as ``, closing ones as '' (LaTeX style) and separates all
# punctuation from words. These sets say which side a token glues to when we print it back.
_GLUE_LEFT = {",", ".", ";", ":", "?", "!", ")", "]", "''", "'"}  # no space before
_GLUE_RIGHT = {"(", "[", "``"}  # no space after
_QUOTES = {"``": '"', "''": '"'}


def detokenize(tokens: Sequence[str]) -> str:
    """Join Brown-style tokens into ordinary text.

    ``["``", "Only", "a", "handful", "''", ",", "it", "said", "."]`` becomes
    ``'"Only a handful", it said.'``: quotes become ``"``, and no space goes before closing
    punctuation or after opening brackets and quotes. Words keep their spelling (Brown already
    writes contractions such as ``didn't`` as one token).
    """
    text = ""
    glue_next = True  # nothing before the first token
    for token in tokens:
        if token in (".", ",", ";", ":") and text.endswith(token):
            continue  # "Jr." ending a sentence gets a second full stop; Brown doubles some ; , :
        if not (glue_next or token in _GLUE_LEFT):
            text += " "
        text += _QUOTES.get(token, token)
        glue_next = token in _GLUE_RIGHT
    return text


@dataclass
class BrownDocument:
    """One Brown text (one source file, about 2,000 words).

    ``paragraphs`` is a list of paragraphs, each a list of detokenised sentences.
    ``text`` puts sentences of a paragraph on one line, one paragraph per line (no blank lines, so
    the document survives a round trip through :func:`minirob.readers.read_text`).
    """

    id: str  # "ca01" .. "cr09"
    genre: str  # one of 15, e.g. "news", "science_fiction"
    paragraphs: list[list[str]]

    @property
    def sentences(self) -> list[str]:
        return [sentence for paragraph in self.paragraphs for sentence in paragraph]

    @property
    def text(self) -> str:
        return "\n".join(" ".join(paragraph) for paragraph in self.paragraphs)


class _TaggedLine(NamedTuple):
    number: int  # line number in the file, for messages
    tokens: list[tuple[str, str]]  # (word, Brown tag); empty for a blank line


def _brown_lines(path: Path) -> Iterator[_TaggedLine]:
    """The lines of one Brown file: blank lines separate paragraphs, each other line is a sentence
    of ``word/tag`` tokens (the tag follows the *last* slash: ``1-1/2/cd`` is the word ``1-1/2``)."""
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not ASCII text ({error.reason} at byte {error.start})") from None
    for number, line in enumerate(text_lines(text), start=1):
        tokens = []
        for token in line.split():
            word, slash, tag = token.rpartition("/")
            if not slash or not word or not tag:
                raise DataError(f"{path}:{number}: token {token!r} is not of the form word/tag")
            tokens.append((word, tag))
        yield _TaggedLine(number, tokens)


def _parse_brown_file(path: Path) -> list[list[str]]:
    """One Brown file as paragraphs of detokenised sentences."""
    paragraphs: list[list[str]] = []
    current: list[str] = []
    for line in _brown_lines(path):
        if not line.tokens:
            if current:
                paragraphs.append(current)
                current = []
            continue
        current.append(detokenize([word for word, _tag in line.tokens]))
    if current:
        paragraphs.append(current)
    if not paragraphs:
        raise DataError(f"{path}: empty Brown file")
    return paragraphs


def _brown_genres(directory: Path) -> dict[str, str]:
    """``cats.txt``: file id -> genre, for the 500 files."""
    path = directory / "cats.txt"
    if not path.is_file():
        raise DataError(f"{directory}: no cats.txt here; is it the Brown corpus (minirob data fetch brown)?")
    genres: dict[str, str] = {}
    for number, line in enumerate(text_lines(path.read_text(encoding="utf-8", errors="replace")), start=1):
        if line.strip():
            parts = line.split()
            if len(parts) != 2:
                raise DataError(f"{path}:{number}: expected 'fileid genre', got {line!r}")
            genres[parts[0]] = parts[1]
    return genres


def read_brown(directory: str | os.PathLike) -> list[BrownDocument]:
    """The Brown corpus in ``directory`` (``cats.txt`` and one file per text) as
    :class:`BrownDocument` objects sorted by id.

    Tags are stripped and spacing restored by :func:`detokenize`; genres come from ``cats.txt``.
    Counts (checked by ``tests/test_fetch_real.py``): 500 documents, 15 genres, 57,340 sentences.
    """
    directory = Path(directory)
    genres = _brown_genres(directory)
    return [BrownDocument(file_id, genres[file_id], _parse_brown_file(directory / file_id)) for file_id in sorted(genres)]


def split_brown(documents: Sequence[T], seed: int = 0) -> Splits:
    """Split Brown *by document* (never a document across two parts): 450 / 25 / 25 documents
    for train / validation / test, chosen by a seeded shuffle (``validation=test=0.05``).

    The shuffle depends only on the number of documents and the seed, so any list of the 500 in
    id order (documents, their ids, their tagged sentences) is cut at the same places."""
    return split_seeded(documents, validation=0.05, test=0.05, seed=seed)


# --------------------------------------------------------------------------------------------------
# Brown part-of-speech tags: words -> universal tags
# --------------------------------------------------------------------------------------------------

#: The Brown words whose form differs in running text: its LaTeX quotes (as :func:`detokenize`).
_POS_WORDS = {"``": '"', "''": '"'}


def read_brown_pos_file(path: str | os.PathLike) -> list[Sentence]:
    """The sentences of one Brown file as ``[(word, universal tag), ...]`` lists.

    Words are Brown's tokens (``"`` for its quotes, as pretraining reads them); tags are mapped by
    :func:`minirob.pos_tags.universal_tag`. A tag outside the mapping is a :class:`DataError`
    naming the file, the line, the word and the tag.
    """
    path = Path(path)
    sentences = []
    for line in _brown_lines(path):
        if not line.tokens:
            continue
        sentence = []
        for word, tag in line.tokens:
            universal = universal_tag(tag)
            if universal is None:
                raise DataError(
                    f"{path}:{line.number}: the word {word!r} has the tag {tag!r}, which is not a Brown "
                    "tag the universal mapping knows (minirob.pos_tags)"
                )
            sentence.append((_POS_WORDS.get(word, word), universal))
        sentences.append(sentence)
    return sentences


def read_brown_pos(directory: str | os.PathLike) -> dict[str, list[Sentence]]:
    """Every Brown file in ``directory``: file id -> its POS-tagged sentences (ids in sorted order)."""
    directory = Path(directory)
    return {file_id: read_brown_pos_file(directory / file_id) for file_id in sorted(_brown_genres(directory))}


def split_brown_pos(tagged: dict[str, list[Sentence]], seed: int = 0) -> Splits:
    """POS-tagged sentences split by :func:`split_brown`'s documents: the test sentences come from
    the documents pretraining holds out, so a model pretrained on Brown's train part never read
    them. ``tagged`` is :func:`read_brown_pos`'s result (all 500 documents)."""
    ids = sorted(tagged)
    documents = split_brown(ids, seed=seed)
    gather = lambda part: [sentence for file_id in part for sentence in tagged[file_id]]  # noqa: E731
    return Splits(gather(documents.train), gather(documents.validation), gather(documents.test))


# --------------------------------------------------------------------------------------------------
# Sentiment: human-rated sentences -> (text, rating, label)
# --------------------------------------------------------------------------------------------------

#: subset name -> file in the cache entry, and its number of rows (Hutto & Gilbert 2014, table 2).
SENTIMENT_SUBSETS = {
    "movie": ("movieReviewSnippets_GroundTruth.txt", 10_605),
    "tweets": ("tweets_GroundTruth.txt", 4_200),
    "amazon": ("amazonReviewSnippets_GroundTruth.txt", 3_708),
    "nyt": ("nytEditorialSnippets_GroundTruth.txt", 5_190),
}


class SentimentExample(NamedTuple):
    """One rated sentence: ``rating`` is the mean of about 20 human ratings on -4..+4, ``label``
    is 1 when it is positive and 0 when it is negative."""

    text: str
    rating: float
    label: int


@dataclass
class SentimentSet:
    """The usable rows of one subset, plus how many rows were read and how many were dropped as
    neutral (mean rating exactly 0: neither label fits them)."""

    subset: str
    examples: list[SentimentExample]
    rows: int
    neutral_dropped: int

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[SentimentExample]:
        return iter(self.examples)

    def __getitem__(self, index: int) -> SentimentExample:
        return self.examples[index]


def read_sentiment_file(path: Path) -> list[tuple[str, float, str]]:
    """Rows ``(id, mean rating, text)`` of a ``*_GroundTruth.txt`` file (tab-separated, CRLF)."""
    rows = []
    for number, line in enumerate(text_lines(path.read_text(encoding="utf-8")), start=1):
        if not line.strip():
            continue
        cells = line.split("\t", 2)
        try:
            if len(cells) != 3:
                raise ValueError(f"expected 3 tab-separated cells (id, rating, text), found {len(cells)}")
            rows.append((cells[0], float(cells[1]), cells[2].strip()))
        except ValueError as error:
            raise DataError(f"{path}:{number}: {error}") from None
    return rows


def read_sentiment(directory: str | os.PathLike, subset: str = "movie") -> SentimentSet:
    """Sentences rated by people for sentiment (the files in ``directory``), with binary labels
    from the sign of the rating.

    ``subset`` is ``"movie"`` (10,605 Pang & Lee review snippets), ``"tweets"`` (4,200),
    ``"amazon"`` (3,708) or ``"nyt"`` (5,190 editorial snippets). Rows rated exactly 0 are dropped
    and counted in ``neutral_dropped``. The text is kept as written (the movie snippets write
    quotes as ``''``).
    """
    if subset not in SENTIMENT_SUBSETS:
        raise DataError(f"unknown sentiment subset {subset!r}; choose one of {', '.join(SENTIMENT_SUBSETS)}")
    file_name, _rows = SENTIMENT_SUBSETS[subset]
    rows = read_sentiment_file(Path(directory) / file_name)
    examples = [SentimentExample(text, rating, int(rating > 0)) for _id, rating, text in rows if rating != 0]
    return SentimentSet(subset, examples, rows=len(rows), neutral_dropped=len(rows) - len(examples))


def split_sentiment(data: SentimentSet | Sequence[SentimentExample], seed: int = 0) -> Splits:
    """Seeded 80/10/10 split (:func:`split_seeded`) of a sentiment subset's examples."""
    return split_seeded(list(data), validation=0.1, test=0.1, seed=seed)


# --------------------------------------------------------------------------------------------------
# WNUT-16 named entities
# --------------------------------------------------------------------------------------------------


def read_wnut16(directory: str | os.PathLike, bio: str = "repair") -> list[Sentence]:
    """WNUT-16's training tweets (``ner.txt`` in ``directory``) as sentences of ``(token, tag)``
    pairs (2,394 sentences).

    Tags are BIO over 10 types (person, geo-loc, facility, company, product, musicartist, movie,
    sportsteam, tvshow, other); read with :func:`minirob.readers.read_conll` (tab-separated, since
    the tab-only lines between sentences count as blank), ``bio`` as there.
    """
    return read_conll(Path(directory) / "ner.txt", separator="\t", bio=bio)


def split_wnut16(sentences: Sequence[Sentence], seed: int = 0) -> Splits:
    """Seeded 80/10/10 split of WNUT-16 sentences (the package ships one split only)."""
    return split_seeded(sentences, validation=0.1, test=0.1, seed=seed)
