"""Pipelines: texts in, answers out, from a model of any source, in transformers' pipeline shapes.

    classify = minirob.pipeline("text-classification", "runs/sentiment")
    classify("A moving film.")         # [{"label": "positive", "score": 0.97}]
    tag = minirob.pipeline("token-classification", "runs/ner")
    tag("Flying to New York")          # [{"entity_group": "LOC", "score": .., "word": "New York",
                                       #   "start": 10, "end": 18}]
    embed = minirob.pipeline("sentence-embedding", "minilm")
    embed.similarity("A cat sleeps.", "A kitten naps.")    # cosine, a float

Five tasks: ``fill-mask``, ``text-classification`` (alias ``sentiment-analysis``),
``token-classification`` (alias ``ner``), ``feature-extraction`` and ``sentence-embedding``. The
model may be any source :mod:`minirob.sources` reads. Every pipeline takes a string (one answer)
or a list of strings (a list of answers, in input order), cuts inputs longer than the model with
one warning that counts them, and runs texts of similar length together (less padding).
"""

from __future__ import annotations

import re
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import ConfigError, InputError
from .model import mean_over_tokens
from .predict import split_words
from .sources import LoadedModel, load_model
from .tasks import (
    TaggedSentence,
    TextExample,
    batches_by_length,
    collate,
    encode_sentences,
    encode_texts,
    first_tokens,
    match_token_types,
    predict_logits,
)

TASK_ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}
POOLINGS = ("mean", "first")  # sentence embeddings: the token average, or the <s> vector


def _texts(inputs, what: str = "texts") -> tuple[list[str], bool]:
    """A string or a list of strings -> (list, whether one string was given)."""
    if isinstance(inputs, str):
        return [inputs], True
    if not isinstance(inputs, (list, tuple)):
        raise InputError(f"expected a string or a list of strings, got {type(inputs).__name__}")
    if not inputs:
        raise InputError(f"got an empty list of {what}: nothing to do")
    for i, text in enumerate(inputs):
        if not isinstance(text, str):
            raise InputError(f"{what}[{i}] is a {type(text).__name__}, not a string")
    return list(inputs), False


class Pipeline:
    """Shared by every task: the loaded model, the batch size, and string-or-list handling."""

    head = "encoder"

    def __init__(self, loaded: LoadedModel, batch_size: int = 32):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.loaded, self.batch_size = loaded, batch_size
        self.model, self.tokenizer = loaded.model, loaded.tokenizer

    def __call__(self, inputs, **options):
        texts, single = _texts(inputs)
        results = self.run(texts, **options)
        return results[0] if single else results

    def run(self, texts: list[str], **options) -> list:
        raise NotImplementedError

    def _features(self, texts: Sequence[str], offsets: bool = False) -> list[dict]:
        examples = [TextExample(text, source=f"text {i + 1}") for i, text in enumerate(texts)]
        features = encode_texts(self.tokenizer, examples, None, self.loaded.max_length, "input",
                                offsets)
        match_token_types(features, self.model.config)
        return features


# ================================================================== text classification


class TextClassificationPipeline(Pipeline):
    """Each text -> ``[{"label", "score"}]`` (the best label; ``top_k=None``: every label, best
    first). Scores are the softmax over the labels (a sigmoid for a one-output head)."""

    head = "sequence-classification"

    def __call__(self, inputs, top_k: int | None = 1):
        texts, single = _texts(inputs)
        results = self.run(texts, top_k)
        if single:  # transformers' shape: a list holding the best label
            return [results[0]] if top_k == 1 else results[0]
        return results

    def run(self, texts, top_k: int | None = 1) -> list:
        logits = predict_logits(self.model, self._features(texts), self.tokenizer.pad_id,
                                self.batch_size)
        labels, out = self.loaded.labels, []
        logits = torch.stack(logits)  # (N, labels)
        scores = logits.sigmoid() if logits.shape[-1] == 1 else logits.softmax(-1)  # (N, labels)
        for row in scores.tolist():
            ranked = sorted(range(len(labels)), key=lambda i: -row[i])
            answers = [{"label": labels[i], "score": row[i]} for i in ranked]
            out.append(answers[0] if top_k == 1 else answers[:top_k])
        return out


