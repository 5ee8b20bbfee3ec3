# Chapter 2 of the minirob tutorials: multi-head attention and the post-LN encoder block.
# Source of tutorials/02_encoder_block.ipynb; rebuild with `.venv/bin/python tutorials/build.py 02`.

# %% [markdown]
# # Chapter 2 · Multi-head attention and the encoder block
#
# Chapter 1 built attention for one set of queries, keys and values. A RoBERTa layer wraps it in
# three more ideas: it *projects* the token vectors into queries, keys and values with learned
# matrices, it runs several attentions side by side (**heads**), and it surrounds the attention and
# a small feed-forward network with **residual connections** and **LayerNorm**. Stack twelve of
# those layers on top of an embedding table and you have roberta-base.
#
# We will follow one batch through every step, printing each tensor's shape (the best debugging
# habit there is), re-derive a full encoder layer by hand and check it equals `minirob`'s, and
# finally count roberta-base's parameters, one matrix at a time, up to the published
# **124,697,433**.
#
# **Budget.** Under a minute on a laptop CPU; `MINIROB_TUTORIAL_FAST=1` makes it a few seconds.

# %%
import os

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from einops import einsum, rearrange

import minirob
from minirob.attention import MultiHeadSelfAttention, padding_mask_to_bias
from minirob.encoder import EncoderLayer

FAST = os.environ.get("MINIROB_TUTORIAL_FAST") == "1"
torch.manual_seed(0)
print("minirob", minirob.__version__, "| fast mode:", FAST)

# %% [markdown]
# ## 1. From token vectors to queries, keys and values
#
# A layer receives a tensor $X$ of shape $(B, T, H)$: $B$ sentences, $T$ tokens each, every token
# a vector of width $H$ (768 in roberta-base). Queries, keys and values are three different
# *views* of the same vectors, made by three learned linear maps:
#
# $$ Q = X W_Q + b_Q, \qquad K = X W_K + b_K, \qquad V = X W_V + b_V, \qquad W_\bullet \in \mathbb{R}^{H \times H}. $$
#
# Why not attend with $X$ directly? Because "what I am looking for" and "what I offer" are
# different questions: a verb may look for its subject while offering its tense. Separate
# projections let the model answer them separately.
#
# ## 2. Heads: several attentions in smaller subspaces
#
# One softmax per query produces *one* weighted average, so a single attention can follow only
# one relation at a time. Multi-head attention cuts the width $H$ into $h$ slices of
# $d = H / h$ (roberta-base: 12 heads of 64) and runs an independent attention in each:
#
# $$ \text{head}_n = \operatorname{softmax}\Big(\frac{Q_n K_n^\top}{\sqrt d} + M\Big) V_n, \qquad
#    \operatorname{MHA}(X) = \big[\text{head}_1; \dots; \text{head}_h\big]\, W_O + b_O . $$
#
# The heads are concatenated back to width $H$ and mixed by an output projection $W_O$. Note the
# cost: the projections are $H \times H$ whatever $h$ is, so more heads means more, narrower
# relations for the *same* number of parameters.
#
# Let us take `minirob`'s `MultiHeadSelfAttention` and redo its forward pass by hand, with
# [einops](https://einops.rocks) patterns that spell out every reshape in words.

# %%
B, T, H, HEADS = 2, 5, 32, 4
mha = MultiHeadSelfAttention(hidden_size=H, num_heads=HEADS, dropout=0.0).eval()
x = torch.randn(B, T, H)
attention_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])  # sentence 2 has 2 pads
bias = padding_mask_to_bias(attention_mask, x.dtype)  # (B, 1, 1, T), chapter 1

shapes = []  # (step, shape) rows for a table


def show(step, tensor):
    shapes.append((step, tuple(tensor.shape)))
    return tensor


q = show("q = x W_Q + b_Q", mha.query(x))
k = show("k = x W_K + b_K", mha.key(x))
v = show("v = x W_V + b_V", mha.value(x))
q = show("split heads: b t (h d) -> b h t d", rearrange(q, "b t (h d) -> b h t d", h=HEADS))
k = rearrange(k, "b t (h d) -> b h t d", h=HEADS)
v = rearrange(v, "b t (h d) -> b h t d", h=HEADS)
d = q.shape[-1]
scores = show("scores: q . k / sqrt(d) + M", einsum(q, k, "b h tq d, b h tk d -> b h tq tk") / d**0.5 + bias)
weights = show("softmax over keys", scores.softmax(dim=-1))
context = show("weighted values", einsum(weights, v, "b h tq tk, b h tk d -> b h tq d"))
merged = show("merge heads: b h t d -> b t (h d)", rearrange(context, "b h t d -> b t (h d)"))
by_hand = show("output projection W_O", mha.output(merged))

