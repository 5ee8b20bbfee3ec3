"""``minirob finetune``: a task head on a pretrained encoder, trained, kept at its best, scored.

    minirob finetune --task sentiment --from minilm --out runs/sentiment
    minirob finetune --task ner --from runs/tiny --out runs/ner-tiny --epochs 5 --lr 1e-4
    minirob finetune --task ner --from runs/tiny --random-init --out runs/ner-random   # baseline
    minirob finetune --task pos --from runs/tiny --train-limit 1000 --out runs/pos     # Brown POS
    minirob finetune --task classify --from minilm --train reviews.csv --out runs/reviews
    minirob finetune --task classify --from minilm --train pairs.jsonl --pair-column hypothesis ...

``--from`` is a checkpoint (HF directory or file, fairseq ``model.pt``, BERT directory, a minirob
run) or the name of a fetched source (``minilm``). Without ``--train`` the task's own data is used:
the movie-review sentiment set or WNUT-16 (seeded 80/10/10 splits), or Brown's part-of-speech tags
(split by the documents pretraining holds out). A ``--train`` file without ``--validation``/``--test``
files is split 80/10/10 with ``--seed``. Files: CSV/TSV/JSONL for classification, CoNLL
(``word<TAB>tag``) for ner and pos.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
from pathlib import Path

from .. import datasets
from ..config import CLASSIFIER_POOLINGS
from ..errors import ConfigError
from ..finetune import FinetuneConfig, finetune
from ..sources import resolve_path
from ..tasks import TASKS, conll_sentences, read_examples, sentiment_examples, summary
from .options import add_threads, number, positive_int
from .train_options import add_loop_options, loop_config


DEFAULTS = FinetuneConfig()
# The loop's settings a fine-tuning run takes from the command line (declared in train_options).
LOOP_FIELDS = ("lr", "warmup", "weight_decay", "minutes", "bf16", "seed", "progress", "device", "compile")
LOOP_HELPS = {"minutes": "wall-clock budget (stops sooner than --epochs if it comes first)",
              "seed": "seed of the head, the batch order and the data split"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "finetune", help="fine-tune a classification or tagging head (sentiment, classify, ner, pos)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--from", dest="start", required=True, metavar="PATH",
                   help="pretrained checkpoint, or 'minilm' (fetched real English BERT)")
    p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument("--random-init", action="store_true",
                   help="same shape as --from, random weights (the baseline)")
    p.add_argument("--tokenizer", default=None, help="tokenizer path (default: next to --from)")
    data = p.add_argument_group("data (default: the task's own data set)")
    data.add_argument("--train", help="CSV/TSV/JSONL (classify) or CoNLL (ner, pos) file")
    data.add_argument("--validation", help="validation file (default: split from --train)")
    data.add_argument("--test", help="test file (default: split from --train)")
    data.add_argument("--train-limit", type=positive_int, default=None,
                      help="train on this many examples, drawn with --seed (learning curves)")
    data.add_argument("--text-column", default="text")
    data.add_argument("--label-column", default="label")
    data.add_argument("--pair-column", default=None, help="second text of a sentence pair")
    r = p.add_argument_group("recipe (defaults: the reference recipe, FinetuneConfig)")
    r.add_argument("--epochs", type=number(float, above=0, at_most=10_000), default=DEFAULTS.train.epochs,
                   help="passes over the training split")
    add_loop_options(r, DEFAULTS.train, LOOP_FIELDS, helps=LOOP_HELPS)
    r.add_argument("--batch-size", type=number(int, at_least=1, at_most=65_536), default=DEFAULTS.batch_size)
    r.add_argument("--max-length", type=number(int, at_least=4, at_most=65_536), default=DEFAULTS.max_length)
    r.add_argument("--patience", type=positive_int, default=None,
                   help="early stopping: epochs without a better validation score")
    r.add_argument("--label-all-subwords", action="store_true",
                   help="ner/pos: label every subword (default: the first, the rest ignored)")
    r.add_argument("--pooling", choices=CLASSIFIER_POOLINGS, default=DEFAULTS.pooling,
                   help="classification: read <s> (RoBERTa's head) or the mean of the tokens")
    r.add_argument("--group-by-length", action=argparse.BooleanOptionalAction, default=True,
                   help="batch examples of similar length together: less padding, faster epochs "
                        "(default on; --no-group-by-length: fully random batches)")
    add_threads(r)
    p.set_defaults(func=run)


def builtin_data(task: str, seed_value: int):
    """(train, validation, test) of the task's own data set."""
    if task == "sentiment":
        splits = datasets.split_sentiment(datasets.load_sentiment("movie"), seed=seed_value)
        convert = sentiment_examples
    elif task == "ner":
        splits = datasets.split_wnut16(datasets.load_wnut16(), seed=seed_value)
        convert = conll_sentences
    elif task == "pos":
        splits = datasets.brown_pos_splits(seed=seed_value)
        convert = conll_sentences
    else:
        raise ConfigError("--task classify needs --train FILE (CSV, TSV or JSONL)")
    return convert(splits.train), convert(splits.validation), convert(splits.test)


def load_data(args: argparse.Namespace):
    """(train, validation, test) examples for the task, from files or the built-in sets."""
    if args.train is None:
        train, validation, test = builtin_data(args.task, args.seed)
    else:
        read = lambda path: read_examples(path, args.task, args.text_column,  # noqa: E731
                                          args.label_column, args.pair_column)
        train = read(args.train)
        if (args.validation is None) != (args.test is None):
            raise ConfigError("give both --validation and --test, or neither (then --train is split)")
        if args.validation is None:
            splits = datasets.split_seeded(train, validation=0.1, test=0.1, seed=args.seed)
            train, validation, test = splits.train, splits.validation, splits.test
        else:
            validation, test = read(args.validation), read(args.test)
    if args.train_limit is not None and args.train_limit < len(train):
        train = random.Random(args.seed).sample(list(train), args.train_limit)
    return train, validation, test


def recipe(args: argparse.Namespace) -> FinetuneConfig:
    """The FinetuneConfig the options describe (untouched options: the library's defaults)."""
    loop = dataclasses.replace(loop_config(args, DEFAULTS.train, LOOP_FIELDS), epochs=args.epochs)
    return FinetuneConfig(
        task=args.task, batch_size=args.batch_size, max_length=args.max_length,
        label_all_subwords=args.label_all_subwords, patience=args.patience,
        random_init=args.random_init, pooling=args.pooling, group_by_length=args.group_by_length,
        train=loop,
    )


def run(args: argparse.Namespace) -> int:
    config = recipe(args)
    train, validation, test = load_data(args)
    out = Path(args.out)
    if (out / "train" / "checkpoints").is_dir():
        raise ConfigError(f"{out} already holds a fine-tuning run; choose another --out")
    report = finetune(resolve_path(args.start), train, validation, test, config, out,
                      tokenizer_path=args.tokenizer)
    print(f"test {summary(args.task, report['test'])}; best epoch {report['best_epoch']}, "
          f"{report['train_seconds']} s of training")
    print(f"run directory: {out} (report.json; predict with `minirob predict {out} \"text\"`)")
    print(json.dumps({"validation_history": report["validation_history"]}))
    return 0
