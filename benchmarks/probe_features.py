"""How much a pretrained encoder's *frozen* features carry, against a random encoder's.

Sentiment: a logistic regression is trained on the features of the movie-review training split
(the mean of the token vectors, and the <s> vector) and scored on the test split. Part of speech:
one logistic regression per depth (the embeddings' output, then each layer's), on the vector at
each word's first token (where the tagger reads its prediction), trained on Brown training
sentences and scored on every word of the test split: which layers know parts of speech. When
fine-tuning from a pretrained model does not beat random initialisation, this says whether the
features were useful to begin with.

    .venv/bin/python benchmarks/probe_features.py runs/b64_10
    .venv/bin/python benchmarks/probe_features.py runs/b64_10 --task pos --train-sentences 2000
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.finetune_data import task_splits  # noqa: E402
from minirob import RobertaModel, Tokenizer  # noqa: E402
from minirob.model import mean_over_tokens  # noqa: E402
from minirob.tasks import IGNORE, collate, encode_sentences, label_list  # noqa: E402


def features(model: RobertaModel, tokenizer: Tokenizer, examples, max_length: int) -> dict:
    """{"mean": (N, H), "<s>": (N, H)} frozen features of the examples' texts."""
    parts = {"mean": [], "<s>": []}
    model.eval()
    with torch.no_grad():
        for i in range(0, len(examples), 256):
            batch = tokenizer.encode_batch([e.text for e in examples[i:i + 256]], max_length=max_length)
            hidden = model(batch.input_ids, batch.attention_mask)  # (B, T, H)
            parts["mean"].append(mean_over_tokens(hidden, batch.attention_mask))
            parts["<s>"].append(hidden[:, 0])
    return {k: torch.cat(v).numpy() for k, v in parts.items()}


def word_features(model: RobertaModel, tokenizer: Tokenizer, sentences, labels, max_length: int):
    """([(W, H) per depth: embeddings, layer 1, ...], (W,) tag ids): every word's frozen vector at
    its first token, at each depth of the encoder, and the word's tag."""
    features = encode_sentences(tokenizer, sentences, labels, max_length, task="pos")
    depths, tags = [], []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(features), 128):
            batch = collate(features[i:i + 128], tokenizer.pad_id)
            first = batch["labels"] != IGNORE  # (B, T): a word's first token
            hidden = model.trace(batch["input_ids"], batch["attention_mask"]).hidden_states
            depths.append([h[first] for h in hidden])  # per depth (words in batch, H)
            tags.append(batch["labels"][first])
    return [torch.cat(d).float().numpy() for d in zip(*depths)], torch.cat(tags).numpy()


def probe_pos(run: str, train_sentences: int, max_length: int = 128, seed: int = 0) -> dict:
    """{"pretrained": [test accuracy per depth], "random": [...], ...}: one linear probe (logistic
    regression) per depth, trained on ``train_sentences`` Brown training sentences drawn with
    ``seed``, scored on every word of the test split. The random encoder is ``run``'s shape
    initialised with ``seed``."""
    from sklearn.linear_model import LogisticRegression  # heavy, and only the probes need it

    train, _, test = task_splits("pos")
    train = random.Random(seed).sample(list(train), min(train_sentences, len(train)))
    labels = label_list(train, "pos")
    test = [s for s in test if set(s.tags) <= set(labels)]  # a tag the probe never saw: left out
    tokenizer = Tokenizer.from_pretrained(run)
    pretrained = RobertaModel.from_pretrained(run)
    torch.manual_seed(seed)
    encoders = {"pretrained": pretrained, "random": RobertaModel(pretrained.config)}
    out = {"train_sentences": len(train), "test_sentences": len(test), "seed": seed,
           "depths": ["embeddings"] + [f"layer {i + 1}" for i in range(pretrained.config.num_hidden_layers)]}
    for name, model in encoders.items():
        x_train, y_train = word_features(model, tokenizer, train, labels, max_length)
        x_test, y_test = word_features(model, tokenizer, test, labels, max_length)
        out["train_words"], out["test_words"] = len(y_train), len(y_test)
        out[name] = [round(float(LogisticRegression(max_iter=1000).fit(x, y_train).score(xt, y_test)), 4)
                     for x, xt in zip(x_train, x_test)]
    return out


def probe_sentiment(run: str, max_length: int) -> None:
    """Print the sentiment probes' test accuracies (mean and <s> features, pretrained and random)."""
    from sklearn.linear_model import LogisticRegression  # heavy, and only the probes need it

    train, _, test = task_splits("sentiment")
    tokenizer = Tokenizer.from_pretrained(run)
    pretrained = RobertaModel.from_pretrained(run)
    torch.manual_seed(0)
    encoders = {"pretrained": pretrained, "random": RobertaModel(pretrained.config)}
    y_train = np.array([e.label for e in train])
    y_test = np.array([e.label for e in test])
    for name, model in encoders.items():
        x_train = features(model, tokenizer, train, max_length)
        x_test = features(model, tokenizer, test, max_length)
        for part in x_train:
            probe = LogisticRegression(max_iter=2000).fit(x_train[part], y_train)
            print(f"{name:>10} {part:>4} features: probe test accuracy {probe.score(x_test[part], y_test):.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a pretrained model directory (with its tokenizer)")
    parser.add_argument("--task", choices=["sentiment", "pos"], default="sentiment")
    parser.add_argument("--max-length", type=int, default=None, help="default: 64 sentiment, 128 pos")
    parser.add_argument("--train-sentences", type=int, default=2000, help="pos: probe training set")
    parser.add_argument("--seed", type=int, default=0, help="pos: sentences drawn, random encoder")
    args = parser.parse_args()
    if args.task == "sentiment":
        probe_sentiment(args.run, args.max_length or 64)
        return
    result = probe_pos(args.run, args.train_sentences, args.max_length or 128, args.seed)
    for name in ("pretrained", "random"):
        print(f"{name:>10}: " + ", ".join(f"{depth} {accuracy:.1%}"
                                          for depth, accuracy in zip(result["depths"], result[name])))


if __name__ == "__main__":
    main()
