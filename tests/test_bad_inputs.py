"""Bad input, table-driven: one row per mistake a user can make, across the whole library and CLI.

Every library row states the exception class minirob must raise and what its message must name
(the file and line, the key and the shapes, the id and the vocabulary size, the option and the
values it allows). Every command-line row runs ``minirob ...`` (in-process through
``minirob.cli.main``, two in a fresh interpreter) and asserts a non-zero exit, no Python traceback,
and a message naming the culprit. The expected texts are the facts of each case (the line we broke,
the shape we wrote), not copies of the library's wording where avoidable.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
from reliability_helpers import (
    assert_clean_failure,
    run_cli,
    run_cli_subprocess,
    tiny_config,
    tiny_model_dir,
    write_corpus,
)

from minirob import data, finetune, masking, pretrain, readers, train
from minirob import (
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaForSequenceClassification,
    RobertaModel,
    Tokenizer,
)
from minirob.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    InputError,
    MissingFileError,
    TokenizerError,
    TrainingError,
)


@dataclass
class Row:
    name: str
    act: Callable  # (ctx) -> anything; must raise
    error: type
    needles: tuple[str, ...]  # regular expressions the message must contain


@dataclass
class Ctx:
    tmp: Path
    model_dir: Path
    tokenizer: Tokenizer

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
        return path

    def model_copy(self, name: str = "copy") -> Path:
        import shutil

        return Path(shutil.copytree(self.model_dir, self.tmp / name))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model_dir(tmp_path_factory.mktemp("bad-inputs") / "model")


@pytest.fixture
def ctx(tmp_path, model_dir):
    return Ctx(tmp_path, model_dir, Tokenizer.from_pretrained(model_dir))


def mlm(ctx):
    return RobertaForMaskedLM(tiny_config(ctx.tokenizer.vocab_size)).eval()


def save_state(ctx, state: dict, name="weights") -> Path:
    """A checkpoint directory: the tiny model's config.json next to the given tensors."""
    from safetensors.torch import save_file

    directory = ctx.tmp / name
    directory.mkdir()
    (directory / "config.json").write_text((ctx.model_dir / "config.json").read_text())
    save_file(state, str(directory / "model.safetensors"))
    return directory


def good_state(ctx) -> dict:
    from safetensors.torch import load_file

    return load_file(ctx.model_dir / "model.safetensors")


def edited_state(ctx, **changes) -> dict:
    state = good_state(ctx)
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            del state[key]
        else:
            state[key] = value
    return state


def finetune_args(ctx, *extra):
    from minirob.commands.finetune import register  # noqa: F401  (the command must exist)

    return ["finetune", "--task", "classify", "--from", ctx.model_dir, "--out", ctx.tmp / "ft", *extra]


