"""Determinism: with a seed, pretraining on a CPU is bit-for-bit repeatable, and every run directory
records the seed, the configuration and the versions that produced it.

The reference is the first run itself: the second must equal it exactly (``==`` on floats and
``torch.equal`` on weights, no tolerance). A run with another seed must differ, so the comparison
can fail.
"""

from __future__ import annotations

import json

import pytest
import torch
from reliability_helpers import write_corpus
from safetensors.torch import load_file

from minirob.data import MaskedBlocks, SpecialIds
from minirob.model import RobertaForMaskedLM
from minirob.pretrain import PretrainRecipe, mlm_loss, prepare, pretrain
from minirob.train import TrainConfig, read_metrics, train

MODEL = {"num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32}


def recipe(tmp_path, name: str, seed: int = 0) -> PretrainRecipe:
    return PretrainRecipe(
        corpus="files", files=[str(tmp_path / "corpus.txt")], model_overrides=MODEL, vocab_size=300,
        max_length=32, batch_size=8,
        train=TrainConfig(out_dir=str(tmp_path / name), lr=3e-3, minutes=None, max_steps=6, eval_every=3,
                          checkpoint_every=3, bf16="off", seed=seed, progress=False),
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two pretraining runs with seed 0 and one with seed 1, each from its own prepare()."""
    tmp_path = tmp_path_factory.mktemp("determinism")
    write_corpus(tmp_path / "corpus.txt", documents=30)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, seed in (("a", 0), ("b", 0), ("other-seed", 1)):
            pretrain(recipe(tmp_path, name, seed))
    finally:
        torch.set_num_threads(threads)
    return tmp_path


def without_clock(records):
    return [{k: v for k, v in r.items() if k not in ("elapsed", "tokens_per_s")} for r in records]


def test_two_seeded_pretraining_runs_are_bit_identical(runs):
    a, b = read_metrics(runs / "a"), read_metrics(runs / "b")
    assert [r["split"] for r in a] == ["eval", "train", "eval", "eval_full"]
    assert without_clock(a) == without_clock(b)
    assert (runs / "a" / "vocab.json").read_bytes() == (runs / "b" / "vocab.json").read_bytes()
    assert (runs / "a" / "merges.txt").read_bytes() == (runs / "b" / "merges.txt").read_bytes()
    wa, wb = load_file(runs / "a" / "model.safetensors"), load_file(runs / "b" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_another_seed_gives_other_losses(runs):
    a, other = read_metrics(runs / "a"), read_metrics(runs / "other-seed")
    assert [r["loss"] for r in a] != [r["loss"] for r in other]


def test_every_step_loss_is_repeatable(runs, tmp_path):
    """Per step (log_every=1): the recipe's masking, model init and loop, twice, same floats."""
    tokenizer, blocks, _ = prepare(recipe(runs, "unused"))
    special = SpecialIds.from_tokenizer(tokenizer)
    losses = []
    for name in ("x", "y"):
        torch.manual_seed(0)
        model = RobertaForMaskedLM(recipe(runs, name).model_config(tokenizer.vocab_size))
        config = TrainConfig(out_dir=str(tmp_path / name), max_steps=8, log_every=1, bf16="off",
                             progress=False, plot=False, seed=5)
        train(model, mlm_loss, MaskedBlocks(blocks, 8, special, seed=5), config)
        losses.append([r["loss"] for r in read_metrics(tmp_path / name)])
    assert len(losses[0]) == 8 and losses[0] == losses[1]


def test_pretraining_run_directory_records_seed_config_and_versions(runs):
    info = json.loads((runs / "other-seed" / "run.json").read_text())
    assert info["seed"] == 1 and info["train_config"]["seed"] == 1 and info["recipe"]["train"]["seed"] == 1
    assert info["model_config"]["hidden_size"] == 16 and info["model_config"]["vocab_size"] > 0
    assert info["versions"]["torch"] == torch.__version__
    assert {"minirob", "numpy", "python", "platform"} <= set(info["versions"])
    assert info["data"]["train_blocks"] > 0


def test_fine_tuning_run_directory_records_them_too(tmp_path):
    from finetune_fixtures import sentiment_data, tiny_checkpoint

    from minirob.finetune import FinetuneConfig, FinetuneLoop, finetune

    checkpoint = tiny_checkpoint(tmp_path / "start")
    config = FinetuneConfig(task="sentiment", batch_size=16, max_length=24,
                            train=FinetuneLoop(epochs=1, seed=7, progress=False))
    finetune(checkpoint, sentiment_data(48, 1), sentiment_data(16, 2), sentiment_data(16, 3), config,
             tmp_path / "run")
    info = json.loads((tmp_path / "run" / "train" / "run.json").read_text())
    assert info["seed"] == 7 and info["train_config"]["lr"] == config.train.lr
    assert info["versions"]["torch"] == torch.__version__
    assert info["finetune"]["task"] == "sentiment"
