"""Attention, written out.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d) + M) V

where M is 0 for keys a query may look at and a very large negative number for padding, so that
after the softmax padding gets (numerically) zero weight. ``scaled_dot_product_attention`` is the
formula line by line; ``fused_attention`` asks torch's fused kernel for the same numbers, faster
(and, where torch has no fused kernel, uses the written-out formula: see its docstring).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def padding_mask_to_bias(attention_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """(B, T) mask of 1 = token, 0 = padding  ->  (B, 1, 1, T) additive bias M.

    The bias broadcasts over heads and queries: every query sees the same keys. We use the most
    negative finite number rather than -inf so a row made only of padding still has a finite
    softmax (uniform weights) instead of NaN.
    """
    keep = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - keep) * torch.finfo(dtype).min


def scaled_dot_product_attention(
    query: Tensor,  # (B, heads, T, d)
    key: Tensor,  # (B, heads, T, d)
    value: Tensor,  # (B, heads, T, d)
    bias: Tensor | None = None,  # (B, 1, 1, T) additive, from padding_mask_to_bias
    dropout: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """The written-out attention. Returns (output (B, heads, T, d), weights (B, heads, T, T))."""
    # (Q / sqrt(d)) K^T is Q K^T / sqrt(d); scaling the (T, d) queries is a pass over a smaller
    # tensor than scaling the (T, T) scores (T = 128 > d = 64 in the presets).
    scores = (query / math.sqrt(query.shape[-1])) @ key.transpose(-2, -1)  # (B, heads, T, T)
    if bias is not None:
        scores = scores + bias
    weights = scores.softmax(dim=-1)  # each row sums to 1 over the keys
    # Dropout on the weights: a query randomly ignores some keys during training.
    dropped = F.dropout(weights, p=dropout) if dropout > 0 else weights
    return dropped @ value, weights


def fused_attention(
    query: Tensor, key: Tensor, value: Tensor, bias: Tensor | None = None, dropout: float = 0.0
) -> Tensor:
    """Same maths as :func:`scaled_dot_product_attention`, in torch's fused kernel (no weights).

    A CPU has fused kernels only without dropout. With dropout (training) torch falls back to a
    generic composite that scales both Q and K, guards against rows of only -inf (our bias is
    finite, so none occur) and, for bfloat16 inputs, works in float32; the formula written out is
    faster (forward + backward of the attention alone, dropout 0.1, tiny and roberta-base shapes:
    1.03-1.07x in float32, 1.7-1.8x under bfloat16 autocast, where its matmuls then run in
    bfloat16 like every other autocast matmul and like transformers' "eager" attention), so a CPU
    in training uses it. GPUs have fused kernels with dropout and keep them.
    """
    if dropout > 0 and query.device.type == "cpu":
        return scaled_dot_product_attention(query, key, value, bias, dropout)[0]
    return F.scaled_dot_product_attention(query, key, value, attn_mask=bias, dropout_p=dropout)


class MultiHeadSelfAttention(nn.Module):
    """Project the input to queries, keys and values, attend in ``heads`` subspaces, recombine."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float, backend: str = "fused"):
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.backend = backend
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, hidden_size)

    def forward(
        self,
        x: Tensor,
        bias: Tensor | None = None,
        return_weights: bool = False,
        queries: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """x: (B, T, hidden) -> (B, T, hidden), and the (B, heads, T, T) weights if asked for.

        ``queries`` (B, Tq, hidden), if given, are the rows that ask (default: all of x); keys and
        values still come from every row of x, and the output is (B, Tq, hidden).
        """
        split = "b t (heads d) -> b heads t d"
        q = rearrange(self.query(x if queries is None else queries), split, heads=self.num_heads)
        k = rearrange(self.key(x), split, heads=self.num_heads)
        v = rearrange(self.value(x), split, heads=self.num_heads)
        dropout = self.dropout if self.training else 0.0
        weights = None
        if return_weights or self.backend == "manual":
            context, weights = scaled_dot_product_attention(q, k, v, bias, dropout)
        else:
            context = fused_attention(q, k, v, bias, dropout)
        context = rearrange(context, "b heads t d -> b t (heads d)")
        return self.output(context), (weights if return_weights else None)