for step, shape in shapes:
    print(f"{step:<36} {str(shape):>18}")

library, library_weights = mha(x, bias, return_weights=True)
torch.testing.assert_close(by_hand, library)
torch.testing.assert_close(weights, library_weights)
print("\nby hand == minirob.attention.MultiHeadSelfAttention (outputs and weights)")

# %% [markdown]
# The only shapes that ever change are the last ones: heads appear as a new axis by *viewing*
# the width $H = h \cdot d$ as an $(h, d)$ grid, and disappear by flattening it again. No data is
# copied between heads; each head simply owns 8 of the 32 channels of $Q$, $K$ and $V$.
#
# And the claim about cost, checked:

# %%
for heads in (1, 4, 8, 32):
    n = sum(p.numel() for p in MultiHeadSelfAttention(H, heads, 0.0).parameters())
    print(f"{heads:>2} heads of width {H // heads:>2}: {n:,} parameters  (4 (H^2 + H) = {4 * (H * H + H):,})")

# %% [markdown]
# ## 3. The encoder block: residuals and post-LN
#
# Attention mixes information *between* tokens. Then each token is processed on its own by a
# two-layer **feed-forward network** that widens to $I = 4H$ (3072 in roberta-base), applies a
# GELU, and narrows back:
#
# $$ \operatorname{FFN}(h) = W_2\, \operatorname{gelu}(W_1 h + b_1) + b_2 . $$
#
# Both sub-blocks are wrapped the same way: add the sub-block's output to its input (the
# **residual**, so each layer only has to learn a *correction*), then normalise with
# **LayerNorm**. BERT and RoBERTa put the norm *after* the sum (**post-LN**, as in the original
# Transformer):
#
# $$ h = \operatorname{LN}\big(x + \operatorname{MHA}(x)\big), \qquad
#    y = \operatorname{LN}\big(h + \operatorname{FFN}(h)\big), $$
#
# $$ \operatorname{LN}(z) = \gamma \odot \frac{z - \mu}{\sqrt{\sigma^2 + \varepsilon}} + \beta,
#    \quad \mu, \sigma^2 \text{ = mean and (biased) variance over the } H \text{ channels of one token},
#    \ \varepsilon = 10^{-5}. $$
#
# (During training a dropout sits on each sub-block's output before the sum; in `eval()` mode it
# is the identity, which is what we use here.) Everything, by hand, against `EncoderLayer`:

# %%
config = minirob.RobertaConfig.tiny(hidden_size=H, num_attention_heads=HEADS, intermediate_size=4 * H)
layer = EncoderLayer(config).eval()


def layer_norm_by_hand(z, norm):
    mu = z.mean(dim=-1, keepdim=True)  # (B, T, 1)
    var = z.var(dim=-1, keepdim=True, unbiased=False)  # biased, as LayerNorm defines it
    return norm.weight * (z - mu) / torch.sqrt(var + norm.eps) + norm.bias


attended, _ = layer.attention(x, bias)  # the multi-head attention we just re-derived
h = layer_norm_by_hand(x + attended, layer.attention_norm)  # residual, then LN
wide = F.gelu(layer.feed_forward.up(h))  # (B, T, 4H): exact erf GELU
print("inside the FFN:", tuple(h.shape), "->", tuple(wide.shape), "->", tuple(layer.feed_forward.down(wide).shape))
y = layer_norm_by_hand(h + layer.feed_forward.down(wide), layer.output_norm)

torch.testing.assert_close(y, layer(x, bias))
print("post-LN layer by hand == minirob.encoder.EncoderLayer")
print(f"per token of y: largest |mean| {y.mean(-1).abs().max():.1e}, "
      f"std between {y.std(-1, unbiased=False).min():.4f} and {y.std(-1, unbiased=False).max():.4f}")

# %% [markdown]
# Because LayerNorm comes last, every layer's output has, per token, mean $\beta$-ish and spread
# $\gamma$-ish: at initialisation ($\gamma = 1, \beta = 0$) exactly mean 0 and standard
# deviation 1, as printed.
#
# **Why GELU?** It is a smooth ReLU: $\operatorname{gelu}(z) = z\,\Phi(z)$, the input times the
# probability that a standard normal is below it. RoBERTa uses the exact form with the error
# function; GPT-2 popularised a $\tanh$ approximation. They differ by less than $10^{-3}$, which
# is small but enough to break a $10^{-5}$ parity test against the original weights, so
# `minirob` uses the exact one.

