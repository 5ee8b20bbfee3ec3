"""Properties any correct encoder has, checked by hypothesis on small random models."""

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minirob
from minirob.embeddings import roberta_position_ids

PAD = 1
CONFIG = minirob.RobertaConfig(
    vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=64, max_position_embeddings=40,
)
TOL = 1e-5


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return minirob.RobertaModel(CONFIG).eval()


def sequence(min_len=1, max_len=20):
    # real (non-padding) tokens: any id but the padding id
    token = st.integers(0, CONFIG.vocab_size - 1).filter(lambda t: t != PAD)
    return st.lists(token, min_size=min_len, max_size=max_len)


def pad_batch(seqs):
    length = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), length), PAD)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = torch.tensor(s)
    return ids, (ids != PAD).long()


@settings(max_examples=40, deadline=None)
@given(seq=sequence(), extra=st.integers(1, 15))
def test_padding_does_not_change_real_tokens(model, seq, extra):
    ids, mask = pad_batch([seq])
    padded, padded_mask = pad_batch([seq + [PAD] * extra])
    padded_mask[0, len(seq):] = 0
    with torch.no_grad():
        alone = model(ids, mask)
        with_padding = model(padded, padded_mask)
    assert (alone - with_padding[:, : len(seq)]).abs().max() <= TOL


@settings(max_examples=30, deadline=None)
@given(seqs=st.lists(sequence(), min_size=2, max_size=4))
def test_output_does_not_depend_on_the_rest_of_the_batch(model, seqs):
    ids, mask = pad_batch(seqs)
    with torch.no_grad():
        together = model(ids, mask)
        for row, s in enumerate(seqs):
            alone = model(*pad_batch([s]))
            assert (together[row, : len(s)] - alone[0]).abs().max() <= TOL


@settings(max_examples=30, deadline=None)
@given(seqs=st.lists(sequence(), min_size=1, max_size=4))
def test_attention_rows_sum_to_one_and_ignore_padding(model, seqs):
    ids, mask = pad_batch(seqs)
    with torch.no_grad():
        trace = model.trace(ids, mask)
    for weights in trace.attentions:  # (B, heads, T, T)
        assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=1e-6)
        padding_keys = (mask == 0)[:, None, None, :].expand_as(weights)
        assert torch.all(weights[padding_keys] <= 1e-12)


@given(rows=st.lists(st.lists(st.sampled_from([0, 1, 2, 5, 7]), min_size=1, max_size=12),
                     min_size=1, max_size=4).filter(lambda r: len({len(x) for x in r}) == 1))
def test_position_ids_follow_the_roberta_rule(rows):
    # Hand rule (fairseq's make_positions): real tokens are numbered pad+1, pad+2, ... in order,
    # skipping padding, which itself gets position `pad`.
    expected = []
    for row in rows:
        count, out = 0, []
        for token in row:
            if token == PAD:
                out.append(PAD)
            else:
                count += 1
                out.append(PAD + count)
        expected.append(out)
    assert roberta_position_ids(torch.tensor(rows), PAD).tolist() == expected


@pytest.fixture(scope="module")
def fused_and_manual():
    torch.manual_seed(0)
    fused = minirob.RobertaForMaskedLM(CONFIG).eval()
    manual = minirob.RobertaForMaskedLM(
        minirob.RobertaConfig(**{**CONFIG.__dict__, "attention_backend": "manual"})
    ).eval()
    manual.load_state_dict(fused.state_dict())
    return fused, manual


@settings(max_examples=20, deadline=None)
@given(seqs=st.lists(sequence(), min_size=1, max_size=3))
def test_fused_and_written_out_attention_agree(fused_and_manual, seqs):
    fused, manual = fused_and_manual
    ids, mask = pad_batch(seqs)
    with torch.no_grad():
        assert (fused(ids, mask) - manual(ids, mask)).abs().max() <= TOL


