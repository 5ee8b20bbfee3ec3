"""Predictions from fine-tuned runs: labels with probabilities, entities with character spans,
the command line (single texts and batch JSONL), and bad input."""

import json

import pytest
from finetune_fixtures import ner_data, pos_data, sentiment_data, tiny_checkpoint

from minirob.cli import main
from minirob.errors import CheckpointError, InputError, MissingFileError
from minirob.finetune import FinetuneConfig, FinetuneLoop, finetune
from minirob.predict import Predictor, split_words

pytestmark = pytest.mark.xdist_group("finetune-runs")  # one worker trains the module's runs once


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One trained classification run and one trained NER run (tiny, learnable data)."""
    root = tmp_path_factory.mktemp("runs")
    start = tiny_checkpoint(root / "tiny")
    finetune(start, sentiment_data(160, 1), sentiment_data(40, 2), sentiment_data(40, 3),
             FinetuneConfig(task="classify", batch_size=8, train=FinetuneLoop(epochs=6, lr=2e-3, progress=False)),
             root / "clf")
    finetune(start, ner_data(192, 1), ner_data(40, 2), ner_data(40, 3),
             FinetuneConfig(task="ner", batch_size=16, train=FinetuneLoop(epochs=3, lr=3e-3, progress=False)),
             root / "ner")
    finetune(start, pos_data(160, 1), pos_data(40, 2), pos_data(40, 3),
             FinetuneConfig(task="pos", batch_size=16, train=FinetuneLoop(epochs=4, lr=3e-3, progress=False)),
             root / "pos")
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


# ------------------------------------------------------------------ POS, evaluate --data, embed


def write_conll(path, sentences):
    path.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in zip(s.words, s.tags))
                                for s in sentences) + "\n", encoding="utf-8")
    return path


def test_pos_run_reports_per_tag_accuracy_and_tags_words(runs, capsys):
    report = json.loads((runs / "pos" / "report.json").read_text())
    test = report["test"]
    assert test["accuracy"] > 0.9  # every word has one tag: learnable
    assert set(test["per_tag_accuracy"]) == {"ADJ", "ADV", "CONJ", "DET", "NOUN", "VERB"}
    assert len(test["confusion_matrix"]) == 6 and (runs / "pos" / "confusion_matrix.png").is_file()
    result = Predictor.load(runs / "pos").predict("the film was good")  # a bare string
    assert result["tags"] == ["DET", "NOUN", "VERB", "ADJ"]
    assert main(["predict", str(runs / "pos"), "the plot was dull"]) == 0
    assert "plot/NOUN" in capsys.readouterr().out


def test_evaluate_scores_a_run_on_a_labelled_file(runs, tmp_path, capsys):
    data = write_conll(tmp_path / "pos.conll", pos_data(30, 7))
    assert main(["evaluate", str(runs / "pos"), "--data", str(data), "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "pos" and report["accuracy"] > 0.9 and "per_tag_accuracy" in report
    ner_file = write_conll(tmp_path / "ner.conll", ner_data(30, 8))
    assert main(["evaluate", str(runs / "ner"), "--data", str(ner_file)]) == 0
    assert "entity F1" in capsys.readouterr().out
    csv = tmp_path / "reviews.csv"
    csv.write_text("text,label\n" + "".join(f'"{e.text}",{e.label}\n' for e in sentiment_data(30, 9)))
    assert main(["evaluate", str(runs / "clf"), "--data", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "macro-F1" in out and "30 texts" in out
    # a label the run never saw is named, with the labels it knows
    csv.write_text("text,label\ngood film,neutral\n")
    assert main(["evaluate", str(runs / "clf"), "--data", str(csv)]) == 1
    err = capsys.readouterr().err
    assert "reviews.csv row 1" in err and "'neutral'" in err and "negative, positive" in err
    # without --data a fine-tuned run is refused: its MLM head would be random
    assert main(["evaluate", str(runs / "clf")]) == 1
    err = capsys.readouterr().err
    assert "fine-tuned classify run" in err and "--data FILE" in err and "perplexity" not in err


def test_predict_any_source_and_several_texts(runs, tmp_path, capsys):
    # a transformers directory written by minirob (a RobertaForSequenceClassification)
    hf = tmp_path / "hf"
    Predictor.load(runs / "clf").model.save_pretrained(hf)
    (hf / "tokenizer.json").write_bytes((runs / "clf" / "tokenizer.json").read_bytes())
    assert main(["predict", str(hf), "a wonderful story", "an awful plot", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "a wonderful story" and lines[1].startswith("positive (")
    assert lines[2] == "an awful plot" and lines[3].startswith("negative (")
    assert main(["predict", str(runs / "tiny"), "x"]) == 1
    assert "no task head" in capsys.readouterr().err


def test_fill_mask_and_embed_commands(runs, tmp_path, capsys):
    assert main(["fill-mask", str(runs / "tiny"), "the <mask> was good", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "<mask> 1:" in out and out.count("%") == 3
    assert main(["fill-mask", str(runs / "clf"), "the <mask> was good"]) == 1
    assert "cannot do masked-word prediction" in capsys.readouterr().err
    texts = tmp_path / "texts.txt"
    texts.write_text("the film was good\nthe plot was dull\n", encoding="utf-8")
    for name in ("v.npy", "v.jsonl"):
        assert main(["embed", str(runs / "tiny"), "--file", str(texts), "--output", str(tmp_path / name)]) == 0
    import numpy as np

    vectors = np.load(tmp_path / "v.npy")
    rows = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert vectors.shape == (2, 32) and abs(np.linalg.norm(vectors[0]) - 1) < 1e-5
    assert np.allclose([r["vector"] for r in rows], vectors, atol=1e-5)
    capsys.readouterr()
    assert main(["similarity", "the film was good", "the film was good", "--model", str(runs / "tiny")]) == 0
    assert capsys.readouterr().out.strip() == "1.0000"


def test_bad_files_and_options(runs, tmp_path, capsys, monkeypatch):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("a good film\ncaf\xe9 noir\n".encode("latin-1"))
    assert main(["predict", str(runs / "clf"), "--file", str(latin)]) == 1
    err = capsys.readouterr().err
    assert "latin1.txt, line 2: not UTF-8" in err and len(err.strip().splitlines()) == 1
    # finetune.json labels of the wrong count or shape: one line naming the file
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (broken / name).write_bytes((runs / "clf" / name).read_bytes())
    recipe = json.loads((runs / "clf" / "finetune.json").read_text())
    for labels in ("positive", [["negative"], ["positive"]], ["negative"], ["a", "a"]):
        (broken / "finetune.json").write_text(json.dumps({**recipe, "labels": labels}))
        assert main(["predict", str(broken), "a film"]) == 1
        err = capsys.readouterr().err
        assert "finetune.json" in err and len(err.strip().splitlines()) == 1
    for option, value in (("--weight-decay", "nan"), ("--epochs", "nan"), ("--seed", str(2**64)),
                          ("--lr", "inf"), ("--batch-size", "0"), ("--max-length", "2")):
        with pytest.raises(SystemExit) as stop:
            main(["finetune", "--task", "classify", "--from", "x", "--out", "y", option, value])
        assert stop.value.code == 2 and f"argument {option}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fill-mask", str(runs / "tiny"), "a <mask>", "--top", "-1"])
    assert "--top" in capsys.readouterr().err


def test_disk_full_while_saving_a_fine_tuned_model(runs, tmp_path, capsys, monkeypatch):
    import errno

    import minirob.weights

    def full(tensors, filename, metadata=None):  # the safetensors writer, as a full disk answers it
        raise OSError(errno.ENOSPC, "No space left on device", str(filename))

    monkeypatch.setattr(minirob.weights, "save_file", full)
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"text": e.text, "label": e.label}) + "\n"
                             for e in sentiment_data(40, 1)))
    out = tmp_path / "run"
    assert main(["finetune", "--task", "classify", "--from", str(runs / "tiny"), "--train", str(train),
                 "--epochs", "1", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert "no space left" in err and str(out) in err and len(err.splitlines()) == 1
