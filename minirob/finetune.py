"""The fine-tuning recipe: put a task head on a pretrained encoder, train it, keep the best, score it.

What the tasks are (examples, encoding, label alignment, loss, scores) lives in
:mod:`minirob.tasks`; this module is only the recipe. It reuses the shared loop of
:mod:`minirob.train` (AdamW, warm-up then linear decay, the time/step budget, progress bar,
metrics log) and adds what fine-tuning needs on top, through the loop's ``evaluate`` hook: a
validation score after every epoch (:class:`Validation`), the best weights kept as they appear
(:class:`KeepBest`, a named hook with patience for early stopping), and at the end a JSON report
on the test split, scored with the best weights.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from .config import CLASSIFIER_POOLINGS
from .errors import ConfigError, DataError, WriteError, out_of_space
from .metrics import plot_confusion_matrix
from .tasks import (  # noqa: F401  (re-exported: the tutorials read these names from here)
    IGNORE,
    RECIPE_FILE,
    REPORT_FILE,
    SENTIMENT_LABELS,
    TASKS,
    TaggedSentence,
    TextExample,
    align_labels,
    check_labels,
    collate,
    conll_sentences,
    encode,
    encode_sentences,
    encode_texts,
    examples_from_records,
    inside_tag,
    is_tagging,
    label_list,
    loss_fn,
    match_token_types,
    model_class,
    predict_logits,
    score,
    sentiment_examples,
    word_predictions,
)
from .tokenizer import Tokenizer
from .train import ShuffledBatches, TrainConfig, train
from .weights import read_checkpoint

logger = logging.getLogger(__name__)


# TrainConfig fields a fine-tuning run sets itself (see loop_config); not part of a recipe.
SET_BY_RECIPE = ("out_dir", "eval_every", "log_every")


@dataclass
class FinetuneLoop(TrainConfig):
    """The training loop's settings for fine-tuning: TrainConfig's fields, with the reference
    recipe's values as defaults (transformers' Trainer defaults: AdamW betas (0.9, 0.999), eps
    1e-8, lr 5e-5, no weight decay; 6% linear warm-up; gradients clipped at norm 1.0), and one
    more budget, ``epochs``: passes over the training split. The recipe turns epochs into
    ``max_steps`` once it knows the split's size; ``max_steps`` or ``minutes``, when given too,
    stop the run sooner if they come first.

    ``eval_every`` (one validation per epoch), ``log_every`` and ``out_dir`` (``RUN/train``) are
    the recipe's to set (:data:`SET_BY_RECIPE`); every other field goes to the loop as given.

        FinetuneLoop(lr=2e-4, epochs=8)           # the reference recipe with two changes
    """

    lr: float = 5e-5
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    warmup: float = 0.06
    grad_clip: float | None = 1.0
    bf16: str = "off"
    checkpoint_every: int = 0  # no intermediate checkpoints: the best model is what a run keeps
    keep_checkpoints: int = 1
    plot: bool = False
    epochs: float | None = 3.0

    def __post_init__(self) -> None:
        for name in ("epochs", "lr", "warmup", "weight_decay", "eps", "minutes", "grad_clip"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value}")
        if self.epochs is not None and not self.epochs > 0:
            raise ConfigError(f"epochs must be > 0, got {self.epochs}")
        if self.epochs is None and self.max_steps is None and self.minutes is None:
            raise ConfigError("the fine-tuning loop needs a budget: epochs, max_steps and/or minutes")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        self.betas = tuple(self.betas)
        self.for_run(steps_per_epoch=1)  # TrainConfig's own checks (epochs count as a step budget)

    def for_run(self, steps_per_epoch: int, **changes) -> TrainConfig:
        """The plain TrainConfig the loop runs, with the epochs turned into steps."""
        budgets = [self.max_steps] if self.max_steps is not None else []
        if self.epochs is not None:
            budgets.append(max(1, math.ceil(self.epochs * steps_per_epoch)))
        settings = {f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)}
        return TrainConfig(**{**settings, "max_steps": min(budgets, default=None), **changes})


@dataclass
class FinetuneConfig:
    """One fine-tuning recipe: the task's own settings here, the loop's in ``train``.

        FinetuneConfig(task="ner", batch_size=16, train=FinetuneLoop(lr=2e-4, epochs=8))

    Defaults: the issue's reference recipe (see :class:`FinetuneLoop`; max length 128;
    first-subword labels), except that batches are length-grouped (``group_by_length``;
    transformers' Trainer leaves that off): on movie-review snippets an epoch then pads 1.03x the
    real tokens instead of 1.9x and runs 1.6x faster on a CPU (scores: docs/finetuning.md).
    ``train.seed`` also seeds the new head and the order of the batches.
    """

    task: str = "classify"
    batch_size: int = 32
    max_length: int = 128
    label_all_subwords: bool = False
    patience: int | None = None  # stop after this many epochs without a better validation score
    random_init: bool = False  # same shape as the checkpoint, fresh weights: the baseline
    classifier_dropout: float | None = None
    pooling: str = "first"  # classification: "first" (<s>) or "mean" (see RobertaConfig)
    group_by_length: bool = True  # batches of similar lengths: less padding, faster epochs
    eval_batch_size: int = 64
    train: FinetuneLoop = field(default_factory=FinetuneLoop)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"task={self.task!r} is not one of {', '.join(TASKS)}")
        if not isinstance(self.train, FinetuneLoop):
            raise ConfigError(f"train must be a FinetuneLoop (the loop's settings with an epoch "
                              f"budget), got {type(self.train).__name__}")
        for name, least in (("batch_size", 1), ("max_length", 4), ("eval_batch_size", 1)):
            if getattr(self, name) < least:
                raise ConfigError(f"{name} must be >= {least}, got {getattr(self, name)}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be >= 1 (epochs), got {self.patience}")
        if self.pooling not in CLASSIFIER_POOLINGS:
            raise ConfigError(f"pooling={self.pooling!r} is not one of {', '.join(CLASSIFIER_POOLINGS)}")

    @classmethod
    def from_fields(cls, **fields) -> FinetuneConfig:
        """A recipe from one flat set of names, as grids and JSON files list it
        (``task="ner", lr=2e-4, epochs=8``): FinetuneLoop's names go to ``train``."""
        loop_names = {f.name for f in dataclasses.fields(FinetuneLoop)}
        loop = {name: fields.pop(name) for name in list(fields) if name in loop_names}
        return cls(**fields, train=FinetuneLoop(**loop))


# ================================================================== building blocks


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
    """The task model from ``start``'s weights with a new head, or the same shape, random.

    Either way the checkpoint is read once. The loader places a head the checkpoint already has,
    including a BERT checkpoint's trained pooler, which becomes the classification head's dense
    layer (see :mod:`minirob.names`): what transformers' BertForSequenceClassification starts from.
    """
    cls = model_class(task)
    overrides = {"num_labels": len(labels), "id2label": dict(enumerate(labels))}
    if classifier_dropout is not None:
        overrides["classifier_dropout"] = classifier_dropout
    if not is_tagging(task):
        overrides["classifier_pooling"] = pooling
    if random_init:
        config, _ = read_checkpoint(start)
        return cls(dataclasses.replace(config, **overrides))
    return cls.from_pretrained(start, **overrides)


def training_batches(features: list[dict], config: FinetuneConfig, pad_id: int) -> ShuffledBatches:
    """The training split as endless shuffled, padded batches (length-grouped if the recipe asks)."""
    lengths = [len(f["input_ids"]) for f in features] if config.group_by_length else None
    return ShuffledBatches(features, config.batch_size, lambda fs: collate(fs, pad_id),
                           seed=config.train.seed, drop_last=False, lengths=lengths)


def write_or_explain(write, path: Path) -> None:
    """Run ``write()``; a full disk becomes one line naming the path (``save_pretrained`` already
    says so itself; this covers the tokenizer files and the recipe)."""
    try:
        write()
    except Exception as error:
        if out_of_space(error):
            raise WriteError(f"{path}: no space left on the device to save the fine-tuned "
                                "model; free some space or choose another --out") from None
        raise


class KeepBest:
    """The keep-best hook: save the model whenever the validation score improves, and say when
    ``patience`` epochs have passed without improvement (early stopping)."""

    def __init__(self, out_dir: Path, patience: int | None):
        self.out_dir, self.patience = out_dir, patience
        self.score, self.epoch = -1.0, 0

    def __call__(self, model: nn.Module, epoch: int, score: float) -> bool:
        """Record one epoch's score; return True when training should stop."""
        if score > self.score:
            self.score, self.epoch = score, epoch
            model.save_pretrained(self.out_dir)  # a full disk: a one-line WriteError naming the file
        stop = self.patience is not None and epoch - self.epoch >= self.patience
        if stop:
            logger.info("early stopping: no better validation score for %d epochs", self.patience)
        return stop


class Validation:
    """The loop's evaluate hook: score the validation split, log it, hand the score to the
    :class:`KeepBest` hook (which decides about saving and stopping)."""

    def __init__(self, task, features, examples, labels, pad_id, batch_size, keep_best: KeepBest):
        self.task, self.features, self.examples, self.labels = task, features, examples, labels
        self.pad_id, self.batch_size, self.keep_best = pad_id, batch_size, keep_best
        self.history: list[dict] = []
        self.started = time.perf_counter()

    def __call__(self, model: nn.Module) -> dict:
        metrics = score(self.task, model, self.features, self.examples, self.labels, self.pad_id,
                        self.batch_size)
        epoch = len(self.history) + 1
        self.history.append({"epoch": epoch, "score": metrics["score"],
                             "seconds": round(time.perf_counter() - self.started, 1)})
        stop = self.keep_best(model, epoch, metrics["score"])
        return {"val_score": metrics["score"], "best_val_score": self.keep_best.score, "stop": stop}


def loop_config(config: FinetuneConfig, out_dir: Path, steps_per_epoch: int) -> TrainConfig:
    """The shared loop's settings for a fine-tuning run: the recipe's FinetuneLoop with its epochs
    counted in steps, one evaluation per epoch, a log line about four times an epoch."""
    return config.train.for_run(steps_per_epoch, out_dir=str(out_dir / "train"),
                                eval_every=steps_per_epoch,
                                log_every=max(1, min(50, steps_per_epoch // 4)))


# ================================================================== the recipe


def recipe_fields(config: FinetuneConfig) -> dict:
    """The recipe as ``finetune.json`` records it: every choice that shapes the model."""
    fields = dataclasses.asdict(config)
    for name in (*SET_BY_RECIPE, "progress"):
        del fields["train"][name]
    return fields


def training_labels(splits: dict[str, Sequence], task: str) -> list[str]:
    """The labels the training split uses; a validation or test label outside them is refused."""
    labels = label_list(splits["train"], task)
    if len(labels) < 2:
        raise DataError(f"the training data has only the label(s) {labels}; need at least two")
    check_labels(splits["validation"], labels, task, "validation")
    check_labels(splits["test"], labels, task, "test")
    return labels


def final_report(recipe: dict, test: dict, validation: Validation, result, seconds: float,
                 steps_per_epoch: int) -> dict:
    """``report.json``: the recipe, the test scores of the best model, and how training went."""
    return {
        **recipe,
        "test": test,
        "validation_history": validation.history,
        "best_epoch": validation.keep_best.epoch,
        "best_validation_score": validation.keep_best.score,
        "stopped_by": {"steps": "epochs", "evaluate": "early_stopping"}.get(result.stopped_by,
                                                                            result.stopped_by),
        "train_seconds": round(seconds, 1),
        "steps_per_epoch": steps_per_epoch,
        "steps": result.step,
        "epochs_done": round(result.step / steps_per_epoch, 2),
        "torch_threads": torch.get_num_threads(),
    }


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
    prediction needs), ``report.json``, ``confusion_matrix.png`` (classification, POS) and the
    loop's own files under ``train/``.
    """
    out_dir, task = Path(out_dir), config.task
    torch.manual_seed(config.train.seed)
    tokenizer = load_tokenizer(start, tokenizer_path)
    if tokenizer.pad_id is None:
        raise ConfigError(f"the tokenizer of {start} has no padding token")
    splits = {"train": train_examples, "validation": validation_examples, "test": test_examples}
    labels = training_labels(splits, task)
    model = build_model(task, start, labels, config.random_init, config.classifier_dropout,
                        config.pooling)
    max_length = fit_max_length(config.max_length, model.config)
    features = {name: encode(task, tokenizer, examples, labels, max_length,
                             config.label_all_subwords, name) for name, examples in splits.items()}
    match_token_types([f for split in features.values() for f in split], model.config)
    batches = training_batches(features["train"], config, tokenizer.pad_id)
    recipe = {"task": task, "labels": labels, "max_length": max_length,
              "label_all_subwords": config.label_all_subwords, "start": str(start),
              "recipe": recipe_fields(config),
              "sizes": {name: len(examples) for name, examples in splits.items()}}

    out_dir.mkdir(parents=True, exist_ok=True)
    validation = Validation(task, features["validation"], validation_examples, labels,
                            tokenizer.pad_id, config.eval_batch_size, KeepBest(out_dir, config.patience))
    steps_per_epoch = batches.batches_per_epoch()
    result = train(model, loss_fn, batches, loop_config(config, out_dir, steps_per_epoch),
                   evaluate=validation, run_info={"finetune": recipe})
    seconds = time.perf_counter() - validation.started
    if validation.keep_best.epoch == 0:  # the budget ran out within the first epoch: score it now
        validation(model)

    write_or_explain(lambda: tokenizer.save(out_dir), out_dir)
    write_or_explain(lambda: (out_dir / RECIPE_FILE).write_text(json.dumps(recipe, indent=2)),
                     out_dir / RECIPE_FILE)
    test = score(task, type(model).from_pretrained(out_dir), features["test"], test_examples, labels,
                 tokenizer.pad_id, config.eval_batch_size)  # the best model, read back
    report = final_report(recipe, test, validation, result, seconds, steps_per_epoch)
    if "confusion_matrix" in test:
        plot_confusion_matrix(test["confusion_matrix"], labels, out_dir / "confusion_matrix.png",
                              title=f"test accuracy {test['accuracy']:.3f}")
    (out_dir / REPORT_FILE).write_text(json.dumps(report, indent=2))
    return report
