# Chapter 1 of the minirob tutorials: attention from scratch.
# Source of tutorials/01_attention.ipynb; rebuild with `.venv/bin/python tutorials/build.py 01`.

# %% [markdown]
# # Chapter 1 · Attention from scratch
#
# Every layer of RoBERTa does the same two things: it lets each token *look at* the other tokens
# of the sentence and gather what it needs (attention), then it thinks about what it gathered on
# its own (a small feed-forward network). This chapter is about the first half. By the end you
# will have written attention yourself in four lines, checked it against `minirob` and against
# PyTorch's fused kernel, seen why the scores are divided by $\sqrt{d}$, made padding invisible
# with a mask, and drawn the weights as a heatmap.
#
# **Exercises.** Two cells ask you to write code: they hold a stub that raises
# `NotImplementedError`, and the cell after each checks your answer against `minirob` on a few
# inputs. Until you write it, the check says "not attempted yet" and the chapter carries on; a
# wrong answer is reported with the input, the expected value and yours. Answers are in
# `tutorials/solutions/01_attention.py` (look after trying).
#
# **Budget.** Runs in well under a minute on a laptop CPU. Setting the environment variable
# `MINIROB_TUTORIAL_FAST=1` shrinks the few loops to seconds (that is how CI runs it).

# %%
import math
import os
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import minirob
from minirob.attention import fused_attention, padding_mask_to_bias, scaled_dot_product_attention

import diagrams  # tutorials/diagrams.py: boxes, grids and arrows for the figures
from checks import check, quote  # tutorials/checks.py: exercise checks, numbers quoted in the text

FAST = os.environ.get("MINIROB_TUTORIAL_FAST") == "1"
torch.manual_seed(0)
torch.set_printoptions(precision=3, sci_mode=False)
print("minirob", minirob.__version__, "| torch", torch.__version__, "| fast mode:", FAST)

# %% [markdown]
# ## 1. The idea: a soft dictionary look-up
#
# A Python dictionary maps a key to a value: you ask with a query, exactly one key matches, you
# get its value. Attention is the *soft* version. Every token $i$ of a sentence carries three
# vectors of the same width $d$:
#
# * a **query** $q_i$: what am I looking for?
# * a **key** $k_j$: what do I offer to someone looking?
# * a **value** $v_j$: what do I hand over if I am chosen?
#
# Instead of one exact match, token $i$ scores *every* key by a dot product, turns the scores
# into weights that are positive and sum to one (the softmax), and returns the weighted mix of
# the values:
#
# $$ s_{ij} = \frac{q_i \cdot k_j}{\sqrt{d}}, \qquad
#    a_{ij} = \frac{e^{s_{ij}}}{\sum_{j'} e^{s_{ij'}}}, \qquad
#    o_i = \sum_j a_{ij}\, v_j . $$
#
# Stacking the vectors as rows of matrices $Q, K, V \in \mathbb{R}^{T\times d}$ for a sentence of
# $T$ tokens, all of it is one line:
#
# $$ \operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\Big(\frac{QK^\top}{\sqrt{d}}\Big)\, V . $$
#
# Let us do it by hand first, on three tokens with $d = 2$ so every number fits on the screen.

# %%
q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # (T=3, d=2) one query per token
k = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # (3, 2) one key per token
v = torch.tensor([[10.0, 0.0], [0.0, 10.0], [5.0, 5.0]])  # (3, 2) one value per token

scores = q @ k.T / math.sqrt(2)  # (3, 3): row i = how well query i matches each key
weights = scores.softmax(dim=-1)  # (3, 3): each row is a probability distribution
out = weights @ v  # (3, 2): each row a weighted mix of the value rows
print("scores\n", scores, "\nweights\n", weights, "\nrow sums", weights.sum(-1), "\noutput\n", out)
quote("score_00", scores[0, 0].item(), ".2f")
quote("weights_0", ", ".join(f"{w:.2f}" for w in weights[0].tolist()))

# %% [markdown]
# Read the first row: query 0 points along the first axis, so it agrees with key 0 (score
# $1/\sqrt2 \approx$ {{score_00}}), is indifferent to key 1 (score 0) and disagrees with key 2
# (score $-1/\sqrt2$). The softmax turns that into weights {{weights_0}}, and the output leans
# towards value 0. Nothing is ever picked outright: every value contributes a little. That softness is
# what makes attention differentiable, so a network can *learn* where to look.
#
# The softmax itself, written out for one row, is just "exponentiate, then normalise". We
# subtract the row's maximum first: it changes nothing mathematically (it cancels between the
# numerator and the denominator) but keeps `exp` from overflowing for large scores.

