"""After pretraining: fill in the blanks of held-out Brown sentences, next to the true word.

    python -m minirob.examples.pretrain_demo runs/tiny

The sentences come from Brown's held-out validation documents (the model never trained on them);
one content-bearing word of each is replaced by <mask>.
"""

from __future__ import annotations

import random
import sys

from .fill_mask import fill_mask, load_mlm

# Sentences written for the demo (not from the corpus), in Brown's style.
OWN = [
    "The <mask> said Friday that the plan would be ready next year.",
    "He opened the <mask> and walked into the room.",
    "It was one of the <mask> days of the year.",
    "She did not know what to <mask>.",
]


def held_out_sentences(count: int = 6, seed: int = 0) -> list[tuple[str, str]]:
    """(masked sentence, hidden word) pairs from Brown's validation documents."""
    from ..datasets import load_brown, split_brown

    rng = random.Random(seed)
    documents = split_brown(load_brown(progress=False), seed=0).validation
    sentences = [s for d in documents for s in d.sentences if 8 <= len(s.split()) <= 18]
    pairs = []
    for sentence in rng.sample(sentences, count):
        words = sentence.split()
        candidates = [i for i, w in enumerate(words[1:-1], start=1) if w.isalpha() and w.islower()]
        if not candidates:
            continue
        i = rng.choice(candidates)
        hidden = words[i]
        words[i] = "<mask>"
        pairs.append((" ".join(words), hidden))
    return pairs


def main(directory: str) -> None:
    model, tokenizer = load_mlm(directory)
    for text, hidden in [(t, None) for t in OWN] + held_out_sentences():
        top = fill_mask(model, tokenizer, text, top=5)[0]
        guesses = ", ".join(f"{token} {100 * p:.0f}%" for token, p in top)
        truth = f"   [true word: {hidden}]" if hidden else ""
        print(f"{text}\n    -> {guesses}{truth}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/tiny")
