"""Fine-tuning recipes: put a task head on a pretrained encoder, train it, keep the best, score it.

Two tasks share one recipe:

* **sequence classification** (``"classify"``; ``"sentiment"`` is the same on the movie-review
  set): a text, or a pair of texts, gets one label read from the ``<s>`` token;
* **named-entity recognition** (``"ner"``): every *word* gets a BIO tag.

The recipe (:func:`finetune`) reuses the shared loop of :mod:`minirob.train` (AdamW, warm-up then
linear decay, the time/step budget, progress bar, metrics log) and adds what fine-tuning needs on
top, through the loop's ``evaluate`` hook: a validation score after every epoch, the best weights
saved as they appear, early stopping after ``patience`` epochs without improvement, and at the end
a JSON report on the test split, scored with the best weights.

The one subtle step is NER's *label alignment*. Labels belong to words, the model sees subword
tokens: ``"Tolkien"`` may become ``Tol ##kien``. The standard choice (BERT's paper, section 5.3)
labels the first subword of each word and ignores the others in the loss (label ``-100``, which
``cross_entropy`` skips); the alternative labels every subword, continuation pieces of a ``B-X``
word getting ``I-X``. Either way a word's prediction is read from its first subword.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import CLASSIFIER_POOLINGS
from .errors import ConfigError, DataError, InputError
from .metrics import classification_report, entity_scores, plot_confusion_matrix, split_tag
from .model import RobertaForSequenceClassification, RobertaForTokenClassification
from .tokenizer import Tokenizer
from .train import ShuffledBatches, TrainConfig, train

logger = logging.getLogger(__name__)

TASKS = ("sentiment", "classify", "ner")
IGNORE = -100  # the label cross_entropy skips: special tokens, padding, continuation subwords
RECIPE_FILE = "finetune.json"  # what a run directory records about its task and labels
REPORT_FILE = "report.json"
SENTIMENT_LABELS = ("negative", "positive")  # load_sentiment's label 0 and 1


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
    """One NER example: the words and their BIO tags (None when predicting)."""

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
    return sorted({str(example.label) for example in train_examples})


def check_labels(examples: Sequence, labels: Sequence[str], task: str, split: str) -> None:
    """Refuse a label that training never saw: the head has no output for it."""
    known = set(labels)
    for i, example in enumerate(examples):
        values = example.tags if task == "ner" else [example.label]
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


def _warn_truncated(n_cut: int, n_total: int, max_length: int, what: str) -> None:
    if n_cut:
        logger.warning(
            "%d of %d %s were longer than max_length=%d tokens and were truncated",
            n_cut, n_total, what, max_length,
        )


def encode_texts(
    tokenizer: Tokenizer,
    examples: Sequence[TextExample],
    labels: Sequence[str] | None,
    max_length: int,
    split: str = "data",
) -> list[dict]:
    """Examples -> features ``{"input_ids", "token_type_ids", "label"}`` (lists, unpadded).

    Texts longer than ``max_length`` tokens are cut (the longer text of a pair first) and counted
    in one warning.
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
        if labels is not None and example.label is not None:
            feature["label"] = index[str(example.label)]
        features.append(feature)
    _warn_truncated(n_cut, len(examples), max_length, f"{split} texts")
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


def word_predictions(
    word_ids: Sequence[int | None], token_predictions: Sequence[int], n_words: int, missing: int
) -> list[int]:
    """One prediction per word, read from its first token; words with no token (cut off by
    truncation) get ``missing``."""
    out = [missing] * n_words
    seen = set()
    for word, prediction in zip(word_ids, token_predictions):
        if word is not None and word not in seen:
            seen.add(word)
            out[word] = prediction
    return out


def encode_sentences(
    tokenizer: Tokenizer,
    sentences: Sequence[TaggedSentence],
    labels: Sequence[str] | None,
    max_length: int,
    label_all_subwords: bool = False,
    split: str = "data",
) -> list[dict]:
    """Sentences -> features ``{"input_ids", "token_type_ids", "word_ids", "labels", "n_words"}``."""
    index = {label: i for i, label in enumerate(labels or [])}
    continuation = [index.get(inside_tag(label), i) for i, label in enumerate(labels or [])]
    features, n_cut, words_lost = [], 0, 0
    for i, sentence in enumerate(sentences):
        if not sentence.words:
            raise InputError(f"{_where(sentence, i, split)}: the sentence has no words")
        encoding = tokenizer.encode_words(sentence.words)
        if len(encoding) > max_length:
            n_cut += 1
            encoding = tokenizer.encode_words(sentence.words, max_length=max_length)
            kept = {w for w in encoding.word_ids if w is not None}
            words_lost += len(sentence.words) - len(kept)
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
            "their last %d words get no prediction (scored as O)",
            n_cut, len(sentences), split, max_length, words_lost,
        )
    return features


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


