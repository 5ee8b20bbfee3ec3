"""Small, learnable fine-tuning problems and a tiny "pretrained" checkpoint to run them on.

Shared by test_finetune.py and test_predict.py. Everything is synthetic and seeded so the tests
run in seconds: a byte-level BPE tokenizer trained on the examples' own words, and a random tiny
RoBERTa saved in the HF layout (what ``minirob finetune --from`` reads).
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from minirob import RobertaConfig, RobertaForMaskedLM, Tokenizer
from minirob.finetune import TaggedSentence, TextExample

POSITIVE = ["good", "great", "lovely", "superb", "wonderful", "fine"]
NEGATIVE = ["bad", "awful", "dull", "poor", "terrible", "boring"]
FILLER = ["the", "film", "was", "really", "quite", "a", "plot", "and", "story", "movie", "very"]
NAMES = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank"]
CITIES = ["Paris", "London", "Berlin", "Madrid", "Rome", "Oslo"]


def sentiment_data(n: int, seed: int) -> list[TextExample]:
    """Texts whose label is decided by one sentiment word among neutral fillers."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.choice(["negative", "positive"])
        words = rng.choices(FILLER, k=rng.randint(3, 8))
        words.insert(rng.randrange(len(words) + 1),
                     rng.choice(POSITIVE if label == "positive" else NEGATIVE))
        out.append(TextExample(" ".join(words), label))
    return out


def ner_data(n: int, seed: int) -> list[TaggedSentence]:
    """Sentences where names are people and cities are places; some two-word names."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words, tags = [], []
        for _ in range(rng.randint(4, 9)):
            r = rng.random()
            if r < 0.15:
                words.append(rng.choice(NAMES)), tags.append("B-PER")
                if rng.random() < 0.5:
                    words.append(rng.choice(NAMES) + "son"), tags.append("I-PER")
            elif r < 0.3:
                words.append(rng.choice(CITIES)), tags.append("B-LOC")
            else:
                words.append(rng.choice(FILLER)), tags.append("O")
        out.append(TaggedSentence(words, tags))
    return out


# Every word has one part of speech here, so a tagger can learn it from the word alone.
WORD_TAGS = {**{w: "ADJ" for w in POSITIVE + NEGATIVE}, **{w: "NOUN" for w in NAMES + CITIES},
             "the": "DET", "a": "DET", "film": "NOUN", "plot": "NOUN", "story": "NOUN",
             "movie": "NOUN", "was": "VERB", "and": "CONJ", "really": "ADV", "quite": "ADV",
             "very": "ADV"}


def pos_data(n: int, seed: int) -> list[TaggedSentence]:
    """Sentences of fixture words, each tagged with its one part of speech."""
    rng = random.Random(seed)
    words = sorted(WORD_TAGS)
    out = []
    for _ in range(n):
        sentence = rng.choices(words, k=rng.randint(3, 8))
        out.append(TaggedSentence(sentence, [WORD_TAGS[w] for w in sentence]))
    return out


def tiny_checkpoint(directory: Path, max_tokens: int = 64, seed: int = 0) -> Path:
    """A random 2-layer RoBERTa with a BPE tokenizer trained on the synthetic vocabulary.

    The weights are drawn from ``seed`` (the global generator is left as it was): tests that
    fine-tune from here and assert what the model learned must not depend on an unseeded draw.
    """
    corpus = [" ".join(POSITIVE + NEGATIVE + FILLER + NAMES + CITIES + [n + "son" for n in NAMES])]
    corpus += [e.text for e in sentiment_data(200, 99)]
    corpus += [" ".join(s.words) for s in ner_data(200, 98)]
    tokenizer = Tokenizer.train(corpus * 3, vocab_size=400, min_frequency=2)
    config = RobertaConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=max_tokens + 2,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = RobertaForMaskedLM(config)
    model.save_pretrained(directory)
    tokenizer.save(directory)
    return directory
