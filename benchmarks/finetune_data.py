"""The fine-tuning benchmarks' data: the fixed seeded 80/10/10 splits of the two real sets.

Shared by ``finetune_compare.py``, ``finetune_best.py`` and ``finetune_tiny.py`` so every number
in ``benchmarks/results/finetune*.md`` is scored on the very same test sentences.
"""

from __future__ import annotations

import os
import time

from minirob.datasets import (brown_pos_splits, load_sentiment, load_wnut16, split_sentiment,
                              split_wnut16)
from minirob.finetune import conll_sentences, sentiment_examples


def task_splits(task: str, seed: int = 0):
    """(train, validation, test) examples for ``"sentiment"`` (movie snippets), ``"ner"`` or
    ``"pos"`` (Brown, split by pretraining's held-out documents)."""
    if task == "sentiment":
        splits = split_sentiment(load_sentiment("movie", progress=False), seed=seed)
        convert = sentiment_examples
    elif task == "ner":
        splits = split_wnut16(load_wnut16(progress=False), seed=seed)
        convert = conll_sentences
    elif task == "pos":
        splits = brown_pos_splits(seed=seed, progress=False)
        convert = conll_sentences
    else:
        raise ValueError(f"task {task!r}: expected sentiment, ner or pos")
    return convert(splits.train), convert(splits.validation), convert(splits.test)


def machine_load() -> dict:
    """What else the shared machine was doing: the 1/5/15-minute load averages and the core count."""
    one, five, fifteen = os.getloadavg()
    return {"loadavg_1_5_15": [round(one, 2), round(five, 2), round(fifteen, 2)],
            "cores": os.cpu_count(), "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
