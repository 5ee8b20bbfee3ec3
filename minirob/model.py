"""RobertaModel and its task models.

    ids (B, T) -> Embeddings -> Encoder (N post-LN layers) -> hidden (B, T, H)
                                                           -> MLM head       -> (B, T, V)
                                                           -> <s> classifier -> (B, labels)
                                                           -> token tagger   -> (B, T, labels)

Models take tensors and return tensors; losses live in the training code. ``trace()`` returns
every layer's hidden states and attention maps. Loading and saving (``from_pretrained`` /
``save_pretrained``) are defined once in :class:`minirob.pretrained.PreTrainedModel`; each class
here says which transformers class it matches (``hf_architecture``) and which head it carries
(``checkpoint_head``), and the name tables in :mod:`minirob.names` do the rest.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import padding_mask_to_bias
from .config import RobertaConfig
from .embeddings import Embeddings
from .encoder import Encoder, Trace, activation
from .errors import ConfigError, InputError
from .pretrained import PreTrainedModel


def check_shapes(
    config: RobertaConfig,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    token_type_ids: Tensor | None,
) -> None:
    """Types, ranks, lengths and matching shapes: the checks that need no look at the values."""
    if not isinstance(input_ids, Tensor):
        raise InputError(f"input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
    if input_ids.dim() != 2:
        raise InputError(
            f"input_ids must have shape (batch, length), got {tuple(input_ids.shape)}"
        )
    if input_ids.dtype not in (torch.int64, torch.int32):
        raise InputError(f"input_ids must be integer token ids, got dtype {input_ids.dtype}")
    length = input_ids.shape[1]
    if length > config.max_sequence_length:
        raise InputError(
            f"sequence length {length} exceeds the model's maximum of "
            f"{config.max_sequence_length} tokens by {length - config.max_sequence_length} "
            f"(max_position_embeddings={config.max_position_embeddings}); truncate the input"
        )
    for name, other in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
        if other is not None and tuple(other.shape) != tuple(input_ids.shape):
            raise InputError(
                f"{name} has shape {tuple(other.shape)} but input_ids has shape "
                f"{tuple(input_ids.shape)}; they must match"
            )


def check_inputs(
    config: RobertaConfig,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    token_type_ids: Tensor | None,
) -> bool:
    """Raise a clear InputError before torch would fail deep inside an embedding or a matmul.

    Returns whether ``attention_mask`` hides any position (the caller then builds the padding
    bias). The value checks read the tensors' extremes in a single device-to-host copy: on a GPU
    every such read waits for the queued kernels, so one read instead of five keeps it busy.
    """
    check_shapes(config, input_ids, attention_mask, token_type_ids)
    if not input_ids.numel():
        return False
    # [min id, max id, min type, max type, any padding], read together
    zero = input_ids.new_zeros(())
    types = token_type_ids if token_type_ids is not None else zero
    padded = (attention_mask == 0).any() if attention_mask is not None else zero
    low, high, type_low, type_high, any_padding = torch.stack(
        [input_ids.min(), input_ids.max(), types.min().to(input_ids), types.max().to(input_ids),
         padded.to(input_ids)]
    ).tolist()
    if low < 0 or high >= config.vocab_size:
        bad = low if low < 0 else high
        raise InputError(
            f"token id {bad} is outside the vocabulary (vocab_size={config.vocab_size}, "
            f"valid ids 0..{config.vocab_size - 1})"
        )
    if type_high >= config.type_vocab_size or type_low < 0:
        bad = type_low if type_low < 0 else type_high
        raise InputError(f"token type id {bad} is outside type_vocab_size={config.type_vocab_size}")
    return bool(any_padding)


class Pooler(nn.Module):
    """BERT's pooler: tanh(W h_<s>). Trained in BERT (next-sentence prediction), not in RoBERTa."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: Tensor) -> Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


