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
import errno
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from .config import CLASSIFIER_POOLINGS
from .errors import ConfigError, DataError, WriteError
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


@dataclass
class FinetuneConfig:
    """One fine-tuning recipe. Defaults: the issue's reference recipe (transformers' defaults for
    AdamW's betas and eps; 6% linear warm-up; max length 128; first-subword labels), except that
    batches are length-grouped (``group_by_length``; transformers' Trainer leaves that off): on
    movie-review snippets an epoch then pads 1.03x the real tokens instead of 1.9x and runs 1.6x
    faster on a CPU (scores: docs/finetuning.md)."""

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
        for name in ("epochs", "lr", "warmup", "weight_decay", "eps", "minutes", "grad_clip"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value}")
        if self.epochs <= 0 or self.batch_size < 1 or self.max_length < 4:
            raise ConfigError(
                f"need epochs > 0, batch_size >= 1, max_length >= 4; got epochs={self.epochs}, "
                f"batch_size={self.batch_size}, max_length={self.max_length}"
            )
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be >= 1 (epochs), got {self.patience}")
        if self.pooling not in CLASSIFIER_POOLINGS:
            raise ConfigError(f"pooling={self.pooling!r} is not one of {', '.join(CLASSIFIER_POOLINGS)}")


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
                           seed=config.seed, drop_last=False, lengths=lengths)


def write_or_explain(write, path: Path) -> None:
    """Run ``write()``; a full disk becomes one line naming the path (safetensors reports it as its
    own error type, not as an OSError, so the message is read too)."""
    try:
        write()
    except Exception as error:
        full = isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
        if full or "No space left" in str(error):
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
            write_or_explain(lambda: model.save_pretrained(self.out_dir), self.out_dir)
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
    """The shared loop's settings for a fine-tuning run: one evaluation per epoch, no
    intermediate checkpoints (the best model is what the run keeps)."""
    return TrainConfig(
        out_dir=str(out_dir / "train"), lr=config.lr, betas=config.betas, eps=config.eps,
        weight_decay=config.weight_decay, warmup=config.warmup,
        max_steps=max(1, math.ceil(config.epochs * steps_per_epoch)), minutes=config.minutes,
        grad_clip=config.grad_clip, bf16=config.bf16, eval_every=steps_per_epoch,
        checkpoint_every=0, keep_checkpoints=1, log_every=max(1, min(50, steps_per_epoch // 4)),
        seed=config.seed, device="cpu" if not torch.cuda.is_available() else "auto",
        progress=config.progress, plot=False,
    )


# ================================================================== the recipe


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
    torch.manual_seed(config.seed)
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
              "recipe": {k: v for k, v in dataclasses.asdict(config).items() if k != "progress"},
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