# ================================================================== token classification


def _tag_parts(label: str) -> tuple[str, str]:
    """transformers' reading of a label when grouping: ``B-X`` starts X, ``I-X`` continues it, any
    other label (``O``, a part-of-speech tag) is its own type and continues a run of itself."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def group_entities(items: list[dict], text: str, ignore: Sequence[str] = ("O",)) -> list[dict]:
    """Consecutive items (tokens or words: ``{"label", "score", "start", "end"}``) -> entity
    groups, the way transformers' pipeline groups them: a ``B-`` or a change of type starts a new
    group; a group's score is its items' mean, its word the text it spans."""
    groups: list[list[dict]] = []
    for item in items:
        bi, kind = _tag_parts(item["label"])
        if groups and bi != "B" and kind == _tag_parts(groups[-1][-1]["label"])[1]:
            groups[-1].append(item)
        else:
            groups.append([item])
    out = []
    for group in groups:
        kind = _tag_parts(group[0]["label"])[1]
        if kind in ignore or group[0]["label"] in ignore:
            continue
        start, end = group[0]["start"], group[-1]["end"]
        out.append({"entity_group": kind, "score": sum(i["score"] for i in group) / len(group),
                    "word": text[start:end], "start": start, "end": end})
    return out


class TokenClassificationPipeline(Pipeline):
    """Each text -> its entity groups ``{"entity_group", "score", "word", "start", "end"}``.

    ``aggregation="first"`` (default): the text is split into words (:func:`minirob.predict.
    split_words`), each word's label is read at its first token, the way minirob trains taggers
    (later pieces of a word are not trained under the default recipe). ``"simple"``: every token
    keeps its own label, as transformers' ``aggregation_strategy="simple"`` does. ``"none"``: the
    words themselves, ``{"entity", "score", "index", "word", "start", "end"}``, ``O`` left out.
    ``word`` is always the text between ``start`` and ``end``.
    """

    head = "token-classification"

    def run(self, texts, aggregation: str = "first") -> list:
        if aggregation not in ("first", "simple", "none"):
            raise ConfigError(f"aggregation={aggregation!r} is not one of first, simple, none")
        items = self._tokens(texts) if aggregation == "simple" else self._words(texts)
        if aggregation == "none":
            return [[{"entity": i["label"], "score": i["score"], "index": n, "word": text[i["start"]:i["end"]],
                      "start": i["start"], "end": i["end"]} for n, i in enumerate(row) if i["label"] != "O"]
                    for text, row in zip(texts, items)]
        return [group_entities(row, text) for text, row in zip(texts, items)]

    def _best(self, row: Tensor) -> tuple[list[str], list[float]]:
        """(T, labels) logits of one text -> each token's best label and its softmax score."""
        scores, best = row.softmax(-1).max(-1)  # (T,), (T,): one softmax for the whole text
        return [self.loaded.labels[i] for i in best.tolist()], scores.tolist()

    def _words(self, texts) -> list[list[dict]]:
        """One item per word, labelled at the word's first token."""
        words = [split_words(text) for text in texts]
        for i, row in enumerate(words):
            if not row:
                raise InputError(f"text {i + 1} is empty: there is nothing to tag")
        sentences = [TaggedSentence([w for w, _, _ in row], source=f"text {i + 1}")
                     for i, row in enumerate(words)]
        features = encode_sentences(self.tokenizer, sentences, None, self.loaded.max_length,
                                    split="input")
        logits = predict_logits(self.model, features, self.tokenizer.pad_id, self.batch_size)
        out = []
        for row, feature, spans in zip(logits, features, words):
            labels, scores = self._best(row)
            out.append([{"label": labels[position], "score": scores[position],
                         "start": spans[word][1], "end": spans[word][2]}
                        for word, position in sorted(first_tokens(feature["word_ids"]).items())])
        return out

    def _tokens(self, texts) -> list[list[dict]]:
        """One item per token that is not special, with the token's character span."""
        features = self._features(texts, offsets=True)  # each text tokenized once, spans kept
        logits = predict_logits(self.model, features, self.tokenizer.pad_id, self.batch_size)
        out = []
        for feature, row in zip(features, logits):
            labels, scores = self._best(row)
            out.append([{"label": labels[position], "score": scores[position], "start": span[0],
                         "end": span[1]} for position, span in enumerate(feature["offsets"])
                        if span is not None])
        return out