def training_batches(features: list[dict], config: "FinetuneConfig", pad_id: int) -> ShuffledBatches:
    """The training split as endless shuffled, padded batches (length-grouped if the recipe asks)."""
    lengths = [len(f["input_ids"]) for f in features] if config.group_by_length else None
    return ShuffledBatches(features, config.batch_size, lambda fs: collate(fs, pad_id),
                           seed=config.seed, drop_last=False, lengths=lengths)


# ================================================================== loss and inference


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


@torch.no_grad()
def predict_logits(
    model: nn.Module, features: list[dict], pad_id: int, batch_size: int = 64
) -> list[Tensor]:
    """Run the model over features in batches; one logits tensor per feature, padding removed:
    (L,) for classification, (T_i, L) for tagging."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    # Longest first within the whole set keeps padding small; results go back in input order.
    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    results: dict[int, Tensor] = {}
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
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


def score(
    task: str, model: nn.Module, features: list[dict], examples: Sequence, labels: Sequence[str],
    pad_id: int, batch_size: int = 64,
) -> dict:
    """The task's metrics on one split: accuracy/macro-F1/confusion, or entity P/R/F1."""
    logits = predict_logits(model, features, pad_id, batch_size)
    if task == "ner":
        gold, pred = [], []
        for sentence, feature, row in zip(examples, features, logits):
            token_pred = row.argmax(-1).tolist()
            words = word_predictions(feature["word_ids"], token_pred, feature["n_words"], missing=0)
            gold.append(list(sentence.tags))
            pred.append([labels[i] for i in words])
        result = entity_scores(gold, pred).as_dict()
        result["score"] = result["f1"]
        return result
    gold = [str(e.label) for e in examples]
    pred = [labels[int(row.argmax())] for row in logits]
    result = classification_report(gold, pred, labels)
    result["score"] = result["accuracy"]
    return result


# ================================================================== the recipe


@dataclass
class FinetuneConfig:
    """One fine-tuning recipe. Defaults: the issue's reference recipe (transformers' defaults for
    AdamW's betas and eps; 6% linear warm-up; max length 128; first-subword labels), except that
    batches are length-grouped (``group_by_length``; transformers' Trainer leaves that off): on
    movie-review snippets an epoch then pads 1.03x the real tokens instead of 1.9x and runs 1.6x
    faster on a CPU (scores: README, "Fine-tuning")."""

    task: str = "classify"
    epochs: float = 3.0
    batch_size: int = 32
    lr: float = 5e-5
    warmup: float = 0.06
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float | None = 1.0
    max_length: int = 128
    label_all_subwords: bool = False
    patience: int | None = None  # stop after this many epochs without a better validation score
    minutes: float | None = None  # wall-clock budget (the schedule then follows the clock)
    seed: int = 0
    random_init: bool = False  # same shape as the checkpoint, fresh weights: the baseline
    classifier_dropout: float | None = None
    pooling: str = "first"  # classification: "first" (<s>) or "mean" (see RobertaConfig)
    group_by_length: bool = True  # batches of similar lengths: less padding, faster epochs
    eval_batch_size: int = 64
    bf16: str = "off"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"task={self.task!r} is not one of {', '.join(TASKS)}")
        if self.epochs <= 0 or self.batch_size < 1 or self.max_length < 4:
            raise ConfigError(
                f"need epochs > 0, batch_size >= 1, max_length >= 4; got epochs={self.epochs}, "
                f"batch_size={self.batch_size}, max_length={self.max_length}"
            )
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be >= 1 (epochs), got {self.patience}")
        if self.pooling not in CLASSIFIER_POOLINGS:
            raise ConfigError(f"pooling={self.pooling!r} is not one of {', '.join(CLASSIFIER_POOLINGS)}")


