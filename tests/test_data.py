"""Pretraining data: FULL-SENTENCES packing (checked against blocks written out by hand), held-out
documents, the masked batch source (resume position, DDP shards), reading text files."""

import pytest
import torch

from minirob.data import (
    Document,
    MaskedBlocks,
    SpecialIds,
    fixed_masked_batches,
    pack_full_sentences,
    read_text_documents,
    select_rows,
    split_documents,
)
from minirob.errors import DataError, MissingFileError

BOS, PAD, EOS = 0, 1, 2


def pack(documents, max_length):
    return pack_full_sentences(documents, max_length, bos_id=BOS, eos_id=EOS, pad_id=PAD).tolist()


def test_full_sentences_by_hand():
    documents = [[[10, 11], [12, 13, 14]], [[20], [21, 22, 23, 24]], [[30, 31]]]
    # max_length 8 leaves room for 6 tokens between <s> and </s>. After doc 1 (5 tokens) the
    # separator would fill the block, so doc 2 starts a new block; likewise for doc 3.
    assert pack(documents, 8) == [
        [BOS, 10, 11, 12, 13, 14, EOS, PAD],
        [BOS, 20, 21, 22, 23, 24, EOS, PAD],
        [BOS, 30, 31, EOS, PAD, PAD, PAD, PAD],
    ]


def test_documents_share_a_block_across_the_boundary():
    documents = [[[10, 11], [12]], [[20, 21]], [[30, 31, 32, 33, 34, 35, 36]]]
    assert pack(documents, 10) == [
        # doc 1, the separator </s>, doc 2: one block crosses the document boundary
        [BOS, 10, 11, 12, EOS, 20, 21, EOS, PAD, PAD],
        [BOS, 30, 31, 32, 33, 34, 35, 36, EOS, PAD],
    ]


def test_long_sentences_are_cut_and_sentences_never_split_otherwise():
    documents = [[[5, 6, 7], list(range(40, 52)), [8]]]
    assert pack(documents, 6) == [
        [BOS, 5, 6, 7, EOS, PAD],
        [BOS, 40, 41, 42, 43, EOS],
        [BOS, 44, 45, 46, 47, EOS],
        [BOS, 48, 49, 50, 51, EOS],
        [BOS, 8, EOS, PAD, PAD, PAD],
    ]


def test_empty_corpus_and_too_short_blocks_are_refused():
    with pytest.raises(DataError, match="empty"):
        pack([[], [[]]], 16)
    with pytest.raises(DataError, match="no room"):
        pack([[[5]]], 2)


def special_ids():
    return SpecialIds(pad=PAD, mask=4, special=(0, 1, 2, 3, 4), first_ordinary=5, vocab_size=100)


def blocks(n=40, length=16):
    ids = torch.randint(5, 100, (n, length), generator=torch.Generator().manual_seed(0))
    ids[:, 0], ids[:, -1] = BOS, EOS
    ids[::3, -4:] = PAD
    return ids


def test_masked_blocks_resume_from_the_saved_position():
    source = MaskedBlocks(blocks(), batch_size=8, special=special_ids(), seed=3)
    for _ in range(7):  # crosses an epoch boundary (5 batches per epoch)
        next(source)
    state = source.state_dict()
    expected = [next(source) for _ in range(4)]
    restarted = MaskedBlocks(blocks(), batch_size=8, special=special_ids(), seed=3)
    restarted.load_state_dict(state)
    for want, got in zip(expected, (next(restarted) for _ in range(4))):
        for key in want:
            assert torch.equal(want[key], got[key]), key


def test_masked_blocks_mask_afresh_and_never_special_tokens():
    same = blocks(n=1).repeat(8, 1)  # 8 identical blocks: any difference comes from the masks
    source = MaskedBlocks(same, batch_size=8, special=special_ids(), seed=0)
    first, second = next(source), next(source)  # two epochs over the same 8 blocks
    assert not torch.equal(first["predict_at"], second["predict_at"])
    for batch in (first, second):
        never = (same == BOS) | (same == EOS) | (same == PAD)
        assert not bool(batch["predict_at"][never].any())
        assert torch.equal(batch["targets"], same[batch["predict_at"]])
        assert int(batch["tokens"]) == int((same != PAD).sum())


def test_ddp_shards_together_are_the_global_batch():
    one = MaskedBlocks(blocks(), batch_size=8, special=special_ids(), seed=1)
    ranks = [MaskedBlocks(blocks(), batch_size=4, special=special_ids(), seed=1, rank=r, world_size=2)
             for r in range(2)]
    for _ in range(6):
        whole = next(one)
        parts = [next(r) for r in ranks]
        for key in ("input_ids", "attention_mask", "predict_at"):
            assert torch.equal(torch.cat([p[key] for p in parts]), whole[key])
        assert torch.equal(torch.cat([p["targets"] for p in parts]), whole["targets"])
        assert int(parts[0]["tokens"] + parts[1]["tokens"]) == int(whole["tokens"])


