"""Where a model comes from: one loader for every way a user can name a model to *use*.

A model to predict with may be any of:

* a minirob fine-tuned run (``finetune.json`` says its task and labels);
* a minirob pretrained run, or a transformers directory (RoBERTa or BERT family, with or without a
  task head; labels from ``id2label``), or a single weights file next to its ``config.json``;
* a fairseq checkpoint (``model.pt``, or a directory holding one);
* a registry name (``minilm``), fetched and cached on first use;
* a model already built in Python, with its tokenizer.

:func:`load_model` turns any of them into a :class:`LoadedModel` for one *head* (``"mlm"``,
``"sequence-classification"``, ``"token-classification"`` or ``"encoder"``) and refuses, in one
line, a model that has no trained head of that kind (fill-mask on a classifier, text
classification on a pretrained encoder whose head would be random).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import datasets
from .distributed import resolve_device
from .errors import ConfigError, MissingFileError
from .model import (
    RobertaForMaskedLM,
    RobertaForSequenceClassification,
    RobertaForTokenClassification,
    RobertaModel,
)
from .tasks import RECIPE_FILE, check_head, is_tagging, read_recipe
from .tokenizer import Tokenizer

logger = logging.getLogger(__name__)

HEADS = {
    "mlm": RobertaForMaskedLM,
    "sequence-classification": RobertaForSequenceClassification,
    "token-classification": RobertaForTokenClassification,
    "encoder": RobertaModel,
}
# What each head does, in messages.
_HEAD_WORDS = {"mlm": "masked-word prediction (fill-mask)",
               "sequence-classification": "text classification",
               "token-classification": "token classification", "encoder": "features"}
# The part of a task model that a checkpoint must supply for the head to be trained, not random.
_HEAD_WEIGHTS = {"mlm": "lm_head.", "sequence-classification": "classifier.",
                 "token-classification": "classifier.", "encoder": None}


@dataclass
class LoadedModel:
    """A model ready to run: in eval mode, on its device, with what prediction needs to know."""

    model: nn.Module
    tokenizer: Tokenizer
    labels: list[str] | None  # label names by output index (classifiers), else None
    max_length: int  # the longest input, in tokens, special tokens included
    source: str  # how the user named it, for messages
    run_task: str | None = None  # a fine-tuned run's task ("classify", "ner", "pos", ...)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def resolve_path(source: str | os.PathLike) -> Path:
    """A path as given, or a registry name (``minilm``) fetched into the cache."""
    path = Path(source)
    if path.exists():
        return path
    if str(source) in datasets.SOURCES:
        return datasets.fetch(str(source), progress=False)
    raise MissingFileError(f"model {str(source)!r}: no such file or directory, and not a known "
                           f"registry name ({', '.join(datasets.SOURCES)})")


def architecture(path: Path) -> str:
    """What a checkpoint says it is, for messages: config.json's first architecture, or 'a fairseq
    checkpoint'."""
    config = (path if path.is_dir() else path.parent) / "config.json"
    try:
        names = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
        return str(names[0]) if names else "an encoder without a named head"
    except (OSError, ValueError, AttributeError, IndexError, TypeError):
        return "a checkpoint without config.json"


def _from_built(head: str, model: nn.Module, tokenizer: Tokenizer | None, source: str) -> LoadedModel:
    if tokenizer is None:
        raise ConfigError("a model passed as an object needs its tokenizer too: "
                          "pipeline(task, model=model, tokenizer=tokenizer)")
    wanted = HEADS[head]
    if head == "encoder":
        model = model if isinstance(model, RobertaModel) else getattr(model, "roberta", None)
        if model is None:
            raise ConfigError(f"{source}: features need a RobertaModel or a task model with "
                              "a .roberta encoder")
    elif not isinstance(model, wanted):
        raise ConfigError(f"{source}: this task needs a {wanted.__name__}, got {type(model).__name__}")
    labels = _config_labels(model.config) if head.endswith("classification") else None
    return LoadedModel(model.eval(), tokenizer, labels, model.config.max_sequence_length, source)


def _config_labels(config) -> list[str]:
    names = config.id2label or {}
    return [str(names.get(i, f"LABEL_{i}")) for i in range(config.num_labels)]


