"""Fine-tuning tasks: examples, labels, encoding, label alignment, batches, loss and scores.

What a task *is*, independent of how it is trained (:mod:`minirob.finetune`, the recipe) or used
(:mod:`minirob.predict`, :mod:`minirob.pipelines`). Both import this module; nothing here imports
the training loop.

Three kinds of task:

* **sequence classification** (``"classify"``; ``"sentiment"`` is the same on the movie-review
  set): a text, or a pair of texts, gets one label;
* **named-entity recognition** (``"ner"``): every *word* gets a BIO tag, scored by entities;
* **part-of-speech tagging** (``"pos"``): every word gets a tag, scored word by word.

The one subtle step of the two tagging tasks is *label alignment*. Labels belong to words, the
model sees subword tokens: ``"Tolkien"`` may become ``Tol ##kien``. The standard choice (BERT's
paper, section 5.3) labels the first subword of each word and ignores the others in the loss
(label ``-100``, which ``cross_entropy`` skips); the alternative labels every subword, continuation
pieces of a ``B-X`` word getting ``I-X``. Either way a word's prediction is read from its first
subword.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import CheckpointError, DataError, InputError, MissingFileError
from .metrics import classification_report, entity_scores, split_tag
from .model import RobertaForSequenceClassification, RobertaForTokenClassification
from .readers import read_conll, read_table
from .tokenizer import Tokenizer

logger = logging.getLogger(__name__)

TASKS = ("sentiment", "classify", "ner", "pos")
TAGGING_TASKS = ("ner", "pos")  # one label per word; the others: one label per text
IGNORE = -100  # the label cross_entropy skips: special tokens, padding, continuation subwords
RECIPE_FILE = "finetune.json"  # what a run directory records about its task and labels
REPORT_FILE = "report.json"
SENTIMENT_LABELS = ("negative", "positive")  # load_sentiment's label 0 and 1


def is_tagging(task: str) -> bool:
    return task in TAGGING_TASKS


def model_class(task: str) -> type[nn.Module]:
    """The task model a task trains: a token tagger or a sequence classifier."""
    return RobertaForTokenClassification if is_tagging(task) else RobertaForSequenceClassification


# ================================================================== examples and labels


@dataclass
class TextExample:
    """One classification example: a text (or a pair) and its label (None when predicting)."""

    text: str
    label: str | None = None
    pair: str | None = None
    source: str = ""  # where it came from ("file.csv:12"), for error messages


@dataclass
class TaggedSentence:
    """One tagging example: the words and their tags (None when predicting)."""

    words: list[str]
    tags: list[str] | None = None
    source: str = ""


def _where(example, index: int, split: str) -> str:
    return example.source or f"{split} example {index}"


def label_list(train_examples: Sequence, task: str) -> list[str]:
    """The labels training saw, in a fixed order (``O`` first for NER, then sorted)."""
    if task == "ner":
        # Every prefix the scheme uses, for every entity type seen: a type seen only as B-X in
        # training may still appear as I-X in the test file, and the model must be able to say it.
        parts = {split_tag(tag) for sentence in train_examples for tag in sentence.tags}
        prefixes = sorted({p for p, _ in parts if p != "O"} | {"B", "I"}, key="BIES".index)
        kinds = sorted({kind for p, kind in parts if p != "O"})
        return ["O"] + [f"{p}-{kind}" for kind in kinds for p in prefixes]
    if task == "pos":
        return sorted({str(tag) for sentence in train_examples for tag in sentence.tags})
    return sorted({str(example.label) for example in train_examples})


def check_labels(examples: Sequence, labels: Sequence[str], task: str, split: str) -> None:
    """Refuse a label that training never saw: the head has no output for it."""
    known = set(labels)
    for i, example in enumerate(examples):
        values = example.tags if is_tagging(task) else [example.label]
        for value in values or []:
            if str(value) not in known:
                raise DataError(
                    f"{_where(example, i, split)}: label {value!r} never occurs in the training "
                    f"data, so the model cannot predict it (the labels training saw: "
                    f"{', '.join(labels)})"
                )


# ================================================================== encoding


def _type_ids(sequence_ids: Sequence[int | None]) -> list[int]:
    """Segment ids: 0 up to the end of text A's separator, 1 from text B on (BERT's A/B)."""
    seen_b, out = False, []
    for sid in sequence_ids:
        seen_b = seen_b or sid == 1
        out.append(1 if seen_b else 0)
    return out


def encode_texts(
    tokenizer: Tokenizer,
    examples: Sequence[TextExample],
    labels: Sequence[str] | None,
    max_length: int,
    split: str = "data",
    offsets: bool = False,
) -> list[dict]:
    """Examples -> features ``{"input_ids", "token_type_ids", "label"}`` (lists, unpadded).

    Texts longer than ``max_length`` tokens are cut (the longer text of a pair first) and counted
    in one warning. ``offsets``: each feature also keeps every token's ``(start, end)`` characters
    in its text, ``None`` for special tokens (token classification reads them; one tokenization).
    """
    index = {label: i for i, label in enumerate(labels or [])}
    features, n_cut = [], 0
    for i, example in enumerate(examples):
        if not example.text or not example.text.strip():
            raise InputError(f"{_where(example, i, split)}: the text is empty")
        encoding = tokenizer.encode(example.text, example.pair)
        if len(encoding) > max_length:
            n_cut += 1
            encoding = tokenizer.encode(example.text, example.pair, max_length=max_length)
        feature = {"input_ids": encoding.ids, "token_type_ids": _type_ids(encoding.sequence_ids)}
        if offsets:
            feature["offsets"] = [None if special else span for span, special
                                  in zip(encoding.offsets, encoding.special_tokens_mask)]
        if labels is not None and example.label is not None:
            feature["label"] = index[str(example.label)]
        features.append(feature)
    if n_cut:
        logger.warning("%d of %d %s texts were longer than max_length=%d tokens and were "
                       "truncated", n_cut, len(examples), split, max_length)
    return features


def inside_tag(tag: str) -> str:
    """The tag a word's continuation pieces get: ``B-X`` -> ``I-X`` (``S-X`` -> ``E-X`` wouldn't be
    right either way, so IOBES single tags keep theirs); anything else unchanged."""
    prefix, kind = split_tag(tag)
    return f"I-{kind}" if prefix == "B" else tag


def align_labels(
    word_ids: Sequence[int | None],
    word_labels: Sequence[int],
    label_all_subwords: bool = False,
    continuation: Sequence[int] | None = None,
) -> list[int]:
    """Word labels -> one label per token.

    ``word_ids[t]`` is the word of token ``t`` (None for ``<s>``, ``</s>``, padding). The first
    token of each word gets the word's label; later tokens of the same word get ``IGNORE`` or, with
    ``label_all_subwords``, ``continuation[label]`` (the id of ``inside_tag`` of the label).

        word_ids   None  0    1    1     2   None
        words           New  Yor  ##k   is
        labels    -100  B-L  I-L  -100  O   -100        (first subword)
        labels    -100  B-L  I-L  I-L   O   -100        (every subword)
    """
    out, previous = [], None
    for word in word_ids:
        if word is None:
            out.append(IGNORE)
        elif word != previous:
            out.append(word_labels[word])
        elif label_all_subwords:
            label = word_labels[word]
            out.append(continuation[label] if continuation is not None else label)
        else:
            out.append(IGNORE)
        previous = word
    return out


def first_tokens(word_ids: Sequence[int | None]) -> dict[int, int]:
    """{word: the position of its first token}: where a word's prediction is read."""
    out: dict[int, int] = {}
    for position, word in enumerate(word_ids):
        if word is not None and word not in out:
            out[word] = position
    return out