# %%
def softmax_by_hand(row: torch.Tensor) -> torch.Tensor:
    shifted = row - row.max()  # same result, no overflow
    e = shifted.exp()
    return e / e.sum()


for i in range(3):
    torch.testing.assert_close(softmax_by_hand(scores[i]), weights[i])
print("hand softmax == torch softmax on every row")
print("overflow-safe:", softmax_by_hand(torch.tensor([1000.0, 1001.0])))

# %% [markdown]
# ## 2. The batched, multi-head shape, and three implementations that agree
#
# Real models process a **batch** of $B$ sentences at once and split the width into several
# **heads** (chapter 2 explains why). The tensors are then $(B, \text{heads}, T, d)$ and the same
# formula applies to the last two dimensions; `@` broadcasts over the first two.
#
# Here is the whole thing, our own version. Compare it with `scaled_dot_product_attention` in
# [`minirob/attention.py`](../minirob/attention.py): it should read almost the same.

# %%
def my_attention(query, key, value, bias=None):
    """query/key/value: (B, heads, T, d); bias: additive, broadcastable to (B, heads, T, T)."""
    d = query.shape[-1]
    scores = query @ key.transpose(-2, -1) / math.sqrt(d)  # (B, heads, T, T)
    if bias is not None:
        scores = scores + bias
    weights = scores.softmax(dim=-1)  # normalise over the keys (last dimension)
    return weights @ value, weights  # (B, heads, T, d), (B, heads, T, T)


B, HEADS, T, D = 2, 4, 7, 16
Q, K, V = (torch.randn(B, HEADS, T, D) for _ in range(3))

ours, ours_w = my_attention(Q, K, V)
lib, lib_w = scaled_dot_product_attention(Q, K, V)  # minirob's written-out version
fused = fused_attention(Q, K, V)  # torch.nn.functional.scaled_dot_product_attention
torch.testing.assert_close(ours, lib)
torch.testing.assert_close(ours_w, lib_w)
torch.testing.assert_close(ours, fused)
print("ours == minirob's == torch's fused kernel")
quote("fused_gap", (ours - fused).abs().max().item(), ".1e")

# %% [markdown]
# The fused kernel (`F.scaled_dot_product_attention`) computes the same numbers without ever
# handing back the $(T \times T)$ weight matrix, which lets it use less memory and fewer passes.
# That is why `minirob` runs the fused kernel by default (`attention_backend="fused"`) and the
# written-out one when you ask for the weights, e.g. through `model.trace(...)`. The two differ
# only by floating-point rounding (the order of additions differs): here at most {{fused_gap}}
# in float32.
#
# How much faster is it? A timing on a shared machine is noisy, so we interleave the two
# versions in one loop and report the *ratio* of their medians rather than absolute times.

