"""Byte-level BPE from scratch: the algorithm behind GPT-2's and RoBERTa's tokens, in plain Python.

This module is for reading. :class:`minirob.Tokenizer` does the same job with the fast Rust
``tokenizers`` library, and ``tests/test_bpe.py`` checks that both give exactly the same ids on
every sentence of the Brown corpus with GPT-2's real vocabulary and merges.

Four steps turn text into ids:

1. **Bytes, not characters.** The text is encoded as UTF-8, so any string (accents, Chinese,
   emoji) becomes a sequence of values 0..255 and nothing is ever "unknown". Each byte is shown as
   one printable character (:func:`bytes_to_unicode`): printable ASCII stays itself, the rest are
   moved to unused code points, which is why a space shows up as ``Ġ`` and a newline as ``Ċ``.
2. **Pre-tokenisation.** A regular expression (:data:`GPT2_PATTERN`) cuts the text into pieces:
   a word with the space before it (``" world"``), a number, a run of punctuation, a run of spaces.
   Merges never cross a piece boundary, so ``"dog."`` and ``"dog"`` share the token ``dog``.
3. **Merging.** Each piece starts as a list of byte symbols. The merges file is a ranked list of
   symbol pairs learned in training; repeatedly, the adjacent pair with the best (lowest) rank is
   glued into one symbol, until no adjacent pair appears in the list (:meth:`ByteLevelBPE.bpe`).
4. **Lookup.** Each final symbol is a key of the vocabulary, which gives its id.

Training (:func:`train`) runs step 3 backwards: count every adjacent pair over the corpus, add the
most frequent one as the next merge, merge it everywhere, repeat.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable

import regex  # the `regex` module understands \p{L} (any letter) and \p{N} (any number)

from .vocab_files import read_merges, read_vocab

# GPT-2's pre-tokenisation pattern (from OpenAI's encoder.py; RoBERTa reuses it). In order: common
# English contractions; an optional space then letters; an optional space then digits; an optional
# space then other symbols; whitespace not followed by a non-space (so the last space of a run is
# left to start the next word); any remaining whitespace.
GPT2_PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)


def bytes_to_unicode() -> dict[int, str]:
    """The table from each byte value (0..255) to the printable character that stands for it.

    The 188 bytes that are already visible Latin-1 characters (``!``..``~``, ``¡``..``¬``,
    ``®``..``ÿ``) map to themselves. The other 68 (control codes, space, ...) map, in byte order,
    to the code points 256, 257, ...: byte 32 (space) becomes chr(256 + 32) = ``Ġ``.
    """
    visible = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {byte: chr(byte) for byte in visible}
    shifted = 0
    for byte in range(256):
        if byte not in table:
            table[byte] = chr(256 + shifted)
            shifted += 1
    return table


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {char: byte for byte, char in BYTE_TO_CHAR.items()}


def pretokenize(text: str) -> list[str]:
    """Cut ``text`` into GPT-2's pieces and spell each one with byte symbols.

    >>> pretokenize("Hello  world!")
    ['Hello', 'Ġ', 'Ġworld', '!']
    """
    return ["".join(BYTE_TO_CHAR[b] for b in piece.encode("utf-8")) for piece in GPT2_PATTERN.findall(text)]


class ByteLevelBPE:
    """A byte-level BPE encoder: a vocabulary (symbol -> id) and ranked merges."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]]):
        self.vocab = vocab
        self.id_to_symbol = {token_id: symbol for symbol, token_id in vocab.items()}
        # rank 0 is the first merge learned (the most frequent pair): lower rank = merge earlier.
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.cache: dict[str, tuple[str, ...]] = {}  # piece -> its symbols; text repeats words a lot

    @classmethod
    def from_files(cls, vocab_path: str | os.PathLike, merges_path: str | os.PathLike) -> ByteLevelBPE:
        """Read ``vocab.json`` + ``merges.txt`` (or GPT-2's ``encoder.json`` + ``vocab.bpe``)."""
        # The file readers (with their line-numbered errors) are shared with minirob.tokenizer.
        vocab = read_vocab(vocab_path)
        return cls(vocab, read_merges(merges_path, vocab, vocab_path))

    def merge_steps(self, piece: str) -> list[tuple[tuple[str, str] | None, tuple[str, ...]]]:
        """Every step of merging one piece: ``[(None, bytes), (pair, symbols after it), ...]``.

        With GPT-2's files (``minirob tokenize explain gpt2-bpe " lower"`` prints the same):

        >>> [" ".join(symbols) for _, symbols in gpt2.merge_steps("Ġlower")]  # doctest: +SKIP
        ['Ġ l o w e r', 'Ġ l o w er', 'Ġl o w er', 'Ġl ow er', 'Ġl ower', 'Ġlower']
        """
        symbols = tuple(piece)
        steps = [(None, symbols)]
        while len(symbols) > 1:
            # The adjacent pair learned earliest in training (lowest rank) is merged first.
            best = min(zip(symbols, symbols[1:]), key=lambda pair: self.ranks.get(pair, float("inf")))
            if best not in self.ranks:
                break  # no adjacent pair is a known merge: done
            symbols = _merge(symbols, best)  # glue every occurrence, left to right
            steps.append((best, symbols))
        return steps

    def bpe(self, piece: str) -> tuple[str, ...]:
        """The final symbols of one piece (cached: running text repeats its words a lot)."""
        if piece not in self.cache:
            self.cache[piece] = self.merge_steps(piece)[-1][1]
        return self.cache[piece]

    def tokenize(self, text: str) -> list[str]:
        """The token strings of ``text`` (byte symbols: ``Ġ`` is a space)."""
        return [symbol for piece in pretokenize(text) for symbol in self.bpe(piece)]

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``, without special tokens."""
        return [self.vocab[symbol] for symbol in self.tokenize(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> symbols -> bytes -> text. Exact inverse of :meth:`encode` for any string."""
        symbols = "".join(self.id_to_symbol[token_id] for token_id in ids)
        # errors="replace": a slice of ids may stop in the middle of a multi-byte character.
        return bytes(CHAR_TO_BYTE[char] for char in symbols).decode("utf-8", errors="replace")


