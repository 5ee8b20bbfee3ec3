"""The post-LN Transformer encoder layer of BERT and RoBERTa, and the stack of them.

One layer (post-LN: the LayerNorm comes *after* each residual sum, as in the original
Transformer, BERT and RoBERTa):

    h = LayerNorm(x + Dropout(SelfAttention(x)))
    y = LayerNorm(h + Dropout(W2 gelu(W1 h)))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn.functional as F
from torch import Tensor, nn

from .attention import MultiHeadSelfAttention
from .config import RobertaConfig

_ACTIVATIONS = {
    "gelu": F.gelu,  # exact, erf-based
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


def activation(name: str):
    return _ACTIVATIONS[name]


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

    def forward(self, x: Tensor) -> Tensor:
        return self.down(self.act(self.up(x)))


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
        self, x: Tensor, bias: Tensor | None = None, trace: Trace | None = None
    ) -> Tensor:
        attended, weights = self.attention(x, bias, return_weights=trace is not None)
        h = self.attention_norm(x + self.dropout(attended))
        y = self.output_norm(h + self.dropout(self.feed_forward(h)))
        if trace is not None:
            trace.attentions.append(weights)
            trace.hidden_states.append(y)
        return y


class Encoder(nn.Module):
    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x: Tensor, bias: Tensor | None = None, trace: Trace | None = None) -> Tensor:
        for layer in self.layers:
            x = layer(x, bias, trace)
        return x
