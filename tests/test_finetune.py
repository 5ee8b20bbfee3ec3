"""The fine-tuning recipe: label alignment, encoding, training on learnable data, the run directory,
bad input, and the minilm head checked against transformers."""

import json
import logging

import pytest
import torch
from finetune_fixtures import ner_data, sentiment_data, tiny_checkpoint

from minirob import RobertaForSequenceClassification
from minirob.errors import CheckpointError, ConfigError, DataError, InputError
from minirob.finetune import (
    IGNORE,
    FinetuneConfig,
    FinetuneLoop,
    TaggedSentence,
    TextExample,
    align_labels,
    build_model,
    collate,
    encode_sentences,
    encode_texts,
    finetune,
    inside_tag,
    label_list,
    load_tokenizer,
    word_predictions,
)
from minirob.metrics import entity_scores
from minirob.train import TrainConfig


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


# ------------------------------------------------------------------ alignment (hand-worked)


def test_align_first_subword_and_every_subword():
    # <s> New Yor ##k is </s>: word 1 ("York") is split in two pieces.
    word_ids = [None, 0, 1, 1, 2, None]
    labels = ["O", "B-LOC", "I-LOC"]
    word_labels = [1, 2, 0]  # B-LOC I-LOC O
    assert align_labels(word_ids, word_labels) == [IGNORE, 1, 2, IGNORE, 0, IGNORE]
    continuation = [labels.index(inside_tag(tag)) for tag in labels]  # B-LOC -> I-LOC
    assert continuation == [0, 2, 2]
    assert align_labels(word_ids, word_labels, True, continuation) == [IGNORE, 1, 2, 2, 0, IGNORE]
    # A split *first* word of an entity: its second piece continues it as I-LOC, not B-LOC.
    assert align_labels([None, 0, 0, None], [1], True, continuation) == [IGNORE, 1, 2, IGNORE]


def test_word_predictions_invert_alignment():
    word_ids = [None, 0, 1, 1, 2, None]
    # predictions at continuation pieces (the 7) and special tokens (the 9s) are not read
    assert word_predictions(word_ids, [9, 4, 5, 7, 6, 9], n_words=3, missing=0) == [4, 5, 6]
    # a word cut off by truncation (word 3 has no token) gets `missing`
    assert word_predictions(word_ids, [9, 4, 5, 7, 6, 9], n_words=4, missing=0) == [4, 5, 6, 0]


def test_label_list_completes_bio_pairs():
    sentences = [TaggedSentence(["a", "b"], ["B-PER", "O"]), TaggedSentence(["c"], ["B-LOC"])]
    assert label_list(sentences, "ner") == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert label_list([TextExample("x", "b"), TextExample("y", "a")], "classify") == ["a", "b"]


