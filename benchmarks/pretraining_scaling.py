"""How the payoff of pretraining grows with minutes: for each finished pretraining run, its
held-out masked-token accuracy and three downstream scores, against random initialisation.

The runs are the tiny recipe held to step budgets equal to what it reaches in N minutes on the
idle 2-core machine (11,302 steps in 10 minutes), each with its own schedule (warm-up and decay
over its own steps): a step budget measures the same training whatever else the shared machine
was doing. A run counts once it has ``model.safetensors`` and ``final_eval.json`` (the final
evaluation over every held-out validation block: the evaluation behind the published 30.8%);
the others are skipped, so running this again later picks up runs that have finished since, and
cells already measured are kept, not rerun. Downstream, same recipe and steps for every run and
for the random baseline (``--random-from``'s shape and tokenizer, plotted at minute 0):

* POS with 1,000 Brown sentences (``pos_payoff.py``'s recipe picked on validation, its windows
  cut with each run's own tokenizer; test accuracy);
* WNUT-16 entity F1 (6 epochs, lr 1e-3, batch 16: the tiny model's recipe in docs/finetuning.md);
* movie-review sentiment with the first 2,000 training sentences (10 epochs, lr 3e-4, mean
  pooling, max length 64: docs/finetuning.md's learning-curve row).

    python benchmarks/pretraining_scaling.py --runs 1=runs/s1 2=runs/s2 5=runs/s5 10=runs/s10 20=runs/s20
    python benchmarks/pretraining_scaling.py --runs 10=runs/s10b --seeds 0   # a second run of a budget
    python benchmarks/pretraining_scaling.py --runs 40=runs/s40 --seeds 1    # a second fine-tuning seed
    python benchmarks/pretraining_scaling.py --report-only

A run is keyed by its directory's name, so a second pretraining run of the same budget needs its
own name (``s10b``); the report averages every (run, fine-tuning seed) cell of a budget.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Iterator

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.finetune_best import BEST  # noqa: E402
from benchmarks.finetune_data import machine_load, task_splits  # noqa: E402
from benchmarks.finetune_sweep import recipe_row  # noqa: E402
from benchmarks.pos_payoff import COMMON, RESULTS, payoff_splits, picked_recipe  # noqa: E402
from benchmarks.pos_payoff import load, save  # noqa: E402
from minirob import Tokenizer  # noqa: E402

DEFAULT_RUNS = [f"{m}=/work/runs/s{m}{replicate}" for m in (1, 2, 5, 10, 20, 40) for replicate in ("", "b")]
FIRST_SENTIMENT = 2000


def downstream_tasks(pos_results: dict) -> dict:
    """{name: (FinetuneConfig fields, splits(seed, start))} for the three downstream measurements."""
    ner = dict(BEST["ner"], epochs=6, lr=1e-3, batch_size=16, minutes=None, progress=False)
    sentiment = dict(BEST["sentiment"], epochs=10, lr=3e-4, batch_size=32, minutes=None, progress=False)
    pos = dict(COMMON, **picked_recipe(pos_results, "1000"))
    window = pos.pop("window", None)

    def pos_splits(seed: int, start: Path):
        return payoff_splits("1000", seed, window, Tokenizer.from_pretrained(start))

    def first_sentiment(seed: int, start: Path):
        train, validation, test = task_splits("sentiment")
        return train[:FIRST_SENTIMENT], validation, test

    return {
        "pos_1000": (pos, pos_splits, window),
        "sentiment_2000": (sentiment, first_sentiment, None),
        "ner": (ner, lambda seed, start: task_splits("ner"), None),
    }


def finished(run: Path) -> bool:
    return (run / "model.safetensors").exists() and (run / "final_eval.json").exists()


def pretraining_record(run: Path, minutes: float) -> dict:
    """The run's own final held-out evaluation and its budget."""
    final = json.loads((run / "final_eval.json").read_text())
    info = json.loads((run / "run.json").read_text())
    return {"minutes": minutes, "steps": final["step"], "max_steps": info["train_config"]["max_steps"],
            "mlm_accuracy": round(final["accuracy"], 4), "loss": round(final["loss"], 4),
            "perplexity": round(final["perplexity"], 2), "pretrain_elapsed_s": round(final["elapsed"], 1)}


def measure(entry: dict, start: Path, random_init: bool, tasks: dict, seeds: list[int]) -> Iterator:
    """Fill ``entry["downstream"][task][seed]`` for every cell not measured yet, yielding
    ``(task, seed, row)`` after each (the caller saves)."""
    downstream = entry.setdefault("downstream", {})
    for name, (recipe, splits, window) in tasks.items():
        for seed in seeds:
            if str(seed) in downstream.get(name, {}):
                continue
            row = recipe_row(start, splits(seed, start), dict(recipe, seed=seed, random_init=random_init),
                             str(start))
            row["window"] = window
            downstream.setdefault(name, {})[str(seed)] = row
            yield name, seed, row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="*", default=DEFAULT_RUNS, metavar="MINUTES=DIR")
    parser.add_argument("--random-from", type=Path, default=Path("/work/runs/s10"),
                        help="the shape and tokenizer of the random baseline (minute 0)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the CPU is shared)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS / "pretraining_scaling.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = load(args.results)
    if not args.report_only:
        started = time.perf_counter()
        results.setdefault("commands", []).append(
            {"argv": ["python", "benchmarks/pretraining_scaling.py", *sys.argv[1:]], **machine_load()})
        tasks = downstream_tasks(load(RESULTS / "pos_payoff.json"))
        results["recipes"] = {name: dict(recipe, window=window) for name, (recipe, _, window) in tasks.items()}
        todo = [("random", args.random_from, True, {"minutes": 0})]
        for spec in args.runs:
            minutes, _, path = spec.partition("=")
            if finished(Path(path)):
                todo.append((Path(path).name, Path(path), False, pretraining_record(Path(path), float(minutes))))
            else:
                print(f"{path}: not finished (no model.safetensors + final_eval.json): skipped", flush=True)
        for key, start, random_init, record in todo:
            results.setdefault("runs", {}).setdefault(key, {}).update(record, start=str(start))
        # One task across every run before the next: a run cut short still leaves whole curves.
        for task in tasks:
            for key, start, random_init, _ in todo:
                entry = results["runs"][key]
                for name, seed, row in measure(entry, start, random_init, {task: tasks[task]}, args.seeds):
                    save(args.results, results)
                    print(key, name, seed, "test", row["test"], f"{row['seconds']} s", flush=True)
        results["commands"][-1]["seconds"] = round(time.perf_counter() - started, 1)
        save(args.results, results)
    from benchmarks.payoff_report import write_scaling_report  # matplotlib: only the report needs it

    write_scaling_report(results, RESULTS / "pretraining_scaling.md", RESULTS / "pretraining_scaling.png")


if __name__ == "__main__":
    main()
