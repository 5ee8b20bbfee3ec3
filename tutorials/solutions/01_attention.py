# Answers to the exercises of chapter 1 (tutorials/src/01_attention.py).
# `tutorials/build.py --solutions` puts each section below in place of the exercise's stub; the
# chapter's own check then proves it. Names (torch, math, ...) come from the chapter's cells.

# %% solution: masked_attention
def masked_attention(query, key, value, attention_mask):
    d = query.shape[-1]
    scores = query @ key.transpose(-2, -1) / math.sqrt(d)  # (B, heads, T, T)
    padded_key = attention_mask[:, None, None, :] == 0  # (B, 1, 1, T): broadcasts over heads and queries
    scores = scores.masked_fill(padded_key, torch.finfo(scores.dtype).min)
    return scores.softmax(dim=-1) @ value  # (B, heads, T, d)

# %% solution: causal_bias
def causal_bias(T: int) -> torch.Tensor:
    future = torch.ones(T, T, dtype=torch.bool).triu(diagonal=1)  # True strictly above the diagonal
    return torch.zeros(T, T).masked_fill(future, torch.finfo(torch.float32).min)
