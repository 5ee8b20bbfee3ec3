"""Fuzzing: hypothesis feeds arbitrary bytes to every file reader and arbitrary strings and ids to
the tokenizers. Each must return a result or raise the library's documented error (a
:class:`minirob.errors.MinirobError` subclass: DataError for data files, TokenizerError for
vocabularies, merges and tokenizer input, ConfigError for config.json, CheckpointError for
fairseq's dict.txt) -- never a bare UnicodeDecodeError, KeyError, IndexError, ... and never a hang.

Example counts are bounded (``max_examples`` below) so the file runs in well under a minute; the
total is printed with ``-s``. Byte strategies are biased towards the formats' own characters
(separators, quotes, braces, newlines, BIO tags) so that examples get past the first check.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import tiny_model_dir

from minirob import RobertaConfig, Tokenizer
from minirob.bpe import ByteLevelBPE
from minirob.data import read_text_documents
from minirob.errors import CheckpointError, ConfigError, DataError, TokenizerError
from minirob.fairseq import read_dictionary
from minirob.readers import read_conll, read_table, read_text
from minirob.tokenizer import read_merges, read_vocab

FILES = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXTS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RUN = {"examples": 0}


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return Tokenizer.from_pretrained(tiny_model_dir(tmp_path_factory.mktemp("fuzz") / "model"))


def fed(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def near(*alphabet: str, max_size: int = 400):
    """Bytes built mostly from the format's own pieces, with arbitrary bytes mixed in."""
    pieces = st.one_of(st.sampled_from([a.encode() for a in alphabet]), st.binary(min_size=1, max_size=4),
                       st.text(max_size=6).map(lambda t: t.encode("utf-8", "surrogatepass")))
    return st.lists(pieces, max_size=max_size // 4).map(b"".join) | st.binary(max_size=max_size)


TABLE = near(",", "\t", '"', "\n", "\r\n", "text", "label", "a", "1", " ", "{", "}", ":", '"text"',
             '"label"', "null", "[", "]", "\u2028", "\x00")
CONLL = near(" ", "\t", "\n", "O", "B-PER", "I-PER", "B-LOC", "I-", "-DOCSTART-", "word", "x")
JSONISH = near("{", "}", '"', ":", ",", "0", "1", "-1", "a", "Ġ", "\\u00", "[", "]", "true", "null")
MERGES = near("#version: 0.2\n", " ", "\n", "a", "b", "ab", "Ġ", "\r")
DICT = near(" ", "\n", "1", "42", "<s>", "<pad>", "A", " #fairseq:overwrite", "\t")


@FILES
@given(data=near("\n", "\n\n", "word ", ".", "\r", "\x85", "\u2028"))
def test_text_readers(scratch, data):
    RUN["examples"] += 1
    for read in (lambda p: read_text(p), lambda p: read_text_documents([p])):
        try:
            documents = read(fed(scratch / "text.txt", data))
        except DataError:
            continue
        assert isinstance(documents, list)


@FILES
@given(data=TABLE, fmt=st.sampled_from(["csv", "tsv", "jsonl"]), labelled=st.booleans())
def test_table_reader(scratch, data, fmt, labelled):
    RUN["examples"] += 1
    try:
        rows = read_table(fed(scratch / f"table.{fmt}", data), "text", "label" if labelled else None)
    except DataError:
        return
    assert all(isinstance(row.text, str) and row.text for row in rows)


@FILES
@given(data=CONLL, bio=st.sampled_from(["repair", "strict", "keep"]), tab=st.booleans())
def test_conll_reader(scratch, data, bio, tab):
    RUN["examples"] += 1
    try:
        sentences = read_conll(fed(scratch / "ner.conll", data), separator="\t" if tab else None, bio=bio)
    except DataError:
        return
    assert sentences and all(len(s) > 0 for s in sentences)


@FILES
@given(vocab=JSONISH, merges=MERGES)
def test_vocab_and_merges_files(scratch, vocab, merges):
    RUN["examples"] += 1
    vocab_path, merges_path = fed(scratch / "vocab.json", vocab), fed(scratch / "merges.txt", merges)
    try:
        table = read_vocab(vocab_path)
    except TokenizerError:
        table = {"a": 0, "b": 1, "ab": 2, "Ġ": 3}
    for attempt in (lambda: read_merges(merges_path, table, vocab_path),
                    lambda: Tokenizer.from_vocab_and_merges(vocab_path, merges_path),
                    lambda: ByteLevelBPE.from_files(vocab_path, merges_path)):
        try:
            attempt()
        except TokenizerError:
            pass


@FILES
@given(data=JSONISH | st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(
    st.sampled_from(["model", "version", "type", "vocab", "merges", "pre_tokenizer", "added_tokens"]),
    st.recursive(st.none() | st.integers() | st.text(max_size=5), lambda c: st.lists(c, max_size=3)
                 | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=8))))
