"""minirob.pipeline against transformers.pipeline on the same saved weights, every model source,
and bad input.

The reference is transformers itself: small random models are built with transformers' own
classes (RobertaFor*, BertFor*), saved, and both libraries' pipelines run on the same directory.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import torch
import transformers
from finetune_fixtures import ner_data, sentiment_data, tiny_checkpoint
from tokenizers import Regex, models, pre_tokenizers, processors

import minirob
from minirob.datasets import fetch
from minirob.errors import ConfigError, InputError, MissingFileError
from minirob.fairseq import read_dictionary
from minirob.finetune import FinetuneConfig, FinetuneLoop, finetune
from minirob.pipelines import group_entities
from minirob.predict import Predictor

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
TEXTS = ["the film was good", "Alice and Bob went to Paris", "a dull plot",
         "Carol saw London and Berlin with Daveson and the story was really quite superb"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("base"))


def _save_hf(model, base, directory):
    """Save a transformers model with the fixture's tokenizer files next to it."""
    model.save_pretrained(directory)
    for name in ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"):
        if (base / name).exists():
            shutil.copy(base / name, directory / name)
    return directory


def _hf_config(base, **extra):
    config = transformers.RobertaConfig.from_pretrained(base)
    for key, value in extra.items():
        setattr(config, key, value)
    return config


@pytest.fixture(scope="module")
def hf_dirs(base, tmp_path_factory):
    """A random RoBERTa sequence classifier, token classifier and MLM, built by transformers.
    The heads are scaled up so that labels differ between texts (random heads are near-uniform)."""
    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    labels3 = {0: "negative", 1: "neutral", 2: "positive"}
    clf = transformers.RobertaForSequenceClassification(
        _hf_config(base, num_labels=3, id2label=labels3, label2id={v: k for k, v in labels3.items()}))
    tagger = transformers.RobertaForTokenClassification(
        _hf_config(base, num_labels=5, id2label=dict(enumerate(LABELS)),
                   label2id={v: k for k, v in enumerate(LABELS)}))
    mlm = transformers.RobertaForMaskedLM(_hf_config(base))
    with torch.no_grad():
        clf.classifier.out_proj.weight.mul_(30)
        # Random encoders give every text nearly the same <s> state: centre the logits on these
        # texts so that the best label differs between them.
        tokenizer = minirob.Tokenizer.from_pretrained(base)
        logits = torch.cat([clf(torch.tensor([tokenizer.encode(t).ids])).logits for t in TEXTS])
        clf.classifier.out_proj.bias.sub_(logits.mean(0))
        tagger.classifier.weight.mul_(100)
        # Special tokens are never fill-mask candidates in minirob; keep them out of the top-k in
        # transformers too, so the two lists can be compared.
        mlm.lm_head.bias[:5] = -1e4
    return {"clf": _save_hf(clf, base, root / "clf"), "tagger": _save_hf(tagger, base, root / "tagger"),
            "mlm": _save_hf(mlm, base, root / "mlm")}


# ------------------------------------------------------------------ parity with transformers


def test_text_classification_matches_transformers(hf_dirs):
    ours = minirob.pipeline("text-classification", hf_dirs["clf"], batch_size=2)(TEXTS)
    theirs = transformers.pipeline("text-classification", model=str(hf_dirs["clf"]), device="cpu")(TEXTS)
    assert [o["label"] for o in ours] == [t["label"] for t in theirs]
    assert len({o["label"] for o in ours}) > 1  # the comparison is not trivially one label
    for o, t in zip(ours, theirs):
        assert abs(o["score"] - t["score"]) < 1e-5
    single = minirob.pipeline("sentiment-analysis", hf_dirs["clf"])(TEXTS[0])
    assert single == [ours[0]] or abs(single[0]["score"] - ours[0]["score"]) < 1e-6


