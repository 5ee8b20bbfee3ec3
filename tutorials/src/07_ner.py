# Chapter 7 of the minirob tutorials: fine-tuning for named-entity recognition.
# Source of tutorials/07_ner.ipynb; rebuild with `.venv/bin/python tutorials/build.py 07`.

# %% [markdown]
# # Chapter 7 · Fine-tuning for named-entity recognition
#
# Chapter 6 gave a whole sentence one label. **Named-entity recognition** (NER) labels every
# *word*: is it part of a person's name, a place, a company, a product? The model is the same
# encoder with a different head: a single linear layer applied to *every* output vector, giving
# one label distribution per token.
#
# Our data is WNUT-16 (Strauss et al., 2016): 2,394 English tweets annotated with 10 entity types.
# Tweets are a hard case on purpose: informal spelling, hashtags, and many "emerging" entities
# (new bands, new products) that no training set could have listed. We meet the BIO tagging
# scheme, solve the word/subword mismatch, fine-tune the pretrained MiniLM, score it the strict
# CoNLL way (a whole entity must be exactly right), and highlight its predictions in text.
#
# **Budget.** Under five minutes at the default settings on an idle 2-core CPU: most of it is the
# fine-tuning run, `EPOCHS` passes over all 1,916 training tweets, and one pass for the
# random-start baseline. `MINIROB_TUTORIAL_FAST=1` trains on a few dozen tweets for one epoch.
#
# **Exercises.** Two cells ask you to write code: first-subword label alignment, and reading the
# entities off a BIO tag sequence. Each holds a stub that raises `NotImplementedError`; the cell
# after it checks your answer against `minirob` and says "not attempted yet" until you write it, or
# exactly what differs (input, expected, got) when it is wrong. Answers:
# `tutorials/solutions/07_ner.py`.

# %%
import dataclasses
import html
import logging
import os
import tempfile
import warnings
from collections import Counter

import matplotlib.pyplot as plt
import torch
from IPython.display import HTML, display

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook-widget hint

import minirob  # noqa: E402
from minirob import datasets  # noqa: E402
from minirob.finetune import IGNORE, FinetuneConfig, FinetuneLoop, align_labels, conll_sentences, finetune  # noqa: E402
from minirob.metrics import entity_scores, extract_entities  # noqa: E402
from minirob.predict import Predictor  # noqa: E402

import diagrams  # noqa: E402  (tutorials/diagrams.py: boxes and arrows for the figures)
from checks import check, quote  # noqa: E402  (tutorials/checks.py: exercise checks, quoted numbers)

FAST = os.environ.get("MINIROB_TUTORIAL_FAST") == "1"
TRAIN_SIZE = 64 if FAST else None  # training tweets used (None: all 1,916)
EVAL_SIZE = 48 if FAST else None  # validation/test tweets used (None: all 239 each)
EPOCHS = 1 if FAST else 4  # fine-tuning from MiniLM (section 3)
BASELINE_EPOCHS = 1  # the random-start baseline (section 5)
logging.getLogger("minirob").setLevel(logging.ERROR)
torch.manual_seed(0)
print("minirob", minirob.__version__, "| fast mode:", FAST)

# %% [markdown]
# ## 1. BIO tags
#
# An entity can span several words ("New York Knicks"), so a plain "this word is a team" label
# would not say where one entity ends and the next begins. The **BIO** scheme tags each word as
# `B-type` (it **b**egins an entity), `I-type` (it continues the entity **i**nside), or `O`
# (**o**utside any entity). The entity spans are then read off the tags:

# %%
tweets = datasets.load_wnut16(progress=False)  # lists of (word, tag)
splits = datasets.split_wnut16(tweets, seed=0)
print(f"{len(tweets):,} tweets, {sum(len(t) for t in tweets):,} words; split sizes {splits.sizes()}")
assert len(tweets) == 2_394 and len(splits.train) == 1_916  # the sizes the text names

example = next(t for t in splits.train if sum(tag != "O" for _, tag in t) >= 4)
words, tags = [w for w, _ in example], [t for _, t in example]
print("\n".join(f"  {w:<16} {t}" for w, t in zip(words, tags)))
print("entities:", [(e.type, " ".join(words[e.start:e.end + 1])) for e in extract_entities(tags)])

