"""``minirob finetune``: a task head on a pretrained encoder, trained, kept at its best, scored.

    minirob finetune --task sentiment --from minilm --out runs/sentiment
    minirob finetune --task ner --from runs/tiny --out runs/ner-tiny --epochs 5 --lr 1e-4
    minirob finetune --task ner --from runs/tiny --random-init --out runs/ner-random   # baseline
    minirob finetune --task classify --from minilm --train reviews.csv --out runs/reviews
    minirob finetune --task classify --from minilm --train pairs.jsonl --pair-column hypothesis ...

``--from`` is a checkpoint (HF directory or file, fairseq ``model.pt``, BERT directory, a minirob
run) or the name of a fetched source (``minilm``). Without ``--train`` the task's own data is used:
the movie-review sentiment set or WNUT-16, with the seeded 80/10/10 splits. A ``--train`` file
without ``--validation``/``--test`` files is split 80/10/10 with ``--seed``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import CLASSIFIER_POOLINGS
from ..errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "finetune", help="fine-tune a classification or NER head (sentiment, ner, classify)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--task", required=True, choices=["sentiment", "ner", "classify"])
    p.add_argument("--from", dest="start", required=True, metavar="PATH",
                   help="pretrained checkpoint, or 'minilm' (fetched real English BERT)")
    p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument("--random-init", action="store_true",
                   help="same shape as --from, random weights (the baseline)")
    p.add_argument("--tokenizer", default=None, help="tokenizer path (default: next to --from)")
    data = p.add_argument_group("data (default: the task's own data set)")
    data.add_argument("--train", help="CSV/TSV/JSONL (classify) or CoNLL (ner) file")
    data.add_argument("--validation", help="validation file (default: split from --train)")
    data.add_argument("--test", help="test file (default: split from --train)")
    data.add_argument("--text-column", default="text")
    data.add_argument("--label-column", default="label")
    data.add_argument("--pair-column", default=None, help="second text of a sentence pair")
    r = p.add_argument_group("recipe")
    r.add_argument("--epochs", type=float, default=3.0)
    r.add_argument("--batch-size", type=int, default=32)
    r.add_argument("--lr", type=float, default=5e-5)
    r.add_argument("--warmup", type=float, default=0.06, help="fraction of the steps")
    r.add_argument("--weight-decay", type=float, default=0.0)
    r.add_argument("--max-length", type=int, default=128)
    r.add_argument("--minutes", type=float, default=None, help="wall-clock budget")
    r.add_argument("--patience", type=int, default=None,
                   help="early stopping: epochs without a better validation score")
    r.add_argument("--label-all-subwords", action="store_true",
                   help="NER: label every subword (default: the first, the rest ignored)")
    r.add_argument("--bf16", choices=["auto", "on", "off"], default="off")
    r.add_argument("--pooling", choices=CLASSIFIER_POOLINGS, default="first",
                   help="classification: read <s> (RoBERTa's head) or the mean of the tokens")
    r.add_argument("--group-by-length", action=argparse.BooleanOptionalAction, default=True,
                   help="batch examples of similar length together: less padding, faster epochs "
                        "(default on; --no-group-by-length: fully random batches)")
    r.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def _start_path(start: str) -> Path:
    from .. import datasets

    path = Path(start)
    if not path.exists() and start in getattr(datasets, "SOURCES", {}):
        return datasets.fetch(start)
    return path


def load_data(args: argparse.Namespace):
    """(train, validation, test) examples for the task, from files or the built-in sets."""
    from .. import datasets, readers
    from ..finetune import TextExample, conll_sentences, sentiment_examples

    if args.train is None:
        if args.task == "sentiment":
            splits = datasets.split_sentiment(datasets.load_sentiment("movie"), seed=args.seed)
            convert = sentiment_examples
        elif args.task == "ner":
            splits = datasets.split_wnut16(datasets.load_wnut16(), seed=args.seed)
            convert = conll_sentences
        else:
            raise ConfigError("--task classify needs --train FILE (CSV, TSV or JSONL)")
        return convert(splits.train), convert(splits.validation), convert(splits.test)

    def read(path):
        if args.task == "ner":
            return conll_sentences(readers.read_conll(path))
        rows = readers.read_table(path, args.text_column, args.label_column)
        pairs = [None] * len(rows)
        if args.pair_column:
            pairs = [row.text for row in readers.read_table(path, args.pair_column, None)]
        return [TextExample(row.text, str(row.label), pair, f"{path} row {i + 1}")
                for i, (row, pair) in enumerate(zip(rows, pairs))]

    train = read(args.train)
    if (args.validation is None) != (args.test is None):
        raise ConfigError("give both --validation and --test, or neither (then --train is split)")
    if args.validation is None:
        splits = datasets.split_seeded(train, validation=0.1, test=0.1, seed=args.seed)
        return splits.train, splits.validation, splits.test
    return train, read(args.validation), read(args.test)


def run(args: argparse.Namespace) -> int:
    from ..finetune import FinetuneConfig, finetune

    config = FinetuneConfig(
        task=args.task, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        warmup=args.warmup, weight_decay=args.weight_decay, max_length=args.max_length,
        label_all_subwords=args.label_all_subwords, patience=args.patience, minutes=args.minutes,
        seed=args.seed, random_init=args.random_init, bf16=args.bf16, pooling=args.pooling,
        group_by_length=args.group_by_length,
    )
    train, validation, test = load_data(args)
    out = Path(args.out)
    if (out / "train" / "checkpoints").is_dir():
        raise ConfigError(f"{out} already holds a fine-tuning run; choose another --out")
    report = finetune(_start_path(args.start), train, validation, test, config, out,
                      tokenizer_path=args.tokenizer)
    test_scores = report["test"]
    if args.task == "ner":
        line = (f"test entity F1 {test_scores['f1']:.4f} (precision {test_scores['precision']:.4f}, "
                f"recall {test_scores['recall']:.4f}, {test_scores['n_gold']} entities)")
    else:
        line = f"test accuracy {test_scores['accuracy']:.4f}, macro-F1 {test_scores['macro_f1']:.4f}"
    print(f"{line}; best epoch {report['best_epoch']}, {report['train_seconds']} s of training")
    print(f"run directory: {out} (report.json; predict with `minirob predict {out} \"text\"`)")
    print(json.dumps({"validation_history": report["validation_history"]}))
    return 0
