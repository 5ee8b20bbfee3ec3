"""minirob vs transformers fine-tuning the same real weights (all-MiniLM-L6-v2), same recipe.

The issue's reference recipe: AdamW lr 5e-5 (betas 0.9/0.999, eps 1e-8, no weight decay), linear
schedule with 6% warm-up, gradient clipping at 1.0, max length 128, the seeded 80/10/10 splits,
first-subword labels; sentiment 2 epochs at batch 32, WNUT-16 NER 3 epochs at batch 16; validation
after each epoch, the test split scored with the best epoch's weights.

Both sides get *identical* inputs: the same token ids (minirob's tokenizer reads the same
``tokenizer.json`` transformers would), the same batches in the same shuffled order, the same loss
(mean cross-entropy over labelled positions) and the same scoring code (minirob.metrics). What
differs is only the model and training code: minirob's ``finetune`` (its shared loop) against
transformers' ``BertForSequenceClassification`` / ``BertForTokenClassification`` with
``torch.optim.AdamW`` and ``get_linear_schedule_with_warmup``.

Speed is measured two ways: (1) interleaved training steps on the same batches (alternating
minirob and transformers, see harness.py), the ratio robust to the shared machine's load; (2) the
wall time of each full run, which depends on what else the machine was doing (load recorded).

    .venv/bin/python benchmarks/finetune_compare.py --task ner sentiment
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.finetune_data import machine_load, task_splits  # noqa: E402
from benchmarks.harness import Comparison, time_once  # noqa: E402
from minirob.datasets import fetch  # noqa: E402
from minirob.finetune import (  # noqa: E402
    FinetuneConfig,
    build_model,
    collate,
    encode_sentences,
    encode_texts,
    finetune,
    label_list,
    load_tokenizer,
    loss_fn,
    score,
    training_batches,
)
from minirob.train import ShuffledBatches, parameter_groups  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# The issue's reference recipe, random batches as transformers' Trainer makes them by default.
RECIPES = {
    "sentiment": dict(task="sentiment", epochs=2, batch_size=32, group_by_length=False),
    "ner": dict(task="ner", epochs=3, batch_size=16, group_by_length=False),
}


class LogitsOnly(nn.Module):
    """A transformers model called like a minirob one: (ids, mask, type ids) -> logits tensor."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return self.model(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).logits


def transformers_model(task: str, start: Path, labels: list[str]) -> nn.Module:
    from transformers import BertForSequenceClassification, BertForTokenClassification

    cls = BertForTokenClassification if task == "ner" else BertForSequenceClassification
    kwargs = dict(num_labels=len(labels), id2label=dict(enumerate(labels)),
                  label2id={label: i for i, label in enumerate(labels)}, attn_implementation="sdpa")
    return LogitsOnly(cls.from_pretrained(str(start), **kwargs))


def features_for(task, tokenizer, examples, labels, max_length, split):
    if task == "ner":
        return encode_sentences(tokenizer, examples, labels, max_length, False, split)
    return encode_texts(tokenizer, examples, labels, max_length, split)


def transformers_finetune(task, start, splits, config: FinetuneConfig) -> dict:
    """The same recipe with transformers' models and scheduler; returns the test scores."""
    from transformers import get_linear_schedule_with_warmup

    train, validation, test = splits
    tokenizer = load_tokenizer(start)
    labels = label_list(train, task)
    feats = [features_for(task, tokenizer, ex, labels, config.max_length, name)
             for ex, name in ((train, "train"), (validation, "validation"), (test, "test"))]
    torch.manual_seed(config.train.seed)
    model = transformers_model(task, start, labels)
    model.train()
    pad = tokenizer.pad_id
    batches = training_batches(feats[0], config, pad)
    per_epoch = batches.batches_per_epoch()
    total = math.ceil(config.train.epochs * per_epoch)
    optimizer = torch.optim.AdamW(parameter_groups(model, config.train.weight_decay), lr=config.train.lr,
                                  betas=config.train.betas, eps=config.train.eps)
    schedule = get_linear_schedule_with_warmup(optimizer, math.ceil(config.train.warmup * total), total)
    best, history, started = None, [], time.perf_counter()
    from tqdm.auto import tqdm

    for step in tqdm(range(total), desc="transformers", unit="step"):
        loss, _ = loss_fn(model, next(batches))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % per_epoch == 0 or step + 1 == total:
            val = score(task, model, feats[1], validation, labels, pad, config.eval_batch_size)
            history.append({"epoch": len(history) + 1, "score": val["score"],
                            "seconds": round(time.perf_counter() - started, 1)})
            if best is None or val["score"] > best[0]:
                # Scoring the test split now is the same as keeping this epoch's weights for later.
                best = (val["score"], len(history),
                        score(task, model, feats[2], test, labels, pad, config.eval_batch_size))
    return {"test": best[2], "best_epoch": best[1], "validation_history": history,
            "train_seconds": round(time.perf_counter() - started, 1)}