def word_predictions(
    word_ids: Sequence[int | None], token_predictions: Sequence[int], n_words: int, missing: int
) -> list[int]:
    """One prediction per word, read from its first token; words with no token (cut off by
    truncation) get ``missing``."""
    out = [missing] * n_words
    for word, position in first_tokens(word_ids).items():
        out[word] = token_predictions[position]
    return out


def encode_sentences(
    tokenizer: Tokenizer,
    sentences: Sequence[TaggedSentence],
    labels: Sequence[str] | None,
    max_length: int,
    label_all_subwords: bool = False,
    split: str = "data",
    task: str = "ner",
) -> list[dict]:
    """Sentences -> features ``{"input_ids", "token_type_ids", "word_ids", "labels", "n_words"}``.

    Continuation pieces (with ``label_all_subwords``) get ``inside_tag`` of a BIO tag for NER and
    the word's own tag for POS.
    """
    index = {label: i for i, label in enumerate(labels or [])}
    continuation = None
    if task == "ner":
        continuation = [index.get(inside_tag(label), i) for i, label in enumerate(labels or [])]
    features, n_cut, words_lost = [], 0, 0
    for i, sentence in enumerate(sentences):
        if not sentence.words:
            raise InputError(f"{_where(sentence, i, split)}: the sentence has no words")
        encoding = tokenizer.encode_words(sentence.words)
        if len(encoding) > max_length:
            n_cut += 1
            encoding = tokenizer.encode_words(sentence.words, max_length=max_length)
            words_lost += len(sentence.words) - len(first_tokens(encoding.word_ids))
        feature = {
            "input_ids": encoding.ids,
            "token_type_ids": [0] * len(encoding.ids),
            "word_ids": encoding.word_ids,
            "n_words": len(sentence.words),
        }
        if labels is not None and sentence.tags is not None:
            word_labels = [index[tag] for tag in sentence.tags]
            feature["labels"] = align_labels(
                encoding.word_ids, word_labels, label_all_subwords, continuation
            )
        features.append(feature)
    if n_cut:
        logger.warning(
            "%d of %d %s sentences were longer than max_length=%d tokens and were truncated; "
            "their last %d words get no prediction (scored as the first label)",
            n_cut, len(sentences), split, max_length, words_lost,
        )
    return features


