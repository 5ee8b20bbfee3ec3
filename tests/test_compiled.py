"""compile_model: same object, same names, same numbers (eval), and predict_at with changing N.

Reference: the same model run eagerly (torch.compile must not change the function computed).
Compiling takes tens of seconds on a CPU, hence one small model and the ``slow`` mark.
"""

import copy

import pytest
import torch

import minirob
from minirob.compiled import compile_model

pytestmark = pytest.mark.slow

SMALL = dict(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
             intermediate_size=32, max_position_embeddings=40)


def test_compiled_model_keeps_names_and_computes_the_same_function():
    torch.manual_seed(0)
    eager = minirob.RobertaForMaskedLM(minirob.RobertaConfig.tiny(**SMALL)).eval()
    compiled = compile_model(copy.deepcopy(eager))
    assert list(compiled.state_dict()) == list(eager.state_dict())  # no "_orig_mod." prefixes
    ids = torch.randint(4, 63, (3, 12))
    mask = torch.ones_like(ids)
    mask[2, 8:] = 0
    with torch.no_grad():
        assert torch.allclose(compiled(ids, mask), eager(ids, mask), atol=1e-5)
        # Two different numbers of predicted rows (N = 4, then 7): a recompile, same numbers.
        for count in (4, 7):
            at = torch.zeros_like(ids, dtype=torch.bool)
            at.view(-1)[torch.randperm(ids.numel())[:count]] = True
            got = compiled(ids, mask, predict_at=at)
            assert got.shape == (count, 64)
            assert torch.allclose(got, eager(ids, mask, predict_at=at), atol=1e-5)


def test_compiled_model_trains():
    torch.manual_seed(0)
    model = compile_model(minirob.RobertaForTokenClassification(
        minirob.RobertaConfig.tiny(**SMALL, num_labels=3)))
    ids = torch.randint(4, 63, (2, 10))
    loss = torch.nn.functional.cross_entropy(model(ids).flatten(0, 1), torch.zeros(20).long())
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