counts = Counter(e.type for t in tweets for e in extract_entities([tag for _, tag in t]))
fig, ax = plt.subplots(figsize=(7, 3))
ax.bar(*zip(*counts.most_common()), color="tab:cyan")
ax.set(ylabel="entities", title="WNUT-16 entity types (all 2,394 tweets)")
plt.xticks(rotation=40, ha="right")
plt.tight_layout()
plt.show()
outside_share = sum(tag == "O" for t in tweets for _, tag in t) / sum(len(t) for t in tweets)
print(f"{sum(counts.values()):,} entities of {len(counts)} types")
assert len(counts) == 10 and outside_share > 0.9
quote("outside_share", outside_share, ".1%")

# %% [markdown]
# {{outside_share}} of the words are `O`. That is why NER is *not* scored by the share of correct
# tags (a model answering `O` everywhere would get that many right) but per entity; section 4.
#
# ## 2. Words versus subwords: aligning the labels
#
# The labels belong to words; the model reads subword tokens. MiniLM's WordPiece splits rare
# words into pieces (`##` marks a piece that continues a word), and every token gets its own output
# vector, hence its own prediction. The standard fix (BERT paper, section 5.3): give each word's
# label to its **first** token, and mark the other pieces, like `[CLS]`, `[SEP]` and padding, with
# the label $-100$, which the loss skips. A word's prediction is then read from its first token.
#
# `Tokenizer.encode_words` encodes a pre-split sentence and records, for every token, which word it
# came from (`word_ids`); `minirob.finetune.align_labels` does the rest. Here it is as a table:

# %%
minilm = datasets.fetch("minilm", progress=False)
tokenizer = minirob.Tokenizer.from_pretrained(minilm / "tokenizer.json")
label_names = ["O"] + sorted({t for s in tweets for _, t in s if t != "O"})
label_id = {name: i for i, name in enumerate(label_names)}

enc = tokenizer.encode_words(words)
aligned = align_labels(enc.word_ids, [label_id[t] for t in tags])


def cell(text, colour="#ffffff"):
    return f'<td style="background:{colour};padding:2px 6px;text-align:center">{html.escape(str(text))}</td>'


rows = {"token": [], "word id": [], "word": [], "label": []}
for token, w, lab in zip(enc.tokens, enc.word_ids, aligned):
    shade = "#eeeeee" if lab == IGNORE else ("#ffe9a8" if label_names[lab] != "O" else "#ffffff")
    rows["token"].append(cell(token, shade))
    rows["word id"].append(cell("-" if w is None else w, shade))
    rows["word"].append(cell("" if w is None else words[w], shade))
    rows["label"].append(cell("-100" if lab == IGNORE else label_names[lab], shade))
display(HTML("<table style='font-size:11px;border-collapse:collapse'>" + "".join(
    f"<tr><th style='text-align:right;padding-right:8px'>{name}</th>{''.join(cells)}</tr>" for name, cells in rows.items()) + "</table>"))

print(f"{len(words)} words -> {len(enc.tokens)} tokens; {sum(a != IGNORE for a in aligned)} labelled (one per word)")

# %% [markdown]
# Grey columns are skipped by the loss; yellow ones carry an entity label. The same alignment as a
# picture, for the first tokens of the tweet: each token points to its word, and the tagger head
# (one linear layer applied to every token's vector) is trained on the label under each token.

# %%
n_tokens = min(len(enc.tokens), 14)
fig, ax = plt.subplots(figsize=(14, 3.0))
diagrams.canvas(ax, 1.25 * n_tokens + 0.4, 3.3)
token_x = [0.8 + 1.25 * i for i in range(n_tokens)]
pieces_of = {}  # word index -> x of its tokens
for i in range(n_tokens):
    if enc.word_ids[i] is not None:
        pieces_of.setdefault(enc.word_ids[i], []).append(token_x[i])
for w, xs in pieces_of.items():
    centre = sum(xs) / len(xs)
    diagrams.box(ax, centre, 2.75, f"{words[w]}\n{tags[w]}", width=1.25 * len(xs) - 0.15, height=0.75,
                 colour="#ffe9a8" if tags[w] != "O" else "white", size=8)
    for x in xs:
        ax.plot([x, centre], [1.5, 2.37], color="gray", lw=0.8)