def test_encoding_with_a_real_wordpiece_tokenizer():
    """all-MiniLM-L6-v2's tokenizer splits rare words; labels follow the first piece."""
    from minirob.datasets import fetch

    tokenizer = load_tokenizer(fetch("minilm", progress=False))
    sentence = TaggedSentence(["Tolkienesque", "visited", "Qwertyvillez"], ["B-PER", "O", "B-LOC"])
    labels = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    (feature,) = encode_sentences(tokenizer, [sentence], labels, 128)
    encoding = tokenizer.encode_words(sentence.words)
    assert feature["input_ids"] == encoding.ids
    firsts = {w: t for t, w in reversed(list(enumerate(encoding.word_ids))) if w is not None}
    for word, tag in enumerate(sentence.tags):
        assert feature["labels"][firsts[word]] == labels.index(tag)
    scored = [label for label in feature["labels"] if label != IGNORE]
    assert scored == [3, 0, 1]  # one label per word, in order
    assert len(encoding.ids) > 5  # some word was split, so some pieces were ignored
    (pair,) = encode_texts(tokenizer, [TextExample("a cat", "x", pair="a dog")], ["x"], 128)
    # [CLS] a cat [SEP] -> segment 0, a dog [SEP] -> segment 1 (BERT's sentence A/B)
    assert pair["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]


def test_minilm_head_matches_transformers():
    """minirob's classifier from minilm computes what BertForSequenceClassification computes:
    the trained pooler becomes the head's dense layer (eval mode, same output layer)."""
    from transformers import BertForSequenceClassification

    from minirob.datasets import fetch

    path = fetch("minilm", progress=False)
    ours = build_model("classify", path, ["a", "b", "c"], random_init=False).eval()
    theirs = BertForSequenceClassification.from_pretrained(str(path), num_labels=3).eval()
    with torch.no_grad():
        ours.classifier.out_proj.weight.copy_(theirs.classifier.weight)
        ours.classifier.out_proj.bias.copy_(theirs.classifier.bias)
    tokenizer = load_tokenizer(path)
    features = encode_texts(
        tokenizer,
        [TextExample("A gorgeous film.", pair="Truly."), TextExample("Dull, dull, dull and long.")],
        None, 128,
    )
    batch = collate(features, tokenizer.pad_id)
    with torch.no_grad():
        mine = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        reference = theirs(**batch).logits
    torch.testing.assert_close(mine, reference, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------ the recipe end to end


def test_classification_learns_and_writes_a_run(checkpoint, tmp_path):
    train, val, test = sentiment_data(160, 1), sentiment_data(40, 2), sentiment_data(60, 3)
    config = FinetuneConfig(task="classify", batch_size=8,
                            train=FinetuneLoop(epochs=6, lr=2e-3, progress=False))
    report = finetune(checkpoint, train, val, test, config, tmp_path / "run")
    assert report["test"]["accuracy"] > 0.9, report["validation_history"]
    assert len(report["validation_history"]) == 6  # one validation score per epoch
    best = max(h["score"] for h in report["validation_history"])
    assert report["best_validation_score"] == best
    run = tmp_path / "run"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "finetune.json",
                 "report.json", "confusion_matrix.png"):
        assert (run / name).is_file(), name
    on_disk = json.loads((run / "report.json").read_text())
    assert on_disk["test"]["confusion_matrix"] == report["test"]["confusion_matrix"]
    assert sum(map(sum, on_disk["test"]["confusion_matrix"])) == 60
    # the weights in the run directory are the best epoch's, not the last one's
    from minirob.finetune import score

    model = RobertaForSequenceClassification.from_pretrained(run)
    tokenizer = load_tokenizer(run)
    features = encode_texts(tokenizer, val, report["labels"], 128)
    again = score("classify", model, features, val, report["labels"], tokenizer.pad_id)
    assert again["accuracy"] == pytest.approx(best)


def test_ner_learns(checkpoint, tmp_path):
    train, val, test = ner_data(224, 1), ner_data(50, 2), ner_data(50, 3)
    config = FinetuneConfig(task="ner", batch_size=16, label_all_subwords=True,
                            train=FinetuneLoop(epochs=3, lr=3e-3, progress=False))
    report = finetune(checkpoint, train, val, test, config, tmp_path / "ner")
    assert report["test"]["f1"] > 0.8, report["validation_history"]
    assert set(report["test"]["per_type"]) == {"LOC", "PER"}
    # the report's F1 is what minirob.metrics gives for the gold tags (n_gold counted from test)
    gold_entities = entity_scores([s.tags for s in test], [s.tags for s in test]).n_gold
    assert report["test"]["n_gold"] == gold_entities


def test_early_stopping(checkpoint, tmp_path):
    train, val, test = sentiment_data(64, 1), sentiment_data(32, 2), sentiment_data(32, 3)
    # A learning rate too small to change any prediction: epoch 2 is no better than epoch 1.
    config = FinetuneConfig(task="classify", batch_size=16, patience=1,
                            train=FinetuneLoop(epochs=6, lr=1e-9, progress=False))
    report = finetune(checkpoint, train, val, test, config, tmp_path / "stop")
    assert report["stopped_by"] == "early_stopping"
    assert [h["epoch"] for h in report["validation_history"]] == [1, 2]
    assert report["best_epoch"] == 1
    assert report["steps"] == 2 * report["steps_per_epoch"]  # stopped right after epoch 2


def test_random_init_keeps_the_shape_not_the_weights(checkpoint):
    pretrained = build_model("ner", checkpoint, ["O", "B-X", "I-X"], random_init=False)
    random = build_model("ner", checkpoint, ["O", "B-X", "I-X"], random_init=True)
    a, b = pretrained.state_dict(), random.state_dict()
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    word = "roberta.embeddings.token.weight"
    assert not torch.equal(a[word], b[word])


# ------------------------------------------------------------------ bad input


def test_unseen_label_in_test_file(checkpoint, tmp_path):
    train = sentiment_data(40, 1)
    test = [TextExample("the film was meh", "neutral", source="test.csv:7")]
    with pytest.raises(DataError, match=r"test.csv:7: label 'neutral' never occurs"):
        finetune(checkpoint, train, train[:8], test, FinetuneConfig(train=FinetuneLoop(progress=False)), tmp_path)
    ner_test = [TaggedSentence(["Bob", "x"], ["B-ORG", "O"])]
    with pytest.raises(DataError, match="'B-ORG'"):
        finetune(checkpoint, ner_data(20, 1), ner_data(5, 2), ner_test,
                 FinetuneConfig(task="ner", train=FinetuneLoop(progress=False)), tmp_path)


def test_empty_text_and_bad_recipe(checkpoint):
    tokenizer = load_tokenizer(checkpoint)
    with pytest.raises(InputError, match="example 1: the text is empty"):
        encode_texts(tokenizer, [TextExample("good", "positive"), TextExample("  ", "negative")],
                     ["negative", "positive"], 32, "train")
    with pytest.raises(InputError, match="no words"):
        encode_sentences(tokenizer, [TaggedSentence([], [])], ["O"], 32)
    with pytest.raises(ConfigError, match="task='parse'"):
        FinetuneConfig(task="parse")


def test_the_loop_defaults_are_the_reference_recipe():
    """transformers' TrainingArguments defaults are the independent source for the optimiser;
    the 6% warm-up is the issue's reference recipe (transformers' own default is none)."""
    import dataclasses
    import types

    from transformers import TrainingArguments

    # the declared defaults (instantiating TrainingArguments would need accelerate)
    reference = types.SimpleNamespace(**{f.name: f.default for f in dataclasses.fields(TrainingArguments)})
    loop = FinetuneConfig().train
    assert loop.lr == reference.learning_rate
    assert loop.betas == (reference.adam_beta1, reference.adam_beta2)
    assert loop.eps == reference.adam_epsilon
    assert loop.weight_decay == reference.weight_decay
    assert loop.grad_clip == reference.max_grad_norm
    assert loop.warmup == 0.06 and loop.epochs == 3.0
    # one change keeps every other reference value (a plain TrainConfig would not: lr 1e-3, 0.98)
    assert FinetuneLoop(lr=2e-4).betas == (0.9, 0.999)


def test_epochs_become_the_loops_step_budget():
    loop = FinetuneLoop(epochs=2.5, lr=1e-4, seed=3)
    run = loop.for_run(steps_per_epoch=7, eval_every=7)
    assert type(run) is TrainConfig and run.max_steps == 18  # ceil(2.5 * 7)
    assert (run.lr, run.seed, run.eval_every, run.betas) == (1e-4, 3, 7, (0.9, 0.999))
    assert FinetuneLoop(epochs=2, max_steps=5).for_run(steps_per_epoch=7).max_steps == 5  # first reached
    clock = FinetuneLoop(epochs=None, minutes=1.5).for_run(steps_per_epoch=7)
    assert (clock.max_steps, clock.minutes) == (None, 1.5)


def test_bad_loop_settings_name_the_field():
    for changes, message in [
        (dict(lr=float("nan")), r"^lr must be a finite number, got nan$"),
        (dict(epochs=0), r"^epochs must be > 0, got 0$"),
        (dict(epochs=float("inf")), r"^epochs must be a finite number, got inf$"),
        (dict(grad_clip=float("inf")), r"^grad_clip must be a finite number"),
        (dict(weight_decay=-0.1), r"^weight_decay must be >= 0, got -0.1$"),
        (dict(epochs=None), r"needs a budget: epochs, max_steps and/or minutes"),
        (dict(bf16="maybe"), r"bf16='maybe'"),  # TrainConfig's own checks still run
    ]:
        with pytest.raises(ConfigError, match=message):
            FinetuneLoop(**changes)
    with pytest.raises(ConfigError, match=r"^train must be a FinetuneLoop .* got TrainConfig$"):
        FinetuneConfig(train=TrainConfig(max_steps=10))
    with pytest.raises(ConfigError, match=r"^max_length must be >= 4, got 2$"):
        FinetuneConfig(max_length=2)


def test_a_flat_recipe_sends_the_loop_fields_to_train():
    config = FinetuneConfig.from_fields(task="ner", lr=2e-4, epochs=8, batch_size=16, seed=2)
    assert config == FinetuneConfig(task="ner", batch_size=16,
                                    train=FinetuneLoop(lr=2e-4, epochs=8, seed=2))


def test_command_line_defaults_are_the_librarys_and_range_checked(capsys):
    from minirob.cli import build_parser
    from minirob.commands.finetune import recipe

    base = ["finetune", "--task", "ner", "--from", "x", "--out", "y"]
    assert recipe(build_parser().parse_args(base)) == FinetuneConfig(task="ner")
    args = build_parser().parse_args([*base, "--lr", "2e-4", "--epochs", "8", "--minutes", "3",
                                      "--seed", "5", "--no-progress", "--batch-size", "16"])
    assert recipe(args) == FinetuneConfig(task="ner", batch_size=16, train=FinetuneLoop(
        lr=2e-4, epochs=8, minutes=3, seed=5, progress=False))
    for option, value in [("--lr", "nan"), ("--lr", "0"), ("--epochs", "0"), ("--warmup", "-1"),
                          ("--minutes", "inf"), ("--weight-decay", "-1")]:
        with pytest.raises(SystemExit) as stopped:
            build_parser().parse_args([*base, option, value])
        assert stopped.value.code == 2
        assert f"argument {option}: must be" in capsys.readouterr().err


def test_overlong_sentences_are_truncated_with_a_count(checkpoint, caplog):
    tokenizer = load_tokenizer(checkpoint)
    long = TaggedSentence(["Alice"] + ["film"] * 40, ["B-PER"] + ["O"] * 40)
    short = TaggedSentence(["Bob", "film"], ["B-PER", "O"])
    labels = ["O", "B-PER", "I-PER"]
    with caplog.at_level(logging.WARNING, logger="minirob.finetune"):
        features = encode_sentences(tokenizer, [long, short, long], labels, 16, split="test")
    assert "2 of 3 test sentences were longer than max_length=16" in caplog.text
    assert all(len(f["input_ids"]) <= 16 for f in features)
    # 14 word tokens survive per long sentence, so 41 - 14 = 27 words each are lost.
    assert "their last 54 words get no prediction" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="minirob.finetune"):
        encode_texts(tokenizer, [TextExample("good " * 50, "positive")], ["positive"], 16, "train")
    assert "1 of 1 train texts were longer than max_length=16 tokens" in caplog.text


