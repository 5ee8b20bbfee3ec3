"""Dynamic masking: the rates of BERT's rule, what is never masked, the exact-count rule, words.

Reference values are hand computations: the target rate p = 0.15 and the 80/10/10 split (BERT,
Devlin et al. 2019, section 3.1), fairseq's per-sequence count floor(p * n + u), and binomial
standard deviations sqrt(n p (1 - p)) for the tolerances (6 sigma: a correct rule fails with
probability ~1e-9, a wrong rate such as 0.12 or 0.18 fails every time at these sizes).
"""

import math

import pytest
import torch

from minirob.errors import ConfigError, InputError
from minirob.masking import MaskingConfig, mask_tokens, spread_to_words

MASK, LOW, HIGH = 4, 5, 1000


def batch(rows=64, length=256, seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(LOW, HIGH, (rows, length), generator=generator)
    ids[:, 0], ids[:, -1] = 0, 2  # <s> ... </s>
    ids[: rows // 2, -20:] = 1  # padding at the end of half the rows
    maskable = (ids != 0) & (ids != 1) & (ids != 2)
    return ids, maskable


def within(count, n, p, sigmas=6):
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("rule", ["bernoulli", "exact"])
def test_rates_of_the_bert_rule(rule):
    ids, maskable = batch()
    out = mask_tokens(ids, mask_id=MASK, maskable=maskable, random_ids=(LOW, HIGH),
                      config=MaskingConfig(rule=rule), generator=torch.Generator().manual_seed(1))
    n = int(maskable.sum())
    chosen = int(out.predict_at.sum())
    assert within(chosen, n, 0.15)
    at = out.predict_at
    became_mask = int((out.input_ids[at] == MASK).sum())
    unchanged = int((out.input_ids[at] == ids[at]).sum())
    assert within(became_mask, chosen, 0.8)
    # unchanged = the 10% left alone + random draws that hit the same id (1 / 995 of 10%)
    assert within(unchanged, chosen, 0.1 + 0.1 / (HIGH - LOW))
    # outside the targets nothing changes; targets are the original ids in row-major order
    assert torch.equal(out.input_ids[~at], ids[~at])
    assert torch.equal(out.targets, ids[at])
    # random replacements stay among the ordinary ids
    replaced = out.input_ids[at & (out.input_ids != MASK)]
    assert int(replaced.min()) >= LOW and int(replaced.max()) < HIGH


def test_special_tokens_and_padding_are_never_chosen():
    ids, maskable = batch()
    for seed in range(5):
        out = mask_tokens(ids, mask_id=MASK, maskable=maskable, random_ids=(LOW, HIGH),
                          config=MaskingConfig(probability=0.9), generator=torch.Generator().manual_seed(seed))
        assert not bool(out.predict_at[~maskable].any())
        assert torch.equal(out.input_ids[~maskable], ids[~maskable])


def test_exact_rule_counts_per_sequence():
    ids, maskable = batch(rows=200, length=100)
    out = mask_tokens(ids, mask_id=MASK, maskable=maskable, random_ids=(LOW, HIGH),
                      config=MaskingConfig(rule="exact"), generator=torch.Generator().manual_seed(3))
    n = maskable.sum(dim=1).double()
    k = out.predict_at.sum(dim=1).double()
    # fairseq: floor(0.15 n + u): either floor(0.15 n) or one more, never anything else
    assert bool(((k == torch.floor(0.15 * n)) | (k == torch.floor(0.15 * n) + 1)).all())
    # and p * n on average: sum of the fractional parts decides how many rows round up
    expected = float((0.15 * n).sum())
    assert abs(float(k.sum()) - expected) < 6 * math.sqrt(len(n) * 0.25)


def test_masks_are_dynamic_and_reproducible():
    ids, maskable = batch()
    draw = lambda g: mask_tokens(ids, mask_id=MASK, maskable=maskable, random_ids=(LOW, HIGH), generator=g)
    generator = torch.Generator().manual_seed(0)
    first, second = draw(generator), draw(generator)
    assert not torch.equal(first.predict_at, second.predict_at)  # a fresh mask per draw
    again = draw(torch.Generator().manual_seed(0))
    assert torch.equal(first.predict_at, again.predict_at) and torch.equal(first.input_ids, again.input_ids)


def test_spread_to_words_by_hand():
    # pieces:        <s>  The  ĠCat  s  Ġsat  Ġon  ly  </s>
    starts = torch.tensor([[1, 1, 1, 0, 1, 1, 0, 1]]).bool()
    maskable = torch.tensor([[0, 1, 1, 1, 1, 1, 1, 0]]).bool()
    chosen = torch.tensor([[0, 0, 1, 0, 0, 1, 0, 0]]).bool()  # "ĠCat" and "Ġon"
    spread = spread_to_words(chosen, starts, maskable)
    assert spread.int().tolist() == [[0, 0, 1, 1, 0, 1, 1, 0]]


def test_whole_word_masking_keeps_words_together():
    ids, maskable = batch(rows=32, length=128)
    generator = torch.Generator().manual_seed(5)
    starts = torch.rand(ids.shape, generator=generator) < 0.6
    out = mask_tokens(ids, mask_id=MASK, maskable=maskable, random_ids=(LOW, HIGH), word_starts=starts,
                      config=MaskingConfig(whole_word=True), generator=generator)
    at = out.predict_at
    # inside a word (a maskable non-start piece whose left neighbour is maskable): same fate
    inside = maskable[:, 1:] & maskable[:, :-1] & ~starts[:, 1:]
    assert torch.equal(at[:, 1:][inside], at[:, :-1][inside])
    n_words = int((starts & maskable).sum())
    assert within(int((at & starts).sum()), n_words, 0.15)


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="probability"):
        MaskingConfig(probability=0.0)
    with pytest.raises(ConfigError, match="sum to at most 1"):
        MaskingConfig(mask_fraction=0.8, random_fraction=0.3)
    with pytest.raises(ConfigError, match="bernoulli, exact"):
        MaskingConfig(rule="span")
    ids, maskable = batch(rows=2, length=8)
    with pytest.raises(InputError, match="word_starts"):
        mask_tokens(ids, mask_id=MASK, maskable=maskable, random_ids=(LOW, HIGH),
                    config=MaskingConfig(whole_word=True))
    with pytest.raises(InputError, match="maskable"):
        mask_tokens(ids, mask_id=MASK, maskable=maskable[:, :4], random_ids=(LOW, HIGH))
