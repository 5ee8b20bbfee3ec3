"""benchmarks/pos_payoff.py, pretraining_scaling.py and payoff_report.py: how a recipe is picked,
which runs count as finished, and what the tables say (on hand-made results; nothing is trained)."""

from __future__ import annotations

import json

from benchmarks.payoff_report import payoff_table, scaling_table, write_report
from benchmarks.pos_payoff import DEFAULT, picked_recipe
from benchmarks.pretraining_scaling import finished


def search_row(size: str, lr: float, random_init: bool, best: float) -> dict:
    return {"size": size, "changes": {"lr": lr}, "random_init": random_init,
            "validation": [best - 0.1, best], "best_epoch": 2, "steps": 10}


def cell(size: str, seed: int, random_init: bool, test: float) -> dict:
    return {"size": size, "seed": seed, "random_init": random_init, "test": test, "steps": 70,
            "seconds": 1.0, "train_examples": int(size) if size != "all" else 51527, "start": "runs/s10",
            "recipe": {"epochs": 10, "batch_size": 16, "lr": 1e-3}}


def test_recipe_is_picked_by_the_mean_of_both_sides_not_the_pretrained_one():
    # lr 3e-3 is the pretrained side's favourite (0.90) but starves the random side (0.50):
    # mean 0.70; lr 1e-3 gives 0.80 and 0.70, mean 0.75, and must win.
    results = {"search": [search_row("100", 3e-3, False, 0.90), search_row("100", 3e-3, True, 0.50),
                          search_row("100", 1e-3, False, 0.80), search_row("100", 1e-3, True, 0.70)]}
    assert picked_recipe(results, "100") == dict(DEFAULT["100"], lr=1e-3)
    assert picked_recipe({}, "1000") == DEFAULT["1000"]  # nothing searched: the starting point


def test_all_sentences_takes_the_1000_sentence_learning_rate_and_windows():
    results = {"search": [search_row("1000", 3e-4, False, 0.9), search_row("1000", 3e-4, True, 0.9),
                          search_row("1000", 3e-3, False, 0.1), search_row("1000", 3e-3, True, 0.1)]}
    assert picked_recipe(results, "all") == dict(DEFAULT["all"], lr=3e-4)
    for row in results["search"]:
        row["changes"]["window"] = 32
    assert picked_recipe(results, "all") == dict(DEFAULT["all"], lr=3e-4, window=32)


def test_payoff_table_pairs_seeds_and_gives_the_difference(tmp_path):
    results = {"cells": [cell("100", 0, False, 0.80), cell("100", 0, True, 0.70),
                         cell("100", 1, False, 0.84), cell("100", 1, True, 0.74),
                         cell("1000", 0, False, 0.90)]}  # no random partner: not a row
    table = "\n".join(payoff_table(results))
    assert "| 100 | 10 ep, batch 16, lr 0.001; 70 steps | 0 | 80.0% | 70.0% | +10.0 |" in table
    assert "**82.0%** | **72.0%** | **+10.0**" in table
    assert "1,000" not in table
    write_report({**results, "commands": []}, tmp_path / "p.md", tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0


def test_scaling_table_gives_each_run_its_difference_to_random_init():
    def entry(minutes, mlm, pos):
        return {"minutes": minutes, "steps": 100, "mlm_accuracy": mlm,
                "downstream": {"pos_1000": {"0": {"test": pos}}}}

    results = {"runs": {"random": entry(0, None, 0.70), "s1": entry(1, 0.15, 0.72)}}
    table = "\n".join(scaling_table(results))
    assert "| `s1` | 1 | 100 | 15.0% | 72.0% (+2.0) | - | - |" in table
    assert "| random init | 0 | 100 | - | 70.0% | - | - |" in table
    # A second pretraining run of the same budget: one row, every cell averaged (hand: (72+76)/2).
    results["runs"]["s1b"] = entry(1, 0.17, 0.76)
    table = "\n".join(scaling_table(results))
    assert "| `s1`, `s1b` | 1 | 100 | 16.0% (15.0% / 17.0%) | 74.0% (+4.0) [2 cells] | - | - |" in table
    # Differences pair each cell with the random-init cell of its own fine-tuning seed: random
    # seed 1 reads 80%, s1's seed-1 cell 78%, so by hand (72-70, 76-70, 78-80)/3 = +2.0 points.
    results["runs"]["random"]["downstream"]["pos_1000"]["1"] = {"test": 0.80}
    results["runs"]["s1"]["downstream"]["pos_1000"]["1"] = {"test": 0.78}
    table = "\n".join(scaling_table(results))
    assert "| `s1`, `s1b` | 1 | 100 | 16.0% (15.0% / 17.0%) | 75.3% (+2.0) [3 cells] | - | - |" in table


def test_a_run_counts_only_with_its_model_and_final_evaluation(tmp_path):
    assert not finished(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert not finished(tmp_path)  # still training: the final evaluation comes first
    (tmp_path / "final_eval.json").write_text(json.dumps({"accuracy": 0.3}))
    assert finished(tmp_path)


def test_windows_keep_every_word_once_within_the_token_limit(tmp_path):
    from benchmarks.pos_payoff import windows
    from minirob import Tokenizer
    from tests.finetune_fixtures import pos_data, tiny_checkpoint

    tokenizer = Tokenizer.from_pretrained(tiny_checkpoint(tmp_path))
    sentences = pos_data(40, 0)
    long = type(sentences[0])(sum((s.words for s in sentences[:6]), []), sum((s.tags for s in sentences[:6]), []))
    pieces = windows([long, *sentences], tokenizer, 12)
    assert len(pieces) > len(sentences) + 1  # the long sentence was cut
    assert max(len(tokenizer.encode_words(p.words)) for p in pieces) <= 12  # <s> and </s> included
    assert sum((p.words for p in pieces), []) == sum((s.words for s in [long, *sentences]), [])
    assert sum((p.tags for p in pieces), []) == sum((s.tags for s in [long, *sentences]), [])


def test_probe_word_features_give_one_row_per_word_at_every_depth(tmp_path):
    from benchmarks.probe_features import word_features
    from minirob import RobertaModel, Tokenizer
    from minirob.tasks import label_list
    from tests.finetune_fixtures import pos_data, tiny_checkpoint

    run = tiny_checkpoint(tmp_path)
    sentences = pos_data(30, 0)
    labels = label_list(sentences, "pos")
    depths, tags = word_features(RobertaModel.from_pretrained(run), Tokenizer.from_pretrained(run),
                                 sentences, labels, 64)
    assert len(depths) == 3  # embeddings, layer 1, layer 2
    n_words = sum(len(s.words) for s in sentences)
    assert all(d.shape == (n_words, 32) for d in depths)
    assert [labels[t] for t in tags] == sum((s.tags for s in sentences), [])