def test_checkpoint_head_with_another_number_of_labels(checkpoint, tmp_path):
    model = build_model("classify", checkpoint, ["a", "b", "c"], random_init=False)
    model.save_pretrained(tmp_path / "three")
    with pytest.raises(CheckpointError, match="different number of labels"):
        RobertaForSequenceClassification.from_pretrained(tmp_path / "three", num_labels=2)


def test_command_line_finetune_from_files(checkpoint, tmp_path, capsys):
    from minirob.cli import main

    train = tmp_path / "train.jsonl"
    train.write_text("".join(
        json.dumps({"text": e.text, "label": e.label, "hyp": "the film"}) + "\n"
        for e in sentiment_data(80, 1)
    ))
    test = tmp_path / "test.jsonl"
    test.write_text(json.dumps({"text": "good film", "label": "neutral", "hyp": "x"}) + "\n")
    out = tmp_path / "run"
    args = ["finetune", "--task", "classify", "--from", str(checkpoint), "--train", str(train),
            "--pair-column", "hyp", "--epochs", "1", "--batch-size", "16", "--out", str(out)]
    assert main(args) == 0
    assert "test accuracy" in capsys.readouterr().out
    recipe = json.loads((out / "finetune.json").read_text())
    assert recipe["sizes"] == {"train": 64, "validation": 8, "test": 8}  # the 80/10/10 split
    assert recipe["recipe"]["group_by_length"] is True  # the default
    plain = tmp_path / "plain"
    assert main([*args[:-1], str(plain), "--no-group-by-length"]) == 0
    assert json.loads((plain / "finetune.json").read_text())["recipe"]["group_by_length"] is False
    bad = ["finetune", "--task", "classify", "--from", str(checkpoint), "--train", str(train),
           "--validation", str(train), "--test", str(test), "--out", str(tmp_path / "bad")]
    assert main(bad) == 1
    assert "label 'neutral' never occurs" in capsys.readouterr().err


