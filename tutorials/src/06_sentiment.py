# Chapter 6 of the minirob tutorials: fine-tuning for sentiment classification.
# Source of tutorials/06_sentiment.ipynb; rebuild with `.venv/bin/python tutorials/build.py 06`.

# %% [markdown]
# # Chapter 6 · Fine-tuning for sentiment
#
# Pretraining (chapter 4) teaches a model the language; **fine-tuning** teaches it a task. We put
# a small, freshly initialised **classification head** on top of a pretrained encoder and train the
# whole thing, gently (a small learning rate, a couple of passes over the data), on labelled
# examples. The encoder already knows what the words mean; the head only has to learn which
# direction in its vector space is "positive".
#
# Our task: is a movie-review sentence positive or negative? The sentences are Pang & Lee's
# review snippets, each rated by about 20 people on a scale from -4 to +4 (Hutto & Gilbert, 2014,
# shipped with the `vaderSentiment` package). The encoder is the real, pretrained MiniLM from
# chapter 5. At the end we train the *same* architecture from random weights, to see what
# pretraining was worth.
#
# **Budget.** A few minutes at the default settings on an idle laptop CPU (two fine-tuning runs,
# 2 epochs over 800 training sentences each); `MINIROB_TUTORIAL_FAST=1` uses a few dozen sentences
# and one epoch. With more data and epochs the scores below go up; the comparison stays the same.
#
# **Exercises.** Two cells ask you to write code: the classification head, and macro-F1 from a
# confusion matrix. Each holds a stub that raises `NotImplementedError`; the cell after it checks
# your answer against `minirob` and says "not attempted yet" until you write it, or exactly what
# differs (input, expected, got) when it is wrong. Answers: `tutorials/solutions/06_sentiment.py`.

# %%
import dataclasses
import logging
import os
import tempfile
from collections import Counter

import warnings

import matplotlib.pyplot as plt
import torch

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook-widget hint

import minirob
from minirob import datasets
from minirob.finetune import FinetuneConfig, FinetuneLoop, encode_texts, finetune, predict_logits, sentiment_examples
from minirob.metrics import macro_f1

import diagrams  # tutorials/diagrams.py: boxes and arrows for the figures
from checks import check, quote  # tutorials/checks.py: exercise checks, numbers quoted in the text

FAST = os.environ.get("MINIROB_TUTORIAL_FAST") == "1"
TRAIN_SIZE = 64 if FAST else 800  # training sentences used (of 8,454)
EVAL_SIZE = 48 if FAST else 400  # validation and test sentences used (of 1,057 each)
EPOCHS = 1 if FAST else 2
MAX_LENGTH = 32 if FAST else 64  # tokens; 64 fits 98% of the sentences whole
logging.getLogger("minirob").setLevel(logging.ERROR)  # keep the outputs to what we print
torch.manual_seed(0)
print("minirob", minirob.__version__, "| fast mode:", FAST)

# %% [markdown]
# ## 1. The data
#
# `minirob.datasets.load_sentiment` reads the rated sentences, labels each by the sign of its
# mean rating and drops the few rated exactly 0; `split_sentiment` makes a seeded 80/10/10 split.

# %%
rated = datasets.load_sentiment("movie", progress=False)
splits = datasets.split_sentiment(rated, seed=0)
print(f"{rated.rows:,} rated sentences, {rated.neutral_dropped} neutral dropped; split sizes {splits.sizes()}")
for example in splits.train[:4]:
    print(f"  {example.rating:+.2f} {'positive' if example.label else 'negative':>8}  {example.text[:90]}")

fig, ax = plt.subplots(figsize=(6, 3))
ax.hist([e.rating for e in rated], bins=60, color="tab:purple")
ax.axvline(0, color="black", lw=0.8)
ax.set(xlabel="mean human rating (-4 .. +4)", ylabel="sentences", title="movie-review snippets: how people rated them")
plt.tight_layout()
plt.show()
print("label balance in training:", Counter(e.label for e in splits.train))
positive_share = sum(1 for e in splits.train if e.label) / len(splits.train)  # label: 1 = positive
quote("positive_share", positive_share, ".1%")
assert 0.4 < positive_share < 0.6  # "nearly balanced"