for i in range(n_tokens):
    skipped = aligned[i] == IGNORE
    diagrams.box(ax, token_x[i], 1.2, enc.tokens[i], width=1.15, height=0.55,
                 colour="#eeeeee" if skipped else "#dbe9f6", size=8)
    ax.text(token_x[i], 0.5, "-100" if skipped else label_names[aligned[i]], ha="center", fontsize=7,
            color="#999999" if skipped else "black")
ax.text(0.1, 0.05, "words and tags (top) -> tokens (middle) -> the label each token's logits W h_t + b are "
        "trained on (bottom; grey: skipped by the loss)", fontsize=8)
plt.show()

# %% [markdown]
#
# ### Exercise 1: first-subword alignment
#
# Write `first_subword_labels(word_ids, word_labels)`: `word_ids` has one entry per token (the
# index of its word, or `None` for `<s>`, `</s>` and the like), `word_labels` one label id per word.
# Return one label per token: the word's label on its first token, `IGNORE` ($-100$) on every
# other piece and on the special tokens. The check compares with `align_labels` on the tweet above
# and on the first 200 training tweets. (The alternative,
# `label_all_subwords=True` in `FinetuneConfig`, labels every piece, with `I-type` for the pieces
# of a `B-type` word.)

# %%
# exercise: first_subword_labels
def first_subword_labels(word_ids: list, word_labels: list[int]) -> list[int]:
    raise NotImplementedError("label a token iff it is the first token of its word; IGNORE otherwise")


# %%
alignment_cases = []
for tweet in [example] + splits.train[:200]:
    tweet_words, tweet_labels = [w for w, _ in tweet], [label_id[t] for _, t in tweet]
    tweet_word_ids = tokenizer.encode_words(tweet_words).word_ids
    alignment_cases.append((f"the tweet {' '.join(tweet_words)[:60]!r}", (tweet_word_ids, tweet_labels),
                            align_labels(tweet_word_ids, tweet_labels)))
check("first_subword_labels", first_subword_labels, alignment_cases)

# %% [markdown]
# ## 3. Fine-tuning
#
# The head is one linear layer on every token's vector, $\text{logits}_t = W h_t + b$, trained with
# the cross-entropy averaged over the labelled tokens. `minirob.finetune.finetune` runs the recipe
# of chapter 6 with `task="ner"`, the library's best NER recipe from MiniLM
# (`benchmarks/finetune_best.py`, docs/finetuning.md): all 1,916 training tweets in batches of 16
# grouped by length (little padding), AdamW at $2 \times 10^{-4}$ with 6% warm-up and linear decay,
# bfloat16 where the CPU has it, the validation entity-F1 after every epoch, and the best epoch's
# weights kept for the test. The benchmark ran 8 epochs; we run {{epochs}}, with the learning rate
# decaying to zero over them.

# %%
train_set = conll_sentences(splits.train[:TRAIN_SIZE])  # [:None]: all of them
val_set = conll_sentences(splits.validation[:EVAL_SIZE])
test_set = conll_sentences(splits.test[:EVAL_SIZE])
if FAST:  # a few dozen training tweets miss some entity types; the head can only predict types it saw
    seen = {t.partition("-")[2] for s in train_set for t in s.tags}
    val_set, test_set = ([s for s in part if {t.partition("-")[2] for t in s.tags} <= seen] for part in (val_set, test_set))
run_dir = tempfile.mkdtemp(prefix="minirob-ner-")
recipe = FinetuneConfig(task="ner", batch_size=16, max_length=128, group_by_length=True,
                        train=FinetuneLoop(lr=2e-4, warmup=0.06, epochs=EPOCHS, bf16="auto", progress=False))
report = finetune(minilm, train_set, val_set, test_set, recipe, run_dir)
test = report["test"]
print(f"{len(train_set):,} training tweets, {report['epochs_done']:.1f} epochs in {report['train_seconds']:.0f} s")
print("validation entity F1 after each epoch:", [round(h["score"], 3) for h in report["validation_history"]])
print(f"test: {test['n_gold']} gold entities, {test['n_pred']} predicted, {test['n_correct']} exactly right")
print(f"      precision {test['precision']:.1%}, recall {test['recall']:.1%}, F1 {test['f1']:.1%}")
quote("test_f1", test["f1"], ".1%")
quote("epochs", EPOCHS)
quote("train_seconds", report["train_seconds"], ".0f")
if not FAST:
    assert test["f1"] >= 0.40, f"entity F1 {test['f1']:.1%} is below the 40% this chapter promises"

