"""Run the benchmarks of issue 9 and write ``benchmarks/results.md`` and ``results.json``.

    python -m benchmarks.run                          # everything (over an hour on 2 busy cores)
    python -m benchmarks.run --only pretrain,utilisation --repeats 20
    python -m benchmarks.run --only quality --minutes 10   # time to quality: 2 x 10 min + evals
    python -m benchmarks.run --only dense,compiled --repeats 10   # the dense path; compile vs eager
    python -m benchmarks.run --device cuda             # the same on a GPU, reported separately
    python -m benchmarks.run --toy --out /tmp/b        # a seconds-long smoke run on toy shapes

Sections (``--only``): pretrain, inference, finetune, dense (speed, interleaved pairs, see
harness.py; dense = logits at every position, the path users write themselves, dense_step.py),
compiled (minirob's step compiled vs eager, compile time apart, compiled_step.py),
memory (peak RSS per workload, one subprocess per side, see memory.py), utilisation (FLOP/s of
the pretraining step over the matmul FLOP/s measured before each pair, see peak.py) and quality
(held-out MLM accuracy after 20%, 50% and 100% of ``--minutes`` of pretraining on Brown, see
time_to_quality.py).

Results accumulate: a run replaces the sections it ran (for its device) and keeps the others, so
the table can be built from several shorter runs on a shared machine. Every section records when
it ran and the load average around it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
from statistics import median
from pathlib import Path

import torch
from tqdm import tqdm

import minirob

from . import compiled_step, dense_step, finetune_step, inference, memory, pretrain_step
from .report import write_markdown

SECTIONS = ("pretrain", "inference", "finetune", "dense", "compiled", "memory", "utilisation",
            "quality")
SPEED = {"pretrain": pretrain_step, "inference": inference, "finetune": finetune_step,
         "dense": dense_step}
MEMORY = ("pretrain", "inference", "finetune")  # the workloads benchmarks/memory.py knows
TARGETS = {"pretrain": 1.5, "inference": 1.0, "finetune": 1.0, "dense": 1.0}
DEFAULT_REPEATS = {"pretrain": 15, "inference": 8, "finetune": 5, "dense": 10, "compiled": 8}
PROBE_SIZE = {False: 1024, True: 128}  # square matmul measuring the FLOP/s available (peak.py)

# A model small enough for a smoke test to run every workload in seconds.
TOY = dict(vocab_size=256, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
           intermediate_size=64, max_position_embeddings=66)


def workloads(section: str, toy: bool, dense_shapes=("small", "base")) -> list[dict]:
    """The (preset, batch, length) cases of a speed section, as in the issue."""
    if section == "dense":
        return dense_workloads(toy, dense_shapes)
    if toy:
        shapes = {"pretrain": [(8, 64)], "inference": [(4, 32), (1, 64)], "finetune": [(4, 32)]}
    else:
        shapes = {"pretrain": [(32, 128)], "inference": [(8, 128), (1, 512)], "finetune": [(8, 128)]}
    preset = "small" if section == "pretrain" else "base"
    overrides = TOY if toy else {}
    return [{"bench": section, "preset": preset, "overrides": overrides, "batch": b, "length": t}
            for b, t in shapes[section]]


def dense_workloads(toy: bool, presets=("small", "base")) -> list[dict]:
    """Each dense task at the small shape (4 x 256, 32 x 128 tokens) and the roberta-base shape (8 x 128)."""
    shapes = [("small", 8, 64)] if toy else [s for s in [("small", 32, 128), ("base", 8, 128)]
                                            if s[0] in presets]
    return [{"bench": "dense", "task": task, "preset": preset, "overrides": TOY if toy else {},
             "batch": b, "length": t}
            for preset, b, t in shapes for task in dense_step.TASKS]


def config_of(case: dict) -> minirob.RobertaConfig:
    return getattr(minirob.RobertaConfig, case["preset"])(**case["overrides"])


def stamp() -> dict:
    return {"utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "loadavg": os.getloadavg()[0]}


def machine(device: torch.device) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import transformers

    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def run_speed(section: str, args, device: torch.device) -> list[dict]:
    repeats = args.repeats or DEFAULT_REPEATS[section]
    results = []
    for case in workloads(section, args.toy, args.dense_shapes):
        for precision in args.precisions:
            start = stamp()
            with tqdm(total=repeats, desc=f"{section} {case['batch']}x{case['length']} {precision}",
                      disable=args.quiet) as bar:
                options = {"probe_size": PROBE_SIZE[args.toy]} if section == "pretrain" else {}
                if section == "dense":
                    options = {"task": case["task"], "preset": case["preset"]}
                comparison = SPEED[section].benchmark(
                    config_of(case), batch=case["batch"], length=case["length"],
                    precision=precision, device=device, repeats=repeats, warmup=args.warmup,
                    progress=bar, **options)
            case_info = {**case, "precision": precision, **options}
            results.append({**comparison.to_json(), "case": case_info,
                            "target": TARGETS[section], "started": start, "ended": stamp()})
    return results


def run_compiled(args, device: torch.device) -> list[dict]:
    """Each compiled_step case at the small shape: compiled vs eager minirob, compile time apart."""
    repeats = args.repeats or DEFAULT_REPEATS["compiled"]
    batch, length = (8, 64) if args.toy else (32, 128)
    config = minirob.RobertaConfig.small(**(TOY if args.toy else {}))
    results = []
    for case in compiled_step.CASES:
        for precision in args.precisions:
            start = stamp()
            with tqdm(total=repeats, desc=f"compiled {case} {precision}", disable=args.quiet) as bar:
                result = compiled_step.benchmark(config, case=case, batch=batch, length=length,
                                                 precision=precision, device=device,
                                                 repeats=repeats, progress=bar)
            results.append({**result, "case": {"bench": "compiled", "task": case, "batch": batch,
                                               "length": length, "precision": precision},
                             "started": start, "ended": stamp()})
    return results


def run_memory(sections: list[str], args, device: torch.device) -> list[dict]:
    results = []
    cases = [(case, precision) for section in sections for case in workloads(section, args.toy)
             for precision in args.precisions]
    for case, precision in tqdm(cases, desc="memory", disable=args.quiet):
        spec = {**case, "precision": precision, "device": str(device), "threads": args.threads,
                "steps": 1 if case["bench"] == "inference" else 2}  # 2: optimiser state exists
        results.append({"case": spec, **memory.compare(spec), "measured": stamp()})
    return results


def run_utilisation(pretrain_results: list[dict]) -> list[dict]:
    """Per pair: each side's FLOP/s over the matmul FLOP/s measured just before that pair."""
    results = []
    for entry in pretrain_results:
        probe = entry["probe"]
        row = {"precision": entry["case"]["precision"], "matmul_flops_median": median(probe),
               "matmul_flops_max": max(probe), "matmul_size": entry["case"].get("probe_size")}
        for side in ("minirob", "transformers"):
            flops = entry["summary"][f"{side}_flops"]
            per_pair = [flops / t / rate for t, rate in zip(entry[f"{side}_s"], probe)]
            row[side] = {
                "flops_per_step": flops,
                "flops_per_s_median": flops / median(entry[f"{side}_s"]),
                "utilisation_median": median(per_pair),
                "utilisation_min": min(per_pair),
                "utilisation_max": max(per_pair),
            }
        results.append(row)
    return results