# ================================================================== fill-mask


class FillMaskPipeline(Pipeline):
    """Each text -> for its mask token, the ``top_k`` fillings ``{"score", "token", "token_str",
    "sequence"}``, most likely first (a list of such lists when the text has several masks).

    Special tokens are never candidates: pretraining never asks for them, so their scores are
    untrained noise.
    """

    head = "mlm"

    @property
    def mask_token(self) -> str:
        if self.tokenizer.mask_id is None:
            raise ConfigError(f"{self.loaded.source}: the tokenizer has no mask token "
                              "(<mask> or [MASK]), so it cannot fill in blanks")
        return self.tokenizer.id_to_token(self.tokenizer.mask_id)

    def run(self, texts, top_k: int = 5) -> list:
        if not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"top_k must be an integer >= 1, got {top_k!r}")
        top_k = min(top_k, self.model.config.vocab_size)
        mask = self.mask_token
        for i, text in enumerate(texts):
            if mask not in text:
                raise InputError(f"no {mask} in text {i + 1} ({text[:60]!r}): write {mask}, this "
                                 f"model's mask token, where it should fill in a word, e.g. "
                                 f"'Paris is the {mask} of France.'")
        if mask == "<mask>":
            # A space before <mask> belongs to the hidden word: byte-level BPE spells " said" as
            # one token "Ġsaid" (roberta-base's <mask> absorbs the space before it, "lstrip").
            texts = [re.sub(r"\s+<mask>", "<mask>", text) for text in texts]
        features = self._features(texts)
        for i, feature in enumerate(features):
            if self.tokenizer.mask_id not in feature["input_ids"]:
                raise InputError(f"text {i + 1}: its {mask} was cut off: the text is longer than "
                                 f"the model's {self.loaded.max_length} tokens")
        return self._fill(features, top_k)

    @torch.no_grad()
    def _fill(self, features: list[dict], top_k: int) -> list:
        device, out = self.loaded.device, {}
        special = [i for i in (self.tokenizer.bos_id, self.tokenizer.eos_id, self.tokenizer.pad_id,
                               self.tokenizer.unk_id, self.tokenizer.mask_id)
                   if i is not None and i < self.model.config.vocab_size]
        for chunk in batches_by_length([len(f["input_ids"]) for f in features], self.batch_size):
            batch = {k: v.to(device) for k, v in collate([features[i] for i in chunk],
                                                         self.tokenizer.pad_id).items()}
            at = batch["input_ids"] == self.tokenizer.mask_id  # (B, T)
            logits = self.model(batch["input_ids"], batch["attention_mask"],
                                batch["token_type_ids"], predict_at=at).float()  # (N, V)
            logits[:, special] = float("-inf")
            best = logits.softmax(-1).topk(top_k, dim=-1)
            rows = at.nonzero()[:, 0].tolist()  # the batch row of each of the N masks
            for n, row in enumerate(rows):
                out.setdefault(chunk[row], []).append(
                    self._answers(features[chunk[row]]["input_ids"], best.values[n], best.indices[n]))
        return [masks[0] if len(masks) == 1 else masks for masks in (out[i] for i in range(len(features)))]

    def _answers(self, ids: list[int], scores: Tensor, tokens: Tensor) -> list[dict]:
        first_mask = ids.index(self.tokenizer.mask_id)
        answers = []
        for score, token in zip(scores.tolist(), tokens.tolist()):
            filled = ids[:first_mask] + [token] + ids[first_mask + 1:]
            answers.append({"score": score, "token": token,
                            "token_str": self.tokenizer.decode([token], skip_special_tokens=False),
                            "sequence": self.tokenizer.decode(filled, skip_special_tokens=True)})
        return answers


