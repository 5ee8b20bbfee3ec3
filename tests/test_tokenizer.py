"""minirob.Tokenizer against transformers' RobertaTokenizerFast built from the same files.

Two vocabularies: GPT-2's real one (fetched through ``minirob.datasets.fetch("gpt2-bpe")``) and one
trained here on Brown. The reference is rebuilt by transformers from ``vocab.json`` + ``merges.txt``
alone (never from our tokenizer.json), and every fixture first proves that it really loaded the
vocabulary: transformers 5 silently ignores ``vocab_file=`` in the constructor and then returns
ids from a 5-token vocabulary, which would make every comparison meaningless.
"""

import json
import shutil

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tokenizers import AddedToken
from transformers import AutoTokenizer, RobertaTokenizerFast

from minirob import RobertaConfig, RobertaForMaskedLM, Tokenizer
from minirob.bpe import ByteLevelBPE
from minirob.cli import main as cli_main
from minirob.datasets import fetch, load_brown
from minirob.errors import MinirobError, TokenizerError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Texts: any unicode (emoji, CJK, combining marks, control characters), plus texts assembled from
# pieces that stress pre-tokenisation: runs of spaces, tabs and newlines, contractions, digits,
# and the literal special-token strings (which transformers matches as special tokens).
PIECES = [" ", "  ", "\n", "\n\n", "\t", " \n ", "Hello", "world", "don't", "they're", "42", "3.14",
          "naïve", "café", "日本語", "😀", "👩‍👩‍👧", "\u0301", "!", "...", "<s>", "</s>", "<mask>", "<pad>",
          "Ġ", "\x00", "\u200b", "ß", "İ"]
texts = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(PIECES), max_size=12).map("".join),
)
# Words as a NER data set might hold them, plus the odd ones (empty, whitespace, inner spaces).
words = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), min_size=0, max_size=8)


# roberta-base's <mask> takes the space before it: its tokenizer.json and special_tokens_map say
# lstrip=true, and transformers' RobertaTokenizer applied it by default before version 5. Built from
# bare vocab.json + merges.txt, transformers 5 no longer does, so the reference is told, as
# roberta-base's own files tell it.
ROBERTA_MASK = AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)


def reference_from_files(vocab_json, merges_txt, directory, **kwargs):
    """transformers' tokenizer, built from a directory holding only vocab.json + merges.txt."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(vocab_json, directory / "vocab.json")
    shutil.copy(merges_txt, directory / "merges.txt")
    return RobertaTokenizerFast.from_pretrained(str(directory), mask_token=ROBERTA_MASK, **kwargs)


@pytest.fixture(scope="module")
def gpt2_files():
    entry = fetch("gpt2-bpe", progress=False)
    return entry / "encoder.json", entry / "vocab.bpe"


@pytest.fixture(scope="module")
def gpt2_pair(gpt2_files, tmp_path_factory):
    """(ours, reference, ours with add_prefix_space, reference with it) on GPT-2's files."""
    ours = Tokenizer.from_gpt2_files(*gpt2_files)
    ours_prefix = Tokenizer.from_gpt2_files(*gpt2_files, add_prefix_space=True)
    directory = tmp_path_factory.mktemp("gpt2_reference")
    ref = reference_from_files(*gpt2_files, directory)
    ref_prefix = RobertaTokenizerFast.from_pretrained(str(directory), add_prefix_space=True, mask_token=ROBERTA_MASK)
    # Proof that the reference loaded the real vocabulary: 50,257 GPT-2 tokens + 5 specials, and
    # GPT-2's published id for "Hello" (15496) and " world" (995).
    assert ref.vocab_size == 50257 and len(ref) == 50262
    assert ref.convert_tokens_to_ids("Hello") == 15496
    assert ref("Hello world")["input_ids"] == [ref.cls_token_id, 15496, 995, ref.sep_token_id]
    return ours, ref, ours_prefix, ref_prefix


@pytest.fixture(scope="module")
def brown_texts():
    return [document.text for document in load_brown(progress=False)]


@pytest.fixture(scope="module")
def trained_pair(brown_texts, tmp_path_factory):
    """A 2,000-token vocabulary trained here (Brown plus some non-Latin text), saved, and the
    reference built from the saved vocab.json + merges.txt."""
    corpus = brown_texts[:60] + ["日本語のテキスト 😀😀 naïve café façade"] * 20
    ours = Tokenizer.train(corpus, vocab_size=2000, min_frequency=2)
    saved = ours.save(tmp_path_factory.mktemp("trained"))
    directory = tmp_path_factory.mktemp("trained_reference")
    ref = reference_from_files(saved / "vocab.json", saved / "merges.txt", directory)
    ref_prefix = RobertaTokenizerFast.from_pretrained(str(directory), add_prefix_space=True, mask_token=ROBERTA_MASK)
    assert len(ref) == ours.vocab_size == 2000
    the = ours.token_to_id("Ġthe")
    assert the is not None and the >= 261 and ref.convert_tokens_to_ids("Ġthe") == the
    assert ref(" the")["input_ids"] == [0, the, 2]
    # add_prefix_space given when loading overrides the saved setting.
    ours_prefix = Tokenizer.from_pretrained(saved, add_prefix_space=True)
    return ours, ref, ours_prefix, ref_prefix