class RobertaModel(PreTrainedModel):
    """The encoder: ids (B, T) -> hidden states (B, T, H)."""

    hf_architecture = "RobertaModel"
    checkpoint_head = "encoder"

    def __init__(self, config: RobertaConfig, add_pooling_layer: bool = True, initialise: bool = True):
        super().__init__(config)
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.pooler = Pooler(config) if add_pooling_layer else None
        if initialise:  # a task model passes False: it initialises everything, encoder included, once
            self.init_weights()

    def _run(
        self, input_ids, attention_mask, token_type_ids, trace: Trace | None, only_at=None
    ) -> Tensor:
        has_padding = check_inputs(self.config, input_ids, attention_mask, token_type_ids)
        x = self.embeddings(input_ids, token_type_ids)
        bias = padding_mask_to_bias(attention_mask, x.dtype) if has_padding else None
        if trace is not None:
            trace.hidden_states.append(x)
        return self.encoder(x, bias, trace, only_at)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        only_at: Tensor | None = None,
    ) -> Tensor:
        """ids (B, T), mask (B, T) of 1 = token / 0 = padding -> last hidden state (B, T, H).

        With ``only_at`` (B, T) bool: (N, H), the last hidden state at its N True positions only
        (the same numbers as ``hidden[only_at]``, computed with less work; see Encoder.forward).
        """
        if only_at is not None:
            if tuple(only_at.shape) != tuple(input_ids.shape):
                raise InputError(
                    f"predict_at/only_at has shape {tuple(only_at.shape)} but input_ids has "
                    f"shape {tuple(input_ids.shape)}; they must match"
                )
            only_at = only_at.bool()
        return self._run(input_ids, attention_mask, token_type_ids, None, only_at)

    def trace(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> Trace:
        """Run the encoder and keep every hidden state and attention map (see encoder.Trace)."""
        trace = Trace()
        self._run(input_ids, attention_mask, token_type_ids, trace)
        return trace

    def pool(self, hidden: Tensor) -> Tensor:
        """(B, T, H) -> (B, H) through the pooler (only meaningful where it was trained: BERT)."""
        if self.pooler is None:
            raise ConfigError("this RobertaModel was built without a pooling layer")
        return self.pooler(hidden)


class MaskedLMHead(nn.Module):
    """dense -> gelu -> LayerNorm -> decoder tied to the word embeddings, plus a bias."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: Tensor, word_embeddings: Tensor) -> Tensor:
        """(..., H) -> (..., V). The decoder matrix *is* the (V, H) word-embedding table."""
        return F.linear(self.norm(self.act(self.dense(hidden))), word_embeddings, self.bias)


class RobertaForMaskedLM(PreTrainedModel):
    hf_architecture = "RobertaForMaskedLM"
    checkpoint_head = "mlm"

    def __init__(self, config: RobertaConfig):
        super().__init__(config)
        self.roberta = RobertaModel(config, add_pooling_layer=False, initialise=False)
        self.lm_head = MaskedLMHead(config)
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        predict_at: Tensor | None = None,
    ) -> Tensor:
        """-> logits (B, T, V); or (N, V) for the N positions where ``predict_at`` (B, T) is True.

        ``predict_at`` is how pretraining saves time: the (H x V) decoder is the largest matmul of
        a small model, and only the ~15% masked positions need it (nor do they need the last
        encoder layer's feed-forward at the other positions; see Encoder.forward).
        """
        hidden = self.roberta(input_ids, attention_mask, token_type_ids, only_at=predict_at)
        return self.lm_head(hidden, self.roberta.embeddings.token.weight)


class ClassificationHead(nn.Module):
    """Reads one summary vector: dropout -> dense -> tanh -> dropout -> out_proj."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        p = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if p is None else p)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, hidden: Tensor) -> Tensor:
        x = self.dropout(hidden[:, 0])  # (B, H): position 0 (<s>, or the pooled summary)
        x = self.dropout(torch.tanh(self.dense(x)))
        return self.out_proj(x)  # (B, labels)


def mean_over_tokens(hidden: Tensor, attention_mask: Tensor | None) -> Tensor:
    """(B, T, H) -> (B, H): the average of each sequence's real (unpadded) token vectors."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    weights = attention_mask.to(hidden.dtype)[..., None]  # (B, T, 1): 1 = token, 0 = padding
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class RobertaForSequenceClassification(PreTrainedModel):
    hf_architecture = "RobertaForSequenceClassification"
    checkpoint_head = "sequence-classification"

    def __init__(self, config: RobertaConfig):
        super().__init__(config)
        self.roberta = RobertaModel(config, add_pooling_layer=False, initialise=False)
        self.classifier = ClassificationHead(config)
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> Tensor:
        """-> logits (B, num_labels), from <s> or the token average (config.classifier_pooling)."""
        check_shapes(self.config, input_ids, attention_mask, token_type_ids)  # values: in roberta()
        if self.config.classifier_pooling == "mean":
            hidden = self.roberta(input_ids, attention_mask, token_type_ids)  # (B, T, H)
            summary = mean_over_tokens(hidden, attention_mask)  # (B, H)
        else:
            # The head reads only <s>, so the last layer computes only that row (its keys and
            # values still come from every token; see Encoder.forward): same numbers, less work.
            first = torch.zeros_like(input_ids, dtype=torch.bool)
            first[:, 0] = True
            summary = self.roberta(input_ids, attention_mask, token_type_ids, only_at=first)
        return self.classifier(summary[:, None])  # (B, 1, H): the head reads position 0


class RobertaForTokenClassification(PreTrainedModel):
    hf_architecture = "RobertaForTokenClassification"
    checkpoint_head = "token-classification"

    def __init__(self, config: RobertaConfig):
        super().__init__(config)
        self.roberta = RobertaModel(config, add_pooling_layer=False, initialise=False)
        p = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if p is None else p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> Tensor:
        """-> logits (B, T, num_labels), one label distribution per token."""
        hidden = self.roberta(input_ids, attention_mask, token_type_ids)
        return self.classifier(self.dropout(hidden))


TASK_MODELS = (
    RobertaModel,
    RobertaForMaskedLM,
    RobertaForSequenceClassification,
    RobertaForTokenClassification,
)
