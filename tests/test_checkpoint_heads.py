"""Task heads survive the trip both ways between transformers and minirob (BERT and RoBERTa).

The reference is transformers itself: each test builds a small random transformers model with a
task head, saves it, loads it in minirob and compares logits; then saves from minirob and loads
the directory back in transformers' matching class, which must report no missing or unexpected
keys and give the same logits.
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers

import minirob

SIZES = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=37, max_position_embeddings=64)
CASES = [  # transformers class, minirob class, family
    (transformers.BertForSequenceClassification, minirob.RobertaForSequenceClassification, "bert"),
    (transformers.BertForTokenClassification, minirob.RobertaForTokenClassification, "bert"),
    (transformers.BertForMaskedLM, minirob.RobertaForMaskedLM, "bert"),
    (transformers.RobertaForSequenceClassification, minirob.RobertaForSequenceClassification,
     "roberta"),
    (transformers.RobertaForTokenClassification, minirob.RobertaForTokenClassification, "roberta"),
]


def reference_model(hf_class, family: str, seed: int = 0):
    """A random transformers model whose every weight (head included) is non-trivial."""
    torch.manual_seed(seed)
    config_class = transformers.BertConfig if family == "bert" else transformers.RobertaConfig
    sizes = dict(SIZES, max_position_embeddings=66) if family == "roberta" else SIZES
    model = hf_class(config_class(num_labels=3, **sizes)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model


def batch(family: str):
    """Two sequences, the second padded; BERT's with both token types."""
    torch.manual_seed(1)
    pad = 0 if family == "bert" else 1
    ids = torch.randint(3, 99, (2, 11))
    ids[1, 7:] = pad
    mask = (ids != pad).long()
    types = torch.zeros_like(ids)
    if family == "bert":
        types[:, 5:] = 1
    return ids, mask, types


def logits_of(model, ids, mask, types, ours: bool):
    with torch.no_grad():
        if ours:
            return model(ids, attention_mask=mask, token_type_ids=types)
        return model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits


def compare(a, b, mask):
    if a.dim() == 3:  # per token: padded positions carry no meaning
        return (a - b)[mask.bool()].abs().max().item()
    return (a - b).abs().max().item()


@pytest.mark.parametrize("hf_class, our_class, family", CASES,
                         ids=[c[0].__name__ for c in CASES])
def test_head_round_trip(tmp_path, hf_class, our_class, family):
    reference = reference_model(hf_class, family)
    reference.save_pretrained(tmp_path / "theirs")
    ours = our_class.from_pretrained(tmp_path / "theirs").eval()
    assert ours.load_report.newly_initialised == [] and ours.load_report.unused == []
    ids, mask, types = batch(family)
    expected = logits_of(reference, ids, mask, types, ours=False)
    difference = compare(logits_of(ours, ids, mask, types, ours=True), expected, mask)
    print(f"{hf_class.__name__}: transformers -> minirob, max |difference| {difference:.2g}")
    assert difference < 1e-5

    ours.save_pretrained(tmp_path / "ours")
    assert json.loads((tmp_path / "ours" / "config.json").read_text())["architectures"] == [
        hf_class.__name__]
    back, info = hf_class.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not any(info.values()), info  # no missing, unexpected or mismatched keys
    difference = compare(logits_of(back.eval(), ids, mask, types, ours=False), expected, mask)
    print(f"{hf_class.__name__}: minirob -> transformers, max |difference| {difference:.2g}")
    assert difference < 1e-5


def test_bert_pooler_starts_a_new_sequence_head(tmp_path):
    """A BertModel (no head) gives the head its trained pooler; only out_proj is new."""
    reference = reference_model(transformers.BertModel, "bert")
    reference.save_pretrained(tmp_path)
    clf = minirob.RobertaForSequenceClassification.from_pretrained(tmp_path, num_labels=4)
    assert sorted(clf.load_report.newly_initialised) == [
        "classifier.out_proj.bias", "classifier.out_proj.weight"]
    assert torch.equal(clf.classifier.dense.weight, reference.pooler.dense.weight)


def test_mean_pooling_bert_classifier_is_saved_under_its_own_name(tmp_path, caplog):
    """transformers' BERT classes read [CLS] through the pooler: a mean-pooling head cannot be
    expressed in them, so it is saved under minirob's names and a class name nobody claims."""
    reference = reference_model(transformers.BertForSequenceClassification, "bert")
    reference.save_pretrained(tmp_path / "theirs")
    ours = minirob.RobertaForSequenceClassification.from_pretrained(
        tmp_path / "theirs", classifier_pooling="mean").eval()
    ours.save_pretrained(tmp_path / "ours")
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert config["architectures"] == ["MinirobMeanPoolingBertForSequenceClassification"]
    assert config["classifier_pooling"] == "mean"
    again = minirob.RobertaForSequenceClassification.from_pretrained(tmp_path / "ours").eval()
    assert again.load_report.newly_initialised == []
    ids, mask, types = batch("bert")
    assert torch.equal(logits_of(ours, ids, mask, types, True), logits_of(again, ids, mask, types, True))
    _, info = transformers.BertForSequenceClassification.from_pretrained(
        tmp_path / "ours", output_loading_info=True)
    assert "classifier.weight" in info["missing_keys"]  # said loudly, never run as [CLS]


def test_convert_picks_the_bert_sequence_head(tmp_path):
    """``minirob convert`` on a BertForSequenceClassification keeps its head (auto model)."""
    from minirob.cli import main

    reference = reference_model(transformers.BertForSequenceClassification, "bert")
    reference.save_pretrained(tmp_path / "theirs")
    assert main(["convert", str(tmp_path / "theirs"), str(tmp_path / "out")]) == 0
    back, info = transformers.BertForSequenceClassification.from_pretrained(
        tmp_path / "out", output_loading_info=True)
    assert not any(info.values()), info
    ids, mask, types = batch("bert")
    assert compare(logits_of(back.eval(), ids, mask, types, False),
                   logits_of(reference, ids, mask, types, False), mask) < 1e-5