# %%
def median_ratio(f, g, reps):
    tf, tg = [], []
    for _ in range(reps):  # interleaved: both see the same machine load
        t0 = time.perf_counter(); f(); t1 = time.perf_counter(); g(); t2 = time.perf_counter()
        tf.append(t1 - t0); tg.append(t2 - t1)
    tf.sort(); tg.sort()
    return tf[reps // 2] / tg[reps // 2]


Qb, Kb, Vb = (torch.randn(8, 12, 128, 64) for _ in range(3))  # roberta-base's heads, 128 tokens
ratio = median_ratio(lambda: scaled_dot_product_attention(Qb, Kb, Vb),
                     lambda: fused_attention(Qb, Kb, Vb), reps=5 if FAST else 30)
print(f"written-out / fused time on this CPU: {ratio:.2f}x (a ratio, measured interleaved)")

# %% [markdown]
# ## 3. Why divide by $\sqrt{d}$?
#
# If the entries of $q$ and $k$ are independent with mean 0 and variance 1, their dot product
# $q \cdot k = \sum_{m=1}^{d} q_m k_m$ is a sum of $d$ terms of variance 1, so it has variance
# $d$ and a typical size of $\sqrt{d}$. With $d = 64$ (roberta-base's head width) raw scores of
# $\pm 8$ or more are common (the measured spread below: {{std_64}}), and a softmax over such scores is nearly one-hot: one key takes
# almost all the weight, and the gradient through the others all but vanishes. Dividing by
# $\sqrt d$ brings the variance back to 1 whatever the width. Let us measure both claims.

# %%
widths = [4, 16, 64, 256, 1024]
samples = 200 if FAST else 2000
raw_std, peak_raw, peak_scaled = [], [], []
for d in widths:
    qs, ks = torch.randn(samples, 16, d), torch.randn(samples, 16, d)  # 16 keys per query
    s = torch.einsum("nd,nkd->nk", qs[:, 0], ks)  # (samples, 16) raw dot products
    raw_std.append(s.std().item())
    peak_raw.append(s.softmax(-1).max(-1).values.mean().item())  # weight of the top key
    peak_scaled.append((s / math.sqrt(d)).softmax(-1).max(-1).values.mean().item())

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
ax1.plot(widths, raw_std, "o-", label="measured std of $q\\cdot k$")
ax1.plot(widths, [math.sqrt(d) for d in widths], "k--", label="$\\sqrt{d}$")
ax1.set(xscale="log", yscale="log", xlabel="head width d", title="raw scores grow like $\\sqrt{d}$")
ax1.legend()
ax2.plot(widths, peak_raw, "o-", label="softmax($q\\cdot k$)")
ax2.plot(widths, peak_scaled, "s-", label="softmax($q\\cdot k/\\sqrt{d}$)")
ax2.axhline(1 / 16, color="gray", ls=":", label="uniform (1/16)")
ax2.set(xscale="log", ylim=(0, 1.05), xlabel="head width d", ylabel="mean weight of the top key",
        title="unscaled attention collapses onto one key")
ax2.legend()
plt.tight_layout()
plt.show()
for d, r in zip(widths, raw_std):
    assert 0.8 < r / math.sqrt(d) < 1.2, (d, r)  # the variance argument holds
print("std / sqrt(d):", [round(r / math.sqrt(d), 3) for d, r in zip(widths, raw_std)])
quote("std_64", raw_std[widths.index(64)], ".1f")

# %% [markdown]
# On the left, the measured spread of the raw scores sits on the $\sqrt d$ line. On the right,
# without the scaling the top key's weight climbs towards 1 as the heads get wider; with it, the
# distribution stays equally soft at every width. (Trained models do learn sharp attention where
# it helps; the scaling just makes sure they *start* soft, where gradients flow.)
#
# ## 4. Masks: making padding invisible
#
# Sentences in a batch have different lengths, so the short ones are padded with a `<pad>` token
# up to the longest. Those positions must not be attended to, or a sentence's meaning would
# depend on how much padding its neighbours forced on it. The trick is an **additive mask**
# $M$, added to the scores before the softmax:
#
# $$ \operatorname{softmax}\Big(\frac{QK^\top}{\sqrt d} + M\Big), \qquad
#    M_{ij} = \begin{cases} 0 & \text{key } j \text{ is a real token} \\
#    -\infty & \text{key } j \text{ is padding} \end{cases} $$
#
# since $e^{-\infty} = 0$. `minirob` builds $M$ from the usual `attention_mask` (1 = token,
# 0 = padding) with `padding_mask_to_bias`, using the most negative finite float instead of
# $-\infty$. Why? If a row had *only* padding keys, $-\infty$ everywhere would give
# $0/0 = \text{NaN}$, while a huge finite number gives a harmless uniform row.

# %%
attention_mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1],   # a 7-token sentence
                               [1, 1, 1, 1, 0, 0, 0]])  # a 4-token sentence + 3 pads
bias = padding_mask_to_bias(attention_mask, torch.float32)  # (B, 1, 1, T)
print("bias shape", tuple(bias.shape), "| row for sentence 2:", [f"{x:.3g}" for x in bias[1, 0, 0].tolist()])

out_masked, w_masked = my_attention(Q, K, V, bias)
print("weight on padded keys (sentence 2):", w_masked[1, :, :, 4:].abs().max().item())
torch.testing.assert_close(out_masked, fused_attention(Q, K, V, bias))  # fused agrees with a mask too

# The real test of a mask: sentence 2's first four outputs must equal running it *alone*, unpadded.
alone, _ = my_attention(Q[1:, :, :4], K[1:, :, :4], V[1:, :, :4])
torch.testing.assert_close(out_masked[1:, :, :4], alone)
print("padded sentence == same sentence without padding: the pads are invisible")

# A row of pure padding stays finite with a finite bias, and becomes NaN with -inf:
all_pad = torch.zeros(1, 3)
finite = my_attention(Q[:1, :1, :3], K[:1, :1, :3], V[:1, :1, :3],
                      padding_mask_to_bias(all_pad, torch.float32))[1]
infinite = my_attention(Q[:1, :1, :3], K[:1, :1, :3], V[:1, :1, :3],
                        torch.full((1, 1, 1, 3), float("-inf")))[1]
print("finite bias:", finite[0, 0, 0], "| -inf bias:", infinite[0, 0, 0])

