"""Predictions from a fine-tuned model: a label with its probability, entities with their
character spans, or a part-of-speech tag per word.

A run directory (written by :func:`minirob.finetune.finetune`) holds the model, its tokenizer and
``finetune.json``, which says the task, the label names and the maximum length; a transformers
classifier directory says the same in its ``config.json`` (see :mod:`minirob.sources`). Raw text for NER
is first split into words (a simple tweet-friendly rule: ``@names``, ``#tags``, words with inner
apostrophes or hyphens, and single punctuation marks), each word keeping its character span, so
an entity made of words 3..4 maps back to ``text[start:end]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import torch

from .errors import DataError, InputError
from .metrics import extract_entities
from .sources import load_model, predictable_head, tagging_task
from .tasks import (
    TaggedSentence,
    TextExample,
    check_labels,
    encode,
    encode_sentences,
    encode_texts,
    first_tokens,
    is_tagging,
    match_token_types,
    predict_logits,
    read_examples,
    score,
    word_predictions,
)

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
    def load(cls, source, device: str | torch.device | None = None) -> "Predictor":
        """A fine-tuned run directory, or any classifier :mod:`minirob.sources` reads, on
        ``device`` (default: CUDA when present)."""
        head = predictable_head(source)
        loaded = load_model(head, source, device=device)
        task = loaded.run_task
        if task is None:
            task = tagging_task(loaded.labels) if head == "token-classification" else "classify"
        return cls(loaded.model, loaded.tokenizer, task, loaded.labels, loaded.max_length)

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
            for w, t in first_tokens(feature["word_ids"]).items():
                word_scores[w] = float(probabilities[t, token_best[t]])
            tags = [self.labels[i] for i in word_labels]
            if self.task == "pos":
                out.append({"text": text, "words": [w for w, _, _ in words], "tags": tags,
                            "scores": [round(p, 4) for p in word_scores]})
                continue
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

    def predict(self, texts: str | Sequence[str], pairs: str | Sequence[str] | None = None):
        """A text -> its result; a list of texts -> a list of results (in input order)."""
        if isinstance(texts, str):
            single = None if pairs is None else [pairs] if isinstance(pairs, str) else pairs
            return self.predict([texts], single)[0]
        if not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
            raise InputError("predict() takes a text or a list of texts (strings)")
        if not texts:
            raise InputError("predict() got an empty list of texts")
        if is_tagging(self.task):
            if pairs is not None:
                raise InputError("tagging runs take single texts; sentence pairs are for classification")
            return self.entities(texts)
        return self.classify(texts, pairs)



def score_file(run_dir, data_file, text_column: str = "text", label_column: str = "label",
               pair_column: str | None = None, device=None, batch_size: int = 64) -> dict:
    """Score a fine-tuned run on a new labelled file, with the report fine-tuning writes for its
    test split (accuracy, macro-F1 and the confusion matrix; entity P/R/F1 per type; word accuracy
    and per-tag accuracy). A label the run never saw is named with the labels it knows."""
    predictor = Predictor.load(run_dir, device=device)
    task, labels = predictor.task, predictor.labels
    examples = read_examples(data_file, task, text_column, label_column, pair_column)
    if not examples:
        raise DataError(f"{data_file}: no examples to score")
    check_labels(examples, labels, task, str(data_file))
    features = encode(task, predictor.tokenizer, examples, labels, predictor.max_length,
                      split=str(data_file))
    match_token_types(features, predictor.model.config)
    return {"task": task, "data": str(data_file), **score(task, predictor.model, features, examples,
                                                          labels, predictor.tokenizer.pad_id, batch_size)}