def test_token_classification_matches_transformers(hf_dirs):
    """Token by token ("simple") the two libraries agree exactly. minirob's default ("first")
    reads each word at its first token with the word encoded as training encodes it (with a
    leading space, transformers' is_split_into_words), so on a byte-level vocabulary its first
    word differs from transformers' "first", which encodes the raw text: checked against
    minirob's Predictor instead."""
    ours = minirob.pipeline("token-classification", hf_dirs["tagger"])(TEXTS, aggregation="simple")
    theirs = transformers.pipeline("token-classification", model=str(hf_dirs["tagger"]),
                                   aggregation_strategy="simple", device="cpu")(TEXTS)
    assert sum(len(row) for row in ours) > 3
    for text, mine, ref in zip(TEXTS, ours, theirs):
        assert [(e["entity_group"], e["start"], e["end"]) for e in mine] == \
               [(e["entity_group"], e["start"], e["end"]) for e in ref]
        for e, r in zip(mine, ref):
            assert abs(e["score"] - float(r["score"])) < 1e-5
            # transformers re-decodes the tokens (a byte-level word keeps its leading space);
            # minirob's word is the text the span covers.
            assert e["word"] == text[e["start"]:e["end"]] == r["word"].strip()
    words = minirob.pipeline("ner", hf_dirs["tagger"])(TEXTS)
    predicted = Predictor.load(hf_dirs["tagger"]).predict(TEXTS)
    for mine, ref in zip(words, predicted):
        assert [(e["entity_group"], e["start"], e["end"]) for e in mine] == \
               [(e["type"], e["start"], e["end"]) for e in ref["entities"]]


def test_fill_mask_matches_transformers(hf_dirs):
    text = "the film was <mask> and the story was good"
    ours = minirob.pipeline("fill-mask", hf_dirs["mlm"])(text, top_k=4)
    theirs = transformers.pipeline("fill-mask", model=str(hf_dirs["mlm"]), device="cpu")(text, top_k=4)
    assert [o["token"] for o in ours] == [t["token"] for t in theirs]
    assert [o["sequence"] for o in ours] == [t["sequence"] for t in theirs]
    assert [o["token_str"] for o in ours] == [t["token_str"] for t in theirs]
    for o, t in zip(ours, theirs):
        assert abs(o["score"] - t["score"]) < 1e-5
    two = minirob.pipeline("fill-mask", hf_dirs["mlm"])(["a <mask> film", "the <mask> <mask>"], top_k=2)
    assert len(two[0]) == 2 and len(two[1]) == 2 and len(two[1][0]) == 2  # one list per mask


def test_feature_extraction_and_sentence_embedding_match_transformers(hf_dirs):
    ours = minirob.pipeline("feature-extraction", hf_dirs["mlm"])(TEXTS, return_tensors=True)
    theirs = transformers.pipeline("feature-extraction", model=str(hf_dirs["mlm"]), device="cpu")(
        TEXTS, return_tensors=True)
    for o, t in zip(ours, theirs):
        assert o.shape == t.shape and (o - t).abs().max() < 1e-5
    embed = minirob.pipeline("sentence-embedding", hf_dirs["mlm"])
    vectors = embed(TEXTS)  # (N, H), the normalised token mean
    for v, t in zip(vectors, theirs):
        reference = t[0].mean(0)
        assert torch.allclose(v, reference / reference.norm(), atol=1e-5)
    assert abs(embed.similarity(TEXTS[0], TEXTS[1]) - float(vectors[0] @ vectors[1])) < 1e-5
    assert embed.similarity(TEXTS[:2], TEXTS).shape == (2, 4)
    first = minirob.pipeline("sentence-embedding", hf_dirs["mlm"], pooling="first", normalize=False)
    assert torch.allclose(first(TEXTS[0]), theirs[0][0, 0], atol=1e-5)