# ================================================================== features and embeddings


class FeatureExtractionPipeline(Pipeline):
    """Each text -> its last hidden states, one vector per token (special tokens included), as
    nested lists of shape (1, T, H) like transformers' pipeline, or a (1, T, H) tensor with
    ``return_tensors=True``."""

    def run(self, texts, return_tensors: bool = False) -> list:
        hidden = self.encode(texts)
        return [h[None] if return_tensors else h[None].tolist() for h in hidden]

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> list[Tensor]:
        """Texts -> one (T_i, H) tensor of last hidden states each, on the CPU, in input order."""
        features, device, out = self._features(texts), self.loaded.device, {}
        for chunk in batches_by_length([len(f["input_ids"]) for f in features], self.batch_size):
            batch = collate([features[i] for i in chunk], self.tokenizer.pad_id)
            hidden = self.model(*(batch[k].to(device) for k in
                                  ("input_ids", "attention_mask", "token_type_ids"))).float().cpu()
            for row, i in enumerate(chunk):
                out[i] = hidden[row, : len(features[i]["input_ids"])]  # (T_i, H)
        return [out[i] for i in range(len(features))]


class SentenceEmbeddingPipeline(FeatureExtractionPipeline):
    """Each text -> one vector: the mean of its token states (``pooling="mean"``, what
    all-MiniLM-L6-v2 was trained for) or the ``<s>`` state (``"first"``), scaled to length 1
    (``normalize``), so that a dot product is the cosine. A string gives an (H,) tensor, a list an
    (N, H) tensor."""

    def __init__(self, loaded: LoadedModel, batch_size: int = 32, pooling: str = "mean",
                 normalize: bool = True):
        super().__init__(loaded, batch_size)
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling={pooling!r} is not one of {', '.join(POOLINGS)}")
        self.pooling, self.normalize = pooling, normalize

    def __call__(self, inputs):
        texts, single = _texts(inputs)
        vectors = self.run(texts)
        return vectors[0] if single else vectors

    def run(self, texts) -> Tensor:
        hidden = self.encode(texts)
        if self.pooling == "first":
            vectors = torch.stack([h[0] for h in hidden])  # (N, H)
        else:
            vectors = torch.stack([mean_over_tokens(h[None], None)[0] for h in hidden])
        return F.normalize(vectors, dim=-1) if self.normalize else vectors

    def similarity(self, a, b) -> float | Tensor:
        """Cosine similarity: two strings -> a float; lists of M and N texts -> an (M, N) tensor."""
        x, y = self(a), self(b)
        scores = F.normalize(x.reshape(-1, x.shape[-1]), dim=-1) @ F.normalize(
            y.reshape(-1, y.shape[-1]), dim=-1).T  # (M, N)
        return float(scores[0, 0]) if isinstance(a, str) and isinstance(b, str) else scores


PIPELINES = {
    "fill-mask": FillMaskPipeline,
    "text-classification": TextClassificationPipeline,
    "token-classification": TokenClassificationPipeline,
    "feature-extraction": FeatureExtractionPipeline,
    "sentence-embedding": SentenceEmbeddingPipeline,
}


def pipeline(task: str, model, tokenizer=None, device=None, batch_size: int = 32,
             **options) -> Pipeline:
    """A ready-to-call pipeline for ``task`` (see the module docstring) on ``model``: a path, a
    registry name, or a model object with its ``tokenizer``. ``device``: default CUDA when present.
    ``options`` go to the pipeline (``pooling=``, ``normalize=`` for sentence embeddings)."""
    task = TASK_ALIASES.get(task, task)
    if task not in PIPELINES:
        raise ConfigError(f"task {task!r} is not one of {', '.join(PIPELINES)} "
                          f"(or {', '.join(TASK_ALIASES)})")
    cls = PIPELINES[task]
    return cls(load_model(cls.head, model, tokenizer, device), batch_size, **options)
