"""``minirob data``: fetch the registry sources, list them, print the clean forms' split sizes.

    minirob data list                         name, download size, licence, cached or not
    minirob data fetch NAME [NAME ...|all]    download + verify + extract (once; offline after)
    minirob data splits [brown|brown-pos|sentiment|wnut16]   counts and train/validation/test sizes

Every subcommand takes ``--cache-dir`` (default: ``$MINIROB_CACHE``, else ``~/.cache/minirob``).
"""

from __future__ import annotations

import argparse
import time

from collections import Counter

from .. import datasets
from ..errors import DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="fetch and list the real data and weights")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    def add(name: str, help: str, func) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help)
        sub.add_argument("--cache-dir", default=None, help="cache root (default: $MINIROB_CACHE or ~/.cache/minirob)")
        sub.set_defaults(func=func)
        return sub

    add("list", "show every source, its size and licence, and whether it is cached", _list)
    fetch = add("fetch", "download, verify and extract sources into the cache", _fetch)
    fetch.add_argument("names", nargs="+", metavar="NAME", help=f"{', '.join(datasets.SOURCES)} or all")
    fetch.add_argument("--quiet", action="store_true", help="no progress output")
    splits = add("splits", "print the counts and split sizes of the clean data sets", _splits)
    splits.add_argument("names", nargs="*", metavar="NAME", default=["brown", "brown-pos", "sentiment", "wnut16"])


def _list(args: argparse.Namespace) -> int:
    root = datasets.cache_root(args.cache_dir)
    print(f"cache: {root}")
    print(f"{'name':<10} {'download':>9} {'cached':>10}  {'package':<32} licence")
    for name, source in datasets.SOURCES.items():
        on_disk = f"{datasets.cache_size(name, root) / 1e6:.1f} MB" if datasets.cached(name, root) else "no"
        print(
            f"{name:<10} {source.archive_bytes / 1e6:>6.1f} MB {on_disk:>10}  {source.spec:<32} {source.licence}"
        )
        print(f"{'':<10} {source.what}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    names = list(datasets.SOURCES) if args.names == ["all"] else args.names
    for name in names:
        datasets.get_source(name)  # fail on a typo before downloading anything
    for name in names:
        started = time.perf_counter()
        path = datasets.fetch(name, args.cache_dir, progress=not args.quiet)
        seconds = time.perf_counter() - started
        size = datasets.cache_size(name, args.cache_dir) / 1e6
        print(f"{name}: {path} ({size:.1f} MB, {seconds:.1f} s)")
    return 0


def _splits(args: argparse.Namespace) -> int:
    for name in args.names:
        if name == "brown":
            documents = datasets.load_brown(args.cache_dir)
            sentences = sum(len(d.sentences) for d in documents)
            print(f"brown: {len(documents)} documents, {sentences} sentences, "
                  f"{len({d.genre for d in documents})} genres")
            print(f"  split by document: {datasets.split_brown(documents).sizes()}")
        elif name == "brown-pos":
            parts = datasets.brown_pos_splits(args.cache_dir)
            tags = Counter(tag for sentence in parts.train for _word, tag in sentence)
            print(f"brown-pos: {len(tags)} universal tags; sentences split by Brown's documents: {parts.sizes()}")
            print("  train tags: " + ", ".join(f"{tag} {count}" for tag, count in tags.most_common()))
        elif name == "sentiment":
            for subset in datasets.SENTIMENT_SUBSETS:
                data = datasets.load_sentiment(subset, args.cache_dir)
                print(f"sentiment/{subset}: {data.rows} rows, {data.neutral_dropped} neutral dropped, "
                      f"{len(data)} labelled; split: {datasets.split_sentiment(data).sizes()}")
        elif name == "wnut16":
            sentences = datasets.load_wnut16(args.cache_dir)
            print(f"wnut16: {len(sentences)} sentences, {sum(map(len, sentences))} tokens; "
                  f"split: {datasets.split_wnut16(sentences).sizes()}")
        else:
            raise DataError(f"no clean form for {name!r}; choose brown, brown-pos, sentiment or wnut16")
    return 0
