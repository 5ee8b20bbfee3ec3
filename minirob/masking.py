"""Dynamic masking for masked-language-model (MLM) pretraining.

BERT masked each sequence once, while preparing the data, so every epoch showed the model the same
blanks. RoBERTa (Liu et al., 2019, section 4.1) draws a fresh mask every time a sequence is fed to
the model: :func:`mask_tokens` is called on each batch as it is drawn, never stored.

The rule (BERT, section 3.1; unchanged in RoBERTa):

1. choose 15% of the ordinary tokens (never ``<s>``, ``</s>``, ``<pad>``, ...) as *targets*;
2. of the targets, replace 80% by ``<mask>``, 10% by a random ordinary token and leave 10% as they
   are, so the model cannot learn that "only ``<mask>`` positions matter";
3. the loss is computed only at the targets.

How targets are chosen:

- ``rule="bernoulli"``: every token independently with probability ``p`` (Hugging Face's collator);
  the count per sequence varies around ``p * n``.
- ``rule="exact"``: fairseq's ``MaskTokensDataset``: each sequence gets exactly
  ``floor(p * n + u)``, ``u ~ U(0, 1)`` targets (so ``p * n`` on average), drawn without
  replacement among its ``n`` maskable tokens.
- ``whole_word=True``: the choice is made per *word* (a token that starts a word and the
  continuation pieces after it), and a chosen word has all its pieces masked together, so the
  model cannot fill ``##ing``-style pieces from their neighbours.

Everything is vectorised over the batch and draws from an explicit ``torch.Generator``, so a run
can be repeated (and resumed) exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import ConfigError, InputError

RULES = ("bernoulli", "exact")


@dataclass(frozen=True)
class MaskingConfig:
    """The numbers of the masking rule (defaults: BERT's and RoBERTa's)."""

    probability: float = 0.15  # share of maskable tokens that become targets
    mask_fraction: float = 0.8  # of the targets: replaced by <mask>
    random_fraction: float = 0.1  # of the targets: replaced by a random ordinary token
    rule: str = "bernoulli"  # "bernoulli" | "exact"
    whole_word: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.probability < 1.0:
            raise ConfigError(f"masking probability must be in (0, 1), got {self.probability}")
        if (
            self.mask_fraction < 0
            or self.random_fraction < 0
            or self.mask_fraction + self.random_fraction > 1.0 + 1e-9
        ):
            raise ConfigError(
                f"mask_fraction={self.mask_fraction} and random_fraction={self.random_fraction} "
                "must be >= 0 and sum to at most 1 (the rest of the targets stay unchanged)"
            )
        if self.rule not in RULES:
            raise ConfigError(f"masking rule {self.rule!r} is not one of {', '.join(RULES)}")


@dataclass
class MaskedBatch:
    """One masked batch.

    input_ids:  (B, T) the corrupted ids the model reads
    predict_at: (B, T) True at the targets (where the loss is computed)
    targets:    (N,)   the original ids at the targets, in row-major order of ``predict_at``
                       (the same order as ``logits[predict_at]``)
    """

    input_ids: Tensor
    predict_at: Tensor
    targets: Tensor


def choose_targets(
    maskable: Tensor,
    probability: float,
    rule: str = "bernoulli",
    generator: torch.Generator | None = None,
) -> Tensor:
    """(B, T) bool of positions that may be chosen -> (B, T) bool of chosen targets."""
    scores = torch.rand(maskable.shape, generator=generator, device=maskable.device)
    if rule == "bernoulli":
        return maskable & (scores < probability)
    if rule != "exact":
        raise ConfigError(f"masking rule {rule!r} is not one of {', '.join(RULES)}")
    # fairseq: k = floor(p * n + u) per row, then k distinct positions uniformly among the n
    # maskable ones. Sorting random scores (non-maskable pushed to the end) and keeping each row's
    # k smallest is a uniform draw without replacement.
    n = maskable.sum(dim=1)  # (B,)
    u = torch.rand(n.shape, generator=generator, device=maskable.device)
    k = torch.floor(probability * n + u).long().clamp(max=n)  # (B,)
    scores = scores.masked_fill(~maskable, 2.0)  # never among the k smallest
    rank = scores.argsort(dim=1).argsort(dim=1)  # (B, T): 0 for the smallest score
    return rank < k[:, None]


def spread_to_words(chosen_starts: Tensor, word_starts: Tensor, maskable: Tensor) -> Tensor:
    """Extend a choice made at word starts to every piece of those words.

    chosen_starts, word_starts, maskable: (B, T) bool. A piece belongs to the nearest word start on
    its left (in the same row); pieces before any start, and non-maskable ones, are never chosen.
    """
    starts = word_starts & maskable
    word_index = starts.long().cumsum(dim=1)  # (B, T): 1-based index of the word each piece is in
    # chosen[b, j] for the j-th word start of row b, gathered back onto every piece of that word.
    batch, length = starts.shape
    chosen_by_word = torch.zeros(batch, length + 1, dtype=torch.bool, device=starts.device)
    chosen_by_word.scatter_(1, word_index * starts, chosen_starts & starts)
    chosen_by_word[:, 0] = False  # index 0 collects "not a start" and "before the first word"
    return chosen_by_word.gather(1, word_index) & maskable


def mask_tokens(
    input_ids: Tensor,
    *,
    mask_id: int,
    maskable: Tensor,
    random_ids: tuple[int, int],
    config: MaskingConfig = MaskingConfig(),
    word_starts: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> MaskedBatch:
    """Draw a fresh mask for a batch.

    input_ids:   (B, T) token ids
    mask_id:     the id of ``<mask>``
    maskable:    (B, T) bool, False for special tokens and padding (they are never chosen)
    random_ids:  [low, high) range of ordinary token ids used for the 10% random replacements
    word_starts: (B, T) bool, True where a token begins a word; needed for ``whole_word``
    generator:   the source of randomness (pass one for reproducible, resumable runs)
    """
    if input_ids.dim() != 2 or maskable.shape != input_ids.shape:
        raise InputError(
            f"input_ids {tuple(input_ids.shape)} and maskable {tuple(maskable.shape)} must both "
            "be (batch, length)"
        )
    low, high = random_ids
    if not 0 <= low < high:
        raise InputError(f"random_ids must be a non-empty range [low, high), got {random_ids}")
    maskable = maskable.bool()
    if config.whole_word:
        if word_starts is None:
            raise InputError("whole-word masking needs word_starts (B, T), True at word starts")
        starts = word_starts.bool() & maskable
        chosen_starts = choose_targets(starts, config.probability, config.rule, generator)
        predict_at = spread_to_words(chosen_starts, starts, maskable)
    else:
        predict_at = choose_targets(maskable, config.probability, config.rule, generator)

    # Split the targets 80 / 10 / 10 with one uniform draw per position.
    action = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    to_mask = predict_at & (action < config.mask_fraction)
    to_random = (
        predict_at
        & (action >= config.mask_fraction)
        & (action < config.mask_fraction + config.random_fraction)
    )
    random_tokens = torch.randint(
        low, high, input_ids.shape, generator=generator, device=input_ids.device
    )
    corrupted = torch.where(to_mask, torch.full_like(input_ids, mask_id), input_ids)
    corrupted = torch.where(to_random, random_tokens, corrupted)
    return MaskedBatch(input_ids=corrupted, predict_at=predict_at, targets=input_ids[predict_at])