def test_select_rows_keeps_the_targets_of_those_rows():
    batch = next(MaskedBlocks(blocks(), batch_size=8, special=special_ids(), seed=2))
    part = select_rows(batch, slice(2, 5))
    assert torch.equal(part["targets"], batch["targets"][batch["predict_at"].nonzero()[:, 0].ge(2)
                                                         & batch["predict_at"].nonzero()[:, 0].lt(5)])


def test_corpus_smaller_than_a_batch_is_refused():
    with pytest.raises(DataError, match="fewer than one batch of 64"):
        MaskedBlocks(blocks(n=40), batch_size=32, special=special_ids(), world_size=2)


def test_validation_batches_are_fixed():
    a = fixed_masked_batches(blocks(), special_ids())
    b = fixed_masked_batches(blocks(), special_ids())
    assert all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(a, b))
    short = fixed_masked_batches(blocks(), special_ids(), limit=16)
    assert sum(len(x["input_ids"]) for x in short) == 16


def test_held_out_documents_are_unseen():
    documents = [Document(f"d{i}", [f"sentence {i}"]) for i in range(40)]
    train, valid = split_documents(documents, validation=0.1, seed=0)
    assert len(valid) == 4 and len(train) == 36
    assert not {d.id for d in train} & {d.id for d in valid}
    assert split_documents(documents, validation=0.1, seed=0)[1] == valid
    with pytest.raises(DataError, match="at least 2 documents"):
        split_documents(documents[:1])


def test_read_text_documents(tmp_path):
    (tmp_path / "a.txt").write_text("First line.\nSecond line.\n\n\nNext document.\n")
    (tmp_path / "b.txt").write_text("Another file.")
    documents = read_text_documents([tmp_path / "a.txt", tmp_path / "b.txt"])
    assert [d.sentences for d in documents] == [["First line.", "Second line."], ["Next document."], ["Another file."]]
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DataError, match="bad.txt: not UTF-8"):
        read_text_documents([tmp_path / "bad.txt"])
    with pytest.raises(MissingFileError, match="missing.txt"):
        read_text_documents([tmp_path / "missing.txt"])


def test_special_ids_from_a_trained_tokenizer():
    from minirob.tokenizer import Tokenizer

    tokenizer = Tokenizer.train(["the cat sat on the mat", "the dog sat on the log"] * 20, vocab_size=300)
    special = SpecialIds.from_tokenizer(tokenizer)
    assert special.special == (0, 1, 2, 3, 4) and special.mask == 4 and special.pad == 1
    assert special.first_ordinary == 5 and special.vocab_size == tokenizer.vocab_size
    ids = torch.tensor([tokenizer.encode("the cat sat").ids])
    starts = special.word_start[ids][0].tolist()
    tokens = tokenizer.encode("the cat sat").tokens
    assert starts == [t.startswith("\u0120") or t in ("<s>", "</s>") for t in tokens]


def test_whole_word_starts_in_packed_text():
    from minirob.data import masked_batch
    from minirob.masking import MaskingConfig
    from minirob.tokenizer import Tokenizer

    tokenizer = Tokenizer.train(["the cat sat. The dog ran.", "a catalogue, the dogs"] * 30, vocab_size=266)
    special = SpecialIds.from_tokenizer(tokenizer)
    # two sentences packed as one block: "The" (no leading space) follows "." directly
    encoding = tokenizer.encode("the cat sat.The dog ran.")
    ids = torch.tensor([encoding.ids])
    tokens = encoding.tokens
    starts = special.word_start[ids].clone()
    starts[:, 1:] |= special.word_break[ids[:, :-1]]
    dot = tokens.index(".")
    assert tokens[dot + 1] == "T"  # "The", in pieces, right after the first sentence's "."
    assert starts[0, dot] and starts[0, dot + 1]  # punctuation, and a sentence's first word
    assert not starts[0, dot + 2]  # "he" continues "T"
    # whole-word masking on such a batch: every piece of a chosen word is masked with it
    batch = masked_batch(ids.repeat(64, 1), special, MaskingConfig(whole_word=True, probability=0.5),
                         torch.Generator().manual_seed(0))
    at = batch["predict_at"]
    inside = ~starts[0, 1:] & special.maskable(ids)[0, 1:]  # continuation pieces
    assert bool(inside.any()) and bool(at.any())
    assert torch.equal(at[:, 1:][:, inside], at[:, :-1][:, inside])
