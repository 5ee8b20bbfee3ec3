"""``minirob evaluate``: score a model on held-out data.

    minirob evaluate runs/tiny                       # MLM: Brown's held-out validation documents
    minirob evaluate runs/tiny --files notes.txt     # MLM: your own text (every document scored)
    minirob evaluate runs/sentiment --data reviews.csv       # a fine-tuned run on a labelled file
    minirob evaluate runs/ner --data tweets.conll            # entity P/R/F1 per type
    minirob evaluate runs/pos --data tagged.conll            # word accuracy, per-tag accuracy

A pretrained model is scored by masked-token accuracy, loss and perplexity: the text is packed into
FULL-SENTENCES blocks and masked once with a fixed seed (15%, 80/10/10), so two models scored with
the same options face the very same blanks. A fine-tuned run has no trained MLM head: it is scored
with ``--data`` on a labelled CSV/TSV/JSONL (classification) or CoNLL (NER, POS) file, with the
report fine-tuning writes for its test split.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data import Document, SpecialIds, fixed_masked_batches, pack_documents, read_text_documents
from ..datasets import load_brown, split_brown
from ..errors import ConfigError, DataError
from ..predict import score_file
from ..pretrain import mlm_loss
from ..sources import load_model, resolve_path
from ..tasks import RECIPE_FILE, read_recipe, summary
from ..train import evaluate_batches
from .options import add_device, add_threads, positive_int, seed


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="masked-token accuracy of an MLM, or a fine-tuned "
                              "run's scores on a labelled file", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a pretrained model, or a run written by minirob finetune (with --data)")
    p.add_argument("--data", help="labelled file to score a fine-tuned run on")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--pair-column", default=None)
    p.add_argument("--corpus", default="brown", choices=("brown", "files"))
    p.add_argument("--files", nargs="+", default=[], help="text files (implies --corpus files)")
    p.add_argument("--split", default="validation", choices=("validation", "test"),
                   help="which held-out Brown documents")
    p.add_argument("--max-length", type=positive_int, default=None,
                   help="block length (default: the one the run trained with, else the model's maximum)")
    p.add_argument("--seed", type=seed, default=1234, help="seed of the fixed masks")
    p.add_argument("--batch-size", type=positive_int, default=64, help="with --data")
    add_device(p)
    add_threads(p)
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.set_defaults(func=run)


def trained_block_length(directory) -> int | None:
    """The block length a ``minirob pretrain`` run trained with (from its run.json), if known:
    scoring longer blocks would use position embeddings the run never trained."""
    path = Path(directory) / "run.json"
    if not path.is_file():
        return None
    try:
        return int(json.loads(path.read_text())["recipe"]["max_length"])
    except (KeyError, TypeError, ValueError):
        return None


def run(args) -> int:
    path = resolve_path(args.model)
    fine_tuned = (path / RECIPE_FILE).is_file()
    if args.data:
        if not fine_tuned:
            raise ConfigError(f"--data scores a fine-tuned run; {args.model} has no {RECIPE_FILE} "
                              "(fine-tune it with `minirob finetune`, or drop --data to score its MLM)")
        return score_data(args)
    if fine_tuned:
        task = read_recipe(path)["task"]
        raise ConfigError(f"{args.model} is a fine-tuned {task} run: its model has no trained MLM "
                          f"head to score; score it on labelled data with `minirob evaluate "
                          f"{args.model} --data FILE`")
    return score_mlm(args)


def score_data(args) -> int:
    report = score_file(args.model, args.data, args.text_column, args.label_column,
                        args.pair_column, args.device, args.batch_size)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{args.data}: {summary(report['task'], report)}")
    return 0


def score_mlm(args) -> int:
    loaded = load_model("mlm", args.model, device=args.device)
    model, tokenizer = loaded.model, loaded.tokenizer
    if args.files:
        documents = read_text_documents(args.files)
        source = ", ".join(args.files)
    else:
        split = getattr(split_brown(load_brown(progress=False), seed=0), args.split)
        documents = [Document(d.id, d.sentences) for d in split]
        source = f"Brown {args.split} ({len(documents)} documents)"
    if not documents:
        raise DataError(f"no text to evaluate in {source}")
    max_length = args.max_length or trained_block_length(args.model) or model.config.max_sequence_length
    blocks = pack_documents(tokenizer, documents, max_length)
    batches = fixed_masked_batches(blocks, SpecialIds.from_tokenizer(tokenizer), seed=args.seed)
    result = evaluate_batches(model, mlm_loss, batches)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{source}: {int(result['count'])} masked tokens; accuracy {100 * result['accuracy']:.2f}%, "
              f"loss {result['loss']:.3f} nats, perplexity {result['perplexity']:.1f}")
    return 0