@pytest.fixture(params=["gpt2", "trained"])
def pair(request):
    return request.getfixturevalue(f"{request.param}_pair")


def reference(ref, text, other=None, **kwargs):
    """The reference's encoding of one text (or pair), called as a batch of one: transformers'
    single call drops an empty second text (``if text_pair:``), its batch call keeps it, as we do."""
    batch = ref([text], None if other is None else [other], return_offsets_mapping=True, **kwargs)
    return {key: values[0] for key, values in batch.items()} | {"word_ids": batch.word_ids(0)}


def assert_same(ours_encoding, ref_encoding):
    assert ours_encoding.ids == ref_encoding["input_ids"]
    assert ours_encoding.attention_mask == ref_encoding["attention_mask"]
    assert ours_encoding.offsets == [tuple(span) for span in ref_encoding["offset_mapping"]]
    assert ours_encoding.word_ids == ref_encoding["word_ids"]


# ------------------------------------------------------------------------ parity with transformers


def test_special_token_ids():
    """Trained vocabularies put RoBERTa's specials first, as roberta-base's vocab.json does."""
    tok = Tokenizer.train(["some text to learn from"] * 3, vocab_size=300)
    assert [tok.bos_id, tok.pad_id, tok.eos_id, tok.unk_id, tok.mask_id] == [0, 1, 2, 3, 4]
    assert [tok.id_to_token(i) for i in range(5)] == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def test_gpt2_specials_follow_transformers(gpt2_pair):
    ours, ref, _, _ = gpt2_pair
    assert ours.vocab_size == len(ref) == 50262
    assert ours.bos_id == ref.cls_token_id and ours.eos_id == ref.sep_token_id
    assert ours.pad_id == ref.pad_token_id and ours.unk_id == ref.unk_token_id
    assert ours.mask_id == ref.mask_token_id
    assert ours.token_to_id("Hello") == 15496


@SETTINGS
@given(text=texts, other=texts)
@example(text="", other="")
@example(text="   ", other="\n\n\n")
@example(text="Hello <mask>!", other="a</s>b")
def test_single_and_pair_match_transformers(pair, text, other):
    ours, ref, _, _ = pair
    assert_same(ours.encode(text), reference(ref, text))
    assert_same(ours.encode(text, pair=other), reference(ref, text, other))


@SETTINGS
@given(text=texts)
@example(text="Hello world")
def test_add_prefix_space_matches_transformers(pair, text):
    ours, _, prefixed, ref_prefix = pair
    assert prefixed.add_prefix_space and not ours.add_prefix_space
    assert_same(prefixed.encode(text), reference(ref_prefix, text))


@SETTINGS
@given(text=texts, other=texts, max_length=st.integers(5, 24))
def test_truncation_matches_transformers(pair, text, other, max_length):
    ours, ref, _, _ = pair
    expected = reference(ref, text, truncation=True, max_length=max_length)
    assert_same(ours.encode(text, max_length=max_length), expected)
    expected = reference(ref, text, other, truncation=True, max_length=max_length)
    assert_same(ours.encode(text, pair=other, max_length=max_length), expected)


@SETTINGS
@given(batch=st.lists(texts, min_size=1, max_size=5))
def test_padded_batch_matches_transformers(pair, batch):
    ours, ref, _, _ = pair
    got = ours.encode_batch(batch)
    expected = ref(batch, padding=True, return_tensors="pt", return_offsets_mapping=True)
    assert torch.equal(got["input_ids"], expected["input_ids"])
    assert torch.equal(got.attention_mask, expected["attention_mask"])
    assert got.offsets == [[tuple(span) for span in row] for row in expected["offset_mapping"].tolist()]
    assert got.word_ids == [expected.word_ids(i) for i in range(len(batch))]
    assert got.input_ids.dtype == torch.long and got.input_ids.shape == got.attention_mask.shape


