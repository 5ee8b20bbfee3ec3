"""The post-LN Transformer encoder layer of BERT and RoBERTa, and the stack of them.

One layer (post-LN: the LayerNorm comes *after* each residual sum, as in the original
Transformer, BERT and RoBERTa):

    h = LayerNorm(x + Dropout(SelfAttention(x)))
    y = LayerNorm(h + Dropout(W2 gelu(W1 h)))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import MultiHeadSelfAttention
from .config import RobertaConfig

_TANH_GELU = (partial(F.gelu, approximate="tanh"), partial(torch.ops.aten.gelu_, approximate="tanh"))
# name -> (function, the same function overwriting its input)
_ACTIVATIONS = {
    "gelu": (F.gelu, torch.ops.aten.gelu_),  # exact, erf-based
    "gelu_new": _TANH_GELU,
    "gelu_pytorch_tanh": _TANH_GELU,
    "relu": (F.relu, F.relu_),
}


def activation(name: str):
    return _ACTIVATIONS[name][0]


def activation_in_place(name: str):
    return _ACTIVATIONS[name][1]


@dataclass
class Trace:
    """What happened inside the encoder, for plots and parity tests.

    hidden_states: num_layers + 1 tensors (B, T, hidden): the embeddings' output, then each layer's.
    attentions:    num_layers tensors (B, heads, T, T): each layer's attention weights.
    """

    hidden_states: list[Tensor] = field(default_factory=list)
    attentions: list[Tensor] = field(default_factory=list)


class FeedForward(nn.Module):
    """Position-wise: widen (hidden -> intermediate), activate, narrow back."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.act_in_place = activation_in_place(config.hidden_act)

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.up(x)  # (B, T, intermediate)
        if hidden.requires_grad:  # autograd keeps the pre-activation for the backward pass
            hidden = self.act(hidden)
        else:  # no autograd (inference): overwrite it, one (B, T, intermediate) buffer fewer
            self.act_in_place(hidden)
        return self.down(hidden)


class EncoderLayer(nn.Module):
    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.attention = MultiHeadSelfAttention(
            config.hidden_size,
            config.num_attention_heads,
            config.attention_probs_dropout_prob,
            backend=config.attention_backend,
        )
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.output_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        x: Tensor,
        bias: Tensor | None = None,
        trace: Trace | None = None,
        queries: Tensor | None = None,
    ) -> Tensor:
        """x: (B, T, H) -> (B, T, H); or (B, Tq, H) for just the rows ``queries`` (B, Tq, H)."""
        attended, weights = self.attention(
            x, bias, return_weights=trace is not None, queries=queries
        )
        residual = x if queries is None else queries
        h = self.attention_norm(residual + self.dropout(attended))
        del attended  # (B, T, H) no longer needed: freeing it lowers the feed-forward's peak memory
        y = self.output_norm(h + self.dropout(self.feed_forward(h)))
        if trace is not None:
            trace.attentions.append(weights)
            trace.hidden_states.append(y)
        return y


class Encoder(nn.Module):
    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))

    def forward(
        self,
        x: Tensor,
        bias: Tensor | None = None,
        trace: Trace | None = None,
        only_at: Tensor | None = None,
    ) -> Tensor:
        """(B, T, H) -> (B, T, H); or (N, H) at the N positions where ``only_at`` (B, T) is True.

        ``only_at`` saves the work nobody reads: the last layer still takes keys and values from
        every token, but runs its queries, feed-forward and norms only for the chosen rows.
        """
        *first, last = self.layers
        for layer in first:
            x = layer(x, bias, trace)
        if only_at is None:
            return last(x, bias, trace)
        rows, keep = chosen_rows(only_at)  # (B, Tq), (N,)
        queries = x.gather(1, rows[..., None].expand(-1, -1, x.shape[-1]))  # (B, Tq, H)
        out = last(x, bias, trace, queries=queries)  # (B, Tq, H)
        return out.flatten(0, 1)[keep]  # (N, H), row-major like x[only_at]


def chosen_rows(chosen: Tensor) -> tuple[Tensor, Tensor]:
    """(B, T) bool -> positions (B, Tq) of each row's chosen tokens, in order, and ``keep`` (N,).

    Rows choose different numbers of tokens, so each is padded to the largest count Tq with
    unchosen positions; ``keep`` lists the real slots of the flattened (B * Tq) grid. E.g.
    chosen = [[0, 1, 0, 1], [1, 0, 0, 0]] -> positions [[1, 3], [0, 1]], keep [0, 1, 2].

    The counts are read once from the device; everything else is computed where ``chosen`` lives
    (a boolean index would be a second wait on a GPU).
    """
    counts = chosen.sum(dim=1)  # (B,)
    host_counts = counts.tolist()  # the one device-to-host read
    width = max(host_counts, default=0)
    # A stable sort of "not chosen" (0 before 1) lists each row's chosen positions first, in order.
    positions = torch.sort((~chosen).to(torch.uint8), dim=1, stable=True).indices[:, :width]
    valid = torch.arange(width, device=chosen.device) < counts[:, None]  # (B, Tq)
    # the same stable-sort trick on the flattened grid; the count N is known on the host
    keep = torch.sort((~valid).flatten().to(torch.uint8), stable=True).indices[: sum(host_counts)]
    return positions, keep
