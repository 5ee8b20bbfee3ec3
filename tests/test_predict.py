"""Predictions from fine-tuned runs: labels with probabilities, entities with character spans,
the command line (single texts and batch JSONL), and bad input."""

import json

import pytest
from finetune_fixtures import ner_data, sentiment_data, tiny_checkpoint

from minirob.cli import main
from minirob.errors import CheckpointError, InputError, MissingFileError
from minirob.finetune import FinetuneConfig, finetune
from minirob.predict import Predictor, split_words

pytestmark = pytest.mark.xdist_group("finetune-runs")  # one worker trains the module's runs once


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One trained classification run and one trained NER run (tiny, learnable data)."""
    root = tmp_path_factory.mktemp("runs")
    start = tiny_checkpoint(root / "tiny")
    finetune(start, sentiment_data(160, 1), sentiment_data(40, 2), sentiment_data(40, 3),
             FinetuneConfig(task="classify", epochs=6, batch_size=8, lr=2e-3, progress=False),
             root / "clf")
    finetune(start, ner_data(192, 1), ner_data(40, 2), ner_data(40, 3),
             FinetuneConfig(task="ner", epochs=3, batch_size=16, lr=3e-3, progress=False),
             root / "ner")
    return root


def test_split_words_keeps_character_spans():
    text = "@paulwalk It's the Empire State Building = ESB."
    words = split_words(text)
    assert [w for w, _, _ in words] == [
        "@paulwalk", "It's", "the", "Empire", "State", "Building", "=", "ESB", ".",
    ]
    assert all(text[start:end] == word for word, start, end in words)


def test_classification_label_and_probability(runs):
    predictor = Predictor.load(runs / "clf")
    good, bad = predictor.predict(["the film was superb", "a really dull plot"])
    assert good["label"] == "positive" and bad["label"] == "negative"
    for result in (good, bad):
        assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert result["probability"] == max(result["probabilities"].values()) > 0.5


def test_entities_map_back_to_character_spans(runs):
    predictor = Predictor.load(runs / "ner")
    text = "the film was  Alice Bobson and Paris ."
    (result,) = predictor.predict([text])
    found = {(e["type"], e["text"]) for e in result["entities"]}
    assert found == {("PER", "Alice Bobson"), ("LOC", "Paris")}
    for entity in result["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]
        assert 0 < entity["score"] <= 1
    # words 3 and 4 ("Alice Bobson"); the double space before "Alice" is not part of the span
    person = next(e for e in result["entities"] if e["type"] == "PER")
    assert (person["start"], person["end"], person["words"]) == (14, 26, [3, 5])


def test_command_line_single_and_batch(runs, tmp_path, capsys):
    assert main(["predict", str(runs / "clf"), "a wonderful story"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("positive (") and out.strip().endswith(")")
    assert main(["predict", str(runs / "ner"), "Carol went to Oslo"]) == 0
    out = capsys.readouterr().out
    assert "PER" in out and "'Carol'" in out and "[0:5]" in out and "[14:18]" in out
    texts = tmp_path / "texts.txt"
    texts.write_text("a great movie\n\nthe plot was awful\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    assert main(["predict", str(runs / "clf"), "--file", str(texts), "--output", str(output)]) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["text"] for r in rows] == ["a great movie", "the plot was awful"]  # blank skipped
    assert [r["label"] for r in rows] == ["positive", "negative"]


def test_bad_input(runs, tmp_path, capsys):
    predictor = Predictor.load(runs / "ner")
    with pytest.raises(InputError, match="text 2 is empty"):
        predictor.predict(["Bob", "  "])
    with pytest.raises(InputError, match="text 1: the text is empty"):
        Predictor.load(runs / "clf").predict([""])
    assert main(["predict", str(runs / "clf"), ""]) == 1
    assert "empty" in capsys.readouterr().err
    with pytest.raises(MissingFileError, match="no finetune.json"):
        Predictor.load(tmp_path)
    # A run whose label list does not match its head: refuse, naming both counts.
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (broken / name).write_bytes((runs / "clf" / name).read_bytes())
    recipe = json.loads((runs / "clf" / "finetune.json").read_text())
    recipe["labels"] = ["negative", "neutral", "positive"]
    (broken / "finetune.json").write_text(json.dumps(recipe))
    with pytest.raises(CheckpointError, match="2 outputs but finetune.json lists 3 labels"):
        Predictor.load(broken)


def test_overlong_text_is_truncated_with_a_warning(runs, caplog):
    predictor = Predictor.load(runs / "clf")
    (result,) = predictor.predict(["the film was superb " * 40])
    assert result["label"] in ("positive", "negative")
    # the tiny model has 64 positions, so the recipe's 128 was lowered to 64 when training
    assert "1 of 1 input texts were longer than max_length=64" in caplog.text