@SETTINGS
@given(batch=st.lists(texts, min_size=1, max_size=4), others=st.lists(texts, min_size=4, max_size=4))
def test_padded_pair_batch_with_truncation_matches_transformers(pair, batch, others):
    ours, ref, _, _ = pair
    others = others[: len(batch)]
    got = ours.encode_batch(batch, pairs=others, max_length=12, padding="max_length")
    expected = ref(batch, others, truncation=True, max_length=12, padding="max_length", return_tensors="pt")
    assert got.input_ids.shape == (len(batch), 12)
    assert torch.equal(got.input_ids, expected["input_ids"])
    assert torch.equal(got.attention_mask, expected["attention_mask"])


@SETTINGS
@given(sentence=words)
@example(sentence=["New", "York", "is", "big", "."])
def test_words_match_transformers(pair, sentence):
    ours, _, _, ref_prefix = pair
    assert_same(ours.encode_words(sentence), reference(ref_prefix, sentence, is_split_into_words=True))
    got = ours.encode_words_batch([sentence, ["x"]])
    expected = ref_prefix([sentence, ["x"]], is_split_into_words=True, padding=True, return_tensors="pt")
    assert torch.equal(got.input_ids, expected["input_ids"])
    assert got.word_ids == [expected.word_ids(0), expected.word_ids(1)]


def test_words_truncation_and_word_indices(gpt2_pair):
    """Hand check: word_ids point back into the word list, through truncation."""
    ours, _, _, _ = gpt2_pair
    sentence = ["Tokenization", "is", "fun"]
    encoding = ours.encode_words(sentence)
    assert encoding.tokens[0] == "<s>" and encoding.tokens[-1] == "</s>"
    words_of_tokens = ["".join(t for t, w in zip(encoding.tokens, encoding.word_ids) if w == i) for i in range(3)]
    assert words_of_tokens == ["ĠTokenization", "Ġis", "Ġfun"]
    assert encoding.word_ids[0] is None and encoding.word_ids[-1] is None
    short = ours.encode_words(sentence, max_length=4)
    assert len(short) == 4 and short.ids[-1] == ours.eos_id and short.word_ids[1] == 0


# ------------------------------------------------------------------------ decoding


@SETTINGS
@given(text=texts)
@example(text="")
@example(text=" leading and trailing  \n")
def test_decode_inverts_encode(pair, text):
    ours, ref, _, _ = pair
    plain = ours.encode(text, add_special_tokens=False).ids
    if "<mask>" not in text:  # <mask> takes the space before it, as roberta-base's does
        assert ours.decode(plain, skip_special_tokens=False) == text  # byte-level: exact for any string
    if not any(special in text for special in ("<s>", "</s>", "<pad>", "<mask>", "<unk>")):
        assert ours.decode(ours.encode(text).ids) == text
        assert ours.decode(torch.tensor(ours.encode(text).ids)) == text
    assert ours.decode(ours.encode(text).ids, skip_special_tokens=False) == ref.decode(
        ref(text)["input_ids"], skip_special_tokens=False, clean_up_tokenization_spaces=False
    )


def test_empty_and_unpadded_batches(gpt2_pair):
    ours, _, _, _ = gpt2_pair
    assert ours.encode_batch([]).input_ids.shape == (0, 0)
    assert ours.encode_words_batch([]).attention_mask.shape == (0, 0)
    unpadded = ours.encode_batch(["a", "b c"], padding=False)
    assert unpadded.input_ids == [[ours.bos_id, 64, ours.eos_id], [ours.bos_id, 65, 269, ours.eos_id]]


def test_decode_batch_skips_padding(gpt2_pair):
    ours, _, _, _ = gpt2_pair
    batch = ours.encode_batch(["Hello world", "a"])
    assert batch.input_ids[1, -1].item() == ours.pad_id
    assert ours.decode_batch(batch.input_ids) == ["Hello world", "a"]


# ------------------------------------------------------------------------ save / load


def test_save_and_reload_every_layout(trained_pair, tmp_path):
    ours, _, _, _ = trained_pair
    directory = ours.save(tmp_path / "tok")
    assert sorted(p.name for p in directory.iterdir()) == ["merges.txt", "tokenizer.json", "vocab.json"]
    assert json.loads((directory / "vocab.json").read_text())["<mask>"] == 4
    assert (directory / "merges.txt").read_text().startswith("#version: 0.2\n")
    text = "The jury said 日本語 😀 it's 1961."
    expected = ours.encode(text, pair="and more").ids
    assert Tokenizer.from_pretrained(directory).encode(text, pair="and more").ids == expected
    assert Tokenizer.from_pretrained(directory / "tokenizer.json").encode(text, pair="and more").ids == expected
    (directory / "tokenizer.json").unlink()  # now only roberta-base's layout is left
    assert Tokenizer.from_pretrained(directory).encode(text, pair="and more").ids == expected