def speed(task, start, splits, config: FinetuneConfig, repeats: int) -> dict:
    """Interleaved training steps (forward, backward, AdamW) on identical real batches."""
    train = splits[0]
    tokenizer = load_tokenizer(start)
    labels = label_list(train, task)
    feats = features_for(task, tokenizer, train, labels, config.max_length, "train")
    batches = ShuffledBatches(feats, config.batch_size, lambda fs: collate(fs, tokenizer.pad_id),
                              seed=config.train.seed, drop_last=False)
    models = {"minirob": build_model(task, start, labels, False),
              "transformers": transformers_model(task, start, labels)}
    optimizers = {k: torch.optim.AdamW(m.parameters(), lr=config.train.lr) for k, m in models.items()}
    current = {}

    def step(name):
        def run():
            model = models[name]
            model.train()
            loss, _ = loss_fn(model, current["batch"])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)
        return run

    comparison = Comparison(name=f"{task} training step, batch {config.batch_size}, float32",
                            unit="examples/s", work=config.batch_size)
    cpu = torch.device("cpu")
    for repeat in range(repeats + 2):
        current["batch"] = next(batches)  # a fresh real batch per pair, the same for both sides
        if repeat % 2 == 0:  # alternate who goes first, so neither always gets the warm cache
            m = time_once(step("minirob"), cpu)
            t = time_once(step("transformers"), cpu)
        else:
            t = time_once(step("transformers"), cpu)
            m = time_once(step("minirob"), cpu)
        if repeat >= 2:  # the first two pairs warm the allocator and the optimisers' state
            comparison.minirob_s.append(m)
            comparison.transformers_s.append(t)
    return comparison.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", nargs="+", default=["ner", "sentiment"], choices=list(RECIPES))
    parser.add_argument("--speed-repeats", type=int, default=10)
    parser.add_argument("--skip-full", action="store_true", help="only the interleaved speed test")
    parser.add_argument("--train-limit", type=int, default=None,
                        help="use only the first N training examples (a smaller, cheaper run)")
    parser.add_argument("--epochs", type=float, default=None, help="override the recipe's epochs")
    parser.add_argument("--out", default=str(RESULTS / "finetune_compare.json"))
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (on a crowded machine 1 can beat the default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = fetch("minilm", progress=False)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    for task in args.task:
        recipe = dict(RECIPES[task])
        if args.epochs is not None:
            recipe["epochs"] = args.epochs
        config = FinetuneConfig.from_fields(**recipe)
        splits = task_splits(task)
        if args.train_limit:
            splits = (splits[0][: args.train_limit], splits[1], splits[2])
        entry = {"recipe": recipe, "train_examples": len(splits[0]),
                 "threads": torch.get_num_threads(), "load_before": machine_load()}
        if args.speed_repeats > 0:
            entry["speed"] = speed(task, start, splits, config, args.speed_repeats)
            print(json.dumps(entry["speed"], indent=1), flush=True)
        if not args.skip_full:
            with tempfile.TemporaryDirectory() as tmp:
                report = finetune(start, *splits, config, tmp)
            entry["minirob"] = {k: report[k] for k in ("test", "best_epoch", "validation_history",
                                                       "train_seconds")}
            entry["load_mid"] = machine_load()
            entry["transformers"] = transformers_finetune(task, start, splits, config)
            entry["load_after"] = machine_load()
            import transformers

            entry["transformers_version"] = transformers.__version__
        results[task if not args.train_limit else f"{task}-first{args.train_limit}"] = entry
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
        summary = {side: {"score": entry[side]["test"]["score"],
                          "seconds": entry[side]["train_seconds"]}
                   for side in ("minirob", "transformers") if side in entry}
        print(task, json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