def test_build_model_reads_the_checkpoint_once(checkpoint, monkeypatch):
    import minirob.finetune as recipe_module
    import minirob.pretrained as pretrained_module
    from minirob.weights import read_checkpoint

    calls = []

    def counting(*args, **kwargs):
        calls.append(args[0])
        return read_checkpoint(*args, **kwargs)

    monkeypatch.setattr(pretrained_module, "read_checkpoint", counting)
    monkeypatch.setattr(recipe_module, "read_checkpoint", counting)
    for random_init in (False, True):
        calls.clear()
        build_model("classify", checkpoint, ["a", "b"], random_init=random_init)
        assert len(calls) == 1


def test_keep_best_is_a_hook_that_saves_only_improvements(tmp_path):
    from minirob.finetune import KeepBest

    class Model:
        saved = 0

        def save_pretrained(self, directory):
            Model.saved += 1

    keep = KeepBest(tmp_path, patience=2)
    stops = [keep(Model(), epoch, score) for epoch, score in enumerate([0.5, 0.7, 0.6, 0.65], start=1)]
    assert Model.saved == 2 and keep.epoch == 2 and keep.score == 0.7
    assert stops == [False, False, False, True]  # two epochs without a better score


def test_prediction_does_not_import_the_training_loop():
    import subprocess
    import sys

    code = ("import minirob.predict, minirob.pipelines, sys; "
            "assert 'minirob.train' not in sys.modules and 'minirob.finetune' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
