"""Bad input to a model: a ValueError (minirob.InputError) that says which and by how much."""

import pytest
import torch

import minirob

CONFIG = minirob.RobertaConfig(
    vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
    intermediate_size=32, max_position_embeddings=12,  # 10 tokens after RoBERTa's offset of 2
)


@pytest.fixture(scope="module")
def model():
    return minirob.RobertaForMaskedLM(CONFIG).eval()


@pytest.mark.parametrize(
    "ids, mask, message",
    [
        (torch.tensor([[0, 50, 2]]), None, r"token id 50 is outside the vocabulary \(vocab_size=50"),
        (torch.tensor([[0, -3, 2]]), None, r"token id -3 is outside the vocabulary"),
        (torch.zeros(1, 13, dtype=torch.long), None, r"length 13 exceeds .* maximum of 10 tokens by 3"),
        (torch.tensor([[0, 5, 2]]), torch.ones(1, 4), r"attention_mask has shape \(1, 4\) but input_ids has shape \(1, 3\)"),
        (torch.tensor([0, 5, 2]), None, r"shape \(batch, length\), got \(3,\)"),
        (torch.tensor([[0.0, 5.0, 2.0]]), None, r"integer token ids, got dtype torch.float32"),
        ([[0, 5, 2]], None, r"must be a torch.Tensor, got list"),
    ],
)
def test_bad_inputs_raise_value_errors_that_say_what(model, ids, mask, message):
    with pytest.raises(ValueError, match=message) as info:
        model(ids, attention_mask=mask)
    assert isinstance(info.value, minirob.InputError)


def test_token_type_out_of_range(model):
    ids = torch.tensor([[0, 5, 2]])
    with pytest.raises(minirob.InputError, match="type_vocab_size=1"):
        model(ids, token_type_ids=torch.ones_like(ids))


def test_longest_allowed_sequence_runs(model):
    assert model(torch.full((1, 10), 7)).shape == (1, 10, 50)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"hidden_size": 30, "num_attention_heads": 4}, "hidden_size=30 is not divisible by num_attention_heads=4"),
        ({"hidden_act": "swish"}, "hidden_act='swish' is not one of gelu"),
        ({"attention_backend": "flash"}, "attention_backend='flash' is not one of fused, manual"),
        ({"vocab_size": 0}, "vocab_size must be a positive integer"),
        ({"hidden_dropout_prob": 1.5}, r"hidden_dropout_prob must be in \[0, 1\)"),
        ({"max_position_embeddings": 2}, "leaves no room for tokens"),
    ],
)
def test_bad_configs(overrides, message):
    with pytest.raises(minirob.ConfigError, match=message):
        minirob.RobertaConfig.tiny(**overrides)


def test_config_round_trips_through_hf_json(tmp_path):
    config = minirob.RobertaConfig.tiny(num_labels=3, id2label={0: "neg", 1: "neu", 2: "pos"})
    config.save(tmp_path / "config.json", architectures=["RobertaForSequenceClassification"])
    again = minirob.RobertaConfig.load(tmp_path)
    assert again == config


def test_config_json_errors_name_the_file_and_line(tmp_path):
    (tmp_path / "config.json").write_text('{\n  "hidden_size": 64,\n  oops\n}')
    with pytest.raises(minirob.ConfigError, match=r"config.json: invalid JSON at line 3"):
        minirob.RobertaConfig.load(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(minirob.ConfigError, match="model_type='gpt2' is not a RoBERTa or BERT"):
        minirob.RobertaConfig.load(tmp_path)
