"""``minirob predict``: use a fine-tuned run.

    minirob predict runs/sentiment "A gorgeous, witty film."      -> positive (0.9731)
    minirob predict runs/ner "Flying to New York with Barack Obama"
    minirob predict runs/ner --file tweets.txt --output tagged.jsonl    # one text per line
    minirob predict runs/nli "A man sleeps." --pair "Someone is awake."

Classification prints the label and its probability; NER prints each entity with its type and
character span. ``--file`` reads one text per line (blank lines are skipped) and writes one JSON
object per text to ``--output`` (default: standard output). ``--json`` prints JSON for single
texts too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ConfigError, InputError, MissingFileError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict", help="label texts or tag their entities with a fine-tuned run",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", help="run directory written by `minirob finetune`")
    p.add_argument("texts", nargs="*", help="texts to predict")
    p.add_argument("--pair", action="append", default=None,
                   help="second text of a pair (classification; once per text)")
    p.add_argument("--file", help="read texts from this file, one per line")
    p.add_argument("--output", help="write JSONL here (with --file; default: stdout)")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.set_defaults(func=run)


def _read_lines(path: str) -> list[str]:
    file = Path(path)
    if not file.is_file():
        raise MissingFileError(f"--file {path} does not exist")
    lines = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
    texts = [line for line in lines if line]
    if not texts:
        raise InputError(f"{path}: no non-blank lines to predict")
    return texts


def _show(result: dict) -> str:
    if "entities" in result:
        if not result["entities"]:
            return f"{result['text']}\n  (no entities)"
        rows = [f"  {e['type']:<14} {e['text']!r:<30} [{e['start']}:{e['end']}]  {e['score']:.3f}"
                for e in result["entities"]]
        return "\n".join([result["text"], *rows])
    return f"{result['label']} ({result['probability']:.4f})"


def run(args: argparse.Namespace) -> int:
    from ..predict import Predictor

    if args.file and args.texts:
        raise ConfigError("give texts on the command line or --file, not both")
    texts = _read_lines(args.file) if args.file else args.texts
    if not texts:
        raise ConfigError("nothing to predict: give one or more texts, or --file")
    for i, text in enumerate(texts):
        if not text.strip():
            raise InputError(f"text {i + 1} is empty")
    if args.pair is not None and len(args.pair) != len(texts):
        raise ConfigError(f"got {len(texts)} texts but {len(args.pair)} --pair values")
    results = Predictor.load(args.run).predict(texts, args.pair)
    if args.file or args.json:
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
        if args.output:
            Path(args.output).write_text(lines, encoding="utf-8")
            print(f"wrote {len(results)} predictions to {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(lines)
        return 0
    for result in results:
        print(_show(result))
    return 0
