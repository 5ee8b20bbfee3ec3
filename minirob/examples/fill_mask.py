"""Fill-mask with a pretrained minirob model: the smallest useful thing an MLM does.

    python -m minirob.examples.fill_mask runs/tiny "The <mask> said Friday."
"""

from __future__ import annotations

import re
import sys

import torch

from ..errors import InputError
from ..model import RobertaForMaskedLM


def load_mlm(directory):
    """A model directory written by ``minirob pretrain`` -> (RobertaForMaskedLM, Tokenizer)."""
    from ..tokenizer import Tokenizer

    model = RobertaForMaskedLM.from_pretrained(directory)
    model.eval()
    return model, Tokenizer.from_pretrained(directory)


@torch.no_grad()
def fill_mask(model, tokenizer, text: str, top: int = 5) -> list[list[tuple[str, float]]]:
    """For each ``<mask>`` in ``text``: the ``top`` (token, probability) pairs, most likely first."""
    if "<mask>" not in text:
        raise InputError(f"no <mask> in {text!r}: write <mask> where the model should fill in a word")
    # A space before <mask> belongs to the hidden word: byte-level BPE spells " said" as one token
    # "Ġsaid", and pretraining masked such whole tokens (RoBERTa's <mask> is "lstrip" for this).
    text = re.sub(r"\s+<mask>", "<mask>", text)
    encoding = tokenizer.encode(text, max_length=model.config.max_sequence_length)
    ids = torch.tensor([encoding.ids])
    at = ids == tokenizer.mask_id  # (1, T)
    if not bool(at.any()):
        raise InputError(f"the <mask> in {text!r} was cut off: the text is longer than the model's "
                         f"{model.config.max_sequence_length} tokens")
    logits = model(ids, torch.ones_like(ids), predict_at=at)  # (N, V)
    # Special tokens are never targets in pretraining; their logits are untrained noise.
    special = [i for i in (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id, tokenizer.unk_id,
                           tokenizer.mask_id) if i is not None and i < logits.shape[-1]]
    logits[:, special] = float("-inf")
    probabilities = logits.softmax(dim=-1)
    best = probabilities.topk(top, dim=-1)
    return [
        [(tokenizer.decode([i], skip_special_tokens=False).strip() or repr(tokenizer.id_to_token(i)),
          float(p)) for p, i in zip(row_p.tolist(), row_i.tolist())]
        for row_p, row_i in zip(best.values, best.indices)
    ]


def main(argv: list[str]) -> None:
    model, tokenizer = load_mlm(argv[0])
    for text in argv[1:]:
        print(text)
        for candidates in fill_mask(model, tokenizer, text):
            print("   ", ", ".join(f"{t} ({100 * p:.0f}%)" for t, p in candidates))


if __name__ == "__main__":
    main(sys.argv[1:])
