"""Benchmark 6: minirob's step compiled (:func:`minirob.compiled.compile_model`) against the same step eager.

Two copies of one minirob model (same weights); one is compiled. Each case cycles through
``BATCHES`` batches whose masks differ, so the number of masked rows N (and the width of the
last layer's queries) changes from step to step, as in real pretraining:

- ``pretrain``: the pretraining step of ``pretrain_step.py`` (``predict_at``, fused AdamW);
- ``dense mlm``: the dense step of ``dense_step.py`` (logits at every position, no optimiser).

Compilation time is reported apart: the wall time of the compiled model's first pass over the
batches (where it compiles, and recompiles once when N first changes, see compiled.py) minus the
eager model's time for the same pass. Then ``repeats`` interleaved pairs (eager first on even
repeats) give the per-pair ratio ``t_eager / t_compiled`` (> 1: compiling pays).
"""

from __future__ import annotations

import copy
import statistics

import torch

import minirob
from minirob.compiled import compile_model

from . import dense_step, pretrain_step
from .harness import make_optimizer, time_once, training_step
from .twins import build_minirob

BATCHES = 4  # distinct masks (seeds 0..3): N differs between them
CASES = ("pretrain", "dense mlm")


def make_steps(case: str, model, config, batch: int, length: int, device, precision: str):
    """One step closure per batch, all over the same model (and optimiser, for pretrain)."""
    if case == "pretrain":
        optimizer = make_optimizer(model)
        batches = [pretrain_step.make_batch(config, batch, length, device, seed=s)
                   for s in range(BATCHES)]
        return [lambda d=d: training_step(model, optimizer, pretrain_step.minirob_loss, d, device,
                                          precision) for d in batches]
    data = dense_step.make_data("mlm", config, batch, length, device)
    return [dense_step.make_step("minirob", model, data, device, precision)] * BATCHES


def first_pass(steps, device) -> float:
    """Seconds for one call of each step: where a compiled model compiles."""
    return sum(time_once(step, device) for step in steps)


def benchmark(config: minirob.RobertaConfig, *, case: str, batch: int, length: int, precision: str,
              device: torch.device, repeats: int, preset: str = "small", options: dict | None = None,
              progress=None) -> dict:
    eager = build_minirob("RobertaForMaskedLM", config).to(device).train()
    compiled = compile_model(copy.deepcopy(eager), **(options or {}))
    eager_steps = make_steps(case, eager, config, batch, length, device, precision)
    compiled_steps = make_steps(case, compiled, config, batch, length, device, precision)
    eager_first = first_pass(eager_steps, device)
    compiled_first = first_pass(compiled_steps, device)
    eager_s, compiled_s = [], []
    for repeat in range(repeats):
        i = repeat % BATCHES
        if repeat % 2 == 0:
            eager_s.append(time_once(eager_steps[i], device))
            compiled_s.append(time_once(compiled_steps[i], device))
        else:
            compiled_s.append(time_once(compiled_steps[i], device))
            eager_s.append(time_once(eager_steps[i], device))
        if progress is not None:
            progress.update(1)
    ratios = [e / c for e, c in zip(eager_s, compiled_s)]
    masked = ([int(pretrain_step.make_batch(config, batch, length, "cpu", seed=s).masked
                   .predict_at.sum()) for s in range(BATCHES)] if case == "pretrain" else None)
    return {
        "name": f"{case} step compiled vs eager, {preset}, {batch}x{length}, {precision}",
        "options": options or {},
        "masked_rows_per_batch": masked,
        "compile_s": compiled_first - eager_first,
        "first_pass_s": {"eager": eager_first, "compiled": compiled_first},
        "eager_s": eager_s,
        "compiled_s": compiled_s,
        "summary": {
            "repeats": repeats,
            "eager_tokens_per_s": batch * length / statistics.median(eager_s),
            "compiled_tokens_per_s": batch * length / statistics.median(compiled_s),
            "ratio_min": min(ratios),
            "ratio_median": statistics.median(ratios),
            "ratio_max": max(ratios),
        },
    }


def main(argv=None) -> None:
    """A quick look without the results table: ``python -m benchmarks.compiled_step``."""
    torch.set_num_threads(2)
    config = minirob.RobertaConfig.small()
    for case in CASES:
        for precision in ("float32", "bfloat16"):
            r = benchmark(config, case=case, batch=32, length=128, precision=precision,
                          device=torch.device("cpu"), repeats=6)
            s = r["summary"]
            print(f"{r['name']}: compile {r['compile_s']:.0f} s, eager/compiled "
                  f"{s['ratio_median']:.2f}x ({s['ratio_min']:.2f}-{s['ratio_max']:.2f})")


if __name__ == "__main__":
    main()