def encode(task: str, tokenizer: Tokenizer, examples: Sequence, labels: Sequence[str] | None,
           max_length: int, label_all_subwords: bool = False, split: str = "data") -> list[dict]:
    """The task's encoder: sentences for the tagging tasks, texts for classification."""
    if is_tagging(task):
        return encode_sentences(tokenizer, examples, labels, max_length, label_all_subwords,
                                split, task)
    return encode_texts(tokenizer, examples, labels, max_length, split)


def match_token_types(features: list[dict], config) -> None:
    """RoBERTa has one segment embedding: zero the segment ids a pair encoding gave (in place)."""
    if config.type_vocab_size == 1:
        for feature in features:
            feature["token_type_ids"] = [0] * len(feature["input_ids"])


def collate(features: list[dict], pad_id: int) -> dict[str, Tensor]:
    """Pad a list of features to the longest one: tensors of shape (B, T_max)."""
    longest = max(len(f["input_ids"]) for f in features)

    def pad(key: str, value: int) -> Tensor:
        return torch.tensor([f[key] + [value] * (longest - len(f[key])) for f in features])

    batch = {
        "input_ids": pad("input_ids", pad_id),
        "attention_mask": torch.tensor(
            [[1] * len(f["input_ids"]) + [0] * (longest - len(f["input_ids"])) for f in features]
        ),
        "token_type_ids": pad("token_type_ids", 0),
    }
    if "label" in features[0]:
        batch["labels"] = torch.tensor([f["label"] for f in features])  # (B,)
    elif "labels" in features[0]:
        batch["labels"] = pad("labels", IGNORE)  # (B, T)
    return batch


# ================================================================== loss, logits and scores


def loss_fn(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Any]]:
    """Cross-entropy for either head; the loop's contract: (mean loss, sums of metrics).

    Classification: logits (B, L) against labels (B,). Tagging: logits (B, T, L) against labels
    (B, T), positions labelled ``IGNORE`` left out of the mean.
    """
    logits = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    labels = batch["labels"]
    scored = labels != IGNORE
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                           ignore_index=IGNORE)
    correct = ((logits.argmax(-1) == labels) & scored).sum()
    return loss, {"count": int(scored.sum()), "correct": correct,
                  "tokens": int(batch["attention_mask"].sum())}


