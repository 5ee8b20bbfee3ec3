"""Predictions from a fine-tuned run directory: a label with its probability, or entities with
their character spans.

A run directory (written by :func:`minirob.finetune.finetune`) holds the model, its tokenizer and
``finetune.json``, which says the task, the label names and the maximum length. Raw text for NER
is first split into words (a simple tweet-friendly rule: ``@names``, ``#tags``, words with inner
apostrophes or hyphens, and single punctuation marks), each word keeping its character span, so
an entity made of words 3..4 maps back to ``text[start:end]``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .errors import CheckpointError, InputError, MissingFileError
from .finetune import (
    RECIPE_FILE,
    TaggedSentence,
    TextExample,
    encode_sentences,
    encode_texts,
    fit_max_length,
    load_tokenizer,
    match_token_types,
    predict_logits,
    word_predictions,
)
from .metrics import extract_entities
from .model import RobertaForSequenceClassification, RobertaForTokenClassification

# "@user", "#tag", "don't", "state-of-the-art", "3.5", or one punctuation mark.
_WORD = re.compile(r"[@#]?\w+(?:['’.\-]\w+)*|[^\w\s]")


def split_words(text: str) -> list[tuple[str, int, int]]:
    """``text`` -> [(word, start, end)] with ``text[start:end] == word``."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


@dataclass
class Predictor:
    """A loaded run: ``Predictor.load(run_dir).predict(["text", ...])``."""

    model: torch.nn.Module
    tokenizer: object
    task: str
    labels: list[str]
    max_length: int
    batch_size: int = 64

    @classmethod
    def load(cls, run_dir: str | Path) -> "Predictor":
        run_dir = Path(run_dir)
        recipe_file = run_dir / RECIPE_FILE
        if not recipe_file.is_file():
            raise MissingFileError(
                f"{run_dir} is not a fine-tuned run directory: no {RECIPE_FILE} (create one with "
                "`minirob finetune ... --out DIR`)"
            )
        try:
            recipe = json.loads(recipe_file.read_text(encoding="utf-8"))
            task, labels = recipe["task"], list(recipe["labels"])
            recorded_length = int(recipe["max_length"])
        except (ValueError, KeyError, TypeError) as error:  # corrupted or hand-edited
            raise CheckpointError(
                f"{recipe_file}: unreadable ({type(error).__name__}: {error}); it records the run's "
                "task, labels and max_length"
            ) from None
        model_class = (
            RobertaForTokenClassification if task == "ner" else RobertaForSequenceClassification
        )
        model = model_class.from_pretrained(run_dir)
        if model.config.num_labels != len(labels):
            raise CheckpointError(
                f"{run_dir}: the model's head has {model.config.num_labels} outputs but "
                f"{RECIPE_FILE} lists {len(labels)} labels ({', '.join(labels)}); the files come "
                "from different runs"
            )
        model.eval()
        tokenizer = load_tokenizer(run_dir)
        max_length = fit_max_length(recorded_length, model.config)
        return cls(model, tokenizer, task, labels, max_length)

    def classify(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[dict]:
        """Each text (or pair) -> ``{"label", "probability", "probabilities": {label: p}}``."""
        examples = [
            TextExample(text, pair=None if pairs is None else pairs[i], source=f"text {i + 1}")
            for i, text in enumerate(texts)
        ]
        features = encode_texts(self.tokenizer, examples, None, self.max_length, "input")
        match_token_types(features, self.model.config)
        out = []
        for text, logits in zip(texts, predict_logits(self.model, features,
                                                      self.tokenizer.pad_id, self.batch_size)):
            probabilities = torch.softmax(logits, -1)  # (labels,)
            best = int(probabilities.argmax())
            out.append({
                "text": text,
                "label": self.labels[best],
                "probability": round(float(probabilities[best]), 4),
                "probabilities": {
                    label: round(float(p), 4) for label, p in zip(self.labels, probabilities)
                },
            })
        return out

    def entities(self, texts: Sequence[str]) -> list[dict]:
        """Each text -> its words, their tags, and the entities with type, text and char span."""
        split = []
        for i, text in enumerate(texts):
            words = split_words(text or "")
            if not words:
                raise InputError(f"text {i + 1} is empty: there is nothing to tag")
            split.append(words)
        sentences = [
            TaggedSentence([w for w, _, _ in words], source=f"text {i + 1}")
            for i, words in enumerate(split)
        ]
        features = encode_sentences(self.tokenizer, sentences, None, self.max_length,
                                    split="input")
        match_token_types(features, self.model.config)
        logits = predict_logits(self.model, features, self.tokenizer.pad_id, self.batch_size)
        out = []
        for text, words, feature, row in zip(texts, split, features, logits):
            probabilities = torch.softmax(row, -1)  # (T, labels)
            token_best = probabilities.argmax(-1).tolist()
            word_labels = word_predictions(feature["word_ids"], token_best, len(words), missing=0)
            # The confidence of a word's tag is read at the same token as the tag: its first one.
            word_scores = [1.0] * len(words)
            seen = set()
            for t, w in enumerate(feature["word_ids"]):
                if w is not None and w not in seen:
                    seen.add(w)
                    word_scores[w] = float(probabilities[t, token_best[t]])
            tags = [self.labels[i] for i in word_labels]
            entities = []
            for entity in extract_entities(tags):
                start, end = words[entity.start][1], words[entity.end][2]
                entities.append({
                    "type": entity.type,
                    "text": text[start:end],
                    "start": start,
                    "end": end,
                    "words": [entity.start, entity.end + 1],
                    "score": round(min(word_scores[entity.start : entity.end + 1]), 4),
                })
            out.append({"text": text, "entities": entities,
                        "words": [w for w, _, _ in words], "tags": tags})
        return out

    def predict(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[dict]:
        if isinstance(texts, str):
            raise InputError("predict() takes a list of texts; wrap a single text in [ ]")
        if self.task == "ner":
            if pairs is not None:
                raise InputError("NER runs tag single texts; sentence pairs are for classification")
            return self.entities(texts)
        return self.classify(texts, pairs)
