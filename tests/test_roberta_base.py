"""roberta-base itself, against the values published in transformers' integration tests
(tests/models/roberta/test_modeling_roberta.py: RobertaModelIntegrationTest, tolerance 1e-4).

The weights cannot be downloaded here. Point MINIROB_ROBERTA_BASE at a local copy (an HF directory
with config.json + model.safetensors or pytorch_model.bin, or a fairseq model.pt directory) to run:

    MINIROB_ROBERTA_BASE=/path/to/roberta-base bash scripts/test.sh tests/test_roberta_base.py
"""

import os

import pytest
import torch

import minirob

PATH = os.environ.get("MINIROB_ROBERTA_BASE")
pytestmark = pytest.mark.skipif(
    not PATH,
    reason="roberta-base weights are not available offline; set MINIROB_ROBERTA_BASE to a local copy",
)

INPUT_IDS = torch.tensor([[0, 31414, 232, 328, 740, 1140, 12695, 69, 46078, 1588, 2]])
MLM_LOGITS_3x3 = torch.tensor(
    [[33.8802, -4.3103, 22.7761], [4.6539, -2.8098, 13.6253], [1.8228, -3.6898, 8.8600]]
)
LAST_HIDDEN_3x3 = torch.tensor(
    [[-0.0231, 0.0782, 0.0074], [-0.1854, 0.0540, -0.0175], [0.0548, 0.0799, 0.1687]]
)


def test_masked_lm_logits_match_published_values():
    model = minirob.RobertaForMaskedLM.from_pretrained(PATH).eval()
    with torch.no_grad():
        logits = model(INPUT_IDS)
    assert logits.shape == (1, 11, 50265)
    assert torch.allclose(logits[0, :3, :3], MLM_LOGITS_3x3, atol=1e-4)


def test_last_hidden_state_matches_published_values():
    model = minirob.RobertaModel.from_pretrained(PATH).eval()
    with torch.no_grad():
        hidden = model(INPUT_IDS)
    assert hidden.shape == (1, 11, 768)
    assert torch.allclose(hidden[0, :3, :3], LAST_HIDDEN_3x3, atol=1e-4)
