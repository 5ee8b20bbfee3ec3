"""``minirob predict``: use a fine-tuned model.

    minirob predict runs/sentiment "A gorgeous, witty film."      -> positive (0.9731)
    minirob predict runs/ner "Flying to New York with Barack Obama"
    minirob predict runs/pos "The old man sat down."               -> word/TAG per word
    minirob predict runs/ner --file tweets.txt --output tagged.jsonl    # one text per line
    minirob predict runs/nli "A man sleeps." --pair "Someone is awake."
    minirob predict path/to/transformers-classifier "Some text" --device cuda

The model is a run directory written by ``minirob finetune`` or a transformers classifier
directory (``...ForSequenceClassification`` / ``...ForTokenClassification``; labels from
``id2label``). Classification prints the label and its probability; NER prints each entity with
its type and character span; POS prints each word with its tag. Several texts are printed each
with its result. ``--file`` reads one text per line (blank lines are skipped) and writes one JSON
object per text to ``--output`` (default: standard output). ``--json`` prints JSON for texts given
on the command line too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ConfigError, DataError, InputError, MissingFileError
from ..predict import Predictor
from .options import add_device, add_threads, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict", help="label texts, tag their entities or parts of speech with a fine-tuned model",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", help="run directory written by `minirob finetune`, or a transformers classifier")
    p.add_argument("texts", nargs="*", help="texts to predict")
    p.add_argument("--pair", action="append", default=None,
                   help="second text of a pair (classification; once per text)")
    p.add_argument("--file", help="read texts from this file, one per line")
    p.add_argument("--output", help="write JSONL here (with --file; default: stdout)")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.add_argument("--batch-size", type=positive_int, default=64)
    add_device(p)
    add_threads(p)
    p.set_defaults(func=run)


def texts_from(args: argparse.Namespace, verb: str) -> list[str]:
    """The texts a command works on: from the command line or from ``--file``, not both, not none."""
    if args.file and args.texts:
        raise ConfigError("give texts on the command line or --file, not both")
    texts = read_lines(args.file) if args.file else args.texts
    if not texts:
        raise ConfigError(f"nothing to {verb}: give one or more texts, or --file")
    return texts


def read_lines(path: str) -> list[str]:
    """The non-blank lines of a UTF-8 file; anything else is named with its file (and line)."""
    file = Path(path)
    if not file.is_file():
        raise MissingFileError(f"--file {path} does not exist")
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not UTF-8 text (byte {data[error.start]:#04x} "
                        f"at offset {error.start}); save the file as UTF-8") from None
    texts = [line.strip() for line in text.splitlines() if line.strip()]
    if not texts:
        raise InputError(f"{path}: no non-blank lines to predict")
    return texts


def show(result: dict) -> str:
    """One result as the terminal shows it."""
    if "entities" in result:
        if not result["entities"]:
            return "  (no entities)"
        return "\n".join(f"  {e['type']:<14} {e['text']!r:<30} [{e['start']}:{e['end']}]  {e['score']:.3f}"
                         for e in result["entities"])
    if "tags" in result:
        return "  " + " ".join(f"{w}/{t}" for w, t in zip(result["words"], result["tags"]))
    return f"{result['label']} ({result['probability']:.4f})"


def run(args: argparse.Namespace) -> int:
    texts = texts_from(args, "predict")
    for i, text in enumerate(texts):
        if not text.strip():
            raise InputError(f"text {i + 1} is empty")
    if args.pair is not None and len(args.pair) != len(texts):
        raise ConfigError(f"got {len(texts)} texts but {len(args.pair)} --pair values")
    predictor = Predictor.load(args.run, device=args.device)
    predictor.batch_size = args.batch_size
    results = predictor.predict(texts, args.pair)
    if args.file or args.json:
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
        if args.output:
            Path(args.output).write_text(lines, encoding="utf-8")
            print(f"wrote {len(results)} predictions to {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(lines)
        return 0
    for result in results:
        shown = show(result)
        # One text: the answer alone (as before); several: each text above its answer.
        if len(results) > 1 or "\n" in shown or shown.startswith("  "):
            print(result["text"])
        print(shown)
    return 0
