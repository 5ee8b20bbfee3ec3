"""Pretraining data: documents -> token blocks (FULL-SENTENCES packing) -> masked batches.

RoBERTa dropped BERT's sentence pairs and next-sentence prediction and fed the model
*FULL-SENTENCES* (Liu et al., 2019, section 4.2): each input is filled with whole, contiguous
sentences up to the maximum length, and when a document ends the next one simply follows after an
extra separator token. No slot is wasted on padding and no sentence pair is needed.

    documents  [[s1, s2, s3], [s4, s5]]          (each s is a list of token ids)
    stream     s1 s2 s3 </s> s4 s5 ...           (</s> marks the document boundary)
    blocks     <s> s1 s2 </s> | <s> s3 </s> s4 </s> | ...   (each at most max_length tokens)

A sentence that does not fit in the room left starts the next block; a sentence longer than a
whole block is cut into block-sized pieces. Blocks are stored as one (N, T) tensor, padded with
``<pad>`` where a block ends short.

:class:`MaskedBlocks` is the batch source the training loop draws from: an endless, epoch-wise
shuffled walk over the blocks that masks each batch afresh (:mod:`minirob.masking`) as it is drawn
and whose position (epoch, batch, generator state) is saved in checkpoints. Validation batches are
masked once with a fixed seed, so every evaluation scores the very same blanks.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import Tensor

from .errors import DataError, MissingFileError
from .masking import MaskingConfig, mask_tokens


@dataclass
class Document:
    """A document as a list of sentences (plain strings). Packing never reorders sentences."""

    id: str
    sentences: list[str]


# ------------------------------------------------------------------------ reading text
def read_text_documents(paths: Sequence[str | os.PathLike]) -> list[Document]:
    """Plain UTF-8 text files -> documents: one line is one sentence (or paragraph); a blank line
    ends a document (and so does the end of a file)."""
    documents: list[Document] = []
    for path in map(Path, paths):
        if not path.exists():
            raise MissingFileError(f"no text file at {path}")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as error:
            raise DataError(f"{path}: not UTF-8 text ({error})") from None
        current: list[str] = []
        for line in lines + [""]:
            if line.strip():
                current.append(line.strip())
            elif current:
                documents.append(Document(f"{path.name}#{len(documents)}", current))
                current = []
    return documents


def split_documents(
    documents: Sequence[Document], validation: float = 0.05, seed: int = 0
) -> tuple[list[Document], list[Document]]:
    """Held-out validation made of whole *unseen* documents: (train, validation), seeded."""
    if len(documents) < 2:
        raise DataError(
            f"need at least 2 documents to hold some out for validation, got {len(documents)}"
        )
    order = list(range(len(documents)))
    random.Random(seed).shuffle(order)
    n_valid = min(len(documents) - 1, max(1, round(len(documents) * validation)))
    valid = sorted(order[:n_valid])
    train = sorted(order[n_valid:])
    return [documents[i] for i in train], [documents[i] for i in valid]


# ------------------------------------------------------------------------ packing
def pack_full_sentences(
    documents: Iterable[Sequence[Sequence[int]]],
    max_length: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    separator_id: int | None = None,
) -> Tensor:
    """FULL-SENTENCES packing. ``documents``: for each document, its sentences as token-id lists.

    Returns (N, max_length) ids; each row is ``<s> ... </s>`` followed by padding. Inside a row,
    a document boundary is marked by ``separator_id`` (default: ``eos_id``, fairseq's choice).
    """
    separator_id = eos_id if separator_id is None else separator_id
    room = max_length - 2  # <s> and </s> take two slots
    if room < 1:
        raise DataError(f"max_length={max_length} leaves no room for tokens between <s> and </s>")
    blocks: list[list[int]] = []
    current: list[int] = []

    def flush() -> None:
        nonlocal current
        while current and current[-1] == separator_id:  # no separator at the very end
            current.pop()
        if current:
            blocks.append([bos_id, *current, eos_id])
        current = []

    for sentences in documents:
        if current:  # a new document inside the current block: mark the boundary
            if len(current) + 1 >= room:
                flush()
            else:
                current.append(separator_id)
        for sentence in sentences:
            sentence = list(sentence)
            if not sentence:
                continue
            if len(current) + len(sentence) > room:
                flush()
            while len(sentence) > room:  # longer than a whole block: cut it
                blocks.append([bos_id, *sentence[:room], eos_id])
                sentence = sentence[room:]
            current.extend(sentence)
    flush()
    if not blocks:
        raise DataError("the corpus is empty: no tokens to pack into training blocks")
    ids = torch.full((len(blocks), max_length), pad_id, dtype=torch.long)
    for row, block in enumerate(blocks):
        ids[row, : len(block)] = torch.tensor(block, dtype=torch.long)
    return ids


def tokenize_documents(tokenizer, documents: Sequence[Document]) -> list[list[list[int]]]:
    """Documents -> per document, per sentence, token ids (no special tokens).

    Every sentence but a document's first is encoded with the space that separates it from the
    previous one (" The" -> ``ĠThe``), as byte-level BPE sees running text: packed blocks then
    decode to "...government. The miracle..." and a sentence-initial word gets the same token as
    anywhere else in a line.
    """
    sentences = [
        sentence if index == 0 else " " + sentence
        for doc in documents
        for index, sentence in enumerate(doc.sentences)
    ]
    encoded = tokenizer.encode_batch(sentences, padding=False, add_special_tokens=False)["input_ids"]
    result, start = [], 0
    for doc in documents:
        result.append([list(ids) for ids in encoded[start : start + len(doc.sentences)]])
        start += len(doc.sentences)
    return result


def pack_documents(tokenizer, documents: Sequence[Document], max_length: int) -> Tensor:
    """Tokenize and pack: documents -> (N, max_length) blocks."""
    return pack_full_sentences(
        tokenize_documents(tokenizer, documents),
        max_length,
        bos_id=tokenizer.bos_id,
        eos_id=tokenizer.eos_id,
        pad_id=tokenizer.pad_id,
    )


# ------------------------------------------------------------------------ masked batches
@dataclass(frozen=True)
class SpecialIds:
    """What masking needs to know about the vocabulary."""

    pad: int
    mask: int
    special: tuple[int, ...]  # never masked (<s>, </s>, <pad>, <unk>, <mask>, ...)
    first_ordinary: int  # random replacements are drawn from [first_ordinary, vocab_size)
    vocab_size: int
    word_start: Tensor | None = None  # (V,) bool: token begins a word (for whole-word masking)
    word_break: Tensor | None = None  # (V,) bool: special or punctuation: the next token starts a word

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "SpecialIds":
        vocab = tokenizer.get_vocab()
        special = tuple(
            sorted(i for i in (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id,
                               tokenizer.unk_id, tokenizer.mask_id) if i is not None)
        )
        if tokenizer.mask_id is None or tokenizer.pad_id is None:
            raise DataError("the tokenizer has no <mask> or <pad> token; MLM pretraining needs both")
        size = tokenizer.vocab_size
        if size <= max(special) + 1:
            raise DataError(
                f"vocabulary of {size} tokens has no ordinary tokens after the special ones "
                f"(ids {list(special)})"
            )
        word_start = torch.zeros(size, dtype=torch.bool)
        word_break = torch.zeros(size, dtype=torch.bool)
        for token, index in vocab.items():
            # Byte-level BPE marks a leading space with "Ġ": such a token starts a word. So does
            # a punctuation token ("." is a word of its own, not the end of the one before it).
            text = token.lstrip("\u0120")
            punctuation = bool(text) and not any(c.isalnum() for c in text)
            if index < size and (token.startswith("\u0120") or index in special or punctuation):
                word_start[index] = True
            if index < size and (index in special or punctuation):
                word_break[index] = True
        return cls(tokenizer.pad_id, tokenizer.mask_id, special, max(special) + 1, size, word_start,
                   word_break)

    def maskable(self, ids: Tensor) -> Tensor:
        return ~torch.isin(ids, torch.tensor(self.special, device=ids.device))


def masked_batch(
    ids: Tensor, special: SpecialIds, masking: MaskingConfig, generator: torch.Generator
) -> dict[str, Tensor]:
    """(B, T) blocks -> the dict the MLM loss reads: input_ids, attention_mask, predict_at, targets,
    tokens (how many real tokens), shown_as_mask."""
    word_starts = None
    if masking.whole_word:
        word_starts = special.word_start.to(ids.device)[ids]  # (B, T)
        # Packed sentences follow each other without a space, so a sentence's first word has no
        # "Ġ": a token right after a punctuation or special token starts a word as well.
        word_starts[:, 1:] |= special.word_break.to(ids.device)[ids[:, :-1]]
    masked = mask_tokens(
        ids,
        mask_id=special.mask,
        maskable=special.maskable(ids),
        random_ids=(special.first_ordinary, special.vocab_size),
        config=masking,
        word_starts=word_starts,
        generator=generator,
    )
    attention_mask = (ids != special.pad).long()
    return {
        "input_ids": masked.input_ids,
        "attention_mask": attention_mask,
        "predict_at": masked.predict_at,
        "targets": masked.targets,
        "tokens": attention_mask.sum(),
        # (N,) which targets the model sees as <mask> (the rest: random or unchanged tokens)
        "shown_as_mask": masked.input_ids[masked.predict_at] == special.mask,
    }


class MaskedBlocks:
    """Endless masked batches over packed blocks: the pretraining batch source.

    Each epoch visits the blocks in a new seeded order; every batch gets a fresh mask from this
    source's own generator (dynamic masking). Under DDP the batch is split by
    :func:`process_rows`: every process builds and masks the same global batch and keeps its rows.
    """

    def __init__(
        self,
        blocks: Tensor,
        batch_size: int,
        special: SpecialIds,
        masking: MaskingConfig = MaskingConfig(),
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        global_batch = batch_size * world_size
        if len(blocks) < global_batch:
            raise DataError(
                f"the corpus packs into {len(blocks)} blocks, fewer than one batch of "
                f"{global_batch}; use a smaller --batch-size or more text"
            )
        self.blocks, self.batch_size, self.special, self.masking = blocks, batch_size, special, masking
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch, self.index = 0, 0
        self.generator = torch.Generator().manual_seed(seed)
        self._order = self._make_order()

    def _make_order(self) -> Tensor:
        return torch.randperm(len(self.blocks), generator=torch.Generator().manual_seed(self.seed + 7919 * self.epoch))

    @property
    def batches_per_epoch(self) -> int:
        return len(self.blocks) // (self.batch_size * self.world_size)

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, Tensor]:
        if self.index >= self.batches_per_epoch:
            self.epoch, self.index = self.epoch + 1, 0
            self._order = self._make_order()
        size = self.batch_size * self.world_size
        rows = self._order[self.index * size : (self.index + 1) * size]
        self.index += 1
        batch = masked_batch(self.blocks[rows], self.special, self.masking, self.generator)
        if self.world_size == 1:
            return batch
        return select_rows(batch, process_rows(self.rank, self.batch_size))

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "index": self.index, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.index = state["epoch"], state["index"]
        self.generator.set_state(state["generator"])
        self._order = self._make_order()


def process_rows(rank: int, batch_size: int) -> slice:
    """The one rule that splits batches across processes (DistributedDataParallel).

    Every process draws the same *global* batch of ``batch_size * world_size`` items, in the same
    order and with the same random draws (masks), and keeps its own contiguous rows
    ``[rank * batch_size, (rank + 1) * batch_size)``. The processes together then train on exactly
    the batch one process would draw with the global size; with one process nothing changes.
    Every batch source (:class:`MaskedBlocks`, :class:`minirob.batches.ShuffledBatches`) uses it.
    """
    return slice(rank * batch_size, (rank + 1) * batch_size)


def select_rows(batch: dict[str, Tensor], rows: slice) -> dict[str, Tensor]:
    """Keep some rows of a masked batch (``targets`` is flat: keep the entries of those rows)."""
    keep = torch.zeros(len(batch["input_ids"]), dtype=torch.bool)
    keep[rows] = True
    target_rows = batch["predict_at"].nonzero()[:, 0]  # row of each target, in targets' order
    return {
        "input_ids": batch["input_ids"][keep],
        "attention_mask": batch["attention_mask"][keep],
        "predict_at": batch["predict_at"][keep],
        "targets": batch["targets"][keep[target_rows]],
        "shown_as_mask": batch["shown_as_mask"][keep[target_rows]],
        "tokens": batch["attention_mask"][keep].sum(),
    }


def fixed_masked_batches(
    blocks: Tensor,
    special: SpecialIds,
    batch_size: int = 64,
    masking: MaskingConfig = MaskingConfig(),
    seed: int = 1234,
    limit: int | None = None,
) -> list[dict[str, Tensor]]:
    """Validation: the first ``limit`` blocks (all if None), masked once with a fixed seed.

    The masks depend on the batch size (one draw per batch), so keep the default to compare runs.
    """
    generator = torch.Generator().manual_seed(seed)
    blocks = blocks[:limit] if limit else blocks
    return [
        masked_batch(blocks[i : i + batch_size], special, masking, generator)
        for i in range(0, len(blocks), batch_size)
    ]
