# Answers to the exercises of chapter 2 (tutorials/src/02_encoder_block.py).
# `tutorials/build.py --solutions` puts each section below in place of the exercise's stub; the
# chapter's own check then proves it. Names (torch, F, layer_norm_by_hand, ...) come from the chapter.

# %% solution: split_and_merge_heads
def split_heads(t: torch.Tensor, num_heads: int) -> torch.Tensor:
    batch, length, width = t.shape
    return t.view(batch, length, num_heads, width // num_heads).transpose(1, 2)  # (B, h, T, d)


def merge_heads(t: torch.Tensor) -> torch.Tensor:
    batch, heads, length, d = t.shape
    return t.transpose(1, 2).reshape(batch, length, heads * d)  # (B, T, h*d); reshape copies

# %% solution: post_ln_layer
def post_ln_layer(layer: EncoderLayer, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    attended, _ = layer.attention(x, bias)  # (B, T, H)
    h = layer_norm_by_hand(x + attended, layer.attention_norm)  # residual, then LN
    ffn = layer.feed_forward.down(F.gelu(layer.feed_forward.up(h)))  # (B, T, 4H) inside
    return layer_norm_by_hand(h + ffn, layer.output_norm)

# %% solution: roberta_position_ids
def my_roberta_position_ids(input_ids: torch.Tensor, padding_idx: int) -> torch.Tensor:
    is_token = (input_ids != padding_idx).long()  # (B, T): 1 for real tokens
    return torch.cumsum(is_token, dim=1) * is_token + padding_idx

# %% solution: predict_large
def predict_large() -> tuple[int, int]:
    encoder = count_parameters(minirob.RobertaConfig.large(), mlm_head=False)  # the table, as code
    return sum(encoder.values()), 0  # heads only regroup the same H x H projections (section 2)
