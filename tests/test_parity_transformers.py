"""Live parity with transformers at the full roberta-base architecture (seeded random weights).

Both directions: weights written by transformers' own save_pretrained load into minirob and give
the same numbers; minirob's save_pretrained loads into transformers' matching class with no
missing or unexpected keys. Tolerance 1e-5 in float32 on every hidden state, attention map and
task output, over a right-padded batch of three sequences of different lengths.
"""

import pytest
import torch

import minirob

transformers = pytest.importorskip("transformers", reason="live parity needs transformers (dev extra)")

TOLERANCE = 1e-5
CLASSES = [
    "RobertaModel",
    "RobertaForMaskedLM",
    "RobertaForSequenceClassification",
    "RobertaForTokenClassification",
]
pytestmark = pytest.mark.xdist_group("roberta-base")  # one worker holds the big models


def padded_batch():
    ids = torch.tensor(
        [
            [0, 31414, 232, 328, 740, 1140, 12695, 69, 46078, 1588, 2],
            [0, 713, 16, 10, 1296, 2, 1, 1, 1, 1, 1],
            [0, 100, 657, 2, 1, 1, 1, 1, 1, 1, 1],
        ]
    )
    return ids, (ids != 1).long()


def roberta_base_config(**extra):
    """roberta-base's config.json values (transformers' class defaults differ: 512 positions,
    2 token types, LayerNorm eps 1e-12)."""
    return transformers.RobertaConfig(
        vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1,
        layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2, **extra,
    )


def outputs_of(output, class_name):
    return output.last_hidden_state if class_name == "RobertaModel" else output.logits


@pytest.mark.parametrize("class_name", CLASSES)
def test_transformers_checkpoint_loads_into_minirob(tmp_path, class_name):
    torch.manual_seed(0)
    reference = getattr(transformers, class_name)(
        roberta_base_config(num_labels=3, attn_implementation="eager")).eval()
    reference.save_pretrained(tmp_path)
    ours = getattr(minirob, class_name).from_pretrained(tmp_path).eval()
    ids, mask = padded_batch()
    with torch.no_grad():
        expected = reference(ids, attention_mask=mask, output_hidden_states=True,
                             output_attentions=True)
        got = ours(ids, attention_mask=mask)
        encoder = ours if class_name == "RobertaModel" else ours.roberta
        trace = encoder.trace(ids, mask)
    real = mask.bool()
    diff = (got - outputs_of(expected, class_name)).abs()
    worst = (diff[real] if diff.dim() == 3 else diff).max().item()
    assert worst <= TOLERANCE, f"{class_name} output differs by {worst:.2e}"
    assert len(trace.hidden_states) == 13 and len(trace.attentions) == 12
    for i, (a, b) in enumerate(zip(trace.hidden_states, expected.hidden_states)):
        assert (a - b).abs().max().item() <= TOLERANCE, f"hidden state {i}"
    for i, (a, b) in enumerate(zip(trace.attentions, expected.attentions)):
        assert (a - b).abs().max().item() <= TOLERANCE, f"attention map {i}"
    if class_name == "RobertaModel":
        with torch.no_grad():  # the (untrained, but present) pooler too
            assert (ours.pool(got) - expected.pooler_output).abs().max() <= TOLERANCE


@pytest.mark.parametrize("class_name", CLASSES)
def test_minirob_checkpoint_loads_into_transformers(tmp_path, class_name):
    torch.manual_seed(1)
    ours = getattr(minirob, class_name)(minirob.RobertaConfig.base(num_labels=3)).eval()
    ours.save_pretrained(tmp_path / "minirob")
    reference, info = getattr(transformers, class_name).from_pretrained(
        tmp_path / "minirob", output_loading_info=True, attn_implementation="eager"
    )
    assert info["missing_keys"] == [] or info["missing_keys"] == set()
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    reference.eval()
    ids, mask = padded_batch()
    with torch.no_grad():
        diff = (ours(ids, attention_mask=mask) - outputs_of(reference(ids, attention_mask=mask),
                                                           class_name)).abs()
    assert diff.max().item() <= TOLERANCE
    # minirob -> transformers -> minirob is bit-identical
    reference.save_pretrained(tmp_path / "hf")
    again = getattr(minirob, class_name).from_pretrained(tmp_path / "hf")
    for (name, a), (_, b) in zip(ours.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name


def test_parameter_count_matches_transformers():
    # transformers counts RobertaForMaskedLM(roberta-base) at 124,697,433 (tied decoder once)
    ours = minirob.RobertaForMaskedLM(minirob.RobertaConfig.base())
    reference = transformers.RobertaForMaskedLM(roberta_base_config())
    assert ours.num_parameters() == reference.num_parameters() == 124_697_433