# %%
z = torch.linspace(-4, 3, 400)
exact, approx = F.gelu(z), F.gelu(z, approximate="tanh")
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2))
ax1.plot(z, F.relu(z), label="relu", ls=":")
ax1.plot(z, exact, label="gelu (exact, erf)")
ax1.set(title="activations", xlabel="z")
ax1.legend()
ax2.plot(z, (exact - approx).abs())
ax2.set(title="|exact gelu - tanh approximation|", xlabel="z", yscale="log")
plt.tight_layout()
plt.show()
print(f"largest gap: {(exact - approx).abs().max():.1e}")

# %% [markdown]
# ### Post-LN versus pre-LN
#
# Many newer models (GPT-2 onwards) use **pre-LN**, $y = x + \operatorname{FFN}(\operatorname{LN}(x))$:
# the residual path is never normalised, which makes very deep stacks easier to train without a
# learning-rate warm-up. RoBERTa's checkpoints were trained post-LN, so to reproduce their numbers
# we must compute exactly that. The difference is easy to *see*: push the same input through a
# 12-layer stack built both ways, with the *same* weights, and track the size of the residual
# stream.

# %%
deep = minirob.RobertaConfig.tiny(num_hidden_layers=12, hidden_size=128, num_attention_heads=4,
                                  intermediate_size=512)
stack = [EncoderLayer(deep).eval() for _ in range(deep.num_hidden_layers)]
x0 = torch.randn(4, 32, deep.hidden_size)


def pre_ln(layer, x):
    """The same sub-blocks and weights, with the norms moved to the front of each branch."""
    x = x + layer.attention(layer.attention_norm(x))[0]
    return x + layer.feed_forward(layer.output_norm(x))


post_norms, pre_norms = [x0.norm(dim=-1).mean().item()], [x0.norm(dim=-1).mean().item()]
with torch.no_grad():
    a = b = x0
    for lyr in stack:
        a, b = lyr(a), pre_ln(lyr, b)
        post_norms.append(a.norm(dim=-1).mean().item())
        pre_norms.append(b.norm(dim=-1).mean().item())

plt.figure(figsize=(5.5, 3.2))
plt.plot(post_norms, "o-", label="post-LN (RoBERTa)")
plt.plot(pre_norms, "s-", label="pre-LN (GPT-2 style)")
plt.axhline(deep.hidden_size ** 0.5, color="gray", ls=":", label="$\\sqrt{H}$")
plt.gca().set(xlabel="layer", ylabel="mean token-vector norm", title="size of the residual stream")
plt.legend()
plt.tight_layout()
plt.show()
assert abs(post_norms[-1] - deep.hidden_size ** 0.5) < 0.5  # LN output: std 1 per channel
assert pre_norms[-1] > post_norms[-1]  # the pre-LN stream keeps growing

# %% [markdown]
# Post-LN pins every layer's output to norm $\sqrt{H}$ (per-channel standard deviation 1);
# pre-LN lets the residual stream grow layer after layer, with each branch adding to it.
#
# ## 4. The whole model, shape by shape
#
# `RobertaModel` is an embedding step (token + position + token-type embeddings, summed, then a
# LayerNorm; chapter 5 looks at the position ids) followed by the stack of layers. `.trace(...)`
# returns every intermediate tensor, so we can print the journey of a batch through a tiny model.

# %%
tiny = minirob.RobertaConfig.tiny()
model = minirob.RobertaModel(tiny).eval()
ids = torch.tensor([[0, 31, 415, 99, 2, 1], [0, 8, 7, 6, 5, 2]])
with torch.no_grad():
    tr = model.trace(ids, attention_mask=(ids != tiny.pad_token_id).long())
print(f"input ids          {tuple(ids.shape)}")
print(f"embeddings         {tuple(tr.hidden_states[0].shape)}")
for n, (hs, att) in enumerate(zip(tr.hidden_states[1:], tr.attentions)):
    print(f"layer {n}: weights {tuple(att.shape)} -> hidden {tuple(hs.shape)}")

