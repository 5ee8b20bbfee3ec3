"""The best fine-tuning recipe found from minilm, each task held to 10 minutes of CPU training.

The budget is the loop's wall-clock budget (``minutes``): the learning-rate schedule follows the
clock, so the run decays to zero exactly when the time is up, whatever the machine's load. On a
shared machine a loaded minute buys fewer steps, so the process CPU time and the load are
recorded next to the score.

    .venv/bin/python benchmarks/finetune_best.py --task sentiment --minutes 10
    .venv/bin/python benchmarks/finetune_best.py --task ner --minutes 10
    .venv/bin/python benchmarks/finetune_best.py --task ner --from runs/tiny --random-init  # baseline
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.finetune_data import machine_load, task_splits  # noqa: E402
from minirob.datasets import fetch, load_sentiment  # noqa: E402
from minirob.finetune import FinetuneConfig, finetune, sentiment_examples  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# What worked best within the budget (see docs/finetuning.md for what was tried).
BEST = {
    "sentiment": dict(task="sentiment", epochs=5, batch_size=32, lr=1e-4, warmup=0.06,
                      max_length=64, bf16="on", pooling="mean", group_by_length=True),
    "ner": dict(task="ner", epochs=8, batch_size=16, lr=2e-4, warmup=0.06, max_length=128,
                bf16="on", label_all_subwords=False, group_by_length=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True, choices=list(BEST))
    parser.add_argument("--from", dest="start", default=None, help="checkpoint (default: minilm)")
    parser.add_argument("--random-init", action="store_true")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override recipe fields, e.g. lr=5e-5 epochs=2")
    parser.add_argument("--name", default=None, help="result key (default: task/start)")
    parser.add_argument("--out-dir", default=None, help="keep the run directory here")
    parser.add_argument("--results", default=str(RESULTS / "finetune_runs.json"))
    parser.add_argument("--extra-train", nargs="*", default=[], choices=["tweets", "amazon", "nyt"],
                        help="sentiment: add these rated subsets (all their rows) to the training split")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (on a crowded machine 1 can beat the default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = dict(BEST[args.task])
    for item in args.set:
        key, _, value = item.partition("=")
        recipe[key] = json.loads(value) if value[:1] in "0123456789-[{tf" else value
    recipe.update(minutes=args.minutes, random_init=args.random_init)
    start = Path(args.start) if args.start else fetch("minilm", progress=False)
    config = FinetuneConfig.from_fields(**recipe)
    splits = task_splits(args.task)
    if args.extra_train:  # more labelled sentences, other domains; validation/test stay movie's
        held_out = {ex.text for ex in (*splits[1], *splits[2])}
        extra = [ex for subset in args.extra_train
                 for ex in sentiment_examples(load_sentiment(subset, progress=False).examples)
                 if ex.text not in held_out]
        splits = (splits[0] + extra, *splits[1:])
    load_before = machine_load()
    cpu_before = time.process_time()
    if args.out_dir:
        report = finetune(start, *splits, config, args.out_dir)
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            report = finetune(start, *splits, config, tmp)
    test = report["test"]
    entry = {
        "start": str(start) if args.start else "minilm",
        "random_init": args.random_init,
        "recipe": recipe,
        "extra_train": args.extra_train,
        "train_examples": len(splits[0]),
        "test_score": test["score"],
        "test": {k: v for k, v in test.items() if k not in ("per_class",)},
        "validation_history": report["validation_history"],
        "best_epoch": report["best_epoch"],
        "stopped_by": report["stopped_by"],
        "epochs_done": report["epochs_done"],
        "train_seconds": report["train_seconds"],
        "process_cpu_seconds": round(time.process_time() - cpu_before, 1),
        "threads": torch.get_num_threads(),
        "load_before": load_before,
        "load_after": machine_load(),
    }
    results_path = Path(args.results)
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    name = args.name or f"{args.task}/{entry['start']}{'/random' if args.random_init else ''}"
    results[name] = entry
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=1))
    print(name, f"test score {test['score']:.4f}", f"train {report['train_seconds']} s",
          json.dumps(entry["load_after"]))


if __name__ == "__main__":
    main()
