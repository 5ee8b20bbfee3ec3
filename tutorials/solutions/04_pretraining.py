# Answers to the exercises of chapter 4 (tutorials/src/04_pretraining.py).
# `tutorials/build.py --solutions` puts each section below in place of the exercise's stub; the
# chapter's own check then proves it. Names (torch, F, special, ...) come from the chapter's cells.

# %% solution: mask_by_hand
def mask_by_hand(ids: torch.Tensor, generator: torch.Generator, p: float = 0.15):
    maskable = special.maskable(ids)  # (B, T): never <s>, </s>, <pad>
    predict_at = maskable & (torch.rand(ids.shape, generator=generator) < p)  # draw 1: the targets
    action = torch.rand(ids.shape, generator=generator)  # draw 2: what each target becomes
    random_ids = torch.randint(special.first_ordinary, special.vocab_size, ids.shape, generator=generator)  # draw 3
    out = ids.clone()
    out[predict_at & (action < 0.8)] = special.mask
    use_random = predict_at & (action >= 0.8) & (action < 0.9)
    out[use_random] = random_ids[use_random]
    return out, predict_at

# %% solution: mlm_loss_by_hand
def mlm_loss_by_hand(model, batch: dict) -> torch.Tensor:
    logits = model(batch["input_ids"], batch["attention_mask"])  # (B, T, V)
    at_targets = logits[batch["predict_at"]]  # (N, V), row-major like the targets
    return F.cross_entropy(at_targets, batch["targets"])