# %% [markdown]
# ## 5. Counting roberta-base's parameters
#
# Every learned number lives in one of a handful of matrices. Writing $V$ for the vocabulary
# (50,265), $P$ for the position table (514 rows: 512 tokens plus RoBERTa's offset of
# `padding_idx + 1`, chapter 5), $H = 768$, $I = 3072$, $L = 12$ layers:
#
# | piece | parameters |
# |---|---|
# | token, position, token-type embeddings | $VH + PH + 1\cdot H$ |
# | embedding LayerNorm | $2H$ |
# | per layer: $W_Q, W_K, W_V, W_O$ with biases | $4(H^2 + H)$ |
# | per layer: FFN up and down with biases | $HI + I + IH + H$ |
# | per layer: two LayerNorms | $2 \cdot 2H$ |
# | MLM head: dense + LayerNorm + output bias | $H^2 + H + 2H + V$ |
#
# The MLM head's big $H \times V$ output matrix is *tied* to the token-embedding table (the same
# tensor used twice), so it is not counted again. Here is the table as code:

# %%
def count_parameters(c: minirob.RobertaConfig, mlm_head: bool = True) -> dict[str, int]:
    Hc, Ic = c.hidden_size, c.intermediate_size
    per_layer = 4 * (Hc * Hc + Hc) + (Hc * Ic + Ic + Ic * Hc + Hc) + 2 * 2 * Hc
    parts = {
        "embeddings": (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * Hc + 2 * Hc,
        "attention (all layers)": c.num_hidden_layers * 4 * (Hc * Hc + Hc),
        "feed-forward (all layers)": c.num_hidden_layers * (2 * Hc * Ic + Ic + Hc),
        "layer norms (all layers)": c.num_hidden_layers * 4 * Hc,
    }
    assert sum(list(parts.values())[1:]) == c.num_hidden_layers * per_layer
    if mlm_head:
        parts["MLM head (decoder tied)"] = Hc * Hc + Hc + 2 * Hc + c.vocab_size
    return parts


base = minirob.RobertaConfig.base()
parts = count_parameters(base)
for name, n in parts.items():
    print(f"{name:<28} {n:>13,}")
total = sum(parts.values())
print(f"{'total':<28} {total:>13,}")

# Build the real model on the "meta" device: shapes only, no memory, no time.
with torch.device("meta"):
    mlm = minirob.RobertaForMaskedLM(base)
print(f"minirob.RobertaForMaskedLM(base): {mlm.num_parameters():,}")
assert total == mlm.num_parameters() == 124_697_433  # the published size of roberta-base with its MLM head

# %%
fig, ax = plt.subplots(figsize=(10, 2.2))
left = 0
for (name, n), colour in zip(parts.items(), plt.cm.tab10.colors):
    ax.barh(0, n / 1e6, left=left, color=colour, label=f"{name}: {n / total:.2%}")
    left += n / 1e6
ax.set(yticks=[], xlabel="millions of parameters", title="where roberta-base's 124.7M parameters live")
ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
plt.tight_layout()
plt.show()

# %% [markdown]
# Almost a third of roberta-base is its embedding table ($50{,}265 \times 768 \approx 38.6$M), and
# the feed-forward networks outweigh the attention two to one. That is why small models for
# experiments (like `RobertaConfig.tiny()`, which chapter 4 pretrains) shrink the vocabulary as
# well as the width.
#
# ## Exercise: roberta-large
#
# roberta-large has 24 layers of width 1024 with 16 heads and a 4096-wide FFN
# (`RobertaConfig.large()`). Before running the next cell, use the table to predict: (a) how many
# parameters its **encoder without the MLM head** has, and (b) how the total would change if it had
# 8 heads instead of 16. Put your answers in the cell; the check builds the models on the meta
# device and compares.

# %%
answer_encoder = count_parameters(minirob.RobertaConfig.large(), mlm_head=False)  # replace with your own number
answer_encoder = sum(answer_encoder.values())
answer_change_with_8_heads = 0  # heads do not change the projection sizes (section 2)

# %%
with torch.device("meta"):
    large_encoder = minirob.RobertaModel(minirob.RobertaConfig.large(), add_pooling_layer=False)
    large_8 = minirob.RobertaModel(minirob.RobertaConfig.large(num_attention_heads=8), add_pooling_layer=False)
print(f"roberta-large encoder: {large_encoder.num_parameters():,} parameters")
assert answer_encoder == large_encoder.num_parameters(), "recount: which piece is missing?"
assert answer_change_with_8_heads == large_8.num_parameters() - large_encoder.num_parameters()
print("both answers correct")
