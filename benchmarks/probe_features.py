"""How much sentiment a pretrained encoder's *frozen* features carry, against a random encoder's.

A logistic regression is trained on the features of the movie-review training split (the mean of
the token vectors, and the <s> vector) and scored on the test split. When fine-tuning from a
pretrained model does not beat random initialisation, this says whether the features were
useful to begin with.

    .venv/bin/python benchmarks/probe_features.py runs/b64_10
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.finetune_data import task_splits  # noqa: E402
from minirob import RobertaModel, Tokenizer  # noqa: E402
from minirob.model import mean_over_tokens  # noqa: E402


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


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a pretrained model directory (with its tokenizer)")
    parser.add_argument("--max-length", type=int, default=64)
    args = parser.parse_args()
    train, _, test = task_splits("sentiment")
    tokenizer = Tokenizer.from_pretrained(args.run)
    pretrained = RobertaModel.from_pretrained(args.run)
    torch.manual_seed(0)
    encoders = {"pretrained": pretrained, "random": RobertaModel(pretrained.config)}
    y_train = np.array([e.label for e in train])
    y_test = np.array([e.label for e in test])
    for name, model in encoders.items():
        x_train = features(model, tokenizer, train, args.max_length)
        x_test = features(model, tokenizer, test, args.max_length)
        for part in x_train:
            probe = LogisticRegression(max_iter=2000).fit(x_train[part], y_train)
            print(f"{name:>10} {part:>4} features: probe test accuracy {probe.score(x_test[part], y_test):.1%}")


if __name__ == "__main__":
    main()