def test_gpt2_save_keeps_ids(gpt2_pair, tmp_path):
    """The appended specials are written into vocab.json, so reloading keeps every id."""
    ours, _, _, _ = gpt2_pair
    directory = ours.save(tmp_path / "gpt2")
    (directory / "tokenizer.json").unlink()
    again = Tokenizer.from_pretrained(directory)
    assert again.vocab_size == 50262 and again.mask_id == ours.mask_id
    assert again.encode("Hello <mask>!").ids == ours.encode("Hello <mask>!").ids


def test_tokenizer_json_saved_by_transformers(gpt2_pair, tmp_path):
    """A tokenizer.json written by transformers (not by us) loads and encodes identically."""
    ours, ref, _, _ = gpt2_pair
    ref.save_pretrained(str(tmp_path / "hf"))
    loaded = Tokenizer.from_pretrained(tmp_path / "hf" / "tokenizer.json")
    for text, other in [("Hello <mask> world", "again"), ("  spaced\n\nout ", "😀")]:
        assert loaded.encode(text, pair=other).ids == ours.encode(text, pair=other).ids
        assert loaded.encode(text, pair=other).offsets == ours.encode(text, pair=other).offsets


def test_roberta_style_vocab_keeps_its_special_ids(gpt2_files, tmp_path):
    """roberta-base's layout: <s> <pad> </s> <unk> first, the BPE tokens after, <mask> last.
    Built here from GPT-2's tokens shifted by 4; the ids must be the file's, as in transformers."""
    gpt2_vocab = json.loads(gpt2_files[0].read_text(encoding="utf-8"))
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    vocab.update({token: i + 4 for token, i in gpt2_vocab.items()})
    vocab["<mask>"] = len(vocab)
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    ours = Tokenizer.from_vocab_and_merges(tmp_path / "vocab.json", gpt2_files[1])
    ref = reference_from_files(tmp_path / "vocab.json", gpt2_files[1], tmp_path / "ref")
    assert len(ref) == ours.vocab_size == 50262 and ref.convert_tokens_to_ids("Hello") == 15496 + 4
    assert [ours.bos_id, ours.pad_id, ours.eos_id, ours.unk_id, ours.mask_id] == [0, 1, 2, 3, 50261]
    for text in ["Hello <mask>!", "  two  spaces ", ""]:
        assert_same(ours.encode(text, pair="B"), reference(ref, text, "B"))


def test_gpt2_directory_layout(gpt2_files, gpt2_pair):
    """A directory holding encoder.json + vocab.bpe (the fetch cache) loads as GPT-2's files."""
    ours, _, _, _ = gpt2_pair
    loaded = Tokenizer.from_pretrained(gpt2_files[0].parent)
    assert loaded.encode("Hello world").ids == ours.encode("Hello world").ids


def test_train_from_files_equals_train_from_texts(tmp_path, brown_texts):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(brown_texts[:10]) + "\n", encoding="utf-8")
    from_file = Tokenizer.train([corpus], vocab_size=600)
    from_string_path = Tokenizer.train(str(corpus), vocab_size=600)
    from_lines = Tokenizer.train(iter(corpus.read_text(encoding="utf-8").splitlines()), vocab_size=600)
    assert from_file.vocab_size == 600
    assert from_file.get_vocab() == from_string_path.get_vocab() == from_lines.get_vocab()


def test_bert_wordpiece_tokenizer_json_matches_transformers():
    """Any tokenizer.json loads, here MiniLM's real uncased WordPiece one (the MiniLM checkpoint's
    files): ids, segment ids, offsets and word ids equal transformers' tokenizer for that directory."""
    entry = fetch("minilm", progress=False)
    ours = Tokenizer.from_pretrained(entry / "tokenizer.json")
    ref = AutoTokenizer.from_pretrained(str(entry))
    assert ours.vocab_size == len(ref) == 30522
    assert [ours.bos_id, ours.eos_id, ours.pad_id, ours.unk_id, ours.mask_id] == [101, 102, 0, 100, 103]
    for text, other in [("Hello, World! naïve", "second one"), ("", "x"), ("日本 😀 don't", "")]:
        got = ours.encode(text, pair=other)
        expected = reference(ref, text, other)
        assert_same(got, expected)
        assert got.type_ids == expected["token_type_ids"]
    # The file asks for padding to 128 and truncation; the wrapper drops both, callers choose.
    assert len(ours.encode("short")) == 3
    batch = ours.encode_batch(["a b", "c"], pairs=["d", "e f"])
    assert batch.token_type_ids.tolist() == ref(["a b", "c"], ["d", "e f"], padding=True)["token_type_ids"]
    words = ours.encode_words(["Tokenizers", "split"])
    assert words.word_ids == ref(["Tokenizers", "split"], is_split_into_words=True).word_ids()