def fit_max_length(max_length: int, model_config) -> int:
    """The longest input the model's position table allows, if ``max_length`` asks for more."""
    limit = model_config.max_sequence_length
    if max_length > limit:
        logger.warning("max_length=%d is more than this model's %d positions allow; using %d",
                       max_length, limit, limit)
        return limit
    return max_length


def load_tokenizer(start: str | Path, tokenizer_path: str | Path | None = None) -> Tokenizer:
    """The tokenizer that goes with a checkpoint: next to it, unless given explicitly."""
    path = Path(tokenizer_path) if tokenizer_path else Path(start)
    if path.is_file() and tokenizer_path is None:
        path = path.parent
    return Tokenizer.from_pretrained(path)


def build_model(task: str, start: str | Path, labels: Sequence[str], random_init: bool,
                classifier_dropout: float | None = None, pooling: str = "first") -> nn.Module:
    """The task model from ``start``'s weights (a new head on top), or the same shape, random."""
    from .weights import read_checkpoint

    cls = RobertaForTokenClassification if task == "ner" else RobertaForSequenceClassification
    overrides = {"num_labels": len(labels), "id2label": dict(enumerate(labels))}
    if classifier_dropout is not None:
        overrides["classifier_dropout"] = classifier_dropout
    if task != "ner":
        overrides["classifier_pooling"] = pooling
    if random_init:
        config, _ = read_checkpoint(start)
        return cls(dataclasses.replace(config, **overrides))
    model = cls.from_pretrained(start, **overrides)
    if cls is RobertaForSequenceClassification:
        _pooler_into_head(model, start)
    return model


def _pooler_into_head(model: RobertaForSequenceClassification, start: str | Path) -> None:
    """A BERT checkpoint's *trained* pooler (dense + tanh on [CLS]) becomes the head's dense layer.

    RoBERTa's head computes out_proj(tanh(dense(h_<s>))), BERT's classifier reads
    classifier(tanh(pooler(h_[CLS]))): the same function, so starting the head's dense layer from
    the pooler gives minirob what transformers' BertForSequenceClassification starts from, instead
    of a random layer. RoBERTa checkpoints have no trained pooler and are left alone.
    """
    from .weights import read_checkpoint

    if "classifier.dense" not in " ".join(model.load_report.newly_initialised):
        return  # the checkpoint already had a classification head
    _, state = read_checkpoint(start)
    for prefix in ("pooler.dense", "bert.pooler.dense", "roberta.pooler.dense"):
        if f"{prefix}.weight" in state:
            with torch.no_grad():
                model.classifier.dense.weight.copy_(state[f"{prefix}.weight"])
                model.classifier.dense.bias.copy_(state[f"{prefix}.bias"])
            logger.info("classifier.dense initialised from the checkpoint's pooler (%s)", prefix)
            return