# %% [markdown]
# Here is the whole computation for one head of a 5-token sentence whose last two tokens are
# padding, drawn as the matrices it multiplies. The mask acts on the *columns* of the score
# matrix (the keys); the padded rows of $V$ are then multiplied by zero weights and never reach the
# output. The padded *queries* (rows 3-4) still get an output, attending to the real tokens; the
# model ignores those rows later (the loss and the pooling skip them).

# %%
fig, ax = plt.subplots(figsize=(13, 2.6))
diagrams.canvas(ax, 17.4, 2.9)
c, top, mid = 0.3, 2.35, 2.35 - 0.75  # cell size, top edge of the matrices, their middle
diagrams.grid(ax, 0.1, top, 5, 3, c, "$Q$ (T x d)")
ax.text(1.2, mid, "x", ha="center", va="center", fontsize=12)
diagrams.grid(ax, 1.45, top - 0.3, 3, 5, c, "$K^T$ (d x T)", shade_cols=(3, 4))
diagrams.arrow(ax, (3.05, mid), (4.45, mid), "/ $\\sqrt{d}$ + M")
diagrams.grid(ax, 4.55, top, 5, 5, c, "scores + M (T x T)", colour="#f6e2c4", shade_cols=(3, 4))
diagrams.arrow(ax, (6.15, mid), (7.55, mid), "softmax")
diagrams.grid(ax, 7.65, top, 5, 5, c, "weights A (T x T)", colour="#d5ecd4", shade_cols=(3, 4))
ax.text(9.45, mid, "x", ha="center", va="center", fontsize=12)
diagrams.grid(ax, 9.75, top, 5, 3, c, "$V$ (T x d)", shade_rows=(3, 4))
diagrams.arrow(ax, (10.75, mid), (12.15, mid), "=")
diagrams.grid(ax, 12.25, top, 5, 3, c, "output $AV$ (T x d)", colour="#e4d7f0")
ax.text(13.4, 0.55, "hatched: padding (keys 3-4).\nM = most negative float there,\nso those weights are 0",
        fontsize=8, va="center")
plt.show()

# %% [markdown]
# ### Exercise 1: attention with a padding mask
#
# Write `masked_attention(query, key, value, attention_mask)`: `query`, `key`, `value` are
# $(B, \text{heads}, T, d)$ and `attention_mask` is the usual $(B, T)$ tensor of 1 (token) and 0
# (padding). Return the attention output $(B, \text{heads}, T, d)$ in which no query gives any
# weight to a padded key. Build the mask yourself (no `padding_mask_to_bias`); `masked_fill`
# and broadcasting with `[:, None, None, :]` are your friends. The check compares with `minirob`
# on a right-padded batch (pads at the end, as `minirob.Tokenizer` makes them), a left-padded one
# (pads in front, as some decoders like) and one without padding.

# %%
# exercise: masked_attention
def masked_attention(query, key, value, attention_mask):
    raise NotImplementedError("compute the scores, hide the padded keys, softmax, weight the values")


# %%
right_padded = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]])  # (B=2, T=7)
left_padded = right_padded.flip(-1)  # the same lengths, pads in front
unpadded = torch.ones(2, 7, dtype=torch.long)
check("masked_attention", masked_attention, [
    (f"the {name} batch with attention_mask {m.tolist()}", (Q, K, V, m),
     scaled_dot_product_attention(Q, K, V, padding_mask_to_bias(m, Q.dtype))[0])
    for name, m in [("right-padded", right_padded), ("left-padded", left_padded), ("unpadded", unpadded)]
])

# %% [markdown]
# ## 5. Seeing attention: heatmaps
#
# A row of the weight matrix says where one token looked. Drawn as an image (queries down,
# keys across) the whole matrix becomes a picture of the sentence's internal wiring. To make the
# pictures meaningful before we have a trained model (that comes in chapter 5), we *design* two
# heads by hand, the way one can read them off trained models:
#
# * a **previous-token head**: the query of position $i$ is the position code of $i-1$, the
#   key of position $j$ is the position code of $j$, so the score peaks at $j = i - 1$ (the
#   first token has no predecessor; our codes wrap round, so it looks at the last one);
# * a **same-word head**: queries and keys are both the word's identity, so every token looks
#   at all copies of itself.
#
# Then we run a (randomly initialised) `minirob` model on a padded batch with `.trace(...)`,
# which hands back every layer's weights, and check that the padding columns are empty.

# %%
words = "the cat sat on the mat because the cat was tired".split()
T_s = len(words)