def test_bert_family_fill_mask_and_classifier():
    """MiniLM's real WordPiece vocabulary: [MASK] is the mask token; a BERT classifier built by
    transformers keeps its trained head (pooler + Linear) in minirob."""
    minilm = fetch("minilm", progress=False)
    tokenizer = minirob.Tokenizer.from_pretrained(minilm)
    config = transformers.BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(1)
    bert = transformers.BertForSequenceClassification(config).eval()
    with torch.no_grad():
        bert.classifier.weight.mul_(50)
    clf = minirob.pipeline("text-classification", _bert_dir(bert, minilm))
    texts = ["a gorgeous film", "a dull, long mess"]
    theirs = transformers.pipeline("text-classification", model=str(clf.loaded.source), device="cpu")(texts)
    for o, t in zip(clf(texts), theirs):
        assert o["label"] == t["label"] and abs(o["score"] - t["score"]) < 1e-5

    mlm = transformers.BertForMaskedLM(config).eval()
    directory = _bert_dir(mlm, minilm, "mlm")
    fill = minirob.pipeline("fill-mask", directory)
    assert fill.mask_token == "[MASK]"
    answers = fill("paris is the [MASK] of france.", top_k=3)
    reference = transformers.pipeline("fill-mask", model=str(directory), device="cpu")(
        "paris is the [MASK] of france.", top_k=8)
    special = {0, 100, 101, 102, 103}  # [PAD] [UNK] [CLS] [SEP] [MASK]: never minirob candidates
    assert [a["token"] for a in answers] == [r["token"] for r in reference if r["token"] not in special][:3]
    with pytest.raises(InputError, match=r"no \[MASK\]"):
        fill("paris is the <mask> of france.")


def _bert_dir(model, minilm, name="clf"):
    directory = Path(tempfile.mkdtemp(prefix=f"bert-{name}-"))
    model.save_pretrained(directory)
    for file in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (minilm / file).exists():
            shutil.copy(minilm / file, directory / file)
    return directory


# ------------------------------------------------------------------ every model source