def batches_by_length(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices in batches of similar lengths (longest first): little padding per batch.
    Callers put results back in input order."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


@torch.no_grad()
def predict_logits(
    model: nn.Module, features: list[dict], pad_id: int, batch_size: int = 64
) -> list[Tensor]:
    """Run the model over features in batches; one logits tensor per feature, padding removed:
    (L,) for classification, (T_i, L) for tagging. Inputs go to the model's device."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    results: dict[int, Tensor] = {}
    for chunk in batches_by_length([len(f["input_ids"]) for f in features], batch_size):
        batch = collate([features[i] for i in chunk], pad_id)
        logits = model(
            batch["input_ids"].to(device),
            batch["attention_mask"].to(device),
            batch["token_type_ids"].to(device),
        ).float().cpu()
        for row, i in enumerate(chunk):
            results[i] = logits[row] if logits.dim() == 2 else logits[row, : len(features[i]["input_ids"])]
    model.train(was_training)
    return [results[i] for i in range(len(features))]


def score_predictions(task: str, examples: Sequence, predicted: Sequence, labels: Sequence[str]) -> dict:
    """The task's metrics from gold examples and predicted label names (one per text, or one list
    per sentence): entity P/R/F1 (NER); word accuracy, per-tag accuracy and the confusion matrix
    (POS); accuracy, macro-F1 and the confusion matrix (classification). ``score`` is the number
    the recipe keeps the best model by."""
    if task == "ner":
        result = entity_scores([list(s.tags) for s in examples], [list(p) for p in predicted]).as_dict()
        result["score"] = result["f1"]
        return result
    if task == "pos":
        gold = [tag for sentence in examples for tag in sentence.tags]
        pred = [tag for row in predicted for tag in row]
        result = classification_report(gold, pred, labels)
        # A tag's accuracy is the share of the words carrying it that got it: its recall.
        result["per_tag_accuracy"] = {tag: s["recall"] for tag, s in result["per_class"].items()}
        result["score"] = result["accuracy"]
        return result
    result = classification_report([str(e.label) for e in examples], list(predicted), labels)
    result["score"] = result["accuracy"]
    return result


def summary(task: str, scores: dict) -> str:
    """One line of a task's scores, as the commands print them."""
    if task == "ner":
        return (f"entity F1 {scores['f1']:.4f} (precision {scores['precision']:.4f}, "
                f"recall {scores['recall']:.4f}, {scores['n_gold']} entities)")
    if task == "pos":
        worst = sorted(scores["per_tag_accuracy"].items(), key=lambda item: item[1])[:3]
        return (f"token accuracy {scores['accuracy']:.4f} over {scores['n']} words, macro-F1 "
                f"{scores['macro_f1']:.4f}; hardest tags: "
                + ", ".join(f"{tag} {accuracy:.3f}" for tag, accuracy in worst))
    return f"accuracy {scores['accuracy']:.4f}, macro-F1 {scores['macro_f1']:.4f} ({scores['n']} texts)"


def predicted_labels(task: str, features: list[dict], logits: list[Tensor], labels: Sequence[str]) -> list:
    """Logits -> label names: one per text, or one per word of each sentence (from its first
    token; a word cut off by truncation gets the first label)."""
    if not is_tagging(task):
        return [labels[int(row.argmax())] for row in logits]
    out = []
    for feature, row in zip(features, logits):
        words = word_predictions(feature["word_ids"], row.argmax(-1).tolist(), feature["n_words"], 0)
        out.append([labels[i] for i in words])
    return out


def score(
    task: str, model: nn.Module, features: list[dict], examples: Sequence, labels: Sequence[str],
    pad_id: int, batch_size: int = 64,
) -> dict:
    """The task's metrics on one split (see :func:`score_predictions`)."""
    logits = predict_logits(model, features, pad_id, batch_size)
    return score_predictions(task, examples, predicted_labels(task, features, logits, labels), labels)


# ================================================================== the run directory's recipe


