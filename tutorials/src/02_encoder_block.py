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
# see how RoBERTa numbers the positions of a padded batch, and finally count roberta-base's
# parameters, one matrix at a time, up to the published **124,697,433**.
#
# **Exercises.** Four cells ask you to write code (splitting and merging heads, the post-LN block,
# RoBERTa's position ids, roberta-large's size). Each holds a stub that raises
# `NotImplementedError`; the cell after it checks your answer against `minirob` and says "not
# attempted yet" until you write it, or exactly what differs (input, expected, got) when it is
# wrong. Answers: `tutorials/solutions/02_encoder_block.py`.
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
from minirob.embeddings import absolute_position_ids, roberta_position_ids
from minirob.encoder import EncoderLayer

import diagrams  # tutorials/diagrams.py: boxes, grids and arrows for the figures
from checks import check, quote  # tutorials/checks.py: exercise checks, numbers quoted in the text

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
# copied between heads; each head simply owns {{head_width}} of the {{width}} channels of $Q$, $K$
# and $V$: a contiguous slice, as the picture shows (one colour per head).

# %%
quote("head_width", H // HEADS)
quote("width", H)
fig, ax = plt.subplots(figsize=(13, 2.5))
diagrams.canvas(ax, 17.4, 2.6)
c, top, mid = 0.22, 2.2, 2.2 - 0.66  # cell size, top edge of the grids, their middle
heads_colours = ["#8ecae6", "#ffb703", "#90be6d", "#f28482"]  # one per head
by_head = [heads_colours[ch // 2] for ch in range(8)]  # 8 channels = 4 heads x 2: contiguous slices
diagrams.grid(ax, 0.2, top, 6, 8, c, "$Q$: T x H", col_colours=by_head)
diagrams.arrow(ax, (2.1, mid), (3.3, mid), "split")
for n in range(4):  # (B, T, H) -> (B, h, T, d): head n is channels 2n, 2n+1
    diagrams.grid(ax, 3.45 + n * 0.85, top, 6, 2, c, f"head {n}", colour=heads_colours[n])
ax.text(5.0, 0.5, "b t (h d) -> b h t d", ha="center", fontsize=8)
diagrams.arrow(ax, (6.8, mid), (8.0, mid), "attention\nper head")
for n in range(4):
    diagrams.grid(ax, 8.15 + n * 0.85, top, 6, 2, c, f"out {n}", colour=heads_colours[n])
diagrams.arrow(ax, (11.5, mid), (12.6, mid), "merge")
diagrams.grid(ax, 12.7, top, 6, 8, c, "T x H", col_colours=by_head)
ax.text(13.6, 0.5, "b h t d -> b t (h d)", ha="center", fontsize=8)
diagrams.arrow(ax, (14.55, mid), (15.3, mid), "$W_O$")
diagrams.grid(ax, 15.4, top, 6, 8, c, "mixed", colour="#cdb4db")
plt.show()

# %% [markdown]
# ### Exercise 1: split and merge the heads
#
# Write the two reshapes without einops, with `.view` (or `.reshape`) and `.transpose`:
# `split_heads(t, num_heads)` turns $(B, T, H)$ into $(B, h, T, H/h)$ with head $n$ owning channels
# $n \cdot d$ to $(n+1) \cdot d - 1$, and `merge_heads(t)` undoes it. The check compares
# `split_heads` with the einops pattern above on two shapes, and requires
# `merge_heads(split_heads(x, h))` to give back `x`.

# %%
# exercise: split_and_merge_heads
def split_heads(t: torch.Tensor, num_heads: int) -> torch.Tensor:
    raise NotImplementedError("(B, T, H) -> (B, heads, T, H // heads)")


def merge_heads(t: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError("(B, heads, T, d) -> (B, T, heads * d)")


# %%
def split_then_merge(t, num_heads):
    return split_heads(t, num_heads), merge_heads(split_heads(t, num_heads))


wide_x = torch.randn(3, 6, 48)
check("split_and_merge_heads", split_then_merge, [
    (f"x of shape {tuple(t.shape)} split into {n} head(s)", (t, n), (rearrange(t, "b t (h d) -> b h t d", h=n), t))
    for t, n in [(x, HEADS), (wide_x, 12), (wide_x, 1)]
])

# %% [markdown]
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
# is the identity, which is what we use here.) The data path, drawn: the top row is RoBERTa's
# post-LN block; the bottom row is the pre-LN block of GPT-2 and later models, for comparison
# (the residual path there never passes through a norm).

# %%
STYLE = {"attention": ("multi-head\nattention", "#dbe9f6"), "FFN": ("FFN\nH -> 4H -> H", "#d5ecd4"),
         "LN": ("LayerNorm", "#f6e2c4"), "+": ("+", "white"), "x": ("x", "white"), "y": ("y", "white")}


def block_row(ax, y0, title, steps, residuals):
    """Boxes x, *steps, y left to right; each residual (i, j) runs from box i to the sum box j."""
    kinds = ["x", *steps, "y"]
    xs = [0.6 + 2.05 * n for n in range(len(kinds))]
    half = [0.25 if k in "+xy" else 0.8 for k in kinds]
    ax.text(0.2, y0 + 1.25, title, fontsize=10, weight="bold")
    for n, (cx, kind) in enumerate(zip(xs, kinds)):
        label, colour = STYLE[kind]
        diagrams.box(ax, cx, y0, label, width=2 * half[n], height=0.5 if half[n] < 0.5 else 0.8, colour=colour)
        if n:
            diagrams.arrow(ax, (xs[n - 1] + half[n - 1], y0), (cx - half[n], y0))
    for i, j in residuals:
        diagrams.arrow(ax, (xs[i], y0 + 0.42), (xs[j], y0 + 0.27), "residual", curve=-0.2)


fig, ax = plt.subplots(figsize=(12, 4.2))
diagrams.canvas(ax, 16.8, 4.9)
block_row(ax, 3.2, "post-LN (BERT, RoBERTa): the norm sits on the residual path",
          ["attention", "+", "LN", "FFN", "+", "LN"], residuals=[(0, 2), (3, 5)])
block_row(ax, 0.6, "pre-LN (GPT-2 and later): the residual path skips the norms",
          ["LN", "attention", "+", "LN", "FFN", "+"], residuals=[(0, 3), (3, 6)])
plt.show()

# %% [markdown]
# LayerNorm itself, by hand, against torch's:

# %%
config = minirob.RobertaConfig.tiny(hidden_size=H, num_attention_heads=HEADS, intermediate_size=4 * H)
layer = EncoderLayer(config).eval()


def layer_norm_by_hand(z, norm):
    mu = z.mean(dim=-1, keepdim=True)  # (B, T, 1)
    var = z.var(dim=-1, keepdim=True, unbiased=False)  # biased, as LayerNorm defines it
    return norm.weight * (z - mu) / torch.sqrt(var + norm.eps) + norm.bias


torch.testing.assert_close(layer_norm_by_hand(x, layer.attention_norm), layer.attention_norm(x))
print("layer_norm_by_hand == torch.nn.LayerNorm")
print("inside the FFN:", tuple(x.shape), "-> up", tuple(layer.feed_forward.up(x).shape),
      "-> GELU -> down", tuple(layer.feed_forward.down(layer.feed_forward.up(x)).shape))

# %% [markdown]
# ### Exercise 2: the post-LN block
#
# Write `post_ln_layer(layer, x, bias)` that computes what `layer(x, bias)` computes, from its
# parts: `layer.attention(x, bias)` returns `(output, weights)`; `layer.feed_forward.up` and
# `.down` are the FFN's two linear maps (use `F.gelu` between them); `layer.attention_norm` and
# `layer.output_norm` hold the two LayerNorms' $\gamma$ (`.weight`), $\beta$ (`.bias`) and
# $\varepsilon$ (`.eps`), for `layer_norm_by_hand`. Follow the top row of the diagram. The check
# runs it on a padded batch, an unpadded one, and a second layer of a different size.

# %%
# exercise: post_ln_layer
def post_ln_layer(layer: EncoderLayer, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError("h = LN(x + attention(x)); y = LN(h + FFN(h))")


# %%
other_layer = EncoderLayer(minirob.RobertaConfig.tiny(hidden_size=48, num_attention_heads=3,
                                                      intermediate_size=96)).eval()
x_other = torch.randn(2, 4, 48)
no_padding = padding_mask_to_bias(torch.ones(B, T), x.dtype)
with torch.no_grad():
    check("post_ln_layer", post_ln_layer, [
        ("the padded batch (sentence 2 has 2 pads)", (layer, x, bias), layer(x, bias)),
        ("the same batch without padding", (layer, x, no_padding), layer(x, no_padding)),
        ("a layer of width 48 with 3 heads", (other_layer, x_other, no_padding[:, :, :, :4]),
         other_layer(x_other, no_padding[:, :, :, :4])),
    ])

# %%
y = layer(x, bias).detach()  # (B, T, H): the library's layer, the same numbers as yours
quote("largest_mean", y.mean(-1).abs().max().item(), ".0e")
quote("std_range", f"{y.std(-1, unbiased=False).min():.4f} to {y.std(-1, unbiased=False).max():.4f}")
assert y.mean(-1).abs().max() < 1e-5 and (y.std(-1, unbiased=False) - 1).abs().max() < 1e-3

# %% [markdown]
# Because LayerNorm comes last, every layer's output has, per token, mean $\beta$-ish and spread
# $\gamma$-ish: at initialisation ($\gamma = 1, \beta = 0$) mean 0 (the largest $|$mean$|$ over
# the tokens here is {{largest_mean}}) and standard deviation 1 (here {{std_range}}).
#
# **Why GELU?** It is a smooth ReLU: $\operatorname{gelu}(z) = z\,\Phi(z)$, the input times the
# probability that a standard normal is below it. RoBERTa uses the exact form with the error
# function; GPT-2 popularised a $\tanh$ approximation. They differ by less than $10^{-3}$ (at most
# {{gelu_gap}} on the plotted range), which is small but enough to break a $10^{-5}$ parity test against the original weights, so
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
assert (exact - approx).abs().max() < 1e-3
quote("gelu_gap", (exact - approx).abs().max().item(), ".1e")

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
# LayerNorm; section 5 looks at the position ids) followed by the stack of layers. `.trace(...)`
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
# ## 5. Position ids: where each token sits
#
# Attention on its own has no sense of order: shuffle the tokens and every output is shuffled the
# same way, since nothing in $QK^\top$ says which token came first. Order enters through the
# **position embedding**, a table with one learned row per position; each token's row is added to
# its token embedding. Which row a token gets is its **position id**, and here BERT and RoBERTa
# differ.
#
# **BERT** numbers the slots: position ids $0, 1, \dots, T-1$ in every sentence, padding
# included, from a table of 512 rows for at most 512 tokens.
#
# **RoBERTa** (following fairseq) counts only the real tokens, starting after the padding index
# $p$ (`pad_token_id`, which is 1):
#
# $$ \text{position\_ids} = \operatorname{cumsum}(m) \odot m + p, \qquad m_t = [\,\text{id}_t \neq p\,] . $$
#
# The first real token gets $p + 1 = 2$, the next 3, and so on; every pad gets $p$ itself, whose
# row is the embedding's `padding_idx` (zeros, never trained). Rows $0$ to $p$ never serve a real
# token, so 512 tokens need rows 2 to 513 and the table has **{{roberta_rows}} rows** for at most
# {{roberta_max_tokens}} tokens. Here are both numberings on a right-padded batch (pads at the
# end, as `minirob.Tokenizer` pads) and on a left-padded one (pads in front):

# %%
pad = tiny.pad_token_id
right = torch.tensor([[0, 3141, 232, 2, pad, pad], [0, 713, 16, 10, 1296, 2]])  # (B=2, T=6)
left = torch.tensor([[pad, pad, 0, 3141, 232, 2], [0, 713, 16, 10, 1296, 2]])  # same sentences
for name, batch in [("right-padded", right), ("left-padded", left)]:
    print(f"{name}\n  ids              {batch.tolist()}\n  RoBERTa positions {roberta_position_ids(batch, pad).tolist()}"
          f"\n  BERT positions    {absolute_position_ids(batch).tolist()}")
base = minirob.RobertaConfig.base()
assert base.max_position_embeddings == 514 and base.max_sequence_length == 512
quote("roberta_rows", base.max_position_embeddings)
quote("roberta_max_tokens", base.max_sequence_length)

# %% [markdown]
# With RoBERTa's numbering, the first sentence's four real tokens get positions 2, 3, 4, 5 wherever
# the pads are; with BERT's they get 0-3 on the right-padded batch but 2-5 on the left-padded one.
# So the padding side changes a BERT-style model's output, and leaves a RoBERTa-style one alone.
# Two untrained tiny models, the same except for `position_style`, show it:

# %%
torch.manual_seed(0)
roberta_like = minirob.RobertaModel(tiny).eval()
bert_like = minirob.RobertaModel(minirob.RobertaConfig.tiny(position_style="absolute")).eval()


def real_token_outputs(m, batch):
    """(4, H): the model's outputs at the first sentence's real tokens."""
    with torch.no_grad():
        out = m(batch, attention_mask=(batch != pad).long())  # (B, T, H)
    return out[0][batch[0] != pad]


gaps = {name: (real_token_outputs(m, right) - real_token_outputs(m, left)).abs().max().item()
        for name, m in [("roberta", roberta_like), ("bert", bert_like)]}
print("largest change at the real tokens, right- vs left-padded:", gaps)
assert gaps["roberta"] < 1e-4 and gaps["bert"] > 0.1
quote("roberta_gap", gaps["roberta"], ".0e")
quote("bert_gap", gaps["bert"], ".2f")

# %% [markdown]
# Moving the pads from the back to the front changes the RoBERTa-style outputs at the real tokens
# by at most {{roberta_gap}} (rounding), and the BERT-style ones by up to {{bert_gap}}.
#
# ### Exercise 3: RoBERTa's position ids
#
# Write `my_roberta_position_ids(input_ids, padding_idx)` for a $(B, T)$ batch of ids, from the
# formula above (`torch.cumsum` and a 0/1 mask). The check compares it with
# `minirob.embeddings.roberta_position_ids` on the right- and left-padded batches and on one padded
# with id 0, then feeds your ids through the model's own embedding tables and compares the result
# with the model's embedding layer.

# %%
# exercise: roberta_position_ids
def my_roberta_position_ids(input_ids: torch.Tensor, padding_idx: int) -> torch.Tensor:
    raise NotImplementedError("count the real tokens with cumsum, keep pads at padding_idx")


# %%
zero_padded = torch.where(right == pad, 0, right + 10)  # different ids, padding id 0
embeddings = roberta_like.embeddings


def embeddings_with_your_positions(batch):
    """What the model's embedding layer computes, with your position ids in place of its own."""
    positions = my_roberta_position_ids(batch, pad)
    return embeddings.norm(embeddings.token(batch) + embeddings.position(positions)
                           + embeddings.token_type(torch.zeros_like(batch)))


if check("roberta_position_ids", my_roberta_position_ids, [
    ("the right-padded batch", (right, pad), roberta_position_ids(right, pad)),
    ("the left-padded batch", (left, pad), roberta_position_ids(left, pad)),
    ("a batch padded with id 0 (padding_idx=0)", (zero_padded, 0), roberta_position_ids(zero_padded, 0)),
]):
    with torch.no_grad():
        check("roberta_position_ids in the model", embeddings_with_your_positions, [
            (f"the {name} batch", (b,), embeddings(b)) for name, b in [("right-padded", right), ("left-padded", left)]
        ])

# %% [markdown]
# ## 6. Counting roberta-base's parameters
#
# Every learned number lives in one of a handful of matrices. Writing $V$ for the vocabulary
# (50,265), $P$ for the position table (514 rows: 512 tokens plus RoBERTa's offset of
# `padding_idx + 1`, section 5), $H = 768$, $I = 3072$, $L = 12$ layers:
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
token_table = base.vocab_size * base.hidden_size
quote("token_table", token_table / 1e6, ".1f")
quote("embedding_share", parts["embeddings"] / total, ".0%")
ffn_over_attention = parts["feed-forward (all layers)"] / parts["attention (all layers)"]
quote("ffn_over_attention", ffn_over_attention, ".2f")
assert 0.29 < parts["embeddings"] / total < 1 / 3 and 1.9 < ffn_over_attention < 2.1

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
# Almost a third of roberta-base ({{embedding_share}}) is its embedding layer, mostly the token
# table ($50{,}265 \times 768 \approx$ {{token_table}}M), and the feed-forward networks outweigh
# the attention two to one ({{ffn_over_attention}} times as many parameters). That is why small models for
# experiments (like `RobertaConfig.tiny()`, which chapter 4 pretrains) shrink the vocabulary as
# well as the width.
#
# ### Exercise 4: roberta-large
#
# roberta-large has 24 layers of width 1024 with 16 heads and a 4096-wide FFN
# (`RobertaConfig.large()`). Before running anything, use the table to predict (a) how many
# parameters its **encoder without the MLM head** has, and (b) by how much that number changes
# with 8 heads instead of 16. Return both from `predict_large()`; the check builds the models on
# the meta device (shapes only) and compares.

# %%
# exercise: predict_large
def predict_large() -> tuple[int, int]:
    raise NotImplementedError("return (encoder parameters, change with 8 heads instead of 16)")


# %%
with torch.device("meta"):
    large_encoder = minirob.RobertaModel(minirob.RobertaConfig.large(), add_pooling_layer=False)
    large_8 = minirob.RobertaModel(minirob.RobertaConfig.large(num_attention_heads=8), add_pooling_layer=False)
check("predict_large", predict_large, [
    ("roberta-large's encoder (no MLM head, no pooler), then the 8-head version's difference", (),
     (large_encoder.num_parameters(), large_8.num_parameters() - large_encoder.num_parameters())),
])
