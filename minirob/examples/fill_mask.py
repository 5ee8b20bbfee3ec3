"""Fill-mask with a pretrained minirob model: the smallest useful thing an MLM does.

    python -m minirob.examples.fill_mask runs/tiny "The <mask> said Friday."

The work is done by the library (:class:`minirob.pipelines.FillMaskPipeline`); this demo only
prints its answers.
"""

from __future__ import annotations

import sys

from ..pipelines import pipeline
from ..sources import load_model


def load_mlm(directory):
    """A model directory written by ``minirob pretrain`` -> (RobertaForMaskedLM, Tokenizer)."""
    loaded = load_model("mlm", directory, device="cpu")
    return loaded.model, loaded.tokenizer


def fill_mask(model, tokenizer, text: str, top: int = 5) -> list[list[tuple[str, float]]]:
    """For each mask in ``text``: the ``top`` (token, probability) pairs, most likely first."""
    answers = pipeline("fill-mask", model, tokenizer=tokenizer)(text, top_k=top)
    per_mask = answers if isinstance(answers[0], list) else [answers]
    return [[(a["token_str"].strip() or repr(a["token_str"]), a["score"]) for a in mask]
            for mask in per_mask]


def main(argv: list[str]) -> None:
    fill = pipeline("fill-mask", argv[0])
    for text in argv[1:]:
        print(text)
        answers = fill(text)
        for mask in answers if isinstance(answers[0], list) else [answers]:
            print("   ", ", ".join(f"{a['token_str'].strip()} ({100 * a['score']:.0f}%)" for a in mask))


if __name__ == "__main__":
    main(sys.argv[1:])
