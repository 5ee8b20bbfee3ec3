"""Benchmark 4: peak memory of each workload, one fresh subprocess per (workload, side).

On a CPU there is no allocator counter to read, so we measure the process's resident set (RSS):
each measurement runs in its own Python process that imports torch, transformers and minirob
(both libraries, so the baseline is the same for both sides), builds one model, then resets the
kernel's peak-RSS mark (``/proc/self/clear_refs``) and runs a few steps. Reported:

- ``peak_mb``: the highest RSS during the steps, model and optimiser state included;
- ``increase_mb``: that peak minus the RSS just before the first step (the workload's own memory:
  activations, gradients, optimiser state, workspaces).

On CUDA the same child reads torch's allocator instead (``torch.cuda.max_memory_allocated``).

    python -m benchmarks.memory '{"bench": "pretrain", "impl": "minirob", ...}'   # one child
"""

from __future__ import annotations

import gc
import json
import re
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def rss_mb(field: str = "VmRSS") -> float:
    """The current (VmRSS) or peak (VmHWM) resident set of this process, in MiB."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) / 1024


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: VmHWM := VmRSS


def measure(spec: dict) -> dict:
    """Run in the child: build one side's model, run ``steps`` steps, return its memory."""
    import transformers  # noqa: F401  (imported on both sides so the baselines match)

    import minirob

    from . import finetune_step, inference, pretrain_step
    from .twins import build_minirob, build_transformers

    torch.set_num_threads(spec.get("threads", 2))
    module = {"pretrain": pretrain_step, "inference": inference, "finetune": finetune_step}[
        spec["bench"]
    ]
    device = torch.device(spec["device"])
    config = getattr(minirob.RobertaConfig, spec["preset"])(**spec.get("overrides", {}))
    build = build_minirob if spec["impl"] == "minirob" else build_transformers
    model = build(module.CLASS_NAME, config).to(device)
    step = module.workload(spec["impl"], model, config, spec["batch"], spec["length"],
                           spec["precision"], device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device) / 2**20
    else:
        before = rss_mb()
        reset_peak_rss()
    for _ in range(spec["steps"]):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        kind = "torch allocator (max_memory_allocated)"
    else:
        peak = rss_mb("VmHWM")
        kind = "RSS (VmHWM after clear_refs)"
    return {"peak_mb": round(peak, 1), "increase_mb": round(peak - before, 1), "measure": kind}


def measure_in_subprocess(spec: dict, timeout: float = 900) -> dict:
    """Run :func:`measure` in a fresh interpreter and return what it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", json.dumps(spec)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory child failed for {spec}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(spec: dict) -> dict:
    """Both sides of one workload, each in its own process: {"minirob": {...}, "transformers": ...}."""
    return {impl: measure_in_subprocess({**spec, "impl": impl}) for impl in ("minirob", "transformers")}


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
