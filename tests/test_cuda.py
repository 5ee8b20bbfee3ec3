"""The CUDA paths: the same numbers on a GPU as on the CPU, bfloat16 autocast, and the training
loops choosing the GPU by themselves. Skipped (with that reason) where torch sees no CUDA device,
which includes CI; they were run on a lent H100 (see the issue notes and benchmarks/results.md).
"""

import json

import pytest
import torch

from minirob import RobertaConfig, RobertaForMaskedLM, RobertaForSequenceClassification
from minirob.cli import main

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to torch"),
    pytest.mark.xdist_group("cuda"),
]


def small_config(**extra) -> RobertaConfig:
    values = dict(vocab_size=300, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=128, max_position_embeddings=66, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0)
    values.update(extra)
    return RobertaConfig(**values)


def padded_ids(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """3 sequences of 20, 13 and 5 tokens, right-padded with <pad>=1."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.full((3, 20), 1)
    for row, length in enumerate((20, 13, 5)):
        ids[row, :length] = torch.randint(5, 300, (length,), generator=generator)
        ids[row, 0], ids[row, length - 1] = 0, 2
    return ids, (ids != 1).long()


@pytest.mark.parametrize("backend", ["manual", "fused"])
def test_gpu_float32_matches_cpu(backend):
    torch.manual_seed(0)
    model = RobertaForMaskedLM(small_config(attention_backend=backend)).eval()
    ids, mask = padded_ids()
    with torch.no_grad():
        on_cpu = model(ids, mask)
        on_gpu = model.cuda()(ids.cuda(), mask.cuda()).cpu()
    real = mask.bool()  # padded rows are not compared: their values are not defined by the model
    torch.testing.assert_close(on_gpu[real], on_cpu[real], atol=1e-4, rtol=1e-4)


def test_gpu_bfloat16_autocast_stays_close_to_float32():
    torch.manual_seed(0)
    model = RobertaForMaskedLM(small_config()).eval().cuda()
    ids, mask = (t.cuda() for t in padded_ids())
    with torch.no_grad():
        exact = model(ids, mask).float()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            rough = model(ids, mask).float()
    real = mask.bool()
    assert torch.isfinite(rough).all()
    # bfloat16 keeps 8 bits of mantissa: relative error ~0.4% per op, a few % through 2 layers
    assert (rough[real] - exact[real]).abs().max() < 0.1 * exact[real].abs().max()
    # the ranking of the top prediction at nearly every position survives
    agree = (rough[real].argmax(-1) == exact[real].argmax(-1)).float().mean()
    assert agree > 0.9


def test_gpu_matches_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    ours = RobertaForSequenceClassification(small_config(num_labels=3)).eval()
    ours.save_pretrained(tmp_path)  # transformers reads minirob's HF-layout save
    theirs = transformers.RobertaForSequenceClassification.from_pretrained(tmp_path).eval()
    ids, mask = padded_ids(1)
    with torch.no_grad():
        mine = ours.cuda()(ids.cuda(), mask.cuda())
        reference = theirs.cuda()(input_ids=ids.cuda(), attention_mask=mask.cuda()).logits
    torch.testing.assert_close(mine, reference, atol=1e-4, rtol=1e-4)


def test_pretraining_runs_on_the_gpu_by_itself(tmp_path):
    from test_pretrain import SMALL, topic_corpus

    corpus = topic_corpus(tmp_path / "corpus.txt", documents=60)
    out = tmp_path / "run"
    assert main(["pretrain", "--corpus", "files", "--files", str(corpus), "--out", str(out),
                 "--steps", "60", "--lr", "3e-3", "--dropout", "0", *SMALL]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["device"].startswith("cuda")
    assert info["bf16"] is torch.cuda.is_bf16_supported()
    final = json.loads((out / "final_eval.json").read_text())
    assert final["loss"] < 5.5  # ln(400) = 6.0 at the start
    # the saved model is ordinary CPU tensors: it loads on a machine without a GPU
    model = RobertaForMaskedLM.from_pretrained(out)
    assert next(model.parameters()).device.type == "cpu"


def test_finetuning_runs_on_the_gpu(tmp_path):
    from finetune_fixtures import sentiment_data, tiny_checkpoint

    from minirob.finetune import FinetuneConfig, FinetuneLoop, finetune

    start = tiny_checkpoint(tmp_path / "start")
    train, val, test = sentiment_data(160, 1), sentiment_data(40, 2), sentiment_data(60, 3)
    config = FinetuneConfig(task="classify", batch_size=8,
                            train=FinetuneLoop(epochs=6, lr=2e-3, progress=False))
    report = finetune(start, train, val, test, config, tmp_path / "run")
    assert report["test"]["accuracy"] > 0.9, report["validation_history"]
    info = json.loads((tmp_path / "run" / "train" / "run.json").read_text())
    assert info["device"].startswith("cuda")