def test_predict_at_gives_the_rows_of_the_full_logits():
    torch.manual_seed(0)
    mlm = minirob.RobertaForMaskedLM(CONFIG).eval()
    ids, mask = pad_batch([[0, 5, 6, 7, 2], [0, 9, 2]])
    where = torch.zeros_like(ids, dtype=torch.bool)
    where[0, 2] = where[1, 1] = True
    with torch.no_grad():
        full = mlm(ids, mask)
        picked = mlm(ids, mask, predict_at=where)
    assert picked.shape == (2, CONFIG.vocab_size)
    assert (picked - full[where]).abs().max() <= TOL


def test_initialisation_follows_the_reference():
    torch.manual_seed(0)
    model = minirob.RobertaForMaskedLM(minirob.RobertaConfig.tiny())
    up = model.roberta.encoder.layers[0].feed_forward.up
    assert abs(up.weight.std().item() - 0.02) < 0.001  # N(0, 0.02): 262k samples
    assert torch.count_nonzero(up.bias) == 0
    token = model.roberta.embeddings.token.weight
    assert torch.count_nonzero(token[1]) == 0  # the padding row
    assert abs(token.std().item() - 0.02) < 0.001
    norm = model.roberta.encoder.layers[0].output_norm
    assert torch.all(norm.weight == 1) and torch.count_nonzero(norm.bias) == 0
    assert torch.count_nonzero(model.lm_head.bias) == 0


def test_dropout_is_active_in_training_and_off_in_eval():
    torch.manual_seed(0)
    model = minirob.RobertaModel(CONFIG)
    ids, mask = pad_batch([[0, 5, 6, 7, 2]])
    model.train()
    assert not torch.equal(model(ids, mask), model(ids, mask))
    model.eval()
    assert torch.equal(model(ids, mask), model(ids, mask))


@pytest.mark.parametrize("act", ["gelu", "gelu_new", "relu"])
def test_inference_feed_forward_equals_the_autograd_path(act):
    # Without autograd the feed-forward activates its (B, T, intermediate) buffer in place; the
    # numbers must be exactly those of the out-of-place path autograd takes, in float32 and under
    # bfloat16 autocast, and gradients must still flow when they are asked for.
    torch.manual_seed(0)
    model = minirob.RobertaModel(dataclasses.replace(CONFIG, hidden_act=act)).eval()
    ids = torch.randint(2, CONFIG.vocab_size, (3, 9))
    for dtype in (None, torch.bfloat16):
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            with_grad = model(ids)
            with torch.no_grad():
                without = model(ids)
            with torch.inference_mode():
                inference = model(ids)
        assert with_grad.requires_grad and not without.requires_grad
        assert torch.equal(with_grad.detach(), without) and torch.equal(without, inference)
    with_grad.float().sum().backward()
    assert model.encoder.layers[0].feed_forward.up.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("cls", [minirob.RobertaModel, minirob.RobertaForMaskedLM,
                                 minirob.RobertaForSequenceClassification, minirob.RobertaForTokenClassification])
def test_every_model_initialises_its_weights_once(cls, monkeypatch):
    """A task model used to initialise its encoder twice (once inside RobertaModel, once itself)."""
    from minirob.pretrained import PreTrainedModel

    calls = []
    real = PreTrainedModel.init_weights
    monkeypatch.setattr(PreTrainedModel, "init_weights", lambda self: calls.append(type(self)) or real(self))
    cls(minirob.RobertaConfig.tiny(vocab_size=64))
    assert calls == [cls]


def test_tiny_is_the_pretraining_recipes_shape():
    """One word, one model: `minirob pretrain --preset tiny` builds RobertaConfig.tiny() (positions aside)."""
    from minirob.pretrain import PretrainRecipe

    built = PretrainRecipe().model_config(vocab_size=8192)
    tiny = minirob.RobertaConfig.tiny()
    shape = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
             "hidden_dropout_prob", "attention_probs_dropout_prob", "vocab_size")
    assert {f: getattr(built, f) for f in shape} == {f: getattr(tiny, f) for f in shape}
    assert (tiny.num_hidden_layers, tiny.hidden_size) == (2, 128)
    assert (minirob.RobertaConfig.small().num_hidden_layers, minirob.RobertaConfig.small().hidden_size) == (4, 256)