ROWS = [
    # ------------------------------------------------------------------ models
    Row("model: id beyond the vocabulary",
        lambda c: mlm(c)(torch.tensor([[0, c.tokenizer.vocab_size + 7, 2]])),
        InputError, (r"id \d+", r"vocab_size=\d+")),
    Row("model: float ids", lambda c: mlm(c)(torch.tensor([[0.0, 4.0, 2.0]])),
        InputError, (r"torch\.float32",)),
    Row("model: 1-D ids", lambda c: mlm(c)(torch.tensor([0, 4, 2])), InputError, (r"\(3,\)",)),
    Row("model: mask of another shape",
        lambda c: mlm(c)(torch.tensor([[0, 4, 2]]), torch.ones(2, 3)),
        InputError, (r"\(2, 3\)", r"\(1, 3\)")),
    Row("model: longer than the position table",
        lambda c: mlm(c)(torch.full((1, 40), 5)), InputError, (r"40", r"32")),
    Row("model: predict_at of another shape",
        lambda c: mlm(c)(torch.tensor([[0, 4, 2]]), predict_at=torch.ones(1, 5, dtype=torch.bool)),
        InputError, (r"predict_at", r"\(1, 5\)")),
    Row("model: token type beyond type_vocab_size",
        lambda c: mlm(c)(torch.tensor([[0, 4, 2]]), token_type_ids=torch.full((1, 3), 3)),
        InputError, (r"type_vocab_size=1",)),
    Row("config: heads do not divide hidden",
        lambda c: RobertaConfig(hidden_size=30, num_attention_heads=4), ConfigError,
        (r"hidden_size=30", r"num_attention_heads=4")),
    Row("config: unknown position style",
        lambda c: RobertaConfig(position_style="rotary"), ConfigError, (r"rotary", r"roberta", r"absolute")),
    Row("config: negative num_labels",
        lambda c: RobertaConfig(num_labels=-1), ConfigError, (r"num_labels",)),
    Row("config.json: broken JSON names its line",
        lambda c: RobertaConfig.load(c.file("cfg/config.json", '{\n"hidden_size": 16,\n"vocab_size": ,\n}')),
        ConfigError, (r"config\.json", r"line 3")),
    Row("config.json: a list instead of an object",
        lambda c: RobertaConfig.load(c.file("cfg/config.json", "[1, 2]")), ConfigError, (r"config\.json",)),
    Row("config.json: wrong type for a field",
        lambda c: RobertaConfig.load(c.file("cfg/config.json", '{"model_type": "roberta", "hidden_size": "big"}')),
        ConfigError, (r"hidden_size", r"big")),
    # ------------------------------------------------------------------ weights
    Row("weights: a tensor of the wrong shape names key and both shapes",
        lambda c: RobertaForMaskedLM.from_pretrained(save_state(c, edited_state(
            c, roberta__embeddings__LayerNorm__weight=torch.ones(7)))),
        CheckpointError, (r"embeddings\.norm\.weight|LayerNorm", r"\(7,\)", r"\(16,\)")),
    Row("weights: a missing encoder tensor is named",
        lambda c: RobertaModel.from_pretrained(save_state(c, edited_state(
            c, **{"roberta__encoder__layer__0__output__dense__weight": None}))),
        CheckpointError, (r"encoder\.layers\.0\.feed_forward\.down\.weight",)),
    Row("weights: head trained for another label count",
        lambda c: RobertaForSequenceClassification.from_pretrained(
            save_state(c, {**good_state(c), "classifier.out_proj.weight": torch.zeros(5, 16),
                           "classifier.out_proj.bias": torch.zeros(5),
                           "classifier.dense.weight": torch.zeros(16, 16),
                           "classifier.dense.bias": torch.zeros(16)}), num_labels=2),
        CheckpointError, (r"classifier\.out_proj\.(weight|bias)", r"\(5,", r"\(2,", r"num_labels=2")),
    Row("weights: no config.json next to the weights",
        lambda c: RobertaModel.from_pretrained(
            (lambda d: ((d / "config.json").unlink(), d)[1])(save_state(c, good_state(c)))),
        MissingFileError, (r"config\.json",)),
    Row("weights: path that does not exist",
        lambda c: RobertaModel.from_pretrained(c.tmp / "nowhere"), MissingFileError, (r"nowhere",)),
    Row("weights: another architecture (GPT-2 names)",
        lambda c: RobertaModel.from_pretrained(save_state(c, {"h.0.attn.c_attn.weight": torch.zeros(4, 12),
                                                               "wte.weight": torch.zeros(10, 4)})),
        CheckpointError, (r"wte\.weight|h\.0\.attn", r"another architecture")),
    Row("weights: config vocabulary disagrees with the embeddings",
        lambda c: RobertaForMaskedLM.from_pretrained(c.model_dir, vocab_size=c.tokenizer.vocab_size + 1),
        CheckpointError, (r"lm_head\.bias|embeddings\.token",
                          lambda c: rf"\({c.tokenizer.vocab_size},", lambda c: rf"\({c.tokenizer.vocab_size + 1},")),
    # ------------------------------------------------------------------ tokenizer
    Row("tokenizer: decode an id beyond the vocabulary",
        lambda c: c.tokenizer.decode([0, c.tokenizer.vocab_size + 3]),
        TokenizerError, (r"id \d+", r"0\.\.\d+")),
    Row("tokenizer: encode a non-string", lambda c: c.tokenizer.encode(123), TokenizerError, (r"str", r"int")),
    Row("tokenizer: unknown padding option",
        lambda c: c.tokenizer.encode_batch(["a", "b c"], padding="left"), TokenizerError,
        (r"padding='left'", r"longest", r"max_length")),
    Row("vocab.json: broken JSON names its line",
        lambda c: Tokenizer.from_vocab_and_merges(c.file("t/vocab.json", '{\n"a": 0,\n"b" 1\n}'),
                                                  c.file("t/merges.txt", "#version: 0.2\n")),
        TokenizerError, (r"vocab\.json:3",)),
    Row("vocab.json: one id for two tokens",
        lambda c: Tokenizer.from_vocab_and_merges(c.file("t/vocab.json", '{"a": 0, "b": 0}'),
                                                  c.file("t/merges.txt", "#version: 0.2\n")),
        TokenizerError, (r"vocab\.json", r"id 0", r"'a'", r"'b'")),
    Row("vocab.json: negative id",
        lambda c: Tokenizer.from_vocab_and_merges(c.file("t/vocab.json", '{"a": -4}'),
                                                  c.file("t/merges.txt", "#version: 0.2\n")),
        TokenizerError, (r"vocab\.json", r"-4")),
    Row("merges.txt: a line with three tokens names its line",
        lambda c: Tokenizer.from_vocab_and_merges(
            c.file("t/vocab.json", '{"a": 0, "b": 1, "ab": 2}'),
            c.file("t/merges.txt", "#version: 0.2\na b\na b c\n")),
        TokenizerError, (r"merges\.txt:3", r"a b c")),
    Row("merges.txt: a merge whose result is not in the vocabulary",
        lambda c: Tokenizer.from_vocab_and_merges(c.file("t/vocab.json", '{"a": 0, "b": 1}'),
                                                  c.file("t/merges.txt", "#version: 0.2\na b\n")),
        TokenizerError, (r"merges\.txt:2", r"ab")),
    Row("tokenizer.json: no model entry",
        lambda c: Tokenizer.from_pretrained(c.file("t/tokenizer.json", '{"version": "1.0"}')),
        TokenizerError, (r"tokenizer\.json", r"model")),
    Row("tokenizer: a folder without tokenizer files",
        lambda c: Tokenizer.from_pretrained((c.tmp / "empty").mkdir() or c.tmp / "empty"),
        MissingFileError, (r"empty", r"vocab\.json", r"tokenizer\.json")),
    # ------------------------------------------------------------------ data readers
    Row("text: invalid UTF-8 names file and line",
        lambda c: readers.read_text(c.file("d/a.txt", b"fine\nalso fine\nbad \xff\n")),
        DataError, (r"a\.txt:3", r"UTF-8")),
    Row("text: empty file", lambda c: readers.read_text(c.file("d/e.txt", "")),
        DataError, (r"e\.txt", r"empty")),
    Row("csv: a row with too many cells names its line",
        lambda c: readers.read_table(c.file("d/t.csv", "text,label\nok,1\nx,1,extra\n")),
        DataError, (r"t\.csv:3", r"3 cells", r"2 columns")),
    Row("jsonl: broken JSON names its line",
        lambda c: readers.read_table(
            c.file("d/t.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": }\n')),
        DataError, (r"t\.jsonl:2", r"JSON")),
    Row("csv: missing label column lists the columns",
        lambda c: readers.read_table(c.file("d/t.csv", "text,score\na,1\n")),
        DataError, (r"'label'", r"text", r"score")),
    Row("table: unknown suffix lists the formats",
        lambda c: readers.read_table(c.file("d/t.xlsx", "a")),
        DataError, (r"\.xlsx", r"csv", r"tsv", r"jsonl")),
    Row("conll: a line with another column count names its line",
        lambda c: readers.read_conll(c.file("d/n.conll", "EU B-ORG\nrejects O\nGerman B-MISC x\n")),
        DataError, (r"n\.conll:3", r"2 columns", r"found 3")),
    Row("conll: a tag that is not BIO names its line",
        lambda c: readers.read_conll(c.file("d/n.conll", "EU B-ORG\nrejects PER\n")),
        DataError, (r"n\.conll:2", r"'PER'")),
    Row("conll: strict BIO refuses an I- tag after O",
        lambda c: readers.read_conll(c.file("d/n.conll", "EU O\nrejects I-ORG\n"), bio="strict"),
        DataError, (r"n\.conll:2", r"I-ORG", r"'O'")),
    Row("conll: unknown bio option lists the allowed ones",
        lambda c: readers.read_conll(c.file("d/n.conll", "a O\n"), bio="fix"),
        DataError, (r"'fix'", r"repair", r"strict", r"keep")),
    Row("pretraining text: invalid UTF-8 names the file",
        lambda c: data.read_text_documents([c.file("d/p.txt", b"ok\n\xfe\n")]),
        DataError, (r"p\.txt",)),
    # ------------------------------------------------------------------ training options
    Row("train: no budget",
        lambda c: train.TrainConfig(), ConfigError, (r"max_steps", r"minutes")),
    Row("train: unknown bf16 setting lists the allowed ones",
        lambda c: train.TrainConfig(max_steps=1, bf16="yes"),
        ConfigError, (r"'yes'", r"auto", r"on", r"off")),
    Row("train: accumulation 0",
        lambda c: train.TrainConfig(max_steps=1, accumulation=0),
        ConfigError, (r"accumulation", r"0")),
    Row("masking: probability outside (0, 1)",
        lambda c: masking.MaskingConfig(probability=1.5),
        ConfigError, (r"probability", r"1\.5")),
    Row("masking: unknown rule lists the rules",
        lambda c: masking.MaskingConfig(rule="poisson"),
        ConfigError, (r"'poisson'", r"bernoulli")),
    Row("finetune: unknown task lists the tasks",
        lambda c: finetune.FinetuneConfig(task="qa"),
        ConfigError, (r"'qa'", r"sentiment", r"ner")),
    Row("pretrain: unknown preset lists the presets",
        lambda c: pretrain.PretrainRecipe(preset="huge").model_config(100),
        ConfigError, (r"'huge'", r"tiny", r"base", r"large")),
    Row("train: resume without a checkpoint names the folder",
        lambda c: train.train(
            torch.nn.Linear(2, 2), None, None,
            train.TrainConfig(out_dir=str(c.tmp / "run"), max_steps=1, progress=False),
            resume=True),
        TrainingError, (r"--resume", r"run.checkpoints")),
    Row("train: resume from a step-*.pt that is not a training checkpoint",
        lambda c: train.train(
            torch.nn.Linear(2, 2), None, None,
            train.TrainConfig(out_dir=str(c.tmp / "run"), max_steps=1, progress=False),
            resume=(c.tmp / "run" / "checkpoints").mkdir(parents=True) or torch.save(
                {"model": {}}, c.tmp / "run" / "checkpoints" / "step-0000003.pt") or True),
        TrainingError, (r"step-0000003\.pt", r"optimizer", r"fingerprint")),
]

CLI_ROWS = [
    # (name, argv(ctx), exit code (None: any non-zero), needles)
    ("pretrain: --preset outside the choices",
     lambda c: ["pretrain", "--preset", "huge"], 2, (r"--preset", r"'huge'", r"tiny")),
    ("pretrain: --bf16 outside the choices",
     lambda c: ["pretrain", "--bf16", "maybe"], 2, (r"--bf16", r"auto", r"on", r"off")),
    ("pretrain: --steps not a number",
     lambda c: ["pretrain", "--steps", "ten"], 2, (r"--steps", r"'ten'")),
    ("pretrain: --corpus files without --files",
     lambda c: ["pretrain", "--corpus", "files", "--steps", "1", "--out", c.tmp / "r"], None, (r"--files",)),
    ("pretrain: a text file that does not exist",
     lambda c: ["pretrain", "--corpus", "files", "--files", c.tmp / "missing.txt", "--steps", "1",
                "--out", c.tmp / "r"], None, (r"missing\.txt",)),
    ("pretrain: --steps 0",
     lambda c: ["pretrain", "--corpus", "files", "--files", write_corpus(c.tmp / "c.txt", 6), "--steps", "0",
                "--out", c.tmp / "r", "--vocab-size", "300", "--no-progress"], None, (r"max_steps|--steps", r"0")),
    ("pretrain: --mask-prob 2",
     lambda c: ["pretrain", "--mask-prob", "2", "--steps", "1", "--out", c.tmp / "r"], None,
     (r"probability", r"2")),
    ("fill-mask: a sentence without <mask>",
     lambda c: ["fill-mask", c.model_dir, "no blank here"], None, (r"<mask>", r"no blank here")),
    ("fill-mask: a model folder that does not exist",
     lambda c: ["fill-mask", c.tmp / "nomodel", "a <mask>"], None, (r"nomodel",)),
    ("predict: a folder that is not a fine-tuned run",
     lambda c: ["predict", c.model_dir, "some text"], None, (lambda c: re.escape(str(c.model_dir)), r"finetune")),
    ("convert: output already holds a model",
     lambda c: ["convert", c.model_dir, c.model_dir], None, (r"model\.safetensors", r"--force")),
    ("finetune: classify without --train",
     lambda c: finetune_args(c), None, (r"--task classify", r"--train")),
    ("finetune: --validation without --test",
     lambda c: finetune_args(c, "--train", c.file("ft.csv", "text,label\na,1\nb,0\n"),
                             "--validation", c.tmp / "ft.csv"), None, (r"--validation", r"--test")),
    ("finetune: --task outside the choices",
     lambda c: ["finetune", "--task", "qa", "--from", c.model_dir, "--out", c.tmp / "ft"], 2,
     (r"--task", r"'qa'", r"sentiment")),
    ("data: fetch an unknown data set lists the known ones",
     lambda c: ["data", "fetch", "imagenet"], None, (r"imagenet", r"brown")),
    ("fill-mask: --top 0",
     lambda c: ["fill-mask", c.model_dir, "a <mask>", "--top", "0"], None, (r"--top", r"0")),
    ("fill-mask: config.json given as the checkpoint",
     lambda c: ["fill-mask", c.model_dir / "config.json", "a <mask>"], None, (r"config\.json", r"not a weights file")),
    ("pretrain: a folder given as a text file",
     lambda c: ["pretrain", "--corpus", "files", "--files", c.tmp, "--steps", "1", "--out", c.tmp / "r"], None,
     (r"[Ii]s a directory", lambda c: re.escape(str(c.tmp)))),
    ("pretrain: --out is an existing file",
     lambda c: ["pretrain", "--corpus", "files", "--files", write_corpus(c.tmp / "c.txt", 30), "--steps", "1",
                "--out", c.tmp / "c.txt", "--vocab-size", "300", "--batch-size", "2", "--no-progress"], None,
     (r"c\.txt",)),
    ("evaluate: text file that is not UTF-8",
     lambda c: ["evaluate", c.model_dir, "--files", c.file("bad.txt", b"caf\xe9 au lait\n")], None,
     (r"bad\.txt", r"UTF-8")),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_library_rejects_bad_input_naming_the_culprit(row, ctx):
    with pytest.raises(row.error) as info:
        row.act(ctx)
    message = str(info.value)
    for needle in row.needles:
        needle = needle(ctx) if callable(needle) else needle
        assert re.search(needle, message), f"{needle!r} not in: {message}"


@pytest.mark.parametrize("name, argv, code, needles", CLI_ROWS, ids=[r[0] for r in CLI_ROWS])
def test_command_line_fails_cleanly_naming_the_culprit(name, argv, code, needles, ctx, capsys):
    got, _, err = run_cli(capsys, argv(ctx))
    assert_clean_failure(got, err)
    if code is not None:
        assert got == code
    for needle in needles:
        needle = needle(ctx) if callable(needle) else needle
        assert re.search(needle, err), f"{needle!r} not in: {err}"
    if got != 2:  # argparse's own errors (exit 2) come with the usage lines; ours are one line
        assert err.count("\n") <= 2, f"expected a short message, got:\n{err}"


@pytest.mark.parametrize("argv, needles", [
    (["fill-mask", "{tmp}/missing-model", "The <mask> sat."], (r"missing-model",)),
    (["pretrain", "--corpus", "files", "--files", "{tmp}/none.txt", "--steps", "1", "--out", "{tmp}/r"],
     (r"none\.txt",)),
], ids=["fill-mask missing model", "pretrain missing corpus"])
def test_command_line_in_a_fresh_process(argv, needles, tmp_path):
    result = run_cli_subprocess([a.format(tmp=tmp_path) for a in argv])
    assert_clean_failure(result.returncode, result.stderr)
    for needle in needles:
        assert re.search(needle, result.stderr), result.stderr


def test_the_table_is_large_enough():
    names = [r.name for r in ROWS] + [r[0] for r in CLI_ROWS]
    assert len(set(names)) == len(names) >= 40
