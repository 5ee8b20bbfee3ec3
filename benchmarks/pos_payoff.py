"""What pretraining buys on part-of-speech tagging: a pretrained tiny model against the same shape
and tokenizer from random initialisation, fine-tuned on 100, 1,000 and all Brown training sentences.

Both sides get the same recipe and the same budget in *steps* (epochs of a fixed training set):
the machine is shared, so wall-clock budgets would hand whichever run met a quiet minute more
training. Each seed draws its own training sentences (as ``minirob finetune --train-limit`` does)
and initialises the head (and, for the baseline, the encoder) with that seed; pretrained and
random runs of one seed see the same sentences. The recipe for each size is picked on validation
(``search``: the mean of the two sides' best validation accuracy, so neither side's favourite
wins), never on test. "All sentences" draws its batches from the whole training split (51,527
sentences) for a fixed quarter epoch (batches of 32) with the 1,000-sentence learning rate and
windows: a full epoch per run did not fit the shared machine's afternoon.
Validation during training uses a fixed 500-sentence draw of the validation split (a score after
every epoch of 100 sentences would otherwise cost more than the training); test is the whole test
split (3,032 sentences, documents pretraining never saw). ``probe`` adds frozen-feature probes per
layer (``probe_features.probe_pos``). Everything lands in ``results/pos_payoff.json``; ``report``
writes ``results/pos_payoff.md`` and ``results/pos_payoff.png``.

    python benchmarks/pos_payoff.py search --from runs/s10 --sizes 100 1000 --grid lr=3e-4,1e-3,3e-3
    python benchmarks/pos_payoff.py table --from runs/s10 --sizes 100 1000 all --seeds 0 1
    python benchmarks/pos_payoff.py probe --from runs/s10
    python benchmarks/pos_payoff.py report
    python benchmarks/pos_payoff.py export --from runs/demo --sizes 1000 --out runs/demo-pos-data  # demo.sh
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.finetune_data import machine_load, task_splits  # noqa: E402
from benchmarks.finetune_sweep import grid, recipe_row  # noqa: E402
from benchmarks.probe_features import probe_pos  # noqa: E402
from minirob import Tokenizer  # noqa: E402
from minirob.tasks import TaggedSentence  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = ("100", "1000", "all")
VALIDATION_SENTENCES = 500
# Shared by every POS run here (and by pretraining_scaling.py's POS column).
COMMON = dict(task="pos", warmup=0.06, max_length=128, bf16="on",
              group_by_length=True, minutes=None, progress=False)
# Before any search: the starting point (the tiny model's NER recipe, docs/finetuning.md).
DEFAULT = {"100": dict(epochs=40, batch_size=16, lr=1e-3),
           "1000": dict(epochs=10, batch_size=16, lr=1e-3),
           "all": dict(epochs=0.25, batch_size=32, lr=1e-3)}


def windows(sentences, tokenizer: Tokenizer, max_tokens: int) -> list[TaggedSentence]:
    """Each sentence cut into consecutive runs of words that encode to at most ``max_tokens``
    tokens, ``<s>`` and ``</s>`` included: the positions a model pretrained on blocks of that
    length has learned (past them its position vectors are still random). Every word lands in
    exactly one piece, so token accuracy is still over the same words."""
    pieces = []
    for sentence in sentences:
        word_ids = tokenizer.encode_words(sentence.words).word_ids
        sizes = [sum(1 for w in word_ids if w == i) for i in range(len(sentence.words))]
        start, used = 0, 2  # <s> and </s>
        for i, size in enumerate(sizes):
            if i > start and used + size > max_tokens:
                pieces.append(TaggedSentence(sentence.words[start:i], sentence.tags[start:i], sentence.source))
                start, used = i, 2
            used += size
        pieces.append(TaggedSentence(sentence.words[start:], sentence.tags[start:], sentence.source))
    return pieces


def payoff_splits(size: str, seed: int, window: int | None = None, tokenizer: Tokenizer | None = None):
    """(train, validation, test): ``size`` training sentences drawn with ``seed`` (all for "all"),
    the fixed validation draw, the whole test split; with ``window``, every split's sentences cut
    into pieces of at most that many tokens (:func:`windows`)."""
    train, validation, test = task_splits("pos")
    if size != "all":
        train = random.Random(seed).sample(list(train), int(size))
    splits = (train, random.Random(0).sample(list(validation), VALIDATION_SENTENCES), test)
    return splits if window is None else tuple(windows(split, tokenizer, window) for split in splits)


def picked_recipe(results: dict, size: str) -> dict:
    """The recipe for ``size``: the searched one with the best mean of the two sides' best
    validation scores; "all" takes the 1,000-sentence learning rate (and windows) for its quarter
    epoch."""
    if size == "all":
        thousand = picked_recipe(results, "1000")
        return dict(DEFAULT["all"], **{k: thousand[k] for k in ("lr", "window") if k in thousand})
    by_recipe: dict[str, list[float]] = {}
    for row in results.get("search", []):
        if row["size"] == size:
            by_recipe.setdefault(json.dumps(row["changes"], sort_keys=True), []).append(max(row["validation"]))
    if not by_recipe:
        return dict(DEFAULT[size])
    best = max(by_recipe, key=lambda key: statistics.mean(by_recipe[key]))
    return dict(DEFAULT[size], **json.loads(best))


def cell(start: Path, size: str, seed: int, random_init: bool, recipe: dict) -> dict:
    """One fine-tuning run: the row of ``finetune_sweep.recipe_row`` plus where it sits.
    ``recipe`` holds FinetuneConfig fields and optionally ``window`` (see :func:`windows`)."""
    recipe = dict(recipe)
    window = recipe.pop("window", None)
    splits = payoff_splits(size, seed, window, Tokenizer.from_pretrained(start))
    full = dict(COMMON, **recipe, seed=seed, random_init=random_init)
    row = recipe_row(start, splits, full, str(start))
    return {"size": size, "seed": seed, "random_init": random_init, "window": window, **row}


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def save(path: Path, results: dict) -> None:
    path.write_text(json.dumps(results, indent=1))


def export(args, results: dict) -> None:
    """Write train/validation/test CoNLL files (``word<TAB>tag``) of the picked recipe's data for
    the first of ``--sizes`` and seed, cut into its windows: what ``minirob finetune --train``
    reads (scripts/demo.sh fine-tunes on them)."""
    size, seed = args.sizes[0], args.seeds[0]
    window = picked_recipe(results, size).get("window")
    args.out.mkdir(parents=True, exist_ok=True)
    names = ("train", "validation", "test")
    for name, split in zip(names, payoff_splits(size, seed, window, Tokenizer.from_pretrained(args.start))):
        text = "\n\n".join("\n".join(f"{w}\t{t}" for w, t in zip(s.words, s.tags)) for s in split)
        (args.out / f"{name}.conll").write_text(text + "\n")
    print(f"{args.out}: {', '.join(names)}.conll ({size} sentences, seed {seed}, window {window})")


def run_search(args, results: dict) -> None:
    for size in args.sizes:
        for changes in grid(args.grid) or [{}]:
            for random_init in (False, True):
                row = cell(args.start, size, 0, random_init, dict(DEFAULT[size], **changes))
                results.setdefault("search", []).append({**row, "changes": changes})
                save(args.results, results)
                print(size, changes, "random" if random_init else "pretrained",
                      "validation", row["validation"], f"{row['seconds']} s", flush=True)
        print(size, "picked", picked_recipe(results, size), flush=True)


def run_table(args, results: dict) -> None:
    cells = results.setdefault("cells", [])
    for size in args.sizes:
        recipe = picked_recipe(results, size)
        for seed in args.seeds:
            for random_init in (False, True):
                row = cell(args.start, size, seed, random_init, recipe)
                cells[:] = [c for c in cells if (c["size"], c["seed"], c["random_init"])
                            != (size, seed, random_init)] + [row]
                save(args.results, results)
                print(size, seed, "random" if random_init else "pretrained", "test", row["test"],
                      f"{row['seconds']} s, {row['steps']} steps", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["search", "table", "probe", "report", "export"])
    parser.add_argument("--from", dest="start", type=Path, default=Path("runs/s10"),
                        help="the pretrained run (its tokenizer serves the random model too)")
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), choices=SIZES)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    parser.add_argument("--grid", nargs="*", default=[], metavar="KEY=V1,V2")
    parser.add_argument("--probe-sentences", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the CPU is shared)")
    parser.add_argument("--results", type=Path, default=RESULTS / "pos_payoff.json")
    parser.add_argument("--out", type=Path, help="export: the folder for the CoNLL files")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = load(args.results)
    if args.action == "export":
        export(args, results)
        return
    if args.action == "report":
        from benchmarks.payoff_report import write_report  # matplotlib: only the report needs it

        write_report(results, RESULTS / "pos_payoff.md", RESULTS / "pos_payoff.png")
        return
    started = time.perf_counter()
    results.setdefault("commands", []).append(
        {"argv": ["python", "benchmarks/pos_payoff.py", *sys.argv[1:]], **machine_load()})
    if args.action == "search":
        run_search(args, results)
    elif args.action == "table":
        run_table(args, results)
    else:
        results["probe"] = {**probe_pos(str(args.start), args.probe_sentences), "start": str(args.start)}
        print(json.dumps(results["probe"]))
    results["commands"][-1]["seconds"] = round(time.perf_counter() - started, 1)
    save(args.results, results)


if __name__ == "__main__":
    main()