def test_tokenizer_json(scratch, data):
    RUN["examples"] += 1
    try:
        Tokenizer.from_pretrained(fed(scratch / "tokenizer.json", data))
    except TokenizerError:
        pass


@FILES
@given(data=JSONISH | st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(
    st.sampled_from(["model_type", "hidden_size", "num_attention_heads", "vocab_size", "id2label",
                     "hidden_act", "max_position_embeddings", "layer_norm_eps", "num_labels"]),
    st.none() | st.integers(-3, 70) | st.floats(allow_nan=True) | st.text(max_size=6)
    | st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2))))
def test_config_json(scratch, data):
    RUN["examples"] += 1
    try:
        RobertaConfig.load(fed(scratch / "config.json", data))
    except ConfigError:
        pass


@FILES
@given(data=DICT)
def test_fairseq_dictionary(scratch, data):
    RUN["examples"] += 1
    try:
        symbols = read_dictionary(fed(scratch / "dict.txt", data))
    except CheckpointError:
        return
    assert symbols[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and symbols[-1] == "<mask>"


# ------------------------------------------------------------------------ the tokenizer itself
@TEXTS
@given(text=st.text(max_size=200), other=st.none() | st.text(max_size=50),
       max_length=st.none() | st.integers(-2, 40))
def test_encode_any_string(tokenizer, text, other, max_length):
    RUN["examples"] += 1
    try:
        encoding = tokenizer.encode(text, other, max_length=max_length)
    except TokenizerError:
        assert max_length is not None and max_length < 8  # too short for the special tokens
        return
    assert all(0 <= i < tokenizer.vocab_size for i in encoding.ids)
    if other is None and max_length is None:  # byte-level BPE loses nothing
        assert tokenizer.decode(encoding.ids) == text


@TEXTS
@given(ids=st.lists(st.integers(-5, 400), max_size=30) | st.lists(st.integers(), max_size=5),
       skip=st.booleans())
def test_decode_any_ids(tokenizer, ids, skip):
    RUN["examples"] += 1
    try:
        text = tokenizer.decode(ids, skip_special_tokens=skip)
    except TokenizerError:
        assert any(not 0 <= i < tokenizer.vocab_size for i in ids)
        return
    assert isinstance(text, str)


@TEXTS
@given(words=st.lists(st.text(max_size=12), max_size=12), max_length=st.none() | st.integers(0, 30))
def test_encode_words_and_batches(tokenizer, words, max_length):
    RUN["examples"] += 1
    for attempt in (lambda: tokenizer.encode_words(words, max_length=max_length),
                    lambda: tokenizer.encode_batch(words, max_length=max_length, padding=True)):
        try:
            attempt()
        except TokenizerError:
            pass


@TEXTS
@given(text=st.text(st.characters(codec="utf-8") | st.characters(categories=["Cs"]), max_size=40))
def test_strings_python_can_hold_but_utf8_cannot(tokenizer, text):
    """Lone surrogates ('\\ud800') exist in Python str but not in UTF-8 (Rust): a TokenizerError."""
    RUN["examples"] += 1
    try:
        tokenizer.encode(text)
    except TokenizerError as error:
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in text), error


@TEXTS
@given(text=st.text(max_size=120))
def test_from_scratch_bpe_round_trips_any_text(tokenizer, text):
    RUN["examples"] += 1
    bpe = ByteLevelBPE(tokenizer.get_vocab(), [])  # no merges: every piece stays bytes
    assert bpe.decode(bpe.encode(text)) == text


def test_report_examples_run():
    print(f"fuzz examples run in this process: {RUN['examples']}")
