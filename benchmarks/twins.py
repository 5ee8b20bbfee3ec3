"""A minirob model and its transformers twin: same architecture, same weights, same device.

Comparing speed is only fair when both sides do the same work. The twin is built from minirob's
own config (through the HF ``config.json`` dict, as a user loading a saved minirob model would)
and receives minirob's weights through :func:`minirob.weights.minirob_to_hf`, so the two compute
the same function; :func:`check_same_function` verifies it before any timing.
"""

from __future__ import annotations

import torch
import transformers
from torch import nn

import minirob
from minirob.weights import minirob_to_hf

# Both models built without BERT's pooler: RoBERTa never trained it, and it is work neither needs.
POOLER_FREE = {"add_pooling_layer": False}


def build_minirob(class_name: str, config: minirob.RobertaConfig, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    cls = getattr(minirob, class_name)
    return cls(config, **POOLER_FREE) if class_name == "RobertaModel" else cls(config)


def build_transformers(class_name: str, config: minirob.RobertaConfig) -> nn.Module:
    """transformers' class of that name for minirob's config, with its default attention."""
    hf_config = transformers.RobertaConfig(**config.to_hf_dict())
    cls = getattr(transformers, class_name)
    return cls(hf_config, **POOLER_FREE) if class_name == "RobertaModel" else cls(hf_config)


def hf_twin(model: nn.Module) -> nn.Module:
    """transformers' class of the same name and shape as ``model``, holding the same weights."""
    twin = build_transformers(model.hf_architecture, model.config)
    missing, unexpected = twin.load_state_dict(minirob_to_hf(model), strict=False)
    # The only weights the mapping does not write are transformers' tied copies of the decoder.
    untied = [name for name in missing if not name.startswith("lm_head.decoder.")]
    if untied or unexpected:
        raise RuntimeError(f"twin weights do not line up: missing {untied}, unexpected {unexpected}")
    if hasattr(twin, "tie_weights"):
        twin.tie_weights()
    return twin


def attention_implementation(twin: nn.Module) -> str:
    """Which attention transformers chose by default ("sdpa", "eager", ...)."""
    return str(getattr(twin.config, "_attn_implementation", "unknown"))


@torch.no_grad()
def check_same_function(model: nn.Module, twin: nn.Module, input_ids: torch.Tensor) -> float:
    """Largest |difference| of the two models' outputs (eval mode, float32); raise if > 1e-4."""
    was_training = model.training, twin.training
    model.eval()
    twin.eval()
    ours = model(input_ids)
    theirs = twin(input_ids)
    theirs = theirs.logits if hasattr(theirs, "logits") else theirs.last_hidden_state
    model.train(was_training[0])
    twin.train(was_training[1])
    error = float((ours - theirs).abs().max())
    if not error <= 1e-4:
        raise RuntimeError(f"minirob and its transformers twin disagree by {error:.2e}")
    return error


FIRST_ORDINARY_ID = 4  # 0..3 are <s>, <pad>, </s>, <unk> in RoBERTa's vocabulary


def make_inputs(config: minirob.RobertaConfig, batch: int, length: int, device, seed: int = 0):
    """Random ordinary tokens between <s> and </s>, and an all-ones attention mask: (B, T) each."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(FIRST_ORDINARY_ID, config.vocab_size - 1, (batch, length), generator=generator)
    ids[:, 0], ids[:, -1] = config.bos_token_id, config.eos_token_id
    return ids.to(device), torch.ones_like(ids).to(device)


def pair(class_name: str, config: minirob.RobertaConfig, device: torch.device):
    """(minirob model, transformers twin) on ``device``, checked to compute the same function."""
    ours = build_minirob(class_name, config).to(device)
    theirs = hf_twin(ours).to(device)
    check_same_function(ours, theirs, make_inputs(config, 2, 16, device)[0])
    return ours, theirs