def read_recipe(run_dir: str | Path) -> dict:
    """``finetune.json`` of a run directory, checked: task, labels (distinct strings), max_length.

    Raises a one-line error naming the file for anything a hand edit or a bad copy can break.
    """
    path = Path(run_dir) / RECIPE_FILE
    if not path.is_file():
        raise MissingFileError(f"{run_dir} is not a fine-tuned run directory: no {RECIPE_FILE} "
                               "(create one with `minirob finetune ... --out DIR`)")
    try:
        recipe = json.loads(path.read_text(encoding="utf-8"))
        task, labels, max_length = recipe["task"], recipe["labels"], int(recipe["max_length"])
    except (ValueError, KeyError, TypeError) as error:  # corrupted or hand-edited
        raise CheckpointError(f"{path}: unreadable ({type(error).__name__}: {error}); it records "
                              "the run's task, labels and max_length") from None
    if task not in TASKS:
        raise CheckpointError(f"{path}: task {task!r} is not one of {', '.join(TASKS)}")
    if (not isinstance(labels, list) or len(labels) < 2
            or not all(isinstance(label, str) for label in labels) or len(set(labels)) != len(labels)):
        raise CheckpointError(f"{path}: 'labels' must be a list of at least two distinct strings, "
                              f"got {json.dumps(labels)[:80]}")
    if max_length < 4:
        raise CheckpointError(f"{path}: max_length must be >= 4, got {max_length}")
    return {**recipe, "task": task, "labels": labels, "max_length": max_length}


def check_head(model: nn.Module, labels: Sequence[str], where: str) -> None:
    """The model's head must have one output per label the recipe lists."""
    if model.config.num_labels != len(labels):
        raise CheckpointError(
            f"{where}: the model's head has {model.config.num_labels} outputs but {RECIPE_FILE} "
            f"lists {len(labels)} labels ({', '.join(labels)}); the files come from different runs"
        )


# ================================================================== reading data files


def examples_from_records(records: Iterable, task: str) -> list:
    """Anything with text/label (or words/tags) fields, as dicts or objects -> examples."""

    def get(record, *names):
        for name in names:
            value = record.get(name) if isinstance(record, dict) else getattr(record, name, None)
            if value is not None:
                return value
        return None

    out = []
    for i, record in enumerate(records):
        source = get(record, "source") or ""
        if is_tagging(task):
            words = get(record, "words", "tokens")
            tags = get(record, "tags", "labels", "ner_tags", "pos_tags")
            if words is None:
                raise DataError(f"record {i}: expected 'words' and 'tags' fields, got {record!r}")
            out.append(TaggedSentence(list(words), None if tags is None else list(tags), source))
        else:
            text = get(record, "text", "sentence")
            if text is None:
                raise DataError(f"record {i}: expected a 'text' field, got {record!r}")
            label = get(record, "label")
            out.append(TextExample(str(text), None if label is None else str(label),
                                   get(record, "pair", "text_pair"), source))
    return out


def sentiment_examples(items: Iterable) -> list[TextExample]:
    """:func:`minirob.datasets.load_sentiment` rows (label 1/0) -> "positive"/"negative" examples."""
    return [TextExample(item.text, SENTIMENT_LABELS[int(item.label)]) for item in items]


def conll_sentences(sentences: Iterable, source: str = "") -> list[TaggedSentence]:
    """Sentences as lists of (word, tag) (:func:`minirob.readers.read_conll`, the POS loader) ->
    TaggedSentence; ``source`` names the file in error messages (``file sentence N``)."""
    out = []
    for i, sentence in enumerate(sentences):
        words, tags = zip(*sentence) if sentence else ((), ())
        where = f"{source} sentence {i + 1}" if source else ""
        out.append(TaggedSentence(list(words), list(tags), where))
    return out


def read_examples(path: str | Path, task: str, text_column: str = "text",
                  label_column: str = "label", pair_column: str | None = None) -> list:
    """A labelled file -> examples: CoNLL (``word<TAB>tag``) for the tagging tasks, CSV/TSV/JSONL
    for classification."""
    if is_tagging(task):
        bio = "repair" if task == "ner" else "keep"  # POS tags have no B-/I- structure
        return conll_sentences(read_conll(path, bio=bio), str(path))
    rows = read_table(path, text_column, label_column)
    pairs = [None] * len(rows)
    if pair_column:
        pairs = [row.text for row in read_table(path, pair_column, None)]
    return [TextExample(row.text, None if row.label is None else str(row.label), pair,
                        f"{path} row {i + 1}")
            for i, (row, pair) in enumerate(zip(rows, pairs))]