def train(
    texts: Iterable[str], vocab_size: int, min_frequency: int = 2, special_tokens: tuple[str, ...] = ()
) -> ByteLevelBPE:
    """Learn merges from ``texts`` until the vocabulary has ``vocab_size`` symbols.

    The vocabulary starts with the special tokens, then the 256 byte symbols. Each round counts
    the adjacent symbol pairs of every distinct piece (weighted by how often the piece occurs),
    adds the most frequent pair as a merge (ties: the pair that sorts first, so results are
    reproducible), and rewrites the pieces with it. Training stops early when the best pair occurs
    fewer than ``min_frequency`` times. Clear rather than fast: fine for a few megabytes of text.
    """
    word_counts = Counter(piece for text in texts for piece in pretokenize(text))
    words = {tuple(piece): count for piece, count in word_counts.items()}  # symbols -> count

    vocab = {token: i for i, token in enumerate(special_tokens)}
    for byte in range(256):
        vocab.setdefault(BYTE_TO_CHAR[byte], len(vocab))
    merges: list[tuple[str, str]] = []

    while len(vocab) < vocab_size:
        pair_counts: Counter = Counter()
        for symbols, count in words.items():
            for pair in zip(symbols, symbols[1:]):
                pair_counts[pair] += count
        if not pair_counts:
            break
        best_count = max(pair_counts.values())
        if best_count < min_frequency:
            break
        best = min(pair for pair, count in pair_counts.items() if count == best_count)
        merges.append(best)
        vocab[best[0] + best[1]] = len(vocab)
        words = {_merge(symbols, best): count for symbols, count in words.items()}
    return ByteLevelBPE(vocab, merges)


def _merge(symbols: tuple[str, ...] | list[str], pair: tuple[str, str]) -> tuple[str, ...]:
    """``symbols`` with every occurrence of ``pair`` glued into one symbol, scanning left to
    right (so with the merge ``a a``, ``a a a`` becomes ``aa a``)."""
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)