# ------------------------------------------------------------------------ bad input


def test_missing_files(tmp_path, gpt2_files):
    with pytest.raises(TokenizerError, match="does not exist.*nowhere"):
        Tokenizer.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="merges file not found.*merges.txt"):
        Tokenizer.from_vocab_and_merges(gpt2_files[0], tmp_path / "merges.txt")
    with pytest.raises(TokenizerError, match="vocabulary file not found"):
        Tokenizer.from_gpt2_files(tmp_path / "encoder.json", gpt2_files[1])
    with pytest.raises(TokenizerError, match="no tokenizer.json, vocab.json"):
        Tokenizer.from_pretrained(tmp_path)
    with pytest.raises(TokenizerError, match="training file not found"):
        Tokenizer.train([tmp_path / "missing.txt"], vocab_size=300)


def test_training_file_not_utf8(tmp_path):
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("fine text\n" * 3, encoding="utf-8")
    bad.write_bytes(b"line one\nline \xff\xfe two\n")
    with pytest.raises(TokenizerError, match=r"bad.txt:2: not UTF-8 text"):
        Tokenizer.train([good, bad], vocab_size=300)


def test_malformed_vocab_names_file_and_line(tmp_path):
    merges = tmp_path / "merges.txt"
    merges.write_text("#version: 0.2\n")
    vocab = tmp_path / "vocab.json"
    vocab.write_text('{\n  "a": 0,\n  "b": 1,\n  "c" 2\n}\n')
    with pytest.raises(TokenizerError, match=r"vocab.json:4: not valid JSON"):
        Tokenizer.from_vocab_and_merges(vocab, merges)
    vocab.write_text('{"a": 0, "b": "one"}')
    with pytest.raises(TokenizerError, match=r"token 'b' has id 'one'"):
        Tokenizer.from_vocab_and_merges(vocab, merges)
    vocab.write_text('{"a": 0, "b": 0}')
    with pytest.raises(TokenizerError, match=r"id 0 is given to both 'a' and 'b'"):
        Tokenizer.from_vocab_and_merges(vocab, merges)
    vocab.write_text('["a", "b"]')
    with pytest.raises(TokenizerError, match="expected a JSON object"):
        Tokenizer.from_vocab_and_merges(vocab, merges)


def test_malformed_merges_names_file_and_line(tmp_path):
    vocab = tmp_path / "vocab.json"
    vocab.write_text(json.dumps({"a": 0, "b": 1, "ab": 2, "c": 3}))
    merges = tmp_path / "merges.txt"
    merges.write_text("#version: 0.2\na b\nabc\n")
    with pytest.raises(TokenizerError, match=r"merges.txt:3: expected two tokens .* 'abc'"):
        Tokenizer.from_vocab_and_merges(vocab, merges)
    merges.write_text("#version: 0.2\na b\nab z\n")
    with pytest.raises(TokenizerError, match=r"merges.txt:3: the merge 'ab z' needs token 'z', which is not in"):
        Tokenizer.from_vocab_and_merges(vocab, merges)
    merges.write_text("a b\nab c\n")  # 'abc' (the merged token) is missing from the vocabulary
    with pytest.raises(TokenizerError, match=r"merges.txt:2: .* needs token 'abc'"):
        Tokenizer.from_vocab_and_merges(vocab, merges)
    merges.write_bytes(b"a b\n\xff\xfe\n")
    with pytest.raises(TokenizerError, match="not UTF-8"):
        Tokenizer.from_vocab_and_merges(vocab, merges)


