"""ShuffledBatches: the batch source for lists of examples (fine-tuning, your own loops).

The loop draws batches with ``next()`` and saves ``state_dict()`` in every checkpoint, so a resumed
run continues with the very next batch. Across processes a batch is split by the package's one
rule, :func:`minirob.data.process_rows`: every process draws the same global batch and keeps its
own rows.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import torch

from .data import process_rows
from .errors import ConfigError


class ShuffledBatches:
    """Endless batches from a list of examples, reshuffled each epoch with a seeded generator.

    ``collate(list_of_examples) -> batch``. Position (epoch, index) is the resumable state.
    Under DDP pass ``rank`` / ``world_size``: each batch of the shuffled order is a *global* batch
    of ``batch_size * world_size`` examples, of which each process keeps its ``batch_size`` rows
    (:func:`~minirob.data.process_rows`); a last, incomplete global batch is then always dropped.

    ``lengths`` (one per example) turns on *length grouping*: the shuffled order is cut into
    windows of ``group_size`` batches, each window is sorted by length and cut into batches, and
    the batches are shuffled again. A batch then holds examples of similar length, so padding to
    its longest costs little (movie-review snippets: 1.9x the real tokens with random batches,
    1.03x grouped), while which examples meet in a batch stays random from epoch to epoch.
    """

    def __init__(
        self,
        examples: list,
        batch_size: int,
        collate: Callable[[list], Any],
        seed: int = 0,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
        lengths: Sequence[int] | None = None,
        group_size: int = 50,
    ):
        if not examples:
            raise ConfigError("ShuffledBatches got no examples")
        if drop_last and len(examples) < batch_size * world_size:
            raise ConfigError(
                f"{len(examples)} examples are fewer than one batch of {batch_size}"
                + (f" x {world_size} processes" if world_size > 1 else "")
            )
        if lengths is not None and len(lengths) != len(examples):
            raise ConfigError(f"got {len(lengths)} lengths for {len(examples)} examples")
        self.examples, self.batch_size, self.collate = examples, batch_size, collate
        self.seed, self.drop_last, self.rank, self.world_size = seed, drop_last, rank, world_size
        self.lengths, self.group_size = lengths, group_size
        self.epoch, self.index = 0, 0  # index: global batches of this epoch already taken
        self._cached: tuple[int, list[list[int]]] | None = None  # (epoch, its batches)

    def _batches(self) -> list[list[int]]:
        """This epoch's global batches as lists of example indices (computed once per epoch)."""
        if self._cached is None or self._cached[0] != self.epoch:
            size = self.batch_size * self.world_size
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(len(self.examples), generator=generator).tolist()
            if self.lengths is not None:
                window = size * self.group_size
                order = [i for w in range(0, len(order), window)
                         for i in sorted(order[w : w + window], key=self.lengths.__getitem__)]
            batches = [order[s : s + size] for s in range(0, len(order), size)]
            batches = batches[: self.batches_per_epoch()]
            if self.lengths is not None:
                shuffled = torch.randperm(len(batches), generator=generator).tolist()
                batches = [batches[b] for b in shuffled]
            self._cached = (self.epoch, batches)
        return self._cached[1]

    def batches_per_epoch(self) -> int:
        """Global batches per epoch (with one process: batches)."""
        full, rest = divmod(len(self.examples), self.batch_size * self.world_size)
        return full if self.drop_last or not rest or self.world_size > 1 else full + 1

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        if self.index >= self.batches_per_epoch():
            self.epoch, self.index = self.epoch + 1, 0
        chosen = self._batches()[self.index][process_rows(self.rank, self.batch_size)]
        self.index += 1
        return self.collate([self.examples[i] for i in chosen])

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict) -> None:
        epoch, index = state["epoch"], state["index"]
        for name, value in (("epoch", epoch), ("index", index)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r:.40}")
        self.epoch, self.index = epoch, index