# %% [markdown]
# ## 4. Entity-level F1
#
# The CoNLL rule: a predicted entity counts as correct only if its type, its first word and its
# last word all match a gold entity. Then
#
# $$ P = \frac{\#\text{correct}}{\#\text{predicted}}, \qquad R = \frac{\#\text{correct}}{\#\text{gold}}, \qquad F_1 = \frac{2PR}{P + R} . $$
#
# Getting "New York" out of "New York Knicks" earns nothing, and neither does the right span with
# the wrong type. For context: the best system at the WNUT-16 shared task reached a little over
# 50% F1 on the task's own test set (a published result, not computed here), with all of the
# training data and a purpose-built model; tweets are hard. Ours: {{test_f1}} on our test split
# (not the shared task's), after {{epochs}} epochs in {{train_seconds}} s. Per type:

# %%
per_type = test["per_type"]
kinds = sorted(per_type, key=lambda k: -per_type[k]["support"])
fig, ax = plt.subplots(figsize=(9, 3.3))
for offset, (metric, colour) in zip((-0.27, 0, 0.27), (("precision", "tab:blue"), ("recall", "tab:orange"), ("f1", "tab:green"))):
    ax.bar([i + offset for i in range(len(kinds))], [100 * per_type[k][metric] for k in kinds], 0.27, label=metric, color=colour)
ax.set_xticks(range(len(kinds)), [f"{k}\n({per_type[k]['support']})" for k in kinds], fontsize=8)
ax.set(ylabel="%", ylim=(0, 100), title="test scores per entity type (number of gold entities)")
ax.legend()
plt.tight_layout()
plt.show()
scored = [k for k in kinds if per_type[k]["f1"] > 0]
quote("types_scored", ", ".join(f"`{k}`" for k in scored) or "none")
quote("n_scored", len(scored))
quote("n_kinds", len(kinds))
quote("most_frequent", f"`{kinds[0]}`")
unscored = [k for k in kinds if per_type[k]["f1"] == 0]
quote("types_unscored", ", ".join(f"`{k}` ({per_type[k]['support']})" for k in unscored) or "none")
if not FAST:
    assert len(scored) >= 3, f"only {len(scored)} entity types scored: {scored}"

# %% [markdown]
# Read the chart honestly: the model scores on {{n_scored}} of the {{n_kinds}} types in these test
# tweets ({{types_scored}}); the most frequent type is {{most_frequent}}. It scores nothing on
# {{types_unscored}} (gold entities in brackets). A frequent type is learned first because it
# supplies most of the gradient: with a handful of training examples of a type, there is almost
# nothing to learn from. (On our own sentences in section 6, *London* comes out as {{london}}.)
# Precision suffers from strict scoring, which punishes near misses. More epochs, a larger encoder
# or one pretrained on tweets all help; the scoring stays as strict.
#
# ## 5. What was pretraining worth?
#
# As in chapter 6: the same architecture and recipe, every weight random (`random_init=True`).
# To keep the chapter short the baseline trains for {{baseline_epochs}} epoch instead of
# {{epochs}}, so this is not an equal race: it shows where a random start stands after one pass
# over the tweets. (docs/finetuning.md compares random and pretrained starts on equal terms, for
# a tiny model pretrained as in chapter 4.)

# %%
run_random = tempfile.mkdtemp(prefix="minirob-ner-random-")
baseline = finetune(minilm, train_set, val_set, test_set,
                    dataclasses.replace(recipe, random_init=True,
                                        train=dataclasses.replace(recipe.train, epochs=BASELINE_EPOCHS)), run_random)
print(f"random start: {baseline['epochs_done']:.1f} epochs in {baseline['train_seconds']:.0f} s; "
      f"test: {baseline['test']['n_pred']} entities predicted, {baseline['test']['n_correct']} exactly right")
results = {"random init, fine-tuned": baseline["test"]["f1"], "pretrained MiniLM, fine-tuned": test["f1"]}
fig, ax = plt.subplots(figsize=(6.5, 2.0))
ax.barh(list(results), [100 * v for v in results.values()], color=["tab:orange", "tab:blue"])
for y, v in enumerate(results.values()):
    ax.text(100 * v + 1, y, f"{v:.1%}", va="center")
