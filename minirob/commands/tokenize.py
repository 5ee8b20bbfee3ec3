"""``minirob tokenize``: train a byte-level BPE tokenizer on text files, or show how one splits a
sentence.

    minirob tokenize train corpus.txt more.txt --vocab-size 8192 --out tok/
    minirob tokenize show tok/ "Tokenizers split words into pieces."
    minirob tokenize show gpt2-bpe "Hello world"      # GPT-2's real vocabulary (fetched once)
    minirob tokenize explain gpt2-bpe "Tokenization"   # each merge, step by step (minirob.bpe)
    minirob tokenize speed                             # tokens/s: Rust library vs minirob.bpe
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from ..bpe import ByteLevelBPE, pretokenize
from ..datasets import fetch, load_brown
from ..errors import InputError, TokenizerError
from ..tokenizer import MAX_VOCAB_SIZE, SPECIAL_TOKENS, Tokenizer
from .options import number, positive_int

# The smallest byte-level vocabulary: the special tokens and the 256 byte symbols.
_SMALLEST_VOCAB = len(SPECIAL_TOKENS) + 256


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tokenize", help="train a BPE tokenizer, or show the tokens of a sentence")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    train = actions.add_parser("train", help="learn a byte-level BPE vocabulary from text files")
    train.add_argument("files", nargs="+", type=Path, help="UTF-8 text files to learn from")
    train.add_argument("--vocab-size", type=number(int, at_least=_SMALLEST_VOCAB, at_most=MAX_VOCAB_SIZE),
                       default=8192, help=f"tokens in the vocabulary, {_SMALLEST_VOCAB}..{MAX_VOCAB_SIZE} (default 8192)")
    train.add_argument("--min-frequency", type=positive_int, default=2, help="rarest pair still merged (default 2)")
    train.add_argument("--add-prefix-space", action="store_true", help="put a space before every text")
    train.add_argument("--out", type=Path, required=True, help="directory for vocab.json, merges.txt, tokenizer.json")
    train.set_defaults(func=run_train)

    show = actions.add_parser("show", help="print the tokens and ids of a sentence")
    show.add_argument("tokenizer", help="a tokenizer directory or tokenizer.json, or 'gpt2-bpe'")
    show.add_argument("text", help="the sentence to encode")
    show.add_argument("--pair", help="a second text, encoded as a pair with the first")
    show.set_defaults(func=run_show)

    explain = actions.add_parser(
        "explain", help="show the from-scratch BPE merging each piece of a text, step by step"
    )
    explain.add_argument("tokenizer", help="a directory with vocab.json + merges.txt, or 'gpt2-bpe'")
    explain.add_argument("text", help="the text to explain")
    explain.set_defaults(func=run_explain)

    speed = actions.add_parser(
        "speed", help="encoding speed (tokens/s) on the Brown corpus: tokenizers vs the from-scratch BPE"
    )
    speed.add_argument("--rounds", type=positive_int, default=3, help="interleaved timing rounds (default 3)")
    speed.add_argument("--every", type=positive_int, default=1, help="use every N-th Brown sentence (default 1: all)")
    speed.set_defaults(func=run_speed)


def run_train(args: argparse.Namespace) -> int:
    tokenizer = Tokenizer.train(
        args.files,
        vocab_size=args.vocab_size,
        min_frequency=args.min_frequency,
        add_prefix_space=args.add_prefix_space,
        show_progress=True,
    )
    out = tokenizer.save(args.out)
    print(f"trained {tokenizer.vocab_size} tokens on {len(args.files)} file(s); saved to {out}/")
    return 0


def load(name: str):
    """A tokenizer from a path, or from the fetchable GPT-2 vocabulary when ``name`` is 'gpt2-bpe'."""
    if name == "gpt2-bpe" and not Path(name).exists():
        entry = fetch("gpt2-bpe")
        return Tokenizer.from_gpt2_files(entry / "encoder.json", entry / "vocab.bpe")
    return Tokenizer.from_pretrained(name)


def run_show(args: argparse.Namespace) -> int:
    tokenizer = load(args.tokenizer)
    encoding = tokenizer.encode(args.text, pair=args.pair)
    texts = (args.text, args.pair)
    print(f"{len(encoding)} tokens ({tokenizer!r})")
    print(f"{'#':>4}  {'id':>6}  {'token':<16} text")
    for i, (token_id, token, (start, end), sequence) in enumerate(
        zip(encoding.ids, encoding.tokens, encoding.offsets, encoding.sequence_ids)
    ):
        span = "" if sequence is None else repr(texts[sequence][start:end])
        print(f"{i:>4}  {token_id:>6}  {token:<16} {span}")
    print("ids:", " ".join(map(str, encoding.ids)))
    return 0


def run_explain(args: argparse.Namespace) -> int:
    directory = Path(args.tokenizer)
    if args.tokenizer == "gpt2-bpe" and not directory.exists():
        directory = fetch("gpt2-bpe")
    for vocab_name, merges_name in (("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe")):
        if (directory / vocab_name).is_file():
            model = ByteLevelBPE.from_files(directory / vocab_name, directory / merges_name)
            break
    else:
        raise TokenizerError(f"{directory}: explain needs vocab.json + merges.txt (or encoder.json + vocab.bpe)")
    pieces = pretokenize(args.text)
    print(f"pieces (GPT-2's pattern, bytes shown as symbols, Ġ = space): {pieces}")
    for piece in pieces:
        steps = model.merge_steps(piece)
        print(f"\n{piece!r}: {len(steps) - 1} merge(s)")
        for pair, symbols in steps:
            rule = "start" if pair is None else f"merge {pair[0]!r} + {pair[1]!r} (rank {model.ranks[pair]})"
            print(f"  {rule:<40} {' '.join(symbols)}")
        print(f"  ids: {[model.vocab[symbol] for symbol in steps[-1][1]]}")
    return 0


def run_speed(args: argparse.Namespace) -> int:
    """Time both encoders on the same Brown sentences with GPT-2's files, interleaved round by round
    (the machine's load changes over time; ratios from one round are comparable, absolute numbers
    from different moments are not). The from-scratch cache is emptied before each of its runs."""
    entry = fetch("gpt2-bpe")
    sentences = [s for document in load_brown() for s in document.sentences][:: args.every]
    fast = Tokenizer.from_gpt2_files(entry / "encoder.json", entry / "vocab.bpe")
    scratch = ByteLevelBPE.from_files(entry / "encoder.json", entry / "vocab.bpe")

    def rust_batch():
        return [e.ids for e in fast.backend.encode_batch(sentences, add_special_tokens=False)]

    def rust_one_by_one():
        return [fast.backend.encode(s, add_special_tokens=False).ids for s in sentences]

    def from_scratch():
        scratch.cache.clear()
        return [scratch.encode(s) for s in sentences]

    runs = {"tokenizers, encode_batch": rust_batch, "tokenizers, one call per sentence": rust_one_by_one,
            "minirob.bpe (pure Python, per-word cache)": from_scratch}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    tokens = None
    for round_number in range(1, args.rounds + 1):
        for name, run in runs.items():
            start = time.perf_counter()
            ids = run()
            seconds[name].append(time.perf_counter() - start)
            count = sum(map(len, ids))
            if tokens is not None and count != tokens:
                raise InputError(f"{name} produced {count} tokens, expected {tokens}")
            tokens = count
        print(f"round {round_number}/{args.rounds} done", flush=True)
    print(f"{len(sentences)} Brown sentences, {tokens} GPT-2 tokens; median of {args.rounds} rounds:")
    reference = statistics.median(seconds["tokenizers, one call per sentence"])
    for name, times in seconds.items():
        median = statistics.median(times)
        print(f"  {name:<44} {tokens / median:>12,.0f} tokens/s   {median / reference:5.2f}x the time")
    return 0
