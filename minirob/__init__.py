"""minirob: a from-scratch, readable RoBERTa in PyTorch."""

__version__ = "0.1.0"

from .config import RobertaConfig  # noqa: E402
from .errors import (  # noqa: E402
    CheckpointError,
    ConfigError,
    DataError,
    FetchError,
    InputError,
    MinirobError,
    TokenizerError,
    TrainingError,
)
from .model import (  # noqa: E402
    RobertaForMaskedLM,
    RobertaForSequenceClassification,
    RobertaForTokenClassification,
    RobertaModel,
)

__all__ = [
    "RobertaConfig",
    "RobertaModel",
    "RobertaForMaskedLM",
    "RobertaForSequenceClassification",
    "RobertaForTokenClassification",
    "MinirobError",
    "ConfigError",
    "InputError",
    "CheckpointError",
    "TokenizerError",
    "DataError",
    "FetchError",
    "TrainingError",
    "Tokenizer",
    "pipeline",
]


def __getattr__(name):
    # Lazy: the tokenizer pulls in `tokenizers`, which plain model users may not need at import.
    if name == "Tokenizer":
        from .tokenizer import Tokenizer

        return Tokenizer
    if name == "pipeline":  # the same reason: pipelines read text through the tokenizer
        from .pipelines import pipeline

        return pipeline
    raise AttributeError(f"module 'minirob' has no attribute {name!r}")