ax.set(xlim=(0, 100), xlabel="test entity F1 (%)", title="same model, same tweets: pretrained vs random start")
plt.tight_layout()
plt.show()
quote("random_f1", baseline["test"]["f1"], ".1%")
quote("random_predicted", baseline["test"]["n_pred"], ",")
quote("baseline_epochs", BASELINE_EPOCHS)
if not FAST:
    assert baseline["test"]["f1"] < test["f1"] - 0.2  # "far below"

# %% [markdown]
# The random start reaches {{random_f1}} entity F1 after {{baseline_epochs}} epoch, far below the
# pretrained model's {{test_f1}}; it predicts {{random_predicted}} entities in the whole test
# split. On sentiment (chapter 6) a random model could at least fall back on the majority answer
# and score about half; here the majority answer, `O` everywhere, finds no entity at all and
# scores 0.
#
# ## 6. Predicted entities, highlighted
#
# Using the fine-tuned model takes one line: `minirob.pipeline("ner", run_dir)` loads the run
# directory (weights, tokenizer and the label names in `finetune.json`) and returns a function from
# text to entities, in the shape transformers' NER pipeline returns:

# %%
tag = minirob.pipeline("ner", run_dir, device="cpu")
for entity in tag("Flying to New York with Barack Obama to watch the Knicks"):
    print(entity)

# %% [markdown]
# `minirob.predict.Predictor` does the same and also returns each word's tag. It splits the text into
# words (keeping each word's character span), runs the model, reads each word's tag from its first
# token, and turns the tags back into entities with character offsets, which is all we need to
# highlight them. First some test tweets (gold entities underlined, predictions coloured), then a
# few sentences of our own.

# %%
predictor = Predictor.load(run_dir)
palette = dict(zip(sorted(counts), ["#ffd6a5", "#caffbf", "#9bf6ff", "#bdb2ff", "#ffc6ff", "#fdffb6",
                                    "#a0c4ff", "#ffadad", "#d0f4de", "#e4c1f9"]))


def highlight(text, entities, gold=()):
    """HTML: each predicted entity on its type's colour with the type as a superscript."""
    marks = sorted([(e["start"], e["end"], e["type"], "pred") for e in entities] +
                   [(s, t, k, "gold") for s, t, k in gold])
    out, pos = [], 0
    for start, end, kind, source in marks:
        if start < pos:
            continue  # overlapping gold and predicted spans: show the first
        out.append(html.escape(text[pos:start]))
        piece = html.escape(text[start:end])
        if source == "pred":
            out.append(f'<span style="background:{palette.get(kind, "#ddd")};padding:1px 3px;border-radius:3px">'
                       f'{piece}<sup style="font-size:8px"> {kind}</sup></span>')
        else:
            out.append(f'<u title="gold: {kind}">{piece}</u><sup style="font-size:8px;color:#888"> ({kind})</sup>')
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out)


shown = [s for s in test_set if any(t != "O" for t in s.tags)][:6]
texts = [" ".join(s.words) for s in shown]
results = predictor.predict(texts)
lines = []
for sentence, text, result in zip(shown, texts, results):
    starts = [sum(len(w) + 1 for w in sentence.words[:i]) for i in range(len(sentence.words))]
    gold = [(starts[e.start], starts[e.end] + len(sentence.words[e.end]), e.type)
            for e in extract_entities(sentence.tags)]
    missed = [g for g in gold if not any(p["start"] == g[0] and p["end"] == g[1] for p in result["entities"])]
    lines.append(highlight(text, result["entities"], missed))
own = ["Taylor Swift played Madison Square Garden before flying back to Nashville on Sunday",
       "Just got the new iPhone from the Apple store in London , loving it",
       "Watching the Lakers game with Kobe at Staples Center tonight #NBA"]
for result in predictor.predict(own):
    lines.append(highlight(result["text"], result["entities"]))
display(HTML("<div style='line-height:2'>" + "<br>".join(lines) + "</div>"))


