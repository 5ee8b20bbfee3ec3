"""minirob against committed transformers outputs (no transformers needed at test time).

tests/reference/roberta_small.safetensors was written by tests/reference/make_reference.py with
the transformers version stored in its metadata: a small RoBERTa's weights under HF names, a
right-padded batch, and transformers' hidden states, attention maps and task logits.
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import minirob

REFERENCE = Path(__file__).parent / "reference" / "roberta_small.safetensors"
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def reference():
    with safe_open(str(REFERENCE), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    assert metadata["transformers_version"]  # where the numbers came from
    return tensors, json.loads(metadata["config"])


def checkpoint_dir(tmp_path, reference, prefix):
    tensors, config = reference
    weights = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "roberta"}))
    save_file(weights, str(tmp_path / "model.safetensors"))
    return tmp_path


@pytest.mark.parametrize("backend", ["fused", "manual"])
def test_masked_lm_matches_reference(tmp_path, reference, backend):
    tensors, _ = reference
    path = checkpoint_dir(tmp_path, reference, "weights.mlm.")
    model = minirob.RobertaForMaskedLM.from_pretrained(path, attention_backend=backend).eval()
    ids, mask = tensors["input.ids"], tensors["input.mask"]
    with torch.no_grad():
        logits = model(ids, attention_mask=mask)
        trace = model.roberta.trace(ids, mask)
    real = mask.bool()
    assert (logits - tensors["output.mlm_logits"])[real].abs().max() <= TOLERANCE
    assert len(trace.hidden_states) == 4 and len(trace.attentions) == 3
    for i, hidden in enumerate(trace.hidden_states):
        assert (hidden - tensors[f"output.hidden.{i}"]).abs().max() <= TOLERANCE, f"hidden {i}"
    for i, weights in enumerate(trace.attentions):
        assert (weights - tensors[f"output.attention.{i}"]).abs().max() <= TOLERANCE, f"attn {i}"


def test_classification_heads_match_reference(tmp_path, reference):
    tensors, _ = reference
    ids, mask = tensors["input.ids"], tensors["input.mask"]
    clf = minirob.RobertaForSequenceClassification.from_pretrained(
        checkpoint_dir(tmp_path / "c", reference, "weights.cls.")
    ).eval()
    tag = minirob.RobertaForTokenClassification.from_pretrained(
        checkpoint_dir(tmp_path / "t", reference, "weights.tag.")
    ).eval()
    with torch.no_grad():
        assert (clf(ids, mask) - tensors["output.cls_logits"]).abs().max() <= TOLERANCE
        diff = (tag(ids, mask) - tensors["output.token_logits"])[mask.bool()]
    assert diff.abs().max() <= TOLERANCE
    assert clf.load_report.newly_initialised == []


@pytest.fixture(autouse=True)
def _mkdirs(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "t").mkdir()