# %% [markdown]
# The ratings are spread out, with a thin band of sentences near 0 that people found barely
# positive or barely negative. Keep them in mind: they are where a model will struggle, and where
# the labels themselves are least certain. The classes are nearly balanced ({{positive_share}} of
# the training sentences are positive), so a model that always answers "positive" would score
# about that much.
#
# ## 2. The classification head
#
# RoBERTa's head reads only the first token's output vector, $h_{\langle s\rangle}$ (BERT's `[CLS]`):
# self-attention lets that one position gather whatever the task needs from the whole sentence.
#
# $$ \text{logits} = W_o \tanh(W_d\, h_{\langle s \rangle} + b_d) + b_o, \qquad
#    \mathcal L = -\log \operatorname{softmax}(\text{logits})_{y} $$
#
# (with dropout before each of the two linear maps during training). The data path:

# %%
fig, ax = plt.subplots(figsize=(13, 2.2))
diagrams.canvas(ax, 19.0, 2.3)
path = [("ids (B, T)", "white"), ("encoder\n(B, T, H)", "#dbe9f6"), ("first row only\nh<s>: (B, H)", "#e4d7f0"),
        ("dense + tanh\n(B, H)", "#d5ecd4"), ("out_proj\n(B, 2) logits", "#d5ecd4"), ("softmax,\ncross-entropy", "#f6e2c4")]
for n, (text, colour) in enumerate(path):
    diagrams.box(ax, 1.4 + n * 3.2, 1.2, text, width=2.4, height=1.0, colour=colour, size=9)
    if n:
        diagrams.arrow(ax, (1.4 + (n - 1) * 3.2 + 1.2, 1.2), (1.4 + n * 3.2 - 1.2, 1.2))
ax.text(1.4 + 3.5 * 3.2, 0.3, "the head, trained for the task (dense may start from a pretrained pooler)",
        ha="center", fontsize=8)
plt.show()

# %% [markdown]
# Loading MiniLM into `RobertaForSequenceClassification` fills the encoder and reports the head
# as newly initialised:

# %%
minilm = datasets.fetch("minilm", progress=False)
tokenizer = minirob.Tokenizer.from_pretrained(minilm / "tokenizer.json")
classifier = minirob.RobertaForSequenceClassification.from_pretrained(minilm, num_labels=2).eval()
print("newly initialised:", classifier.load_report.newly_initialised)
batch = tokenizer.encode_batch([e.text for e in splits.train[:3]])
with torch.no_grad():
    logits = classifier(batch.input_ids, batch.attention_mask, batch.token_type_ids)  # (3, 2)
probabilities = logits.softmax(-1)
print("probabilities of a random head:", probabilities)
quote("head_spread", f"{probabilities.min():.2f} to {probabilities.max():.2f}")

# %% [markdown]
# ### Exercise 1: the classification head by hand
#
# Write `classification_head(head, hidden)`: given the head module (`classifier.classifier`, with
# linear layers `head.dense` and `head.out_proj`) and the encoder's output `hidden` of shape
# $(B, T, H)$, return the logits $(B, 2)$ of the formula above (in `eval()` mode, so no dropout).
# The check compares with the whole model on two batches of training sentences.

