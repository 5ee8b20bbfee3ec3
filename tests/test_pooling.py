"""Mean pooling for sequence classification (config.classifier_pooling = "mean").

Checked against a hand computation from the encoder's own output, for padding invariance, and for
the config.json round trip (the key is written only when it differs from transformers' <s> head).
"""

import json

import pytest
import torch

from minirob import RobertaConfig, RobertaForSequenceClassification
from minirob.errors import ConfigError


def config(**extra):
    return RobertaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=40, num_labels=3,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **extra)


def test_mean_pooling_is_the_average_of_real_tokens():
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(config(classifier_pooling="mean")).eval()
    ids = torch.tensor([[0, 11, 12, 13, 2], [0, 21, 2, 1, 1]])
    mask = (ids != 1).long()
    with torch.no_grad():
        logits = model(ids, mask)
        hidden = model.roberta(ids, mask)
        by_hand = torch.stack([hidden[0, :5].mean(0), hidden[1, :3].mean(0)])  # padding left out
        head = model.classifier
        expected = head.out_proj(torch.tanh(head.dense(by_hand)))
    torch.testing.assert_close(logits, expected)


def test_mean_pooling_ignores_padding():
    torch.manual_seed(1)
    model = RobertaForSequenceClassification(config(classifier_pooling="mean")).eval()
    short = torch.tensor([[0, 5, 6, 7, 2]])
    padded = torch.tensor([[0, 5, 6, 7, 2, 1, 1, 1]])
    with torch.no_grad():
        a = model(short, torch.ones_like(short))
        b = model(padded, (padded != 1).long())
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_pooling_in_config_json(tmp_path):
    first = config().to_hf_dict()
    assert "classifier_pooling" not in first  # transformers' own config.json, unchanged
    model = RobertaForSequenceClassification(config(classifier_pooling="mean"))
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["classifier_pooling"] == "mean"
    again = RobertaForSequenceClassification.from_pretrained(tmp_path)
    assert again.config.classifier_pooling == "mean"
    with pytest.raises(ConfigError, match="classifier_pooling"):
        config(classifier_pooling="max")
