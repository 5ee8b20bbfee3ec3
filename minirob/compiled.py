"""An option: ``torch.compile`` the parts of a model whose work does not depend on the data.

    model = minirob.compile_model(minirob.RobertaForMaskedLM(config))   # same object, compiled parts

What is compiled, each module in place (``nn.Module.compile``): the embeddings, every encoder
layer and the task head. What stays eager: the input checks and ``chosen_rows`` of the
``predict_at`` path, which read values back to the host (a compiled graph would break there
anyway) and decide the shapes the compiled parts then see.

Why in place, and per module: the model keeps its class, its parameters and its ``state_dict``
names (``torch.compile(model)`` would wrap it and prefix every name with ``_orig_mod.``), so
``save_pretrained``, checkpoints and the training loop work unchanged.

The varying number of masked rows. Pretraining with ``predict_at`` gives the last layer
(B, Tq, H) queries and the head (N, H) rows, with Tq and N different in every batch. torch's
*automatic dynamic shapes* handle that: the first batch compiles for its sizes, the first batch
with other sizes recompiles once with those dimensions symbolic, and later batches reuse that
graph. So there are two compilations, not one per batch; ``dynamic=True`` makes it one (every
size symbolic from the start) at some cost in the generated code. Bucketing the row count was
not needed for this reason.

Numbers: compiled dropout draws its masks from the compiler's own generator, so a compiled
training run is not bit-for-bit the eager one (same distribution); without dropout (eval) the
outputs agree to float rounding. Whether it pays depends on the device: see
``benchmarks/compiled_step.py`` and ``benchmarks/results.md``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .embeddings import Embeddings
from .encoder import EncoderLayer
from .model import ClassificationHead, MaskedLMHead, RobertaForTokenClassification

# The modules compiled, each as a whole; the token tagger's head is a plain Linear, compiled alone.
COMPILED = (Embeddings, EncoderLayer, MaskedLMHead, ClassificationHead)


def compile_model(model: nn.Module, **options: Any) -> nn.Module:
    """Compile ``model``'s embeddings, encoder layers and head in place; return ``model``.

    ``options`` go to ``torch.compile`` (e.g. ``dynamic=True``, ``mode="max-autotune"``).
    Compilation happens lazily, on the first forward pass of each part.
    """
    for module in model.modules():
        if isinstance(module, COMPILED):
            module.compile(**options)
    if isinstance(model, RobertaForTokenClassification):
        model.classifier.compile(**options)
    return model