def draw_highlights(items, width=15):
    """The same highlights as a picture (some notebook viewers strip HTML colours)."""
    fig = plt.figure(figsize=(width, 0.42 * len(items) + 0.4))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    renderer = fig.canvas.get_renderer()
    for row, (text, spans) in enumerate(items):  # spans: (start, end, type, "pred" | "gold")
        y, x, pos = 1 - (row + 0.7) / (len(items) + 0.3), 0.005, 0
        cuts = sorted(spans) + [(len(text), len(text), None, None)]
        for start, end, kind, source in cuts:
            for piece, style in ((text[pos:start], None), (text[start:end], (kind, source))):
                if not piece or x > 0.99:
                    continue
                box = None
                if style and style[1] == "pred":
                    box = dict(facecolor=palette.get(style[0], "#ddd"), edgecolor="none", pad=1.5)
                label = ax.text(x, y, piece, fontsize=9, bbox=box, transform=ax.transAxes,
                                fontstyle="italic" if style and style[1] == "gold" else "normal",
                                color="#888" if style and style[1] == "gold" else "black")
                x += label.get_window_extent(renderer).width / fig.bbox.width + 0.002
            pos = max(pos, end)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in palette.values()]
    fig.legend(handles, list(palette), loc="lower center", ncol=len(palette), fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, -0.12))
    plt.show()


items = []
for sentence, text, result in zip(shown, texts, results):
    starts = [sum(len(w) + 1 for w in sentence.words[:i]) for i in range(len(sentence.words))]
    gold = [(starts[e.start], starts[e.end] + len(sentence.words[e.end]), e.type, "gold")
            for e in extract_entities(sentence.tags)]
    pred = [(e["start"], e["end"], e["type"], "pred") for e in result["entities"]]
    items.append((text, pred + [g for g in gold if not any(p[0] < g[1] and g[0] < p[1] for p in pred)]))
items += [(r["text"], [(e["start"], e["end"], e["type"], "pred") for e in r["entities"]]) for r in predictor.predict(own)]
draw_highlights(items)
own_results = predictor.predict(own)
london = [e["type"] for e in own_results[1]["entities"] if "London" in own[1][e["start"]:e["end"]]]
quote("london", f"`{london[0]}`" if london else "no entity")
test_predictions = [r["tags"] for r in predictor.predict([" ".join(s.words) for s in test_set])]
split_names = sum(1 for s, pred in zip(test_set, test_predictions) for e in extract_entities(s.tags)
                  if e.end > e.start and all(pred[i].startswith("B-") for i in range(e.start, e.end + 1)))
multi_word = sum(1 for s in test_set for e in extract_entities(s.tags) if e.end > e.start)
quote("split_names", split_names)
quote("multi_word", multi_word)

# %% [markdown]
# Predicted entities are coloured by type; underlined spans (with the gold type in grey) are gold
# entities the model missed (in the picture: grey italics). Two failure modes to look for:
# capitalised words taken for names, and a two-word name coming out as two one-word entities
# (`B-person B-person` instead of `B-person I-person`), which the strict score counts as two
# mistakes: of the {{multi_word}} multi-word gold entities in the test tweets, {{split_names}}
# were tagged `B-` on every word. Since the predictor's output carries character offsets,
# the same few lines would highlight entities in any application.
#
# ### Exercise 2: read entities off a tag sequence
#
# Write `entities(tags)` returning the set of `(type, first_word, last_word)` triples in a BIO tag
# sequence, with CoNLL's treatment of sloppy tags: an `I-X` that does not continue an entity of
# type `X` (it follows `O`, or an entity of another type) *starts* a new entity. The check runs it
# on a hand-made sloppy sequence, every gold tweet and the model's predictions for the test
# tweets, against `minirob.metrics.extract_entities` (a wrong answer names the tag sequence).

# %%
# exercise: entities
def entities(tags: list[str]) -> set[tuple[str, int, int]]:
    raise NotImplementedError("walk the tags; B-X (or an I-X that does not continue X) opens an entity")


# %%
def entities_of_all(sequences):
    return {" ".join(seq): entities(seq) for seq in sequences}


def expected_of_all(sequences):
    return {" ".join(seq): {(e.type, e.start, e.end) for e in extract_entities(seq)} for seq in sequences}


sloppy = [["I-person", "I-geo-loc", "B-person", "I-person", "O", "I-other"], ["B-person", "B-person", "I-company"]]
gold_sequences = [[t for _, t in s] for s in tweets]
check("entities", entities_of_all, [
    ("two sloppy sequences", (sloppy,), expected_of_all(sloppy)),
    (f"the gold tags of all {len(gold_sequences):,} tweets", (gold_sequences,), expected_of_all(gold_sequences)),
    (f"the model's tags for {len(test_predictions)} test tweets", (test_predictions,), expected_of_all(test_predictions)),
])
