"""Token, position and token-type embeddings, summed, normalised and dropped out.

RoBERTa's positions are *padding-aware*: they count only real tokens and start after the padding
index, so padding always gets position ``padding_idx`` itself:

    position_ids = cumsum(ids != pad) * (ids != pad) + pad
    e.g. pad = 1, ids = [0, 31414, 2, 1, 1]  ->  positions [2, 3, 4, 1, 1]

That is why roberta-base has 514 rows for 512 tokens. BERT (``position_style="absolute"``) simply
numbers the slots 0..T-1.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import RobertaConfig


def roberta_position_ids(input_ids: Tensor, padding_idx: int) -> Tensor:
    """(B, T) token ids -> (B, T) position ids; see the module docstring."""
    is_token = input_ids.ne(padding_idx).long()
    return torch.cumsum(is_token, dim=1) * is_token + padding_idx


def absolute_position_ids(input_ids: Tensor) -> Tensor:
    batch, length = input_ids.shape
    return torch.arange(length, device=input_ids.device).expand(batch, length)


class Embeddings(nn.Module):
    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.position_style = config.position_style
        self.padding_idx = config.pad_token_id
        roberta = config.position_style == "roberta"
        self.token = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=self.padding_idx)
        self.position = nn.Embedding(
            config.max_position_embeddings,
            config.hidden_size,
            padding_idx=self.padding_idx if roberta else None,
        )
        self.token_type = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def position_ids(self, input_ids: Tensor) -> Tensor:
        if self.position_style == "roberta":
            return roberta_position_ids(input_ids, self.padding_idx)
        return absolute_position_ids(input_ids)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """(B, T) ids -> (B, T, hidden)."""
        if token_type_ids is None:
            # Every token is of type 0: add that one row, broadcast over (B, T). Same numbers as
            # looking it up at every position, without a (B, T, hidden) gather and its backward.
            types = self.token_type.weight[0]  # (hidden,)
        else:
            types = self.token_type(token_type_ids)  # (B, T, hidden)
        x = self.token(input_ids) + self.position(self.position_ids(input_ids)) + types
        return self.dropout(self.norm(x))
