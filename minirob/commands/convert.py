"""``minirob convert``: rewrite a checkpoint in the layout minirob saves and transformers loads.

    minirob convert sapiens/checkpoint_vh.pt out/vh       # fairseq model.pt (+ dict.txt) -> HF layout
    minirob convert old-hf-dir/ out/clean                  # any HF RoBERTa/BERT checkpoint -> same
    minirob convert model.pt out/ --model encoder          # keep only the encoder

The output is ``config.json`` + ``model.safetensors`` under transformers' names (what
``save_pretrained`` writes), so both ``minirob.*.from_pretrained(out)`` and
``transformers.AutoModel*.from_pretrained(out)`` read it. Old HF files are normalised on the way
(``pytorch_model.bin`` pickles become safetensors, ``LayerNorm.gamma/beta`` become
``weight/bias``, stale buffers are dropped). Tokenizer files next to the source are copied; a
fairseq ``dict.txt`` is copied and also written as a ``tokenizer.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from ..errors import MinirobError, MissingFileError, WriteError
from ..fairseq import dictionary_tokenizer, read_dictionary
from ..model import (
    RobertaForMaskedLM,
    RobertaForSequenceClassification,
    RobertaForTokenClassification,
    RobertaModel,
)
from ..names import name_list
from ..pretrained import model_from_state
from ..weights import is_fairseq, read_checkpoint

MODELS = {model.checkpoint_head: model for model in (
    RobertaModel, RobertaForMaskedLM, RobertaForSequenceClassification,
    RobertaForTokenClassification,
)}
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "vocab.json", "merges.txt", "vocab.txt",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert", help="convert a fairseq or HF checkpoint into the layout minirob/transformers load"
    )
    parser.add_argument("source", type=Path, help="fairseq model.pt (or its directory), HF dir or file")
    parser.add_argument("out", type=Path, help="output directory (config.json + model.safetensors)")
    parser.add_argument(
        "--model", choices=("auto", *MODELS), default="auto",
        help="which model to write; auto: the MLM head if the checkpoint has one, else its "
             "classification head, else the encoder alone",
    )
    parser.add_argument("--force", action="store_true", help="overwrite a checkpoint already in OUT")
    parser.set_defaults(func=run)


def choose_model(hf_names, wanted: str):
    """The minirob class for ``--model`` (``auto``: from the heads present in the weights).

    BERT's two classifiers both end in a Linear ``classifier``; the sequence one reads the pooler,
    which transformers' BertForTokenClassification does not have.
    """
    if wanted == "auto":
        names = set(hf_names)
        pooler = any(n.endswith("pooler.dense.weight") for n in names)
        if any(n.startswith(("lm_head.", "cls.predictions.")) for n in names):
            wanted = "mlm"
        elif "classifier.dense.weight" in names or ("classifier.weight" in names and pooler):
            wanted = "sequence-classification"
        elif "classifier.weight" in names:
            wanted = "token-classification"
        else:
            wanted = "encoder"
    return MODELS[wanted]


def copy_vocabulary(source: Path, out: Path, fairseq: bool) -> list[str]:
    """Copy tokenizer files found next to ``source``; for fairseq, also dict.txt as tokenizer.json.

    Each file is written under a temporary name and renamed, so a full disk leaves no half file.
    """
    directory = source if source.is_dir() else source.parent
    written = []
    for name in TOKENIZER_FILES + (("dict.txt",) if fairseq else ()):
        if (directory / name).is_file():
            write_atomically(out / name, lambda tmp, n=name: shutil.copyfile(directory / n, tmp))
            written.append(name)
    if fairseq and (directory / "dict.txt").is_file() and "tokenizer.json" not in written:
        tokenizer = dictionary_tokenizer(read_dictionary(directory / "dict.txt"))
        write_atomically(out / "tokenizer.json", lambda tmp: tokenizer.save(str(tmp)))
        special = json.dumps({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
            "pad_token": "<pad>", "mask_token": "<mask>",
        }, indent=2)
        write_atomically(out / "tokenizer_config.json", lambda tmp: tmp.write_text(special))
        written += ["tokenizer.json", "tokenizer_config.json"]
    return written


def write_atomically(path: Path, write) -> None:
    """``write(temporary)`` then rename onto ``path``; on failure, one line and no temporary."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        reason = "no space left on the device" if error.errno == 28 else error.strerror or error
        raise WriteError(f"cannot write {path}: {reason}") from None


def run(args: argparse.Namespace) -> int:
    source, out = args.source, args.out
    if not source.exists():
        raise MissingFileError(f"no checkpoint at {source}")
    if (out / "model.safetensors").exists() and not args.force:
        raise MinirobError(f"{out} already holds a model.safetensors; pass --force to overwrite")
    fairseq = is_fairseq(source)
    config, hf_state = read_checkpoint(source)  # read once, for the choice and for the model
    cls = choose_model(hf_state, args.model)
    model = model_from_state(cls, config, hf_state, source)
    model.save_pretrained(out)
    vocabulary = copy_vocabulary(source, out, fairseq)
    report = model.load_report
    print(
        f"{'fairseq' if fairseq else 'HF'} checkpoint {source} -> {out}/ as {model.hf_class_name()} "
        f"({model.num_parameters():,} parameters, {config.num_hidden_layers} layers, "
        f"hidden {config.hidden_size}, vocab {config.vocab_size})"
    )
    if vocabulary:
        print(f"  vocabulary: {', '.join(vocabulary)}")
    if report.unused:  # names from the file: quoted, so a crafted name cannot fake output lines
        print(f"  dropped (no place in {cls.__name__}): {name_list(report.unused)}")
    if report.newly_initialised:
        print(f"  newly initialised (not in the source; train before use): "
              f"{', '.join(report.newly_initialised[:6])}")
    return 0
