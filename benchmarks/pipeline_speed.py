"""Benchmark: minirob's pipelines against transformers' on the same weights, texts in, results out.

    python -m benchmarks.pipeline_speed --reviews 500 --batch-size 32 --threads 2

Three end-to-end runs on the CPU, each library timed from a list of raw texts to its list of
results (the model already loaded), same batch size, same thread count, interleaved (minirob,
transformers, minirob, ...) so that a change in the shared machine's load hits both:

* text classification of the movie-review test split (a BertForSequenceClassification built by
  transformers from all-MiniLM-L6-v2 with a seeded random 2-label head, saved, read by both);
* token classification of the WNUT-16 test split, detokenised (a BertForTokenClassification,
  13 labels, same way), ``aggregation_strategy="simple"`` on both sides;
* sentence embeddings of the review texts: minirob's ``sentence-embedding`` against transformers'
  ``feature-extraction`` pipeline plus the same mean pooling and normalisation.

The agreement is checked on every text: identical labels and entity groups, the largest score
difference, the largest embedding difference. Results: ``benchmarks/results/pipelines.json`` and
``.md``. minirob's advantage comes from sorting texts by length into batches (transformers'
pipeline pads batches in input order) and from no per-text Python post-processing of tensors.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers

import minirob
from minirob import datasets

from .finetune_data import machine_load

RESULTS = Path(__file__).resolve().parent / "results"


def build_models(minilm: Path, root: Path) -> dict[str, Path]:
    """The two task models, built by transformers with seeded random heads, saved with minilm's
    tokenizer files."""
    out = {}
    wnut = sorted({tag for s in datasets.load_wnut16(progress=False) for _, tag in s})
    for name, cls, labels in (("clf", transformers.BertForSequenceClassification, ["negative", "positive"]),
                              ("ner", transformers.BertForTokenClassification, wnut)):
        torch.manual_seed(0)
        model = cls.from_pretrained(str(minilm), num_labels=len(labels),
                                    id2label=dict(enumerate(labels)),
                                    label2id={label: i for i, label in enumerate(labels)})
        directory = root / name
        model.save_pretrained(directory)
        for file in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
            if (minilm / file).exists():
                (directory / file).write_bytes((minilm / file).read_bytes())
        out[name] = directory
    return out


def timed(run, repeats: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return times, result


def compare(name: str, ours, theirs, texts: list[str], repeats: int, agree) -> dict:
    """Interleaved timing of two callables over ``texts``; ``agree(ours, theirs)`` -> checks."""
    mine, reference = [], []
    for _ in range(repeats):
        t, out_ours = timed(lambda: ours(texts), 1)
        mine += t
        t, out_theirs = timed(lambda: theirs(texts), 1)
        reference += t
    minirob_rate = len(texts) / statistics.median(mine)
    transformers_rate = len(texts) / statistics.median(reference)
    row = {"task": name, "texts": len(texts), "minirob_texts_per_s": round(minirob_rate, 1),
           "transformers_texts_per_s": round(transformers_rate, 1),
           "speedup": round(minirob_rate / transformers_rate, 2), **agree(out_ours, out_theirs)}
    print(json.dumps(row), file=sys.stderr)
    return row


def agree_labels(ours, theirs) -> dict:
    return {"identical_labels": [o["label"] for o in ours] == [t["label"] for t in theirs],
            "max_score_difference": max(abs(o["score"] - t["score"]) for o, t in zip(ours, theirs))}


def agree_entities(ours, theirs) -> dict:
    key = lambda groups: [(g["entity_group"], g["start"], g["end"]) for g in groups]  # noqa: E731
    same = all(key(o) == key(t) for o, t in zip(ours, theirs))
    scores = [abs(a["score"] - float(b["score"])) for o, t in zip(ours, theirs) for a, b in zip(o, t)]
    return {"identical_entities": same, "entities": sum(len(o) for o in ours),
            "max_score_difference": max(scores, default=0.0)}


def agree_vectors(ours, theirs) -> dict:
    return {"max_vector_difference": float((ours - theirs).abs().max())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=500, help="movie-review test texts to use")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    minilm = datasets.fetch("minilm", progress=False)
    reviews = [e.text for e in datasets.split_sentiment(datasets.load_sentiment("movie")).test][: args.reviews]
    tweets = [datasets.detokenize([w for w, _ in s])
              for s in datasets.split_wnut16(datasets.load_wnut16(progress=False)).test]
    root = Path(tempfile.mkdtemp(prefix="pipeline-speed-"))
    models = build_models(minilm, root)
    common = dict(device="cpu", batch_size=args.batch_size)

    ours_clf = minirob.pipeline("text-classification", models["clf"], **common)
    theirs_clf = transformers.pipeline("text-classification", model=str(models["clf"]), **common)
    ours_ner = minirob.pipeline("token-classification", models["ner"], **common)
    theirs_ner = transformers.pipeline("token-classification", model=str(models["ner"]),
                                       aggregation_strategy="simple", **common)
    ours_embed = minirob.pipeline("sentence-embedding", minilm, **common)
    theirs_features = transformers.pipeline("feature-extraction", model=str(minilm), **common)

    def theirs_embed(texts):
        # One (1, T, H) tensor per text; with batch_size > 1 transformers returns the *padded*
        # rows too, so each text's mean is taken over its own tokens (right padding).
        states = theirs_features(texts, return_tensors=True)
        lengths = [len(ids) for ids in theirs_features.tokenizer(texts)["input_ids"]]
        means = [s[0, :n].mean(0) for s, n in zip(states, lengths)]
        return torch.nn.functional.normalize(torch.stack(means), dim=-1)

    with torch.inference_mode():
        rows = [
            compare("text-classification (movie reviews)", ours_clf, theirs_clf, reviews,
                    args.repeats, agree_labels),
            compare("token-classification (WNUT-16 test)",
                    lambda t: ours_ner(t, aggregation="simple"), theirs_ner, tweets, args.repeats,
                    agree_entities),
            compare("sentence-embedding (movie reviews)", ours_embed, theirs_embed, reviews,
                    args.repeats, agree_vectors),
        ]
    result = {"rows": rows, "batch_size": args.batch_size, "threads": args.threads,
              "repeats": args.repeats, "transformers": transformers.__version__,
              "torch": torch.__version__, "machine": machine_load(),
              "command": "python -m benchmarks.pipeline_speed " + " ".join(argv or sys.argv[1:])}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipelines.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Pipelines: minirob vs transformers, end to end on the CPU", "",
             f"`{result['command']}`; batch {args.batch_size}, {args.threads} threads, median of "
             f"{args.repeats} interleaved runs; transformers {transformers.__version__}, torch "
             f"{torch.__version__}; 1/5/15-minute load average {result['machine']['loadavg_1_5_15']} "
             f"on {result['machine']['cores']} cores at the end (speed ratios on a busy shared "
             "machine are not the idle-machine result).", "",
             "| task | texts | minirob texts/s | transformers texts/s | speed-up | agreement |",
             "|---|---:|---:|---:|---:|---|"]
    for row in rows:
        checks = ", ".join(f"{k} {v:.1e}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in row.items() if k not in ("task", "texts") and "per_s" not in k
                           and k != "speedup")
        lines.append(f"| {row['task']} | {row['texts']} | {row['minirob_texts_per_s']} | "
                     f"{row['transformers_texts_per_s']} | {row['speedup']}x | {checks} |")
    (RESULTS / "pipelines.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
