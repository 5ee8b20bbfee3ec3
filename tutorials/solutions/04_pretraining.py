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

# %% solution: first_step
def first_step(model, batch: dict, cfg: TrainConfig) -> None:
    # The library's optimizer: weight decay on matrices only (biases and LayerNorm scales are left alone).
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    vectors = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": matrices, "weight_decay": cfg.weight_decay},
                                   {"params": vectors, "weight_decay": 0.0}],
                                  lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    warmup_steps = cfg.warmup if cfg.warmup >= 1 else cfg.warmup * cfg.max_steps
    for group in optimizer.param_groups:  # step 0 trains as the first of max_steps
        group["lr"] = learning_rate(0, cfg.max_steps, warmup_steps, cfg.lr)
    model.train()
    logits = model(batch["input_ids"], batch["attention_mask"], predict_at=batch["predict_at"])  # (N, V)
    F.cross_entropy(logits, batch["targets"]).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    optimizer.zero_grad()