def finetune(
    start: str | Path,
    train_examples: Sequence,
    validation_examples: Sequence,
    test_examples: Sequence,
    config: FinetuneConfig,
    out_dir: str | Path,
    tokenizer_path: str | Path | None = None,
) -> dict:
    """Fine-tune ``start`` on the training split; return (and write) the test report.

    The run directory ``out_dir`` ends up holding the best weights (``config.json`` +
    ``model.safetensors``), the tokenizer, ``finetune.json`` (task, labels, max length: what
    :mod:`minirob.predict` needs), ``report.json``, ``confusion_matrix.png`` (classification) and
    the loop's own files under ``train/``.
    """
    out_dir = Path(out_dir)
    task = config.task
    torch.manual_seed(config.seed)
    tokenizer = load_tokenizer(start, tokenizer_path)
    if tokenizer.pad_id is None:
        raise ConfigError(f"the tokenizer of {start} has no padding token")
    labels = label_list(train_examples, task)
    if len(labels) < 2:
        raise DataError(f"the training data has only the label(s) {labels}; need at least two")
    check_labels(validation_examples, labels, task, "validation")
    check_labels(test_examples, labels, task, "test")

    model = build_model(task, start, labels, config.random_init, config.classifier_dropout,
                        config.pooling)
    max_length = fit_max_length(config.max_length, model.config)

    def encode(examples, split):
        if task == "ner":
            return encode_sentences(tokenizer, examples, labels, max_length,
                                    config.label_all_subwords, split)
        return encode_texts(tokenizer, examples, labels, max_length, split)

    train_features = encode(train_examples, "train")
    val_features = encode(validation_examples, "validation")
    test_features = encode(test_examples, "test")

    match_token_types([*train_features, *val_features, *test_features], model.config)

    pad_id = tokenizer.pad_id
    batches = training_batches(train_features, config, pad_id)
    steps_per_epoch = batches.batches_per_epoch()
    max_steps = max(1, math.ceil(config.epochs * steps_per_epoch))
    out_dir.mkdir(parents=True, exist_ok=True)
    recipe = {
        "task": task,
        "labels": labels,
        "max_length": max_length,
        "label_all_subwords": config.label_all_subwords,
        "start": str(start),
        "recipe": {k: v for k, v in dataclasses.asdict(config).items() if k != "progress"},
        "sizes": {"train": len(train_examples), "validation": len(validation_examples),
                  "test": len(test_examples)},
    }
    history: list[dict] = []
    best = {"score": -1.0, "epoch": 0}
    started = time.perf_counter()

    def evaluate(m: nn.Module) -> dict:
        epoch = len(history) + 1
        metrics = score(task, m, val_features, validation_examples, labels, pad_id,
                        config.eval_batch_size)
        entry = {"epoch": epoch, "score": metrics["score"],
                 "seconds": round(time.perf_counter() - started, 1)}
        history.append(entry)
        if metrics["score"] > best["score"]:
            best.update(score=metrics["score"], epoch=epoch)
            m.save_pretrained(out_dir)  # the best weights so far: what the run directory serves
        stop = config.patience is not None and epoch - best["epoch"] >= config.patience
        if stop:
            logger.info("early stopping: no better validation score for %d epochs", config.patience)
        return {"val_score": metrics["score"], "best_val_score": best["score"], "stop": stop}

    train_config = TrainConfig(
        out_dir=str(out_dir / "train"),
        lr=config.lr,
        betas=config.betas,
        eps=config.eps,
        weight_decay=config.weight_decay,
        warmup=config.warmup,
        max_steps=max_steps,
        minutes=config.minutes,
        grad_clip=config.grad_clip,
        bf16=config.bf16,
        eval_every=steps_per_epoch,
        checkpoint_every=0,
        keep_checkpoints=1,
        log_every=max(1, min(50, steps_per_epoch // 4)),
        seed=config.seed,
        device="cpu" if not torch.cuda.is_available() else "auto",
        progress=config.progress,
        plot=False,
    )
    result = train(model, loss_fn, batches, train_config, evaluate=evaluate,
                   run_info={"finetune": recipe})
    stopped_by = {"steps": "epochs", "evaluate": "early_stopping"}.get(result.stopped_by,
                                                                        result.stopped_by)
    steps = result.step
    train_seconds = time.perf_counter() - started
    if best["epoch"] == 0:  # the budget ran out before the first epoch ended: score what we have
        evaluate(model)

    tokenizer.save(out_dir)
    (out_dir / RECIPE_FILE).write_text(json.dumps(recipe, indent=2))
    best_model = type(model).from_pretrained(out_dir)
    test = score(task, best_model, test_features, test_examples, labels, pad_id,
                 config.eval_batch_size)
    report = {
        **recipe,
        "test": test,
        "validation_history": history,
        "best_epoch": best["epoch"],
        "best_validation_score": best["score"],
        "stopped_by": stopped_by,
        "train_seconds": round(train_seconds, 1),
        "steps_per_epoch": steps_per_epoch,
        "steps": steps,
        "epochs_done": round(steps / steps_per_epoch, 2),
        "torch_threads": torch.get_num_threads(),
    }
    if task != "ner":
        plot_confusion_matrix(test["confusion_matrix"], labels, out_dir / "confusion_matrix.png",
                              title=f"test accuracy {test['accuracy']:.3f}")
    (out_dir / REPORT_FILE).write_text(json.dumps(report, indent=2))
    return report


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
        if task == "ner":
            words, tags = get(record, "words", "tokens"), get(record, "tags", "labels", "ner_tags")
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


def conll_sentences(sentences: Iterable) -> list[TaggedSentence]:
    """:func:`minirob.readers.read_conll` sentences (lists of (word, tag)) -> TaggedSentence."""
    out = []
    for sentence in sentences:
        words, tags = zip(*sentence) if sentence else ((), ())
        out.append(TaggedSentence(list(words), list(tags)))
    return out