def test_malformed_tokenizer_json(tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"version": "1.0",\n "model": {\n')
    with pytest.raises(TokenizerError, match=r"tokenizer.json:3: not valid JSON"):
        Tokenizer.from_pretrained(bad)
    bad.write_text('{"version": "1.0"}')
    with pytest.raises(TokenizerError, match="no 'model' entry"):
        Tokenizer.from_pretrained(tmp_path)
    bad.write_text('{"version": "1.0", "model": {"type": "Nonsense"}}')
    with pytest.raises(TokenizerError, match="cannot read it"):
        Tokenizer.from_pretrained(bad)


def test_text_that_is_not_a_string(gpt2_pair):
    ours, _, _, _ = gpt2_pair
    for call, message in [
        (lambda: ours.encode(42), "text must be a str, got int"),
        (lambda: ours.encode(b"bytes"), "text must be a str, got bytes"),
        (lambda: ours.encode("ok", pair=["list"]), "pair must be a str, got list"),
        (lambda: ours.encode_batch(["ok", None]), r"texts\[1\] must be a str, got NoneType"),
        (lambda: ours.encode_batch("not a list"), "texts must be a list of str"),
        (lambda: ours.encode_batch(["a"], pairs=["b", "c"]), "1 texts but 2 pairs"),
        (lambda: ours.encode_words(["fine", 3.5]), r"words\[1\] must be a str, got float"),
        (lambda: ours.encode_words_batch([["a"], "b c"]), r"sentences\[1\] must be a list of str"),
        (lambda: ours.tokenize(None), "text must be a str"),
        (lambda: Tokenizer.train(["fine", 7], vocab_size=300), "training text #1 must be a str"),
        (lambda: Tokenizer.train(["text"], vocab_size=100), "vocab_size=100 is out of range: a byte-level BPE needs at least 261"),
        (lambda: ours.decode([15496, 50262]), r"token id 50262 is not in the vocabulary \(ids 0..50261\)"),
        (lambda: ours.decode([-1]), "token id -1"),
        (lambda: ours.encode_batch(["a"], padding="sideways"), "padding='sideways'"),
        (lambda: ours.encode_batch(["a"], padding="max_length"), "needs max_length"),
    ]:
        with pytest.raises(TokenizerError, match=message):
            call()


def test_max_length_too_small(gpt2_pair):
    ours, _, _, _ = gpt2_pair
    assert len(ours.encode("Hello world", max_length=3)) == 3  # <s> Hello </s>: smallest that fits
    with pytest.raises(TokenizerError, match="max_length=2 is too small.*single text take 2"):
        ours.encode("Hello world", max_length=2)
    with pytest.raises(TokenizerError, match="max_length=4 is too small.*pair take 4"):
        ours.encode("Hello", pair="world", max_length=4)
    with pytest.raises(TokenizerError, match="max_length=0"):
        ours.encode_batch(["Hello"], max_length=0)
    with pytest.raises(TokenizerError, match="max_length=1"):
        ours.encode_words(["Hello"], max_length=1)
    with pytest.raises(TokenizerError, match="max_length must be an int"):
        ours.encode("Hello", max_length=3.0)
    # A failed call leaves no truncation behind.
    assert len(ours.encode("Hello world again")) == 5


# ------------------------------------------------------------------------ transformers' conventions

# transformers' own fill-mask test for roberta-base reads the mask at index 6 of this sentence
# (<s> The Ġgoal Ġof Ġlife Ġis <mask> . </s>): the mask takes the space before it.
GOAL = "The goal of life is <mask>."
MASK_SENTENCES = [GOAL, "Paris is the <mask> of France.", "<mask> starts here", "two  <mask>  spaces",
                  "tab\t<mask>", "new\n<mask> line", "a<mask>b", "<mask><mask> and <mask>.", "no mask at all"]


def test_mask_takes_the_space_before_it_in_every_tokenizer(gpt2_pair, trained_pair, gpt2_files, tmp_path):
    """Trained, from vocab.json + merges.txt, from GPT-2's files: <mask> at index 6 of the published
    example, and ids equal to RobertaTokenizerFast's (mask lstrip, as roberta-base's files say)."""
    trained, trained_ref, _, _ = trained_pair
    gpt2, gpt2_ref, _, _ = gpt2_pair
    saved = trained.save(tmp_path / "saved")
    (saved / "tokenizer.json").unlink()  # reload from vocab.json + merges.txt alone
    from_files = Tokenizer.from_pretrained(saved)
    for ours, ref in [(trained, trained_ref), (from_files, trained_ref), (gpt2, gpt2_ref)]:
        encoding = ours.encode(GOAL)
        words_before = ours.encode("The goal of life is", add_special_tokens=False).ids
        assert encoding.ids.index(ours.mask_token_id) == 1 + len(words_before)  # no lone "Ġ" first
        at = encoding.ids.index(ours.mask_token_id)
        assert encoding.offsets[at] == (GOAL.index("<mask>"), GOAL.index("<mask>") + 6)
        for text in MASK_SENTENCES:
            assert ours.encode(text).ids == ref(text)["input_ids"], text
        assert ours(MASK_SENTENCES)["input_ids"] == ref(MASK_SENTENCES, padding=True)["input_ids"]
    assert gpt2.encode(GOAL).ids.index(gpt2.mask_token_id) == 6  # GPT-2's (roberta-base's) merges


def tiny_model_for(tokenizer, max_position_embeddings=130):
    config = RobertaConfig.tiny(vocab_size=tokenizer.vocab_size, max_position_embeddings=max_position_embeddings)
    torch.manual_seed(0)
    return RobertaForMaskedLM(config).eval(), config


def test_call_gives_a_batch_the_model_takes(trained_pair):
    """tok(texts, padding=True, truncation=True, return_tensors="pt") -> model(**batch) runs; the
    keys are the model's inputs only, the per-token extras stay readable by name."""
    tok, ref, _, _ = trained_pair
    model, _ = tiny_model_for(tok)
    texts = ["A short one.", "A somewhat longer sentence, with a comma."]
    batch = tok(texts, padding=True, truncation=True, max_length=None, return_tensors="pt")
    assert list(batch) == ["input_ids", "attention_mask"]
    expected = ref(texts, padding=True, truncation=True, return_tensors="pt")
    assert torch.equal(batch["input_ids"], expected["input_ids"])
    assert torch.equal(batch["attention_mask"], expected["attention_mask"])
    assert batch.word_ids[0][1] == 0 and len(batch["offsets"]) == 2  # extras by name
    with torch.no_grad():
        logits = model(**batch)
    assert logits.shape == (2, batch["input_ids"].shape[1], tok.vocab_size)
    assert batch.to("cpu") is batch
    # One text as a string: lists of that text (transformers' shape), or a (1, T) tensor.
    single = tok("A short one.")
    assert single["input_ids"] == ref("A short one.")["input_ids"]
    assert tok("A short one.", return_tensors="pt")["input_ids"].shape == (1, len(single["input_ids"]))
    with pytest.raises(TokenizerError, match="return_tensors='np'"):
        tok("x", return_tensors="np")


def test_call_adds_token_type_ids_for_bert_tokenizers():
    """A BERT-style tokenizer (MiniLM's tokenizer.json) also returns token_type_ids, as transformers'."""
    entry = fetch("minilm", progress=False)
    ours = Tokenizer.from_pretrained(entry)
    ref = AutoTokenizer.from_pretrained(str(entry))
    batch = ours(["first text", "second"], ["pair a", "pair b b"], return_tensors="pt")
    expected = ref(["first text", "second"], ["pair a", "pair b b"], padding=True, return_tensors="pt")
    assert sorted(batch) == sorted(expected) == ["attention_mask", "input_ids", "token_type_ids"]
    for key in expected:
        assert torch.equal(batch[key], expected[key]), key
    assert ours.model_max_length == 512  # MiniLM's tokenizer_config.json


def test_default_truncation_to_the_models_length(trained_pair, tmp_path):
    """A 1,003-token text does not fail at the model: the tokenizer saved with a model reads the
    model's length from config.json (tiny: 130 positions = 128 tokens) and cuts to it."""
    tok, _, _, _ = trained_pair
    model, config = tiny_model_for(tok)
    run = tok.save(tmp_path / "run")
    config.save(run / "config.json")
    loaded = Tokenizer.from_pretrained(run)
    assert tok.model_max_length is None and loaded.model_max_length == 128
    long_text = "word" + " word" * 999  # the first "word" takes 2 tokens here, each " word" 1
    assert len(loaded.encode(long_text)) == 1003
    batch = loaded([long_text, "short"], return_tensors="pt")
    assert batch["input_ids"].shape == (2, 128) and batch["input_ids"][0, -1] == loaded.eos_id
    with torch.no_grad():
        model(**batch)
    assert loaded(long_text, max_length=20)["input_ids"].__len__() == 20
    assert len(loaded(long_text, truncation=False)["input_ids"]) == 1003
    assert len(tok(long_text)["input_ids"]) == 512  # no model known: RoBERTa's 512
    # Saved with a length, the tokenizer writes tokenizer_config.json, which wins over config.json.
    loaded.model_max_length = 64
    again = Tokenizer.from_pretrained(loaded.save(tmp_path / "run2"))
    assert json.loads((tmp_path / "run2" / "tokenizer_config.json").read_text()) == {"model_max_length": 64}
    assert again.model_max_length == 64


def test_special_token_names_like_transformers(gpt2_pair, tmp_path):
    """mask_token(_id) and friends; None when the vocabulary has no such token, and an error that
    says so where a mask is needed (a WordLevel tokenizer.json without <mask>)."""
    ours, ref, _, _ = gpt2_pair
    assert (ours.mask_token, ours.mask_token_id) == (ref.mask_token, ref.mask_token_id)
    assert (ours.pad_token, ours.pad_token_id) == (ref.pad_token, ref.pad_token_id)
    assert ours.require_mask_token() == "<mask>"
    spec = {
        "version": "1.0", "added_tokens": [], "normalizer": None, "post_processor": None, "decoder": None,
        "pre_tokenizer": {"type": "Whitespace"},
        "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "hello": 1, "world": 2}, "unk_token": "[UNK]"},
    }  # fmt: skip
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    word_level = Tokenizer.from_pretrained(tmp_path)
    assert word_level.encode("hello world").ids == [1, 2]
    assert word_level.mask_token is None and word_level.mask_token_id is None and word_level.pad_token_id is None
    with pytest.raises(TokenizerError, match=r"no mask token \(<mask> or \[MASK\]\).*\['\[UNK\]'\]"):
        word_level.require_mask_token()


# ------------------------------------------------------------------------ crafted files


def test_crafted_vocabulary_files_are_one_line_errors(tmp_path, gpt2_files):
    """Issue 19's files: an id of 2**40, JSON nested 100,000 deep (vocab.json and tokenizer.json);
    each a TokenizerError naming the file, never a RecursionError or a Rust abort."""
    merges = tmp_path / "merges.txt"
    merges.write_text("#version: 0.2\n")
    vocab = tmp_path / "vocab.json"
    vocab.write_text(json.dumps({"a": 0, "b": 2**40}))
    with pytest.raises(TokenizerError, match=r"vocab.json: token 'b' has id 1099511627776, but the file holds 2 tokens"):
        Tokenizer.from_vocab_and_merges(vocab, merges)
    with pytest.raises(TokenizerError, match="ids must run from 0 to 1"):
        ByteLevelBPE.from_files(vocab, merges)  # the from-scratch BPE reads through the same checks
    deep = "[" * 100_000 + "]" * 100_000
    vocab.write_text(deep)
    with pytest.raises(TokenizerError, match=r"vocab.json: JSON nested too deeply"):
        Tokenizer.from_vocab_and_merges(vocab, merges)
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "tokenizer.json").write_text('{"model": ' + deep + "}")
    with pytest.raises(TokenizerError, match=r"tokenizer.json: JSON nested too deeply"):
        Tokenizer.from_pretrained(tmp_path / "tok")
    # 500 deep passes Python's parser; the Rust reader refuses it (its own limit), still one line.
    (tmp_path / "tok" / "tokenizer.json").write_text('{"model": ' + "[" * 500 + "]" * 500 + "}")
    with pytest.raises(TokenizerError, match=r"tokenizer.json: "):
        Tokenizer.from_pretrained(tmp_path / "tok")


def test_train_refuses_an_absurd_vocabulary_size(tmp_path, capsys):
    """--vocab-size 1000000000 aborted the process inside the tokenizers library; now the library
    call and the option are refused first, naming the bounds."""
    with pytest.raises(TokenizerError, match=r"vocab_size=1000000000 is out of range.*at most 1,048,576"):
        Tokenizer.train(["text"], vocab_size=1_000_000_000)
    with pytest.raises(TokenizerError, match="vocab_size=True"):
        Tokenizer.train(["text"], vocab_size=True)
    corpus = tmp_path / "c.txt"
    corpus.write_text("text\n")
    for value in ("1000000000", "nan", "-5", "260"):
        with pytest.raises(SystemExit) as exit:
            cli_main(["tokenize", "train", str(corpus), "--vocab-size", value, "--out", str(tmp_path / "o")])
        assert exit.value.code == 2
        assert f"argument --vocab-size: must be an integer >= 261 and <= 1048576, got '{value}'" in capsys.readouterr().err
    for option in ("--rounds", "--every"):
        with pytest.raises(SystemExit):
            cli_main(["tokenize", "speed", option, "0"])
        assert f"argument {option}: must be an integer >= 1, got '0'" in capsys.readouterr().err


# ------------------------------------------------------------------------ command line


def test_cli_train_and_show(tmp_path, capsys, brown_texts):
    corpus = tmp_path / "brown.txt"
    corpus.write_text("\n".join(brown_texts[:20]), encoding="utf-8")
    out = tmp_path / "tok"
    assert cli_main(["tokenize", "train", str(corpus), "--vocab-size", "700", "--out", str(out)]) == 0
    tok = Tokenizer.from_pretrained(out)
    assert tok.vocab_size == 700
    capsys.readouterr()
    assert cli_main(["tokenize", "show", str(out), "The jury said it."]) == 0
    printed = capsys.readouterr().out
    encoding = tok.encode("The jury said it.")
    assert printed.splitlines()[-1] == "ids: " + " ".join(map(str, encoding.ids))
    for token in encoding.tokens:
        assert f" {token} " in printed


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert cli_main(["tokenize", "show", str(tmp_path / "none"), "x"]) == 1
    assert cli_main(["tokenize", "train", str(tmp_path / "no.txt"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("minirob tokenize: error:") for line in err)
    assert "Traceback" not in "".join(err)


def test_errors_are_minirob_errors():
    assert issubclass(TokenizerError, MinirobError) and issubclass(TokenizerError, ValueError)
