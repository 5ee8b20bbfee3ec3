# Answers to the exercises of chapter 5 (tutorials/src/05_real_weights.py).
# `tutorials/build.py --solutions` puts each section below in place of the exercise's stub; the
# chapter's own check then proves it.

# %% solution: to_minirob
def to_minirob(hf_name: str) -> str:
    renames = [  # longest, most specific first
        (".attention.self.", ".attention."),
        (".attention.output.dense.", ".attention.output."),
        (".attention.output.LayerNorm.", ".attention_norm."),
        (".intermediate.dense.", ".feed_forward.up."),
        (".output.dense.", ".feed_forward.down."),
        (".output.LayerNorm.", ".output_norm."),
        ("encoder.layer.", "encoder.layers."),
        ("embeddings.word_embeddings.", "embeddings.token."),
        ("embeddings.position_embeddings.", "embeddings.position."),
        ("embeddings.token_type_embeddings.", "embeddings.token_type."),
        ("embeddings.LayerNorm.", "embeddings.norm."),
    ]
    for old, new in renames:
        hf_name = hf_name.replace(old, new)
    return hf_name

# %% solution: sentence_embeddings
def sentence_embeddings(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    weights = attention_mask.unsqueeze(-1).float()  # (B, T, 1): 0 on padding
    mean = (hidden * weights).sum(1) / weights.sum(1)  # (B, H)
    return F.normalize(mean, dim=-1)