# %%
# exercise: classification_head
def classification_head(head, hidden: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError("read the first token's vector, dense, tanh, out_proj")


# %%
def head_on_encoder(b):
    hidden = classifier.roberta(b.input_ids, b.attention_mask, b.token_type_ids)  # (B, T, 384)
    return classification_head(classifier.classifier, hidden)


batches = [tokenizer.encode_batch([e.text for e in splits.train[i:i + 3]]) for i in (0, 3)]
with torch.no_grad():
    check("classification_head", head_on_encoder, [
        (f"training sentences {i * 3}-{i * 3 + 2}", (b,), classifier(b.input_ids, b.attention_mask, b.token_type_ids))
        for i, b in enumerate(batches)
    ])

# %% [markdown]
# With a random head, the two probabilities hover around one half ({{head_spread}} above): the
# model has no opinion yet.
# (One detail: MiniLM, like BERT, also ships a trained *pooler*, a dense + tanh layer on `[CLS]`,
# which is exactly the shape of the head's first layer. `minirob.finetune` starts the head's
# `dense` from it, as transformers' `BertForSequenceClassification` does; RoBERTa checkpoints have
# no trained pooler, so there the whole head starts random.)
#
# ## 3. Fine-tuning
#
# `minirob.finetune.finetune` is the whole recipe: tokenize, build the model with its new head,
# train with AdamW (learning rate $10^{-4}$, 6% warm-up then linear decay, gradient
# clipping), score the validation split after every epoch, keep the best weights, and score the
# test split with them. Everything ends up in a run directory.

# %%
train_examples = sentiment_examples(splits.train[:TRAIN_SIZE])
val_examples = sentiment_examples(splits.validation[:EVAL_SIZE])
test_examples = sentiment_examples(splits.test[:EVAL_SIZE])
recipe = FinetuneConfig(task="sentiment", batch_size=32, max_length=MAX_LENGTH,
                        train=FinetuneLoop(lr=1e-4, epochs=EPOCHS, progress=False))

run_pretrained = tempfile.mkdtemp(prefix="minirob-sentiment-")
report = finetune(minilm, train_examples, val_examples, test_examples, recipe, run_pretrained)
print(f"{len(train_examples):,} training sentences, {EPOCHS} epochs, {report['train_seconds']:.0f} s of training")
print("validation accuracy after each epoch:", [round(h["score"], 3) for h in report["validation_history"]])
test = report["test"]
print(f"test: accuracy {test['accuracy']:.1%}, macro-F1 {test['macro_f1']:.3f} on {test['n']:,} sentences")
if not FAST:
    assert test["accuracy"] > 0.65

# %% [markdown]
# The run directory is a model you can use at once: `minirob.pipeline` loads it (weights,
# tokenizer, label names from `finetune.json`) and returns a function from texts to labels with
# their probabilities, in the shape transformers' pipelines return:

# %%
classify = minirob.pipeline("text-classification", run_pretrained, device="cpu")
for review in ["A gorgeous, witty, heartfelt film.", "Two hours of my life I will never get back.",
               "The plot is thin, but the actors make it worth watching."]:
    print(classify(review), review)

# %% [markdown]
# ## 4. The confusion matrix, and where the errors are
#
# Rows are the truth, columns the prediction; the diagonal holds the correct answers. Off the
# diagonal, the two kinds of mistake: negative sentences called positive, and the reverse.

# %%
labels = test["labels"]
matrix = torch.tensor(test["confusion_matrix"])
fig, ax = plt.subplots(figsize=(4, 3.5))
ax.imshow(matrix, cmap="Blues")
for i in range(len(labels)):
    for j in range(len(labels)):
        ax.text(j, i, int(matrix[i, j]), ha="center", va="center", color="white" if matrix[i, j] > matrix.max() / 2 else "black")
ax.set_xticks(range(len(labels)), labels)
ax.set_yticks(range(len(labels)), labels)
ax.set(xlabel="predicted", ylabel="true", title=f"test accuracy {test['accuracy']:.1%}")
plt.tight_layout()
plt.show()

# %% [markdown]
# Which sentences does it get wrong? We reload the best weights from the run directory, predict
# every test sentence, and group the accuracy by how strongly people rated the sentence.

# %%
best = minirob.RobertaForSequenceClassification.from_pretrained(run_pretrained)
features = encode_texts(tokenizer, test_examples, labels, max_length=MAX_LENGTH)
predicted = [labels[int(row.argmax())] for row in predict_logits(best, features, tokenizer.pad_id)]
ratings = [e.rating for e in splits.test[:EVAL_SIZE]]
correct = [p == e.label for p, e in zip(predicted, test_examples)]
assert abs(sum(correct) / len(correct) - test["accuracy"]) < 1e-9  # same model, same answers

bins = [0, 0.5, 1, 1.5, 2, 2.5, 4.1]
groups = [[c for c, r in zip(correct, ratings) if lo <= abs(r) < hi] for lo, hi in zip(bins, bins[1:])]
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(range(len(groups)), [100 * sum(g) / max(1, len(g)) for g in groups], color="tab:green")
ax.set_xticks(range(len(groups)), [f"{lo}-{hi:g}\n({len(g)})" for lo, hi, g in zip(bins, bins[1:], groups)])
ax.set(xlabel="|mean rating|  (number of test sentences)", ylabel="accuracy (%)", ylim=(0, 100),
       title="errors concentrate on mildly rated sentences")
plt.tight_layout()
plt.show()
bin_accuracy = [sum(g) / max(1, len(g)) for g in groups]
quote("mildest_accuracy", bin_accuracy[0], ".0%")
quote("mildest_count", len(groups[0]))
strongest_accuracy = sum(sum(g) for g in groups[-2:]) / max(1, sum(len(g) for g in groups[-2:]))
quote("strongest_accuracy", strongest_accuracy, ".0%")
if not FAST:
    assert strongest_accuracy > bin_accuracy[0]  # "accuracy climbs with the strength of the rating"
print("a few mistakes:")
for e, p, r in [(e, p, r) for e, p, r in zip(test_examples, predicted, ratings) if p != e.label][:5]:
    print(f"  rated {r:+.2f}, predicted {p}: {e.text[:100]}")

# %% [markdown]
# Accuracy climbs with the strength of the rating: {{mildest_accuracy}} of the sentences are right
# where people barely leaned one way (|rating| below 0.5), {{strongest_accuracy}} where they felt
# strongly (|rating| 2 and above). Many mildly rated
# sentences are genuinely mixed ("the acting is fine but the plot goes nowhere"; "Perhaps the
# grossest movie ever made. Funny, though."), and a single binary label cannot be right about
# them. (Only {{mildest_count}} test sentences fall in the mildest bin, so its bar is a rough estimate.)
#
# ## 5. What was pretraining worth?
#
# Same architecture, same recipe, same data, but every weight random (`random_init=True`): the
# model must learn English and the task at once from 800 sentences.

# %%
run_random = tempfile.mkdtemp(prefix="minirob-sentiment-random-")
baseline = finetune(minilm, train_examples, val_examples, test_examples,
                    dataclasses.replace(recipe, random_init=True), run_random)
majority = max(Counter(e.label for e in test_examples).values()) / len(test_examples)
results = {"always the majority label": majority, "random init, fine-tuned": baseline["test"]["accuracy"],
           "pretrained MiniLM, fine-tuned": test["accuracy"]}
fig, ax = plt.subplots(figsize=(6.5, 2.6))
ax.barh(list(results), [100 * v for v in results.values()], color=["gray", "tab:orange", "tab:blue"])
for y, v in enumerate(results.values()):
    ax.text(100 * v + 1, y, f"{v:.1%}", va="center")
ax.set(xlim=(0, 100), xlabel="test accuracy (%)", title="same model, same data: pretrained vs random start")
plt.tight_layout()
plt.show()
majority_label = Counter(e.label for e in test_examples).most_common(1)[0][0]
random_model = minirob.RobertaForSequenceClassification.from_pretrained(run_random)
random_predicted = [labels[int(row.argmax())] for row in predict_logits(random_model, features, tokenizer.pad_id)]
random_majority_share = sum(p == majority_label for p in random_predicted) / len(random_predicted)
print(f"the random start predicts the majority label ({majority_label}) for {random_majority_share:.1%} of the test sentences")
quote("random_accuracy", baseline["test"]["accuracy"], ".1%")
quote("majority", majority, ".1%")
quote("majority_label", f"*{majority_label}*")
quote("random_majority_share", random_majority_share, ".0%")
quote("random_gap", abs(baseline["test"]["accuracy"] - majority) * 100, ".1f")
quote("pretrained_accuracy", test["accuracy"], ".1%")
if not FAST:
    assert test["accuracy"] > baseline["test"]["accuracy"] + 0.05
    assert abs(baseline["test"]["accuracy"] - majority) < 0.08  # "close to the majority answer"

# %% [markdown]
# The randomly initialised model scores {{random_accuracy}}, within {{random_gap}} points of
# always giving the majority answer, {{majority_label}} ({{majority}}); it answers
# {{majority_label}} for {{random_majority_share}} of the test sentences. 800 sentences and two
# epochs are too few for it to learn much about what words mean. The pretrained
# one, at {{pretrained_accuracy}}, starts from an encoder that already places "a masterpiece" far
# from "a mess", and needs only a couple of short epochs to read off the answer. That gap is the
# whole argument for pretraining.
#
# ### Exercise 2: macro-F1 from the confusion matrix
#
# Accuracy hides which class the mistakes come from. **Macro-F1** averages, over the classes, the
# F1 of each class, the harmonic mean of its *precision* (of the sentences predicted as the class,
# the share that truly are) and its *recall* (of the sentences truly in the class, the share
# found). Write `macro_f1_from_matrix(m)` computing it from a confusion matrix alone (rows =
# truth, columns = prediction); a class never predicted has precision $0/0$: count it as 0, as
# scikit-learn and `minirob.metrics` do. The check uses this run's test matrix and a made-up
# three-class one with a class the "model" never predicts.

# %%
# exercise: macro_f1_from_matrix
def macro_f1_from_matrix(m: torch.Tensor) -> float:
    raise NotImplementedError("per class: precision from the column, recall from the row, F1; then the mean")


# %%
three = torch.tensor([[5, 2, 0], [1, 6, 0], [3, 1, 0]])  # class 2 is never predicted
truth = [i for i in range(3) for j in range(3) for _ in range(int(three[i, j]))]
guess = [j for i in range(3) for j in range(3) for _ in range(int(three[i, j]))]
check("macro_f1_from_matrix", macro_f1_from_matrix, [
    ("this run's test confusion matrix", (matrix,), float(test["macro_f1"])),
    (f"the three-class matrix {three.tolist()}", (three,), macro_f1(truth, guess, labels=[0, 1, 2])),
], atol=1e-9)