@pytest.fixture(scope="module")
def runs(base, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    quick = FinetuneLoop(epochs=2, lr=2e-3, progress=False)
    finetune(base, sentiment_data(80, 1), sentiment_data(20, 2), sentiment_data(20, 3),
             FinetuneConfig(task="classify", batch_size=8, train=quick), root / "clf")
    finetune(base, ner_data(80, 1), ner_data(20, 2), ner_data(20, 3),
             FinetuneConfig(task="ner", batch_size=8, train=quick), root / "ner")
    return root


def test_sources_fine_tuned_runs_pretrained_run_and_built_model(runs, base):
    clf = minirob.pipeline("text-classification", runs / "clf")
    assert clf("the film was good")[0]["label"] in ("negative", "positive")
    tags = minirob.pipeline("ner", runs / "ner")(["Alice went to Paris", "the film"])
    assert all({"entity_group", "score", "word", "start", "end"} >= set(e) for row in tags for e in row)
    # a minirob pretrained run (an MLM with its tokenizer): fill-mask and features
    assert len(minirob.pipeline("fill-mask", base)("the <mask> was good")) == 5
    assert minirob.pipeline("sentence-embedding", runs / "clf")("a film").shape == (32,)
    # an already-built model and its tokenizer
    model = minirob.RobertaForMaskedLM.from_pretrained(base)
    tokenizer = minirob.Tokenizer.from_pretrained(base)
    built = minirob.pipeline("fill-mask", model, tokenizer=tokenizer)("the <mask> was good", top_k=2)
    assert built == minirob.pipeline("fill-mask", (model, tokenizer))("the <mask> was good", top_k=2)
    # results come back in input order whatever the length grouping did
    texts = ["a", "the film was really quite good and the story was superb", "bad"]
    one_by_one = [clf(t)[0] for t in texts]
    together = minirob.pipeline("text-classification", runs / "clf", batch_size=2)(texts)
    assert [r["label"] for r in together] == [r["label"] for r in one_by_one]
    assert all(abs(a["score"] - b["score"]) < 1e-5 for a, b in zip(together, one_by_one))


def _residue_tokenizer(symbols):
    """A minirob Tokenizer over sapiens' residue vocabulary: one token per letter."""
    import tokenizers

    backend = tokenizers.Tokenizer(models.WordLevel({s: i for i, s in enumerate(symbols)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), "isolated")
    backend.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", symbols.index("<s>")), ("</s>", symbols.index("</s>"))])
    return minirob.Tokenizer(backend)


def test_fairseq_checkpoint_source():
    sapiens = fetch("sapiens", progress=False)
    tokenizer = _residue_tokenizer(read_dictionary(sapiens / "dict.txt"))
    heavy = "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSR"
    fill = minirob.pipeline("fill-mask", sapiens / "checkpoint_vh.pt", tokenizer=tokenizer)
    masked = heavy[:20] + "<mask>" + heavy[21:]
    best = fill(masked, top_k=1)[0]
    model = minirob.RobertaForMaskedLM.from_pretrained(sapiens / "checkpoint_vh.pt").eval()
    ids = torch.tensor([tokenizer.encode(masked).ids])
    with torch.no_grad():
        logits = model(ids)[0, 21]  # <s> + 20 residues, then the mask
    logits[[0, 1, 2, 3, tokenizer.mask_id]] = float("-inf")
    assert best["token"] == int(logits.argmax())
    assert best["token_str"] == heavy[20]  # the model recovers this residue


# ------------------------------------------------------------------ grouping and bad input


def test_grouping_follows_bio():
    text = "New York and Paris"
    items = [{"label": "B-LOC", "score": 0.9, "start": 0, "end": 3},
             {"label": "I-LOC", "score": 0.7, "start": 4, "end": 8},
             {"label": "O", "score": 0.99, "start": 9, "end": 12},
             {"label": "B-LOC", "score": 0.5, "start": 13, "end": 18}]
    groups = group_entities(items, text)
    assert [(g["entity_group"], g["word"], g["start"], g["end"]) for g in groups] == \
           [("LOC", "New York", 0, 8), ("LOC", "Paris", 13, 18)]
    assert abs(groups[0]["score"] - 0.8) < 1e-9


def test_bad_input(hf_dirs, runs, base, tmp_path):
    clf = minirob.pipeline("text-classification", hf_dirs["clf"])
    with pytest.raises(InputError, match="empty list"):
        clf([])
    with pytest.raises(InputError, match=r"texts\[1\] is a int"):
        clf(["fine", 3])
    (tmp_path / "empty").mkdir()
    shutil.copy(base / "config.json", tmp_path / "empty" / "config.json")
    with pytest.raises(MissingFileError, match="no weights"):
        minirob.pipeline("feature-extraction", tmp_path / "empty")
    with pytest.raises(ConfigError, match="no trained masked-LM head.*RobertaForSequenceClassification"):
        minirob.pipeline("fill-mask", hf_dirs["clf"])
    with pytest.raises(ConfigError, match="no trained sequence classification head"):
        minirob.pipeline("text-classification", base)
    with pytest.raises(ConfigError, match="fine-tuned ner run"):
        minirob.pipeline("text-classification", runs / "ner")
    with pytest.raises(ConfigError, match="not one of"):
        minirob.pipeline("summarization", base)
    with pytest.raises(MissingFileError, match="not a known registry name"):
        minirob.pipeline("fill-mask", tmp_path / "nowhere")
    with pytest.raises(InputError, match="no <mask>"):
        minirob.pipeline("fill-mask", base)("no blank here")


def test_long_inputs_are_truncated_with_a_count(hf_dirs, caplog):
    long = " ".join(["good"] * 200)  # the fixture model has 64 positions
    with caplog.at_level("WARNING"):
        result = minirob.pipeline("text-classification", hf_dirs["clf"])([long, "good"])
    assert len(result) == 2 and "1 of 2 input texts were longer" in caplog.text


def test_docs_examples():
    """The outputs quoted in docs/pipelines.md come from here (doctest on the file, minilm)."""
    import doctest

    fetch("minilm", progress=False)
    path = Path(__file__).resolve().parent.parent / "docs" / "pipelines.md"
    result = doctest.testfile(str(path), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10 and result.failed == 0
