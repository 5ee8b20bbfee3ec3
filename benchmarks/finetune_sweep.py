"""A grid of fine-tuning recipes scored by epochs (not minutes): the search behind finetune_best.py.

An epoch-budgeted score does not depend on the machine's speed, so a grid can run wherever it is
fastest (a lent GPU did this one) and the winner is then timed on the 2-core CPU with
``finetune_best.py``. Each row is one recipe: validation score per epoch, the test score of the
best validation epoch, and seconds.

    python benchmarks/finetune_sweep.py --task sentiment --grid lr=5e-5,1e-4 pooling=first,mean
    python benchmarks/finetune_sweep.py --task ner --from runs/tiny --grid lr=1e-3 --random-too
    python benchmarks/finetune_sweep.py --task sentiment --from runs/tiny --random-too --train-limit 500 2000
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.finetune_best import BEST  # noqa: E402
from benchmarks.finetune_data import task_splits  # noqa: E402
from benchmarks.pretrain_search import parse_value  # noqa: E402
from minirob.datasets import fetch  # noqa: E402
from minirob.finetune import FinetuneConfig, finetune  # noqa: E402


def grid(items: list[str]) -> list[dict]:
    """["lr=1e-4,2e-4", "pooling=first,mean"] -> the 4 combinations as dicts."""
    keys, choices = [], []
    for item in items:
        key, _, values = item.partition("=")
        keys.append(key)
        choices.append([parse_value(v) for v in values.split(",")])
    return [dict(zip(keys, combo)) for combo in itertools.product(*choices)]


def recipe_row(start: Path, splits, recipe: dict, start_name: str) -> dict:
    """Fine-tune ``start`` with ``recipe`` (FinetuneConfig fields) in a scratch directory: one
    result row (per-epoch validation scores, the best epoch's test score, seconds, steps)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        report = finetune(start, *splits, FinetuneConfig.from_fields(**recipe), tmp)
    return {
        "start": start_name,
        "train_examples": len(splits[0]),
        "recipe": recipe,
        "validation": [round(h["score"], 4) for h in report["validation_history"]],
        "best_epoch": report["best_epoch"],
        "test": round(report["test"]["score"], 4),
        "seconds": round(time.perf_counter() - started, 1),
        "steps": report["steps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True, choices=list(BEST))
    parser.add_argument("--from", dest="start", default=None, help="checkpoint (default: minilm)")
    parser.add_argument("--grid", nargs="*", default=[], metavar="KEY=V1,V2")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--random-too", action="store_true", help="each recipe from random init too")
    parser.add_argument("--train-limit", type=int, nargs="*", default=[None], metavar="N",
                        help="train on only the first N training examples (several N: one row each)")
    parser.add_argument("--results", required=True, help="JSON file the rows are appended to")
    args = parser.parse_args()

    start = Path(args.start) if args.start else fetch("minilm", progress=False)
    full_splits = task_splits(args.task)
    results_path = Path(args.results)
    rows = json.loads(results_path.read_text()) if results_path.exists() else []
    for limit, changes, random_init in itertools.product(
        args.train_limit, grid(args.grid) or [{}], [False, True] if args.random_too else [False]
    ):
        splits = (full_splits[0][:limit], *full_splits[1:])
        recipe = dict(BEST[args.task], minutes=None, progress=False, random_init=random_init)
        recipe.update({k: parse_value(v) for k, v in (item.split("=", 1) for item in args.set)})
        recipe.update(changes)
        row = recipe_row(start, splits, recipe, str(args.start or "minilm"))
        rows.append(row)
        results_path.write_text(json.dumps(rows, indent=1))
        print(json.dumps({k: row[k] for k in ("validation", "test", "seconds")}),
              {**changes, "random_init": random_init, "train": len(splits[0])}, flush=True)


if __name__ == "__main__":
    main()
