"""DistributedDataParallel on CPU (gloo): two processes with 4 blocks each must train exactly like
one process with the global batch of 8 (same masks, the loss a mean over all masked tokens of the
global batch, gradients averaged across processes and rescaled by the global count)."""

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from minirob import RobertaConfig, RobertaForMaskedLM
from minirob.data import MaskedBlocks, SpecialIds
from minirob.pretrain import mlm_loss
from minirob.train import TrainConfig, read_metrics, train

STEPS = 4


def setup():
    config = RobertaConfig.tiny(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=64, max_position_embeddings=26,
                                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = RobertaForMaskedLM(config)
    blocks = torch.randint(5, 120, (64, 24), generator=torch.Generator().manual_seed(1))
    blocks[:, 0], blocks[:, -1] = 0, 2
    blocks[::2, -5:] = 1  # some padding: unequal numbers of masked tokens per process
    special = SpecialIds(pad=1, mask=4, special=(0, 1, 2, 3, 4), first_ordinary=5, vocab_size=120)
    return model, blocks, special


def run(out_dir, batch_size, rank=0, world_size=1):
    model, blocks, special = setup()
    batches = MaskedBlocks(blocks, batch_size, special, seed=0, rank=rank, world_size=world_size)
    config = TrainConfig(out_dir=str(out_dir), lr=3e-3, warmup=0.0, max_steps=STEPS, log_every=1, progress=False,
                         plot=False, bf16="off", device="cpu")
    train(model, mlm_loss, batches, config)
    return model


def worker(rank, world_size, folder):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world_size)
    try:
        model = run(folder / "ddp", batch_size=4, rank=rank, world_size=world_size)
        torch.save(model.state_dict(), folder / f"rank{rank}.pt")
        # Leave together: a rank that tears gloo down while the other's gloo thread still talks to
        # it can abort ("terminate called without an active exception"; seen once in CI).
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_two_processes_equal_one_with_the_global_batch(tmp_path):
    mp.spawn(worker, args=(2, tmp_path), nprocs=2, join=True)
    single = run(tmp_path / "single", batch_size=8).state_dict()
    for rank in range(2):
        state = torch.load(tmp_path / f"rank{rank}.pt")
        for name, value in single.items():
            torch.testing.assert_close(state[name], value, rtol=1e-5, atol=1e-6, msg=name)
    losses = lambda d: [r["loss"] for r in read_metrics(d) if r["split"] == "train"]  # noqa: E731
    assert losses(tmp_path / "ddp") == __import__("pytest").approx(losses(tmp_path / "single"), rel=1e-6)
    # and it did train: the weights moved
    assert not torch.equal(setup()[0].state_dict()["lm_head.dense.weight"], single["lm_head.dense.weight"])