def case_key(entry: dict) -> str:
    """What identifies a row: its workload and precision (a rerun replaces the row it repeats)."""
    case = entry.get("case") or {"precision": entry["precision"]}
    return json.dumps({k: case.get(k) for k in ("bench", "task", "batch", "length", "precision")})


def merge(old: list[dict], new: list[dict]) -> list[dict]:
    """Rows of ``old`` not measured again, then the new ones, in a stable order."""
    fresh = {case_key(entry) for entry in new}
    order = ("pretrain", "inference", "finetune", "dense", "compiled")
    rows = [entry for entry in old if case_key(entry) not in fresh] + new
    return sorted(rows, key=lambda e: (order.index(e.get("case", {}).get("bench", "pretrain")),
                                       -e.get("case", {}).get("batch", 0),
                                       e.get("case", e).get("precision") != "float32"))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections (default all): {', '.join(SECTIONS)}")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (reported separately)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--precisions", default="float32,bfloat16")
    parser.add_argument("--repeats", type=int, default=0,
                        help="timed pairs per case (default: pretrain 15, inference 8, "
                             "finetune 5, dense 10, compiled 8)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed pairs per case")
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="time-to-quality budget per model; checkpoints at 20/50/100%%")
    parser.add_argument("--memory-for", default="",
                        help="workloads whose memory to measure (default: the speed sections run, "
                             "or all three)")
    parser.add_argument("--toy", action="store_true", help="toy shapes: a smoke test, not a result")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent),
                        help="directory for results.md and results.json")
    parser.add_argument("--note", default="", help="a remark printed under this table's heading")
    parser.add_argument("--dense-shapes", default="small,base",
                        help="the dense section's shapes: small (4 x 256, 32x128), base (roberta-base, 8x128)")
    parser.add_argument("--section-note", action="append", default=[], metavar="SECTION=TEXT",
                        help="a remark printed under one section's heading (dense, compiled, ...)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    args.dense_shapes = [p.strip() for p in args.dense_shapes.split(",") if p.strip()]
    if not set(args.dense_shapes) <= {"small", "base"}:
        parser.error(f"--dense-shapes {','.join(args.dense_shapes)}: choose from small, base")
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible to torch here")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    everything = json.loads(path.read_text()) if path.exists() else {}
    # One table per device and thread count (a CPU run with 1 thread is a different experiment).
    results = everything.setdefault(f"{args.device}, {args.threads} torch threads", {})
    results["machine"] = machine(device)
    results["toy"] = args.toy
    if args.note:
        results["note"] = args.note
    for item in args.section_note:
        section, _, text = item.partition("=")
        results.setdefault("section_notes", {})[section.strip()] = text.strip()

    def save():
        path.write_text(json.dumps(everything, indent=1))
        write_markdown(everything, out / "results.md")

    for section in ("pretrain", "inference", "finetune", "dense"):
        if section in args.sections:
            results[section] = merge(results.get(section, []), run_speed(section, args, device))
            save()
    if "compiled" in args.sections:
        results["compiled"] = merge(results.get("compiled", []), run_compiled(args, device))
        save()
    if "utilisation" in args.sections:
        if "pretrain" not in results:
            raise SystemExit("utilisation needs the pretrain section (run it first or together)")
        results["utilisation"] = run_utilisation(results["pretrain"])
        save()
    if "memory" in args.sections:
        speed = args.memory_for.split(",") if args.memory_for else (
            [s for s in MEMORY if s in args.sections] or list(MEMORY))
        results["memory"] = merge(results.get("memory", []), run_memory(speed, args, device))
        save()
    if "quality" in args.sections:
        from .time_to_quality import time_to_quality

        results["quality"] = time_to_quality(minutes=args.minutes, device=device, toy=args.toy,
                                             progress=not args.quiet)
        save()
    save()
    return everything


if __name__ == "__main__":
    main()
