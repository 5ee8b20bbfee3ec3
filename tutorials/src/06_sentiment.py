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
from minirob.finetune import FinetuneConfig, encode_texts, finetune, predict_logits, sentiment_examples

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

# %% [markdown]
# The ratings are spread out, with a thin band of sentences near 0 that people found barely
# positive or barely negative. Keep them in mind: they are where a model will struggle, and where
# the labels themselves are least certain. The classes are nearly balanced, so a model that always
# answers "positive" would score about 50%.
#
# ## 2. The classification head
#
# RoBERTa's head reads only the first token's output vector, $h_{\langle s\rangle}$ (BERT's `[CLS]`):
# self-attention lets that one position gather whatever the task needs from the whole sentence.
#
# $$ \text{logits} = W_o \tanh(W_d\, h_{\langle s \rangle} + b_d) + b_o, \qquad
#    \mathcal L = -\log \operatorname{softmax}(\text{logits})_{y} $$
#
# (with dropout before each of the two linear maps during training). Loading MiniLM into
# `RobertaForSequenceClassification` fills the encoder and reports the head as newly initialised.
# Let us recompute the head by hand:

# %%
minilm = datasets.fetch("minilm", progress=False)
tokenizer = minirob.Tokenizer.from_pretrained(minilm / "tokenizer.json")
classifier = minirob.RobertaForSequenceClassification.from_pretrained(minilm, num_labels=2).eval()
print("newly initialised:", classifier.load_report.newly_initialised)

batch = tokenizer.encode_batch([e.text for e in splits.train[:3]])
with torch.no_grad():
    hidden = classifier.roberta(batch.input_ids, batch.attention_mask, batch.token_type_ids)  # (3, T, 384)
    head = classifier.classifier
    by_hand = head.out_proj(torch.tanh(head.dense(hidden[:, 0])))  # read <s>/[CLS] only: (3, 2)
    logits = classifier(batch.input_ids, batch.attention_mask, batch.token_type_ids)
torch.testing.assert_close(by_hand, logits)
print("head by hand == RobertaForSequenceClassification:", by_hand.softmax(-1))

# %% [markdown]
# With a random head, the two probabilities hover around one half: the model has no opinion yet.
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
recipe = FinetuneConfig(task="sentiment", epochs=EPOCHS, batch_size=32, lr=1e-4, max_length=MAX_LENGTH,
                        progress=False)

run_pretrained = tempfile.mkdtemp(prefix="minirob-sentiment-")
report = finetune(minilm, train_examples, val_examples, test_examples, recipe, run_pretrained)
print(f"{len(train_examples):,} training sentences, {EPOCHS} epochs, {report['train_seconds']:.0f} s of training")
print("validation accuracy after each epoch:", [round(h["score"], 3) for h in report["validation_history"]])
test = report["test"]
print(f"test: accuracy {test['accuracy']:.1%}, macro-F1 {test['macro_f1']:.3f} on {test['n']:,} sentences")
if not FAST:
    assert test["accuracy"] > 0.65

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
print("a few mistakes:")
for e, p, r in [(e, p, r) for e, p, r in zip(test_examples, predicted, ratings) if p != e.label][:5]:
    print(f"  rated {r:+.2f}, predicted {p}: {e.text[:100]}")

# %% [markdown]
# Accuracy climbs with the strength of the rating: roughly two sentences in three are right where
# people barely leaned one way, about nine in ten where they felt strongly. Many mildly rated
# sentences are genuinely mixed ("the acting is fine but the plot goes nowhere"; "Perhaps the
# grossest movie ever made. Funny, though."), and a single binary label cannot be right about
# them. (Only a dozen test sentences fall in the mildest bin, so its bar is a rough estimate.)
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
if not FAST:
    assert test["accuracy"] > baseline["test"]["accuracy"] + 0.05

# %% [markdown]
# The randomly initialised model does no better than always giving the majority answer; in fact
# that is exactly what it learned to do. 800 sentences are far too few to learn what words mean. The pretrained one starts from an encoder that already places
# "a masterpiece" far from "a mess", and needs only a few dozen steps to read off the answer.
# That gap is the whole argument for pretraining.
#
# ## Exercise: macro-F1 from the confusion matrix
#
# Accuracy hides which class the mistakes come from. **Macro-F1** averages, over the classes, the
# F1 of each class, the harmonic mean of its *precision* (of the sentences predicted as the class,
# the share that truly are) and its *recall* (of the sentences truly in the class, the share
# found). Compute it from `matrix` alone (rows = truth, columns = prediction) and check it against
# the report.

# %%
def macro_f1_from_matrix(m: torch.Tensor) -> float:
    m = m.double()
    tp = m.diag()
    precision = tp / m.sum(0).clamp(min=1)  # column sums: everything predicted as the class
    recall = tp / m.sum(1).clamp(min=1)  # row sums: everything truly in the class
    # (a class never predicted has precision 0/0: count it as 0, as scikit-learn and minirob do)
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return float(f1.mean())


# %%
ours = macro_f1_from_matrix(matrix)
print(f"macro-F1 by hand {ours:.4f} | minirob.metrics {test['macro_f1']:.4f}")
assert abs(ours - test["macro_f1"]) < 1e-9