def load_model(head: str, source, tokenizer: Tokenizer | None = None,
               device: str | torch.device | None = None) -> LoadedModel:
    """Any model source (see the module docstring) -> a :class:`LoadedModel` with ``head``."""
    if isinstance(source, tuple) and len(source) == 2:
        source, tokenizer = source
    if isinstance(source, nn.Module):  # stays where the caller put it unless a device is named
        loaded = _from_built(head, source, tokenizer, type(source).__name__)
        if device is not None:
            loaded.model.to(resolve_device(device))
        return loaded
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(f"model must be a path, a registry name or a model object, "
                          f"got {type(source).__name__}")
    loaded = _from_path(head, resolve_path(source), tokenizer, str(source))
    loaded.model.to(resolve_device(device))
    return loaded


def _from_path(head: str, path: Path, tokenizer: Tokenizer | None, source: str) -> LoadedModel:
    recipe = read_recipe(path) if (path / RECIPE_FILE).is_file() else None
    if recipe is not None and head != "encoder":
        run_head = "token-classification" if is_tagging(recipe["task"]) else "sequence-classification"
        if head != run_head:
            raise ConfigError(f"{source} is a fine-tuned {recipe['task']} run "
                              f"({_HEAD_WORDS[run_head]}); it cannot do {_HEAD_WORDS[head]}")
    with quiet_loader():  # a missing head is checked here, and refused with a reason
        model = HEADS[head].from_pretrained(path)
    prefix = _HEAD_WEIGHTS[head]
    if prefix and any(name.startswith(prefix) for name in model.load_report.newly_initialised):
        name = "masked-LM" if head == "mlm" else head.replace("-", " ")
        raise ConfigError(f"{source} has no trained {name} head (it is "
                          f"{architecture(path)}); {_what_instead(head)}")
    if tokenizer is None:
        tokenizer = Tokenizer.from_pretrained(path if path.is_dir() else path.parent)
    labels = None
    if head.endswith("classification"):
        labels = list(recipe["labels"]) if recipe else _config_labels(model.config)
        check_head(model, labels, source)
    max_length = model.config.max_sequence_length
    if recipe is not None:
        max_length = min(max_length, recipe["max_length"])
    return LoadedModel(model.eval(), tokenizer, labels, max_length, source,
                       recipe["task"] if recipe else None)


def predictable_head(source) -> str:
    """The head ``minirob predict`` should load: the run's task, or the class config.json names."""
    if isinstance(source, nn.Module):
        for head, cls in HEADS.items():
            if isinstance(source, cls) and head.endswith("classification"):
                return head
        raise ConfigError(f"{type(source).__name__} has no classification head to predict with")
    path = resolve_path(source)
    if (path / RECIPE_FILE).is_file():
        task = read_recipe(path)["task"]
        return "token-classification" if is_tagging(task) else "sequence-classification"
    if path.is_dir() and not (path / "config.json").is_file() and not any(path.glob("*.pt")):
        raise MissingFileError(f"{source} is neither a fine-tuned run (no {RECIPE_FILE}) nor a "
                               "model directory (no config.json)")
    name = architecture(path)
    for head, cls in HEADS.items():
        if head.endswith("classification") and name.endswith(cls.__name__[len("Roberta"):]):
            return head
    raise ConfigError(f"{source} has no task head to predict with (it is {name}); use "
                      "`minirob fill-mask` for a masked language model, `minirob embed` for "
                      "sentence vectors, or fine-tune it first (`minirob finetune`)")


def tagging_task(labels) -> str:
    """``"ner"`` when every label is a BIO/IOBES tag, else ``"pos"`` (a plain tag per word)."""
    bio = all(label == "O" or label[:2] in ("B-", "I-", "E-", "S-") for label in labels)
    return "ner" if bio else "pos"


@contextlib.contextmanager
def quiet_loader():
    """Hold back the loader's "newly initialised" warning: for prediction a missing head is an
    error (raised by the caller), and a missing pooler does not matter to features."""
    loader = logging.getLogger("minirob")
    level = loader.level
    loader.setLevel(logging.ERROR)
    try:
        yield
    finally:
        loader.setLevel(level)


def _what_instead(head: str) -> str:
    if head == "mlm":
        return ("fill-mask and MLM evaluation need a masked language model, e.g. a `minirob "
                "pretrain` run (a fine-tuned run is scored with `minirob evaluate RUN --data FILE`)")
    return ("fine-tune it first (`minirob finetune`), or use feature-extraction / "
            "sentence-embedding, which need no head")
