"""Regenerate tests/reference/roberta_small.safetensors from transformers.

The committed file lets the core tests check minirob against the reference implementation without
transformers installed. It holds a small RoBERTa's weights (HF names, as transformers initialises
them with a fixed seed), a right-padded batch, and transformers' outputs for every task model:
all hidden states, all attention maps, MLM / classification / token-classification logits.

    .venv/bin/python tests/reference/make_reference.py
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file

HERE = Path(__file__).parent
CONFIG = dict(
    vocab_size=300,
    hidden_size=64,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=128,
    max_position_embeddings=66,
    type_vocab_size=1,
    layer_norm_eps=1e-5,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
    num_labels=3,
)


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Three right-padded sequences of lengths 9, 5 and 12 (<s> ... </s> then <pad>=1)."""
    generator = torch.Generator().manual_seed(1)
    lengths = [9, 5, 12]
    ids = torch.full((3, 12), 1, dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(4, 300, (length,), generator=generator)
        ids[row, 0], ids[row, length - 1] = 0, 2
    return ids, (ids != 1).long()


def main() -> None:
    torch.manual_seed(0)
    config = transformers.RobertaConfig(**CONFIG, attn_implementation="eager")
    tensors: dict[str, torch.Tensor] = {}
    ids, mask = batch()
    tensors["input.ids"], tensors["input.mask"] = ids, mask
    mlm = transformers.RobertaForMaskedLM(config).eval()
    # Share one encoder across the task models so a single set of weights serves all of them.
    clf = transformers.RobertaForSequenceClassification(config).eval()
    tag = transformers.RobertaForTokenClassification(config).eval()
    clf.roberta.load_state_dict(mlm.roberta.state_dict())
    tag.roberta.load_state_dict(mlm.roberta.state_dict())
    with torch.no_grad():
        out = mlm(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
        for i, h in enumerate(out.hidden_states):
            tensors[f"output.hidden.{i}"] = h
        for i, a in enumerate(out.attentions):
            tensors[f"output.attention.{i}"] = a
        tensors["output.mlm_logits"] = out.logits
        tensors["output.cls_logits"] = clf(ids, attention_mask=mask).logits
        tensors["output.token_logits"] = tag(ids, attention_mask=mask).logits
    for prefix, model in (("weights.mlm.", mlm), ("weights.cls.", clf), ("weights.tag.", tag)):
        for name, value in model.state_dict().items():
            if name == "lm_head.decoder.weight":  # tied to the word embeddings: stored once
                continue
            tensors[prefix + name] = value.contiguous().clone()
    metadata = {
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "config": json.dumps(CONFIG),
    }
    save_file(tensors, str(HERE / "roberta_small.safetensors"), metadata=metadata)
    print(f"wrote {HERE / 'roberta_small.safetensors'} with transformers {transformers.__version__}")


if __name__ == "__main__":
    main()
