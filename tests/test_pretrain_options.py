"""``minirob pretrain`` refuses out-of-range numbers in the parser (exit 2), naming the option and the
value, before any corpus is read; the bounds are the ones stated in commands/pretrain.py."""

import pytest

from minirob.cli import main

BAD = [
    ("--threads", "-1"), ("--threads", "0"), ("--hidden", "1048576"), ("--hidden", "0"), ("--layers", "0"),
    ("--heads", "0"), ("--layers", "129"), ("--vocab-size", "1000000000"), ("--minutes", "nan"),
    ("--minutes", "0"), ("--minutes", "inf"), ("--seed", str(2**64)), ("--seed", "-1"), ("--warmup", "-0.1"),
    ("--warmup", "nan"), ("--lr", "0"), ("--lr", "nan"), ("--mask-prob", "0"), ("--mask-prob", "1.5"),
    ("--dropout", "1"), ("--dropout", "-0.5"), ("--steps", "0"), ("--batch-size", "0"), ("--max-length", "2"),
    ("--accumulation", "0"), ("--eval-every", "-1"), ("--checkpoint-every", "-2"), ("--weight-decay", "nan"),
]


@pytest.mark.parametrize("option, value", BAD, ids=[f"{o} {v}" for o, v in BAD])
def test_out_of_range_option_is_refused_naming_it(option, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--corpus", "files", "--files", str(tmp_path / "none.txt"), "--out", str(tmp_path / "r"),
              option, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {option}" in err and repr(value) in err, err
    assert not (tmp_path / "r").exists()  # nothing started


def test_good_values_parse_into_the_recipe():
    import argparse

    from minirob.commands import pretrain as command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["pretrain", "--layers", "3", "--hidden", "64", "--heads", "2", "--steps", "7",
                              "--lr", "1e-4", "--seed", str(2**32 - 1), "--mask-prob", "0.2", "--no-progress"])
    recipe = command.recipe_from_args(args)
    assert recipe.model_overrides == {"num_hidden_layers": 3, "hidden_size": 64, "intermediate_size": 256,
                                      "num_attention_heads": 2}
    assert (recipe.train.max_steps, recipe.train.minutes, recipe.train.lr) == (7, None, 1e-4)
    assert recipe.train.seed == 2**32 - 1 and recipe.train.progress is False and recipe.masking.probability == 0.2
    # no budget given: the recipe's 10 minutes; other loop fields keep the recipe's values
    default = command.recipe_from_args(parser.parse_args(["pretrain"]))
    assert (default.train.minutes, default.train.max_steps, default.train.lr) == (10.0, None, 3e-3)