def sharp(d: int) -> float:
    """A query scale that gives the matching key a score of 5 after the 1/sqrt(d): e^5 wins clearly."""
    return 5.0 * math.sqrt(d)


positions = torch.eye(T_s)  # position codes: one-hot rows
prev_q = torch.roll(positions, shifts=1, dims=0) * sharp(T_s)  # query of i = code of i-1 (row 0 wraps)
prev_w = my_attention(prev_q[None, None], positions[None, None], positions[None, None])[1][0, 0]

vocab = sorted(set(words))
identity = torch.stack([F.one_hot(torch.tensor(vocab.index(w)), len(vocab)).float() for w in words])
same_w = my_attention((identity * sharp(len(vocab)))[None, None], identity[None, None], identity[None, None])[1][0, 0]

fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
for ax, w, title in zip(axes, (prev_w, same_w), ("previous-token head", "same-word head")):
    ax.imshow(w, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(T_s), words, rotation=60)
    ax.set_yticks(range(T_s), words)
    ax.set(title=title, xlabel="key (looked at)", ylabel="query (looking)")
plt.tight_layout()
plt.show()
assert (prev_w[1:].argmax(-1) == torch.arange(T_s - 1)).all()  # every token i>0 looks at i-1
the_at = [i for i, w in enumerate(words) if w == "the"]
cat_at = [i for i, w in enumerate(words) if w == "cat"]
assert len(the_at) == 3 and len(cat_at) == 2  # "the three *the*s and the two *cat*s" below
assert all(same_w[i, j] > 0.3 for i in the_at for j in the_at)  # each *the* splits its weight over all three
quote("the_at", ", ".join(map(str, the_at[:-1])) + f" and {the_at[-1]}")
quote("cat_at", " and ".join(map(str, cat_at)))

# %%
config = minirob.RobertaConfig.small(num_hidden_layers=2)  # 4 heads of width 64
model = minirob.RobertaModel(config).eval()
ids = torch.tensor([[0, 713, 16, 10, 1296, 2, 1, 1],   # <s> ... </s> <pad> <pad>
                    [0, 2264, 16, 24, 116, 328, 4, 2]])
mask = (ids != config.pad_token_id).long()
with torch.no_grad():
    trace = model.trace(ids, attention_mask=mask)
print("hidden states:", len(trace.hidden_states), "x", tuple(trace.hidden_states[0].shape),
      "| attention maps:", len(trace.attentions), "x", tuple(trace.attentions[0].shape))

fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
for h, ax in enumerate(axes):
    ax.imshow(trace.attentions[0][0, h], cmap="Blues", vmin=0, vmax=1)  # same scale as above
    ax.set(title=f"layer 0, head {h}", xlabel="key", ylabel="query" if h == 0 else None)
plt.suptitle("an untrained tiny model on a padded sentence: columns 6-7 (padding) are empty")
plt.tight_layout()
plt.show()
assert trace.attentions[0][0, :, :, 6:].max() < 1e-6  # no weight on padding, in every head

# %% [markdown]
# The designed heads show clean patterns: a sub-diagonal for "look one step back", and
# off-diagonal blocks linking the three *the*s (positions {{the_at}}) and the two *cat*s
# (positions {{cat_at}}). The untrained model's heads are
# nearly uniform, a wash of pale blue, because its random queries and keys have no preferences yet;
# what they do show is the mask at work: the last two columns (the padding) are blank in every
# head. Chapter 5 draws the same maps for a real pretrained model, where structure appears.
#
# ### Exercise 2: a causal mask
#
# GPT-style decoders let token $i$ see only tokens $j \le i$ (no peeking at the future). That is
# another additive mask: 0 on and below the diagonal, a very negative number above it.
# Write `causal_bias(T)` returning a $(T, T)$ float tensor that does this (`torch.triu` helps).
# The check runs `my_attention` with your bias on the first $T$ tokens of the batch above and
# compares the output with PyTorch's own `is_causal=True` attention.

# %%
# exercise: causal_bias
def causal_bias(T: int) -> torch.Tensor:
    raise NotImplementedError("0 where key <= query, a very negative number above the diagonal")


# %%
def attention_with_your_causal_bias(n: int) -> torch.Tensor:
    return my_attention(Q[:, :, :n], K[:, :, :n], V[:, :, :n], causal_bias(n))[0]


check("causal_bias", attention_with_your_causal_bias, [
    (f"T = {n}", (n,), F.scaled_dot_product_attention(Q[:, :, :n], K[:, :, :n], V[:, :, :n], is_causal=True))
    for n in (1, 4, T)
])
